#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TallyTracking

/// The fields of a `runs/log-batch` body.
struct LogBatchBody: Sendable, Equatable {
    /// `run_id`, else `run_uuid`.
    var runID: String
    /// Metric points in request order.
    var metrics: [MetricInput]
    /// Params in request order.
    var params: [KeyValue]
    /// Tags in request order.
    var tags: [KeyValue]
}

/// A single-pass parser for the one hot MLflow request body, `runs/log-batch`, straight from the request bytes to
/// `MetricInput`s: no JSON tree, no number strings, metric keys interned (a batch repeats a few keys many times).
///
/// It handles the bodies clients send: the known fields, plain ASCII strings without escapes, integer int64s and
/// numeric or `"NaN"`/`"Infinity"` doubles. Anything else (escapes, non-ASCII, unknown or repeated fields, wrong
/// types, missing fields, bad syntax) makes it answer `nil`, and the request goes through the general parser, which
/// either accepts it or produces MLflow's exact error. It never accepts a body the general path would refuse, and
/// yields the same values where both accept (a differential test checks this).
struct LogBatchParser {
    private let p: UnsafePointer<UInt8>
    private let n: Int
    private var i = 0
    private var lastKey: (start: Int, count: Int, value: String) = (0, 0, "")

    private init(_ p: UnsafePointer<UInt8>, _ n: Int) {
        self.p = p
        self.n = n
    }

    /// The body, or `nil` when it needs the general parser.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> LogBatchBody? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        var parser = LogBatchParser(base.assumingMemoryBound(to: UInt8.self), bytes.count)
        return parser.body()
    }

    private mutating func body() -> LogBatchBody? {
        var runID: String?, runUUID: String?
        var metrics: [MetricInput]?, params: [KeyValue]?, tags: [KeyValue]?
        guard consume(UInt8(ascii: "{")) else { return nil }
        if !consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = rawString(), consume(UInt8(ascii: ":")) else { return nil }
                switch name {
                case (let s, 6) where matches(s, "run_id"):
                    guard runID == nil, let v = string() else { return nil }
                    runID = v
                case (let s, 8) where matches(s, "run_uuid"):
                    guard runUUID == nil, let v = string() else { return nil }
                    runUUID = v
                case (let s, 7) where matches(s, "metrics"):
                    guard metrics == nil, let v = metricArray() else { return nil }
                    metrics = v
                case (let s, 6) where matches(s, "params"):
                    guard params == nil, let v = keyValueArray() else { return nil }
                    params = v
                case (let s, 4) where matches(s, "tags"):
                    guard tags == nil, let v = keyValueArray() else { return nil }
                    tags = v
                default: return nil
                }
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return nil }
        }
        skipSpace()
        guard i == n else { return nil }
        let id = (runID?.isEmpty == false ? runID : nil) ?? (runUUID?.isEmpty == false ? runUUID : nil)
        guard let id else { return nil }
        return LogBatchBody(runID: id, metrics: metrics ?? [], params: params ?? [], tags: tags ?? [])
    }

    // MARK: Arrays

    private mutating func metricArray() -> [MetricInput]? {
        guard consume(UInt8(ascii: "[")) else { return nil }
        var out: [MetricInput] = []
        if consume(UInt8(ascii: "]")) { return out }
        out.reserveCapacity(min(1024, n / 48))
        repeat {
            guard let m = metric() else { return nil }
            out.append(m)
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]")) ? out : nil
    }

    private mutating func metric() -> MetricInput? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var key: String?, value: Double?, timestamp: Int64?, step: Int64?
        if !consume(UInt8(ascii: "}")) {
            repeat {
                guard let name = rawString(), consume(UInt8(ascii: ":")) else { return nil }
                switch name {
                case (let s, 3) where matches(s, "key"):
                    guard key == nil, let v = internedKey() else { return nil }
                    key = v
                case (let s, 5) where matches(s, "value"):
                    guard value == nil, let v = double() else { return nil }
                    value = v
                case (let s, 9) where matches(s, "timestamp"):
                    guard timestamp == nil, let v = int64() else { return nil }
                    timestamp = v
                case (let s, 4) where matches(s, "step"):
                    guard step == nil, let v = int64() else { return nil }
                    step = v
                default: return nil
                }
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return nil }
        }
        guard let key, let value, let timestamp else { return nil }
        return MetricInput(key: key, value: value, timestamp: timestamp, step: step ?? 0)
    }

    private mutating func keyValueArray() -> [KeyValue]? {
        guard consume(UInt8(ascii: "[")) else { return nil }
        var out: [KeyValue] = []
        if consume(UInt8(ascii: "]")) { return out }
        repeat {
            guard consume(UInt8(ascii: "{")) else { return nil }
            var key: String?, value: String?
            if !consume(UInt8(ascii: "}")) {
                repeat {
                    guard let name = rawString(), consume(UInt8(ascii: ":")) else { return nil }
                    switch name {
                    case (let s, 3) where matches(s, "key"):
                        guard key == nil, let v = string() else { return nil }
                        key = v
                    case (let s, 5) where matches(s, "value"):
                        guard value == nil, let v = string() else { return nil }
                        value = v
                    default: return nil
                    }
                } while consume(UInt8(ascii: ","))
                guard consume(UInt8(ascii: "}")) else { return nil }
            }
            guard let key else { return nil }
            out.append(KeyValue(key: key, value: value ?? ""))
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]")) ? out : nil
    }

    // MARK: Scalars

    /// Skips whitespace, then consumes `c` if it is next.
    private mutating func consume(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < n, p[i] == c else { return false }
        i &+= 1
        return true
    }

    private mutating func skipSpace() {
        while i < n {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i &+= 1
        }
    }

    private func matches(_ start: Int, _ literal: StaticString) -> Bool {
        memcmp(p + start, literal.utf8Start, literal.utf8CodeUnitCount) == 0
    }

    /// A string's bytes (start, count) when it is plain printable ASCII without escapes.
    private mutating func rawString() -> (Int, Int)? {
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

    private mutating func string() -> String? {
        guard let (s, c) = rawString() else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p + s, count: c), as: UTF8.self)
    }

    /// A metric key, reusing the previous key's storage when the bytes repeat.
    private mutating func internedKey() -> String? {
        guard let (s, c) = rawString() else { return nil }
        if c == lastKey.count, memcmp(p + s, p + lastKey.start, c) == 0 { return lastKey.value }
        let v = String(decoding: UnsafeBufferPointer(start: p + s, count: c), as: UTF8.self)
        lastKey = (s, c, v)
        return v
    }

    /// A JSON integer that fits in an Int64 (no fraction, exponent or quotes; those go to the general path).
    private mutating func int64() -> Int64? {
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

    private static let exactPowers: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { x, _ in x * 10 } }

    /// A JSON number, `NaN`/`Infinity`/`-Infinity` bare (Python's `json.dumps`) or quoted (protobuf).
    private mutating func double() -> Double? {
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
    private mutating func number() -> Double? {
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
