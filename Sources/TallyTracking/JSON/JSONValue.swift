/// A parsed JSON value. Numbers keep their text, so int64s are exact and `1` and `1.0` can be told apart.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// The member `key` of an object (the last one when repeated), or `nil`.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    /// The value as MLflow's `Invalid value <v>` messages render it: `json.dumps(v, sort_keys=True,
    /// separators=(",", ":"))` — compact, keys sorted (the last of repeated keys kept, as `json.loads` keeps it),
    /// non-ASCII escaped as `\uXXXX`.
    public var pythonRepr: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n
        case .string(let s): Self.asciiQuote(s)
        case .array(let a): "[" + a.map(\.pythonRepr).joined(separator: ",") + "]"
        case .object(let m):
            // Keys compared by their code points (`é` and `e` + U+0301 are two keys to Python, as to JSON).
            "{" + Dictionary(m.map { (Array($0.0.unicodeScalars.map(\.value)), $0) }, uniquingKeysWith: { _, last in last }).values
                .sorted { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
                .map { Self.asciiQuote($0.0) + ":" + $0.1.pythonRepr }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal with every character outside ASCII's printable range escaped (`\u00e9`, `\u007f`,
    /// surrogate pairs beyond the BMP), as Python's `json.dumps` writes by default.
    public static func asciiQuote(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        appendASCIIQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// ``asciiQuote(_:)`` appended to `out` as bytes; with `ascii` false, as `json.dumps(ensure_ascii=False)` writes
    /// it: only quotes, backslashes and control characters escaped, everything else as its UTF-8.
    static func appendASCIIQuoted(_ s: String, to out: inout [UInt8], ascii: Bool = true) {
        out.append(UInt8(ascii: "\""))
        if s.utf8.allSatisfy({ $0 >= 0x20 && ($0 < 0x7F || !ascii) && $0 != 0x22 && $0 != 0x5C }) {  // nothing to escape: the bytes as they are
            out.append(contentsOf: s.utf8)
        } else {
            let hex = Array("0123456789abcdef".utf8)
            // Escaped by UTF-16 unit (surrogate pairs as Python writes them); without `ascii`, every byte of a
            // character beyond ASCII is copied as it is (none of them is below 0x80, so none matches an escape).
            let units: [UInt16] = ascii ? Array(s.utf16) : s.utf8.map(UInt16.init)
            for u in units {
                if !ascii, u >= 0x7F {
                    out.append(UInt8(u))
                    continue
                }
                switch u {
                case 0x22: out.append(contentsOf: "\\\"".utf8)
                case 0x5C: out.append(contentsOf: "\\\\".utf8)
                case 0x0A: out.append(contentsOf: "\\n".utf8)
                case 0x0D: out.append(contentsOf: "\\r".utf8)
                case 0x09: out.append(contentsOf: "\\t".utf8)
                case 0x08: out.append(contentsOf: "\\b".utf8)  // Python's short escapes, which its hashes of a record's inputs depend on
                case 0x0C: out.append(contentsOf: "\\f".utf8)
                case 0x20..<0x7F: out.append(UInt8(u))
                default:  // \uXXXX, lower-case hex as Python writes it
                    out.append(UInt8(ascii: "\\"))
                    out.append(UInt8(ascii: "u"))
                    for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[Int((u >> UInt16(shift)) & 15)]) }
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Python's type name of the value (`str`, `int`, `float`, `bool`, `list`, `dict`, `NoneType`).
    public var pythonType: String {
        switch self {
        case .null: "NoneType"
        case .bool: "bool"
        case .number(let n): n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? "float" : "int"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        }
    }
}

/// A JSON syntax error with the byte offset where parsing stopped.
public struct JSONSyntaxError: Error, Sendable {
    /// What was expected.
    public var message: String
    /// Byte offset in the body.
    public var offset: Int
}

/// A strict, allocation-light JSON parser over bytes (RFC 8259; depth limited to 64).
public struct JSONParser {
    let bytes: [UInt8]
    var i = 0
    var depth = 0

    /// Text with the NUL character is refused (``RequestRules/nulText``): a request's body is, what Tally reads from
    /// elsewhere (an MLflow server's answers) is not.
    let refusingNUL: Bool

    /// Parses a whole document; with `refusingNUL`, a string holding `\u0000` is a syntax error naming it.
    public static func parse(_ bytes: [UInt8], refusingNUL: Bool = false) throws -> JSONValue {
        var p = JSONParser(bytes: bytes, refusingNUL: refusingNUL)
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == bytes.count else { throw JSONSyntaxError(message: "unexpected data after the JSON value", offset: p.i) }
        return v
    }

    init(bytes: [UInt8], refusingNUL: Bool = false) {
        self.bytes = bytes
        self.refusingNUL = refusingNUL
    }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    func fail(_ m: String) -> JSONSyntaxError { JSONSyntaxError(message: m, offset: i) }

    mutating func value() throws -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        case UInt8(ascii: "N"): return try literal("NaN", .number("NaN"))  // Python's json.dumps emits these
        case UInt8(ascii: "I"): return try literal("Infinity", .number("Infinity"))
        default: throw fail("unexpected character")
        }
    }

    mutating func literal(_ word: String, _ v: JSONValue) throws -> JSONValue {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("invalid literal") }
        i += w.count
        return v
    }

    mutating func number() throws -> JSONValue {
        let start = i
        if bytes[i] == UInt8(ascii: "-") {
            i += 1
            if i < bytes.count && bytes[i] == UInt8(ascii: "I") {
                _ = try literal("Infinity", .null)
                return .number("-Infinity")
            }
        }
        func digits() -> Int {
            let s = i
            while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
            return i - s
        }
        let whole = i
        guard digits() > 0 else { throw fail("invalid number") }
        // `01` is no JSON number (Python's json refuses it too; kept, it would be text no client could read back).
        guard bytes[whole] != UInt8(ascii: "0") || i - whole == 1 else { throw fail("invalid number (a leading zero)") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        return .number(String(decoding: bytes[start..<i], as: UTF8.self))
    }

    /// The byte a one-character escape (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`) stands for.
    public static func unescaped(_ e: UInt8) -> UInt8? {
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): e
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }

    mutating func string() throws -> String {
        i += 1
        var out = [UInt8]()
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                // Bytes that are not UTF-8 are refused, not replaced by U+FFFD (which would store other text than sent).
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("a string that is not valid UTF-8") }
                i += 1
                return s
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            if let plain = Self.unescaped(e) {
                out.append(plain)
                continue
            }
            guard e == UInt8(ascii: "u") else { throw fail("invalid escape") }
            var at = i
            let scalar = bytes.withUnsafeBufferPointer { b in JSONEscape.unicode(b.baseAddress!, b.count, &at) }
            guard let scalar else { throw fail("invalid \\u escape (not four hex digits, or a surrogate without its pair)") }
            if refusingNUL, scalar == "\0" { throw fail(RequestRules.nulText) }
            i = at
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
    }

    mutating func array() throws -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 64 else { throw fail("JSON nested too deeply") }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected , or ]")
        }
    }

    mutating func object() throws -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 64 else { throw fail("JSON nested too deeply") }
        i += 1
        var members: [(String, JSONValue)] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let k = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected :") }
            i += 1
            skipSpace()
            members.append((k, try value()))
            skipSpace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected , or }")
        }
    }
}
