import Crypto
import CryptoExtras
import Foundation

/// Fernet tokens (the `cryptography` package's format, what MLflow seals webhook secrets with under
/// `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`): `0x80 ‖ timestamp (8) ‖ IV (16) ‖ AES-128-CBC ciphertext ‖ HMAC-SHA256 (32)`,
/// URL-safe base64; the key is URL-safe base64 of 32 bytes, the signing key first, the encryption key second.
/// `tally import` opens MLflow's secrets with it; nothing in Tally seals with it.
enum Fernet {
    /// URL-safe base64 (padding optional).
    static func bytes(_ text: String) -> Data? {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }

    /// The text `token` holds under `key`; an error naming what is wrong (a bad key, a token sealed under another
    /// key or damaged).
    static func open(_ token: String, key: String) throws -> String {
        guard let k = bytes(key), k.count == 32 else { throw TrackingError.invalid("The Fernet key is not URL-safe base64 of 32 bytes") }
        guard let t = bytes(token), t.count >= 1 + 8 + 16 + 16 + 32, t.first == 0x80, (t.count - 57) % 16 == 0 else {
            throw TrackingError.invalid("Not a Fernet token")
        }
        let body = t.prefix(t.count - 32), mac = t.suffix(32)
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: SymmetricKey(data: k.prefix(16))) else {
            throw TrackingError.invalid("The Fernet token was not sealed with this key")
        }
        let iv = try AES._CBC.IV(ivBytes: Array(t[t.startIndex + 9..<t.startIndex + 25]))
        let plain = try AES._CBC.decrypt(body.dropFirst(25), using: SymmetricKey(data: k.suffix(16)), iv: iv)
        return String(decoding: plain, as: UTF8.self)
    }

    /// `text` sealed under `key` now (tests make MLflow's tokens with it).
    static func seal(_ text: String, key: String) throws -> String {
        guard let k = bytes(key), k.count == 32 else { throw TrackingError.invalid("The Fernet key is not URL-safe base64 of 32 bytes") }
        var iv = [UInt8](repeating: 0, count: 16)
        for i in iv.indices { iv[i] = UInt8.random(in: 0...255) }
        var body = Data([0x80])
        withUnsafeBytes(of: UInt64(Date().timeIntervalSince1970).bigEndian) { body.append(contentsOf: $0) }
        body.append(contentsOf: iv)
        body.append(try AES._CBC.encrypt(Data(text.utf8), using: SymmetricKey(data: k.suffix(16)), iv: try AES._CBC.IV(ivBytes: iv)))
        body.append(contentsOf: HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: k.prefix(16))))
        return body.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }
}
