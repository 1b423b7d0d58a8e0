import Crypto
import CryptoExtras
import Foundation

/// Password hashes and access tokens. Passwords: scrypt (N = 2^15, r = 8, p = 1, the parameters of MLflow's
/// werkzeug hashes) with a 16-byte random salt, stored as `scrypt:32768:8:1$<salt base64>$<key hex>`, compared in
/// constant time. Tokens: 32 random bytes (`tly_` + base64url), stored as their SHA-256 only — they are long and
/// random, so a fast digest is as safe as a slow one and lets every request look its token up by digest.
public enum Secrets {
    /// scrypt's N of new hashes (MLflow's).
    public static let rounds = 1 << 15
    static let blockSize = 8, parallelism = 1, keyBytes = 32

    /// A new password hash (`rounds`: scrypt's N, a power of two; the default is MLflow's).
    public static func hashPassword(_ password: String, rounds: Int = rounds) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &rng) }
        let key = try derive(password, salt: salt, rounds: rounds, blockSize: blockSize, parallelism: parallelism)
        return "scrypt:\(rounds):\(blockSize):\(parallelism)$\(Data(salt).base64EncodedString())$\(hex(key))"
    }

    /// Whether `password` matches `hash` (constant time in the key comparison; a malformed hash matches nothing).
    public static func verify(_ password: String, hash: String) -> Bool {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return false }
        let params = parts[0].split(separator: ":")
        guard params.count == 4, params[0] == "scrypt", let n = Int(params[1]), let r = Int(params[2]), let p = Int(params[3]),
              n > 1, n <= 1 << 20, n & (n - 1) == 0, (1...32).contains(r), (1...16).contains(p),
              let salt = Data(base64Encoded: String(parts[1])),
              let expected = unhex(parts[2]), !expected.isEmpty,
              let key = try? derive(password, salt: Array(salt), rounds: n, blockSize: r, parallelism: p, count: expected.count)
        else { return false }
        return constantTimeEqual(key, expected)
    }


    /// A new access token.
    public static func newToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        return "tly_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A new public token id (`tok-` and 12 hex digits).
    static func newTokenID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "tok-" + hex((0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    /// SHA-256, hex: how tokens are stored and credentials keyed in the cache.
    public static func digest(_ s: String) -> String { hex(Array(SHA256.hash(data: Array(s.utf8)))) }

    static func derive(_ password: String, salt: [UInt8], rounds: Int, blockSize: Int, parallelism: Int, count: Int = keyBytes) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: count, rounds: rounds,
                                           blockSize: blockSize, parallelism: parallelism, maxMemory: 256 << 20)
        return key.withUnsafeBytes { Array($0) }
    }

    /// Byte-wise equality whose time depends on the lengths only.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in a.indices { d |= a[i] ^ b[i] }
        return d == 0
    }

    /// Lowercase hex of bytes (digests, keys, MACs, tokens).
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ s: Substring) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let h = v(u[i]), let l = v(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }
}
