/// Python's `repr` of the values MLflow's messages quote with `!r` (`'name'`, `['a', 'b']`).
public enum PythonRepr {
    /// `repr(s)`: single quotes, or double ones when the text holds a single quote and no double one; backslashes,
    /// the quote, and control characters escaped (`\n`, `\x07`, `\u2028`); other characters as they are.
    public static func string(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where Character(u) == quote: out += "\\" + String(quote)
            case _ where u.value < 0x20 || (0x7F...0xA0).contains(u.value) || u.value == 0xAD:
                out += "\\x" + hex(u.value, 2)
            case _ where u.properties.generalCategory == .lineSeparator || u.properties.generalCategory == .paragraphSeparator
                || (u.properties.generalCategory == .spaceSeparator && u != " ")
                || u.properties.generalCategory == .format || u.properties.generalCategory == .surrogate
                || u.properties.generalCategory == .privateUse || u.properties.generalCategory == .unassigned:
                out += u.value > 0xFFFF ? "\\U" + hex(u.value, 8) : "\\u" + hex(u.value, 4)
            default: out.unicodeScalars.append(u)
            }
        }
        out.append(quote)
        return out
    }

    /// `repr(list_of_strings)`: `['a', 'b']`, `[]` when empty.
    public static func strings(_ list: [String]) -> String {
        "[" + list.map(string).joined(separator: ", ") + "]"
    }

    /// `repr(b)` of bytes: `b'...'` (double quotes when they hold a single quote and no double one), printable ASCII
    /// as it is, `\\`, the quote, `\t`, `\n`, `\r` escaped, every other byte as `\xhh`.
    public static func bytes(_ b: [UInt8]) -> String {
        let quote: UInt8 = b.contains(UInt8(ascii: "'")) && !b.contains(UInt8(ascii: "\"")) ? UInt8(ascii: "\"") : UInt8(ascii: "'")
        var out = "b" + String(UnicodeScalar(quote))
        for c in b {
            switch c {
            case UInt8(ascii: "\\"), quote: out += "\\" + String(UnicodeScalar(c))
            case 0x09: out += "\\t"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x20..<0x7F: out.unicodeScalars.append(UnicodeScalar(c))
            default: out += "\\x" + hex(UInt32(c), 2)
            }
        }
        return out + String(UnicodeScalar(quote))
    }

    private static func hex(_ v: UInt32, _ width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
