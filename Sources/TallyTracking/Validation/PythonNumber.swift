/// Numbers written as text, read as MLflow's server (Python) reads them: `float(s)` for a double, `int(s)` for an
/// id. Python first turns every Unicode space into a space and every decimal digit of any script into its ASCII digit
/// (anything else that is not ASCII fails), drops the spaces around the number, and takes `_` only between two
/// digits (`1_000`).
public enum PythonNumber {
    /// `float(s)`: a decimal number with optional sign, fraction and exponent, or `nan`, `inf`, `infinity` in any
    /// case. Not hexadecimal.
    public static func double(_ s: String) -> Double? {
        guard let text = asciiNumber(s) else { return nil }
        guard text.allSatisfy({ $0.isNumber || $0.isLetter || $0 == "+" || $0 == "-" || $0 == "." }) else { return nil }
        let letters = text.filter(\.isLetter).lowercased()
        guard letters.isEmpty || letters == "e" || ["nan", "inf", "infinity"].contains(letters) else { return nil }
        return Double(text)
    }

    /// `int(s)`: optional sign, then decimal digits; `nil` past Int64 too.
    public static func int(_ s: String) -> Int64? {
        guard let text = asciiNumber(s) else { return nil }
        let digits = text.first == "+" || text.first == "-" ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber) else { return nil }  // ASCII already (``asciiNumber(_:)``)
        return Int64(text.first == "+" ? String(digits) : text)
    }

    /// Python's `str.isspace()` for one character: Unicode's white space and the separators U+001C–U+001F.
    public static func isSpace(_ u: Unicode.Scalar) -> Bool { u.properties.isWhitespace || (0x1C...0x1F).contains(u.value) }

    /// Python's `str.strip()`: its white space (``isSpace(_:)``) off both ends.
    public static func strip(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[first...last])
    }

    /// Python's first step (see the type), with `_` between digits removed: the ASCII text of the number, or `nil`.
    static func asciiNumber(_ s: String) -> String? {
        var ascii: [UInt8] = []
        ascii.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            if isSpace(u) {
                ascii.append(0x20)
            } else if u.isASCII {
                ascii.append(UInt8(u.value))
            } else if u.properties.numericType == .decimal, let v = u.properties.numericValue, v >= 0, v <= 9 {
                ascii.append(0x30 + UInt8(v))
            } else {
                return nil
            }
        }
        let isSpace = { (b: UInt8) in b == 0x20 || (0x09...0x0D).contains(b) }
        guard let first = ascii.firstIndex(where: { !isSpace($0) }), let last = ascii.lastIndex(where: { !isSpace($0) }) else { return nil }
        let isDigit = { (b: UInt8) in (0x30...0x39).contains(b) }
        var text = String.UnicodeScalarView()
        for i in first...last {
            let b = ascii[i]
            if b == UInt8(ascii: "_") {
                guard i > first, i < last, isDigit(ascii[i - 1]), isDigit(ascii[i + 1]) else { return nil }
                continue
            }
            guard !isSpace(b) else { return nil }
            text.append(Unicode.Scalar(b))
        }
        return String(text)
    }
}
