import TallyTracking
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The scanning primitives of the hand-written JSON readers (`LogBatchParser`, `ColumnarJSONParser`): a cursor over
/// request bytes. Every reader answers `nil` when the input is not what it expects, leaving `offset` at or near the
/// problem; callers either fall back to the general parser or report the offset.
struct JSONCursor {
    let p: UnsafePointer<UInt8>
    let n: Int
    var i = 0

    /// A cursor over `bytes` (which must outlive it).
    init(_ bytes: UnsafeRawBufferPointer) {
        p = bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? UnsafePointer(bitPattern: 1)!
        n = bytes.count
    }

    /// Byte offset of the cursor.
    var offset: Int { i }

    /// Whether only whitespace is left.
    mutating func atEnd() -> Bool {
        skipSpace()
        return i == n
    }

    /// Consumes `word` if it is next.
    mutating func literal(_ word: StaticString) -> Bool {
        skipSpace()
        let k = word.utf8CodeUnitCount
        guard n &- i >= k, matches(i, word) else { return false }
        i &+= k
        return true
    }

    /// The next non-space byte, not consumed.
    mutating func peek() -> UInt8? {
        skipSpace()
        return i < n ? p[i] : nil
    }

    /// Skips whitespace, then consumes `c` if it is next.
    mutating func consume(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < n, p[i] == c else { return false }
        i &+= 1
        return true
    }

    mutating func skipSpace() {
        while i < n {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i &+= 1
        }
    }

    func matches(_ start: Int, _ literal: StaticString) -> Bool {
        memcmp(p + start, literal.utf8Start, literal.utf8CodeUnitCount) == 0
    }

