/// `%XX` decoding of URL paths and query strings.
public enum PercentDecoding {
    /// Decodes `%XX` escapes (invalid ones are kept as text); with `plusIsSpace` (query strings) `+` is a space.
    public static func decode(_ s: Substring, plusIsSpace: Bool) -> String {
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else { return String(s) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if plusIsSpace && c == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if c == UInt8(ascii: "%"), it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) {
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `a=1&b=x+y&b=%2F` → `["a": ["1"], "b": ["x y", "/"]]` (form encoding: `+` is a space).
    public static func query(_ q: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for pair in q.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = decode(parts[0], plusIsSpace: true), v = parts.count > 1 ? decode(parts[1], plusIsSpace: true) : ""
            out[k, default: []].append(v)
        }
        return out
    }

    /// The value of one hex digit (either case), `nil` for another byte.
    public static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
