/// A span's attributes as MLflow's OpenTelemetry translation sees them (`span_dict["attributes"]`): a Python dict in
/// insertion order, keys compared by their bytes. Each value is the JSON text MLflow stored (`.string`), except inputs
/// and outputs a span event gave, which keep the event's own value, and Vercel AI's message format, kept bare.
struct SpanAttributes {
    /// The attributes in order.
    private(set) var pairs: [(String, JSONValue)]
    /// Where each key is in ``pairs``, for a span of many attributes (a few are scanned: cheaper than hashing).
    private var index: [ExactKey: Int]?

    /// The most attributes looked up by scanning.
    private static let scanned = 16

    /// Attributes from stored values, each JSON text (a key given twice already kept once).
    init(stored: [(String, String)]) { self.init(values: stored.map { ($0.0, .string($0.1)) }) }

    /// Attributes from a stored span dict's values (each key once).
    init(values: [(String, JSONValue)]) {
        pairs = values
        if values.count > Self.scanned { index = Self.indexed(values) }
    }

    private static func indexed(_ pairs: [(String, JSONValue)]) -> [ExactKey: Int] {
        Dictionary(pairs.enumerated().map { (ExactKey($0.element.0), $0.offset) }) { _, last in last }
    }

    /// Where `key` is.
    private func position(_ key: String) -> Int? {
        if let index { return index[ExactKey(key)] }
        return pairs.firstIndex { ExactKey.sameBytes($0.0, key) }
    }

    /// The value of `key` (`dict.get`); setting it replaces the value in place, or appends the key.
    subscript(key: String) -> JSONValue? {
        get { position(key).map { pairs[$0].1 } }
        set {
            guard let newValue else { return }  // MLflow's translation never deletes a key
            if let i = position(key) { pairs[i].1 = newValue } else {
                pairs.append((key, newValue))
                if index != nil { index![ExactKey(key)] = pairs.count - 1 } else if pairs.count > Self.scanned { index = Self.indexed(pairs) }
            }
        }
    }

    /// `key in attributes`.
    func contains(_ key: String) -> Bool { position(key) != nil }

    /// The keys in order.
    var keys: some Sequence<String> { pairs.lazy.map(\.0) }

    /// The stored text of `key` when it is a string.
    func text(_ key: String) -> String? { self[key]?.text }

    /// `_get_and_check_attribute_value`: the value of `key` unless it is JSON text of a value Python finds false
    /// (`null`, `false`, `0`, `""`, `[]`, `{}`); text that is not JSON, and any other value, as it is.
    func checked(_ key: String) -> JSONValue? {
        guard let v = self[key] else { return nil }
        guard case .string(let s) = v, let parsed = try? JSONParser.parse(Array(s.utf8)) else { return v }
        return parsed.pythonTruthy ? v : nil
    }

    /// The attribute names Traceloop finds by pattern (Python's `re.match`: a prefix of the name, `\d` any decimal
    /// digit).
    enum Pattern {
        /// `gen_ai\.prompt\.\d+\.content`
        case prompt
        /// `gen_ai\.completion\.\d+\.tool_calls\.\d+\.arguments`
        case toolCallArguments
        /// `gen_ai\.completion\.\d+\.content`
        case completion

        /// The literal parts between the runs of digits.
        var parts: [String] {
            switch self {
            case .prompt: ["gen_ai.prompt.", ".content"]
            case .toolCallArguments: ["gen_ai.completion.", ".tool_calls.", ".arguments"]
            case .completion: ["gen_ai.completion.", ".content"]
            }
        }

        /// Whether the name starts with the pattern.
        func matches(_ name: String) -> Bool {
            var rest = Substring(name).unicodeScalars
            for (i, part) in parts.enumerated() {
                if i > 0 {
                    let digits = rest.prefix { $0.properties.generalCategory == .decimalNumber }
                    guard !digits.isEmpty else { return false }
                    rest = rest.dropFirst(digits.count)
                }
                guard rest.starts(with: part.unicodeScalars) else { return false }
                rest = rest.dropFirst(part.unicodeScalars.count)
            }
            return true
        }
    }

    /// The first attribute, in order, whose name matches `pattern` and whose checked value Python finds true.
    func firstMatching(_ pattern: Pattern) -> JSONValue? {
        for (key, _) in pairs where pattern.matches(key) {
            if let v = checked(key), v.pythonTruthy { return v }
        }
        return nil
    }

    /// `get_attribute_value`: the first of `keys` whose checked value Python finds true.
    func firstChecked(_ keys: [String]) -> JSONValue? {
        for key in keys {
            if let v = checked(key), v.pythonTruthy { return v }
        }
        return nil
    }
}

extension String {
    /// Python's `startswith`: the string's code points begin with `prefix`'s (not Swift's grapheme-aware `hasPrefix`).
    func startsWithBytes(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }

    /// The string after `prefix` (which it starts with, by bytes).
    func droppingBytes(_ prefix: String) -> String { String(decoding: utf8.dropFirst(prefix.utf8.count), as: UTF8.self) }
}

extension JSONValue {
    /// A string's value (`nil` for any other value).
    public var text: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Python's truth of the value: `null`, `false`, zero, and empty strings, arrays and objects are false (`NaN` is
    /// true).
    var pythonTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let b): b
        case .number(let n): (Double(n) ?? 1) != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let m): !m.isEmpty
        }
    }

    /// MLflow's `try_json_loads`: what the text of a string value parses to, else the value itself (a string that
    /// is not JSON; any other value, which `json.loads` refuses).
    var jsonLoaded: JSONValue {
        guard case .string(let s) = self, let parsed = try? JSONParser.parse(Array(s.utf8)) else { return self }
        return parsed
    }

    /// A Python dict's `get` on an object value: the last member of `key` compared by bytes; `nil` for other values.
    func pythonMember(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { ExactKey.sameBytes($0.0, key) }?.1
    }

    /// Whether the value is a string with exactly these code points.
    func isString(_ s: String) -> Bool {
        if case .string(let v) = self { return ExactKey.sameBytes(v, s) }
        return false
    }

    /// Whether Python could not hash the value (a list or dict), so that looking it up in a dict raises.
    var isUnhashable: Bool {
        switch self {
        case .array, .object: true
        default: false
        }
    }
}
