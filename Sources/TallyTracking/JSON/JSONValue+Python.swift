/// JSON as Python writes it: MLflow keeps an evaluation dataset's tags, schema, profile and records as the text of
/// `json.dumps`, and finds a record by the SHA-256 of its inputs dumped with `sort_keys=True`.
extension JSONValue {
    /// Python's `json.dumps(value)` (with `sortKeys`, `sort_keys=True`): `", "` between items and `": "` after a key,
    /// every character outside printable ASCII escaped (`\u00e9`), a key given twice kept once (at its first place,
    /// with its last value, as `json.loads` builds a dict), and numbers as Python reads and writes them back
    /// (``pythonNumber(_:)``).
    public func pythonDumps(sortKeys: Bool = false) -> String {
        var out = ""
        writePython(&out, sortKeys: sortKeys)
        return out
    }

    private func writePython(_ out: inout String, sortKeys: Bool) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += Self.pythonNumber(n)
        case .string(let s): out += Self.asciiQuote(s)
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += ", " }
                v.writePython(&out, sortKeys: sortKeys)
            }
            out += "]"
        case .object:
            var members = pythonMembers
            if sortKeys { members.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } }
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += ", " }
                out += Self.asciiQuote(k) + ": "
                v.writePython(&out, sortKeys: sortKeys)
            }
            out += "}"
        }
    }

    /// An object's members as a Python dict holds them: each key once, at its first place, with its last value
    /// (keys compared by code points, as Python compares them). Empty for other values.
    public var pythonMembers: [(String, JSONValue)] {
        guard case .object(let members) = self else { return [] }
        var at: [[UInt32]: Int] = [:]
        var out: [(String, JSONValue)] = []
        for (k, v) in members {
            let key = k.unicodeScalars.map(\.value)
            if let i = at[key] { out[i].1 = v } else {
                at[key] = out.count
                out.append((k, v))
            }
        }
        return out
    }

    /// A JSON number as Python writes it back after reading it: an integer literal as its digits (`-0` is `0`), any
    /// other as the float's `repr` (`1.0`, `1e+20`, `1e-05`, `NaN`, `Infinity`).
    public static func pythonNumber(_ text: String) -> String {
        switch text {
        case "NaN", "Infinity", "-Infinity": return text
        default: break
        }
        if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
            return text.allSatisfy({ $0 == "-" || $0 == "0" }) ? "0" : text
        }
        guard let v = Double(text) else { return text }
        if v.isInfinite { return v > 0 ? "Infinity" : "-Infinity" }  // 1e999: Python reads it as inf
        if v == 0 { return v.sign == .minus ? "-0.0" : "0.0" }  // -0.0 keeps its sign (and is another record's input than 0.0)
        return Validation.pythonFloat(v)
    }

    /// The type MLflow's dataset schema gives a value (`boolean`, `integer`, `float`, `string`, `array`, `object`,
    /// `null`).
    public var schemaType: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let n): pythonType == "int" && !["NaN", "Infinity", "-Infinity"].contains(n) ? "integer" : "float"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The value as Python's `str()` prints it, for a scalar (`True`, `5`, `1.5`, a string as it is); `nil` for an
    /// array or object.
    public var pythonScalarText: String? {
        switch self {
        case .null: "None"
        case .bool(let b): b ? "True" : "False"
        case .number(let n):
            switch Self.pythonNumber(n) {
            case "NaN": "nan"
            case "Infinity": "inf"
            case "-Infinity": "-inf"
            case let s: s
            }
        case .string(let s): s
        case .array, .object: nil
        }
    }
}