    /// A string's bytes (start, count) when it is plain printable ASCII without escapes.
    mutating func rawString() -> (Int, Int)? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = i
        while i < n {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i &+= 1
                return (start, i &- 1 &- start)
            }
            guard c >= 0x20, c < 0x80, c != UInt8(ascii: "\\") else { return nil }
            i &+= 1
        }
        return nil
    }

    mutating func string() -> String? {
        guard let (s, c) = rawString() else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p + s, count: c), as: UTF8.self)
    }

    /// Whether the `count` bytes at `a` and at `b` are equal.
    func equalBytes(_ a: Int, _ b: Int, _ count: Int) -> Bool { memcmp(p + a, p + b, count) == 0 }

    /// The text of `count` bytes at `start` (from ``rawString()``).
    func text(_ start: Int, _ count: Int) -> String? {
        String(decoding: UnsafeBufferPointer(start: p + start, count: count), as: UTF8.self)
    }

    /// A string with escapes and UTF-8 allowed (`nil` on bad escapes or invalid UTF-8).
    mutating func anyString() -> String? {
        skipSpace()
        let save = i
        if let v = string() { return v }
        i = save
        guard consume(UInt8(ascii: "\"")) else { return nil }
        var out: [UInt8] = []
        while i < n {
            let c = p[i]
            i &+= 1
            if c == UInt8(ascii: "\"") { return String(validating: out, as: UTF8.self) }
            guard c >= 0x20 else { return nil }
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                continue
            }
            guard i < n else { return nil }
            let e = p[i]
            i &+= 1
            if let plain = JSONParser.unescaped(e) {
                out.append(plain)
                continue
            }
            // NUL is refused by the general parser, which names it.
            guard e == UInt8(ascii: "u"), let scalar = JSONEscape.unicode(p, n, &i), scalar != "\0" else { return nil }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
        return nil
    }

    /// A JSON integer that fits in an Int64 (no fraction, exponent or quotes; those go to the general path).
    mutating func int64() -> Int64? {
        skipSpace()
        var negative = false
        if i < n, p[i] == UInt8(ascii: "-") {
            negative = true
            i &+= 1
        }
        let start = i
        var magnitude: UInt64 = 0
        while i < n, p[i] &- 0x30 < 10 {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(p[i] &- 0x30))
            guard !o1, !o2 else { return nil }
            magnitude = a
            i &+= 1
        }
        guard i > start, !(p[start] == UInt8(ascii: "0") && i &- start > 1) else { return nil }
        if i < n, p[i] == UInt8(ascii: ".") || p[i] | 0x20 == UInt8(ascii: "e") { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) &+ 1 else { return nil }
            return magnitude == UInt64(Int64.max) &+ 1 ? .min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    static let exactPowers: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { x, _ in x * 10 } }

    /// A JSON number, `NaN`/`Infinity`/`-Infinity` bare (Python's `json.dumps`) or quoted (protobuf).
    mutating func double() -> Double? {
        skipSpace()
        guard i < n else { return nil }
        switch p[i] {
        case UInt8(ascii: "\""):
            guard let (s, c) = rawString() else { return nil }
            if c == 3, matches(s, "NaN") { return .nan }
            if c == 8, matches(s, "Infinity") { return .infinity }
            if c == 9, matches(s, "-Infinity") { return -.infinity }
            return nil
        case UInt8(ascii: "N"):
            guard n &- i >= 3, matches(i, "NaN") else { return nil }
            i &+= 3
            return .nan
        case UInt8(ascii: "I"):
            guard n &- i >= 8, matches(i, "Infinity") else { return nil }
            i &+= 8
            return .infinity
        case UInt8(ascii: "-") where n &- i >= 9 && matches(i, "-Infinity"):
            i &+= 9
            return -.infinity
        default:
            return number()
        }
    }

    /// JSON number grammar; exact by Clinger's fast path when the digits fit 2^53 and the power of ten is exact,
    /// `strtod` otherwise (correctly rounded either way).
    mutating func number() -> Double? {
        let start = i
        var negative = false
        if p[i] == UInt8(ascii: "-") {
            negative = true
            i &+= 1
        }
        // Significant digits go into `mantissa` (leading zeros skipped); digits past 19 only count, and force strtod.
        var mantissa: UInt64 = 0, digits = 0, exponent = 0
        let intStart = i
        while i < n, p[i] &- 0x30 < 10 {
            let d = UInt64(p[i] &- 0x30)
            if mantissa != 0 || d != 0 {
                if digits < 19 { mantissa = mantissa &* 10 &+ d } else { exponent &+= 1 }
                digits &+= 1
            }
            i &+= 1
        }
        guard i > intStart, !(p[intStart] == UInt8(ascii: "0") && i &- intStart > 1) else { return nil }
        if i < n, p[i] == UInt8(ascii: ".") {
            i &+= 1
            let fracStart = i
            while i < n, p[i] &- 0x30 < 10 {
                let d = UInt64(p[i] &- 0x30)
                if mantissa == 0 && d == 0 {
                    exponent &-= 1
                } else {
                    if digits < 19 {
                        mantissa = mantissa &* 10 &+ d
                        exponent &-= 1
                    }
                    digits &+= 1
                }
                i &+= 1
            }
            guard i > fracStart else { return nil }
        }
        if i < n, p[i] | 0x20 == UInt8(ascii: "e") {
            i &+= 1
            var expNegative = false
            if i < n, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
                expNegative = p[i] == UInt8(ascii: "-")
                i &+= 1
            }
            let expStart = i
            var e = 0
            while i < n, p[i] &- 0x30 < 10 {
                if e < 100_000 { e = e &* 10 &+ Int(p[i] &- 0x30) }
                i &+= 1
            }
            guard i > expStart else { return nil }
            exponent &+= expNegative ? -e : e
        }
        if digits <= 19, mantissa < (1 << 53), exponent >= -22, exponent <= 22 {
            let m = Double(mantissa)
            let v = exponent >= 0 ? m * Self.exactPowers[exponent] : m / Self.exactPowers[-exponent]
            return negative ? -v : v
        }
        // Rare: long or extreme numbers. strtod needs a terminated copy.
        let length = i &- start
        guard length < 512 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length &+ 1) { buf -> Double? in
            for k in 0..<length { buf[k] = CChar(bitPattern: p[start &+ k]) }
            buf[length] = 0
            return strtod(buf.baseAddress!, nil)
        }
    }
}
