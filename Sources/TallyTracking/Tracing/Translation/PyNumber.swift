import Foundation

/// A number as Python holds one in MLflow's token and cost arithmetic: an `int` (here 128 bits, saturating), a
/// `bool` (an `int` in sums) or a `float`.
enum PyNumber: Equatable {
    case int(Int128)
    case bool(Bool)
    case float(Double)

    /// The number a parsed JSON value is; `nil` for any other value (Python's sum raises `TypeError` on it).
    init?(_ v: JSONValue) {
        switch v {
        case .bool(let b): self = .bool(b)
        case .number(let n):
            if n == "NaN" { self = .float(.nan) } else if n == "Infinity" { self = .float(.infinity) } else if n == "-Infinity" {
                self = .float(-.infinity)
            } else if n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                self = .float(Double(n) ?? .nan)
            } else {
                self = .int(Self.saturating(n))
            }
        default: return nil
        }
    }

    /// An integer literal's value, held at the nearest bound when it is wider than 128 bits.
    static func saturating(_ digits: String) -> Int128 {
        Int128(digits) ?? (digits.hasPrefix("-") ? .min : .max)
    }

    /// The value as Python sums it (`True` is 1).
    var asInt: Int128? {
        switch self {
        case .int(let i): i
        case .bool(let b): b ? 1 : 0
        case .float: nil
        }
    }

    /// The value as a float.
    var asDouble: Double {
        switch self {
        case .int(let i): Double(i)
        case .bool(let b): b ? 1 : 0
        case .float(let d): d
        }
    }

    /// Python's `a + b`.
    static func + (a: PyNumber, b: PyNumber) -> PyNumber {
        if let x = a.asInt, let y = b.asInt {
            let (sum, overflow) = x.addingReportingOverflow(y)
            return .int(overflow ? (x < 0 ? .min : .max) : sum)
        }
        return .float(a.asDouble + b.asDouble)
    }

    /// The number as `json.dumps` writes it.
    var json: JSONValue {
        switch self {
        case .int(let i): .number(String(i))
        case .bool(let b): .bool(b)
        case .float(let d):
            .number(d.isNaN ? "NaN" : d.isInfinite ? (d > 0 ? "Infinity" : "-Infinity") : Validation.pythonFloat(d))
        }
    }

    /// Text as Python's number parsers take it: surrounding whitespace dropped, then whether a sign makes it negative,
    /// and the rest.
    static func trimmed(_ text: String) -> Substring.UnicodeScalarView {
        var scalars = Substring(text).unicodeScalars.drop { $0.properties.isWhitespace }
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return scalars
    }

    /// ``trimmed(_:)``, its sign taken off.
    static func signed(_ text: String) -> (negative: Bool, rest: Substring.UnicodeScalarView) {
        var scalars = trimmed(text)
        guard let first = scalars.first, first == "+" || first == "-" else { return (false, scalars) }
        scalars.removeFirst()
        return (first == "-", scalars)
    }

    /// Python's `int(text)` for a string: surrounding whitespace, a sign, decimal digits of any script, single
    /// underscores between digits; `nil` where Python raises `ValueError`.
    static func pythonInt(_ text: String) -> Int128? {
        let (negative, scalars) = signed(text)
        var value: Int128 = 0, sawDigit = false, lastUnderscore = false
        for s in scalars {
            if s == "_" {
                guard sawDigit, !lastUnderscore else { return nil }
                lastUnderscore = true
                continue
            }
            guard s.properties.generalCategory == .decimalNumber, let d = s.properties.numericValue else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int128(d))
            value = o1 || o2 ? .max : a
            sawDigit = true
            lastUnderscore = false
        }
        guard sawDigit, !lastUnderscore else { return nil }
        return negative ? (value == .max ? .min : -value) : value
    }

    /// Python's `int(x)` of a float: truncated toward zero; `nil` for NaN (`ValueError`); throws for an infinity
    /// (`OverflowError`, which MLflow does not catch).
    static func truncated(_ d: Double) throws -> Int128? {
        if d.isNaN { return nil }
        if d.isInfinite { throw SpanConversionError(failedToLog: true) }
        let t = d.rounded(.towardZero)
        if t >= 0x1p127 { return .max }
        if t < -0x1p127 { return .min }
        return Int128(t)
    }

    /// Python's `float(text)` (surrounding whitespace, underscores between digits, `nan` and `inf` in any case);
    /// `nil` where Python raises `ValueError`.
    static func pythonFloat(_ text: String) -> Double? {
        let s = String(Substring(trimmed(text)))
        let lower = s.lowercased()
        guard !lower.contains("0x"), !lower.hasPrefix("_"), !lower.hasSuffix("_"), !lower.contains("__") else { return nil }
        return Double(s.replacingOccurrences(of: "_", with: ""))
    }

    /// MLflow's `token_count_or_none`: the value as a 64-bit count when it is an integer (a float's decimal text
    /// integral), not a bool; else `nil`.
    var tokenCount: Int64? {
        switch self {
        case .bool: nil
        case .int(let i): Int64(exactly: i)
        case .float(let d): d.isFinite ? Self.decimalInteger(Validation.pythonFloat(d)).flatMap { Int64(exactly: $0) } : nil
        }
    }

    /// MLflow's `finite_float_or_none`: the value as a finite float, not a bool; else `nil`.
    var finiteFloat: Double? {
        if case .bool = self { return nil }
        let d = asDouble
        return d.isFinite ? d : nil
    }

    /// MLflow's `finite_float_or_none` of a JSON value: a number's (not a bool's) or a string's Python `float`, when
    /// finite; else `nil`.
    static func finiteFloat(_ v: JSONValue) -> Double? {
        if case .string(let s) = v { return pythonFloat(s).flatMap { float($0).finiteFloat } }
        return PyNumber(v)?.finiteFloat
    }

    /// The integer Python's `Decimal(text)` is, when it is one (`"5"`, `" 5.0 "`, `"1e3"`, `"1_000"`); `nil` for a
    /// fraction, an infinity, NaN or text `Decimal` refuses.
    static func decimalInteger(_ text: String) -> Int128? {
        let (negative, s) = signed(text)
        var digits: [UInt8] = [], fraction = 0, exponent = 0, inFraction = false, inExponent = false, expDigits = "", prev: Unicode.Scalar = " "
        for c in s {
            defer { prev = c }
            if c == "_" {
                guard prev.properties.generalCategory == .decimalNumber else { return nil }
                continue
            }
            if inExponent {
                if expDigits.isEmpty, c == "+" || c == "-" { expDigits.append(Character(c)); continue }
                guard let d = c.properties.numericValue, c.properties.generalCategory == .decimalNumber else { return nil }
                expDigits.append(Character(String(Int(d))))
                continue
            }
            if c == "." { guard !inFraction else { return nil }; inFraction = true; continue }
            if c == "e" || c == "E" { guard !digits.isEmpty else { return nil }; inExponent = true; continue }
            guard let d = c.properties.numericValue, c.properties.generalCategory == .decimalNumber else { return nil }
            digits.append(UInt8(d))
            if inFraction { fraction += 1 }
        }
        guard !digits.isEmpty, prev != "_" else { return nil }
        if inExponent {
            guard let e = Int(expDigits), expDigits.last?.isNumber == true else { return nil }
            exponent = e
        }
        if digits.allSatisfy({ $0 == 0 }) { return 0 }  // zero at any exponent
        // The value is digits × 10^shift; an exponent that far out is no 64-bit count either way.
        let (shift, overflow) = exponent.subtractingReportingOverflow(fraction)
        guard !overflow, shift > Int.min else { return nil }
        var used = digits
        if shift < 0 {  // integral only when the dropped digits are zeros
            guard -shift <= used.count, used.suffix(-shift).allSatisfy({ $0 == 0 }) else { return nil }
            used.removeLast(-shift)
        }
        var value: Int128 = 0
        for d in used {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int128(d))
            if o1 || o2 { return negative ? .min : .max }
            value = a
        }
        var left = max(0, shift)
        while left > 0, value != 0 {  // at most ~39 steps before the bound
            let (m, o) = value.multipliedReportingOverflow(by: 10)
            if o { return negative ? .min : .max }
            value = m
            left -= 1
        }
        return negative ? -value : value
    }
}
