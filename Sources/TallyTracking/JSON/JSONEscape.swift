/// The one decoder of `\u` escapes, shared by every JSON reader.
public enum JSONEscape {
    /// Reads the four hex digits of a `\uXXXX` escape at `i` (just after the `u`), and a following `\uXXXX` low
    /// surrogate when the first is a high one. `nil` when the digits are not hex, or for a surrogate without its pair
    /// (no character: MLflow refuses it with a 400, and replacing it with U+FFFD would store other text than sent).
    public static func unicode(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int) -> Unicode.Scalar? {
        guard let u = hex4(p, n, i) else { return nil }
        if (0xD800..<0xDC00).contains(u) {
            guard n &- i >= 10, p[i &+ 4] == UInt8(ascii: "\\"), p[i &+ 5] == UInt8(ascii: "u"), let low = hex4(p, n, i &+ 6),
                  (0xDC00..<0xE000).contains(low) else { return nil }
            i &+= 10
            return Unicode.Scalar(0x10000 &+ ((u &- 0xD800) << 10) &+ (low &- 0xDC00))
        }
        guard let scalar = Unicode.Scalar(u) else { return nil }  // a low surrogate alone
        i &+= 4
        return scalar
    }

    /// Four hex digits at `i`.
    static func hex4(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: Int) -> UInt32? {
        guard n &- i >= 4 else { return nil }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[i &+ k]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c &- 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c &- 0x61 &+ 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c &- 0x41 &+ 10)
            default: return nil
            }
            v = v << 4 | d
        }
        return v
    }
}
