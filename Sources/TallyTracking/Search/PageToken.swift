/// Opaque page tokens in MLflow's format, `base64(json {"offset": N})`, so tokens can be exchanged with MLflow.
public enum PageToken {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// The token for `offset`.
    public static func encode(offset: Int) -> String {
        base64(Array("{\"offset\": \(offset)}".utf8))
    }

    /// The offset of a token (`nil`/empty: 0); a malformed token is an `INVALID_PARAMETER_VALUE`.
    public static func decode(_ token: String?) throws -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let bytes = unbase64(token) else { throw TrackingError.invalid("Invalid page token, could not base64-decode") }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("{"), text.hasSuffix("}"), let colon = text.firstIndex(of: ":"),
            text[..<colon].contains("offset"),
            let n = Int(text[text.index(after: colon)...].dropLast().trimmingSpaces()), n >= 0
        else { throw TrackingError.invalid("Invalid page token, could not base64-decode") }
        return n
    }

    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unbase64(_ s: String) -> [UInt8]? {
        var lookup = [Int](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { lookup[Int(c)] = i }
        lookup[Int(UInt8(ascii: "-"))] = 62  // URL-safe variants too
        lookup[Int(UInt8(ascii: "_"))] = 63
        var bits = 0, acc = 0
        var out: [UInt8] = []
        for c in s.utf8 where c != UInt8(ascii: "=") {
            let v = lookup[Int(c)]
            guard v >= 0 else { return nil }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> bits) & 0xFF))
            }
        }
        return out
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
