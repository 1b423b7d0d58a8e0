import TallyTracking

/// Protobuf's JSON forms of `google.protobuf.Timestamp` (RFC 3339, `2026-12-05T03:17:40.125Z`) and
/// `google.protobuf.Duration` (`"0.030s"`), kept to milliseconds as MLflow's store keeps them. MLflow 3's trace
/// messages carry times in these forms; its client refuses numbers there.
enum ProtoTime {
    /// Milliseconds since the epoch as RFC 3339 in UTC, with 3 fraction digits when not a whole second (0, 3, 6
    /// or 9 digits, as protobuf writes them); a time outside years 0001–9999 as the nearest of them.
    static func timestamp(_ ms0: Int64) -> String {
        let ms = min(max(ms0, TraceInfo.minTime), TraceInfo.maxTime)  // years 0001–9999: what RFC 3339 writes
        let f = CivilDate.fields(ms: ms), pad = CivilDate.pad
        var s = pad(f.year, 4) + "-" + pad(f.month, 2) + "-" + pad(f.day, 2) + "T" + pad(f.hour, 2) + ":" + pad(f.minute, 2) + ":" + pad(f.second, 2)
        if f.milli != 0 { s += "." + pad(f.milli, 3) }
        return s + "Z"
    }

    /// An RFC 3339 timestamp (`Z` or a `±HH:MM` offset, up to 9 fraction digits) as milliseconds since the epoch
    /// (the fraction past milliseconds dropped); `nil` when it is not one.
    static func timestamp(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func num(_ at: Int, _ n: Int) -> Int64? {
            guard at + n <= b.count else { return nil }
            var v: Int64 = 0
            for c in b[at..<at + n] {
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let se = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61 else { return nil }
        var i = 19, milli: Int64 = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 3 { milli = milli * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard (1...9).contains(digits) else { return nil }
            if digits < 3 { for _ in digits..<3 { milli *= 10 } }
        }
        var offset: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, i + 6 == b.count, b[i + 3] == 58, let oh = num(i + 1, 2), let om = num(i + 4, 2), oh < 24, om < 60 {
            offset = (oh * 60 + om) * 60 * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let ms = (CivilDate.days(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset) * 1000 + milli
        return (TraceInfo.minTime...TraceInfo.maxTime).contains(ms) ? ms : nil  // years 0001–9999, as protobuf's
    }

    /// Milliseconds as a protobuf duration: `"0s"`, `"0.030s"`, `"12.500s"`.
    static func duration(_ ms: Int64) -> String {
        let sign = ms < 0 ? "-" : "", a = ms.magnitude
        return sign + String(a / 1000) + (a % 1000 == 0 ? "" : "." + CivilDate.pad(Int64(a % 1000), 3)) + "s"
    }

    /// A protobuf duration (`"1.5s"`, `"-0.000001s"`) as whole milliseconds (toward zero); `nil` when it is not one.
    static func duration(_ s: String) -> Int64? {
        guard s.hasSuffix("s") else { return nil }
        var body = Substring(s.dropLast())
        let negative = body.hasPrefix("-")
        if negative { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCIIDigit), let secs = Int64(whole), secs <= 315_576_000_000 else { return nil }
        var milli: Int64 = 0
        if parts.count == 2 {
            let f = parts[1]
            guard (1...9).contains(f.count), f.allSatisfy(\.isASCIIDigit) else { return nil }
            milli = Int64(String((f + "00").prefix(3)))!
        }
        let ms = secs * 1000 + milli
        return negative ? -ms : ms
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension JSONValue {
    /// Whether this is an object.
    var isObject: Bool { if case .object = self { true } else { false } }

    /// The value as compact JSON text (members in their order, numbers as written).
    var compact: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n
        case .string(let s): JSONText.quote(s)
        case .array(let a): "[" + a.map(\.compact).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.map { JSONText.quote($0.0) + ": " + $0.1.compact }.joined(separator: ", ") + "}"
        }
    }
}
