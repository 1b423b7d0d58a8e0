/// JSON as Python writes it: MLflow keeps an evaluation dataset's tags, schema, profile and records as the text of
/// `json.dumps`, and finds a record by the SHA-256 of its inputs dumped with `sort_keys=True`.
extension JSONValue {
    /// Python's `json.dumps(value)` (with `sortKeys`, `sort_keys=True`): `", "` between items and `": "` after a key,
    /// every character outside printable ASCII escaped (`\u00e9`), a key given twice kept once (at its first place,
    /// with its last value, as `json.loads` builds a dict), and numbers as Python reads and writes them back
    /// (``pythonNumber(_:)``). With `ascii` false, `ensure_ascii=False`: characters beyond ASCII written as they are.
    /// With `compact`, `separators=(",", ":")`.
    public func pythonDumps(sortKeys: Bool = false, ascii: Bool = true, compact: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        writePython(&out, sortKeys: sortKeys, ascii: ascii, compact: compact)
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes the value's `json.dumps` text as bytes (with `ascii`, all ASCII: every other character is escaped).
    func writePython(_ out: inout [UInt8], sortKeys: Bool, ascii: Bool = true, compact: Bool = false) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: Self.pythonNumber(n).utf8)
        case .string(let s): Self.appendASCIIQuoted(s, to: &out, ascii: ascii)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(contentsOf: (compact ? "," : ", ").utf8) }
                v.writePython(&out, sortKeys: sortKeys, ascii: ascii, compact: compact)
            }
            out.append(UInt8(ascii: "]"))
        case .object:
            var members = pythonMembers
            if sortKeys { members.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) } }  // UTF-8 order is code point order
            out.append(UInt8(ascii: "{"))
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out.append(contentsOf: (compact ? "," : ", ").utf8) }
                Self.appendASCIIQuoted(k, to: &out, ascii: ascii)
                out.append(contentsOf: (compact ? ":" : ": ").utf8)
                v.writePython(&out, sortKeys: sortKeys, ascii: ascii, compact: compact)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// An object's members as a Python dict holds them: each key once, at its first place, with its last value
    /// (keys compared by code points, as Python compares them: by their UTF-8 bytes). Empty for other values.
    public var pythonMembers: [(String, JSONValue)] {
        guard case .object(let members) = self else { return [] }
        return pythonDict(members)
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

/// Key-value pairs as a Python dict built from them in order holds them: each key once, at its first place, with its
/// last value (keys compared by their UTF-8 bytes, as Python compares them — not by Swift's canonical equivalence).
func pythonDict<Value>(_ pairs: [(String, Value)]) -> [(String, Value)] {
    var out: [(String, Value)] = []
    out.reserveCapacity(pairs.count)
    if pairs.count <= 16 {  // small dicts, the usual: a scan costs less than hashing every key
        next: for (k, v) in pairs {
            for i in out.indices where ExactKey.sameBytes(out[i].0, k) {
                out[i].1 = v
                continue next
            }
            out.append((k, v))
        }
        return out
    }
    var at: [ExactKey: Int] = [:]
    for (k, v) in pairs {
        if let i = at[ExactKey(k)] { out[i].1 = v } else {
            at[ExactKey(k)] = out.count
            out.append((k, v))
        }
    }
    return out
}
