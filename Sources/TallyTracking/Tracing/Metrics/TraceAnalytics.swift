import Foundation

/// The model, provider and cost MLflow keeps in a span's columns (``TraceAnalyticsSQL``): the attributes
/// `mlflow.llm.model` and `mlflow.llm.provider` (a JSON string's text, else the attribute's text, the first 500
/// characters) and `mlflow.llm.cost`'s `input_cost`, `output_cost` and `total_cost` (finite numbers). From a span
/// being logged, its translated attributes; from a stored span (an import, the migration), its content, skimmed, not
/// parsed: only those three values of the top-level `attributes` are decoded (``JSONSkim``). Both read the same values
/// (the content is written from those attributes) through the same rule.
struct SpanAnalytics: Equatable {
    private(set) var model: String?
    private(set) var provider: String?
    private var costs: JSONValue?

    static let keys = ["\"" + SpanTranslation.modelKey + "\"", "\"" + SpanTranslation.providerKey + "\"", "\"" + SpanTranslation.costKey + "\""]
        .map { Array($0.utf8) }

    /// A stored span's, from its content.
    init(_ content: String) {
        var content = content
        let found = content.withUTF8 { JSONSkim.attributes(of: $0, keys: Self.keys) }
        func value(_ token: [UInt8]?) -> JSONValue? { token.flatMap { try? JSONParser.parse($0) } }
        self.init(model: value(found[0]), provider: value(found[1]), cost: value(found[2]))
    }

    /// A span's, from the attributes its content is written from.
    init(attributes a: SpanAttributes) {
        self.init(model: a[SpanTranslation.modelKey], provider: a[SpanTranslation.providerKey], cost: a[SpanTranslation.costKey])
    }

    private init(model: JSONValue?, provider: JSONValue?, cost: JSONValue?) {
        self.model = Self.dimension(model)
        self.provider = Self.dimension(provider)
        if case .string(let text)? = cost { costs = try? JSONParser.parse(Array(text.utf8)) }
    }

    /// A cost, `nil` when the span has none that is a finite number.
    func cost(_ key: String) -> Double? {
        costs?.pythonMember(key).flatMap(PyNumber.finiteFloat)
    }

    /// MLflow's `bounded_model_dimension(_try_parse_json_string(value))`.
    static func dimension(_ v: JSONValue?) -> String? {
        guard case .string(let text)? = v else { return nil }
        var s = text
        if case .string(let parsed)? = try? JSONParser.parse(Array(text.utf8)) { s = parsed }
        return String(String.UnicodeScalarView(s.unicodeScalars.prefix(500)))
    }
}

/// A scan of JSON text that skips values without building them: where a span's few attributes are wanted, not its
/// whole tree.
struct JSONSkim {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0

    /// The raw tokens (quotes and escapes included) of the top-level object's `attributes` members named `keys`
    /// (each given as its quoted text), the last of a key given twice (as Python's dict keeps it); `nil` for each
    /// one missing, and for all when the text is not such an object.
    static func attributes(of b: UnsafeBufferPointer<UInt8>, keys: [[UInt8]]) -> [[UInt8]?] {
        var s = JSONSkim(b: b)
        var out = [[UInt8]?](repeating: nil, count: keys.count)
        var attributes: Range<Int>?
        s.members { key, value in if same(b, key, Array("\"attributes\"".utf8)) { attributes = value } }
        guard let a = attributes, a.count > 0, b[a.lowerBound] == UInt8(ascii: "{") else { return out }
        var inner = JSONSkim(b: b, i: a.lowerBound)
        inner.members { key, value in
            for (n, k) in keys.enumerated() where same(b, key, k) { out[n] = Array(b[value]) }
        }
        return out
    }

    /// Calls `body` with each member's key token and value range of the object at `i`; stops at malformed text.
    mutating func members(_ body: (Range<Int>, Range<Int>) -> Void) {
        space()
        guard i < b.count, b[i] == UInt8(ascii: "{") else { return }
        i += 1
        while true {
            space()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return }
            let k = i
            guard skipString() else { return }
            let key = k..<i
            space()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { return }
            i += 1
            space()
            let v = i
            guard skipValue() else { return }
            body(key, v..<i)
            space()
            guard i < b.count, b[i] == UInt8(ascii: ",") else { return }
            i += 1
        }
    }

    /// Whether a key token names `quoted` (a token with escapes is decoded first).
    static func same(_ b: UnsafeBufferPointer<UInt8>, _ key: Range<Int>, _ quoted: [UInt8]) -> Bool {
        let token = b[key]
        if !token.contains(UInt8(ascii: "\\")) { return token.elementsEqual(quoted) }
        guard case .string(let a)? = try? JSONParser.parse(Array(token)), case .string(let w)? = try? JSONParser.parse(quoted) else { return false }
        return Array(a.utf8) == Array(w.utf8)
    }

    mutating func space() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    /// Past the string at `i` (its closing quote); `false` when unterminated.
    mutating func skipString() -> Bool {
        i += 1
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""): i += 1; return true
            default: i += 1
            }
        }
        return false
    }

    /// Past the value at `i`; `false` when the text ends first.
    mutating func skipValue() -> Bool {
        guard i < b.count else { return false }
        switch b[i] {
        case UInt8(ascii: "\""): return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while i < b.count {
                switch b[i] {
                case UInt8(ascii: "\""): if !skipString() { return false }; continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { i += 1; return true }
                default: break
                }
                i += 1
            }
            return false
        default:
            while i < b.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09].contains(b[i]) { i += 1 }
            return true
        }
    }
}

/// An assessment's value as MLflow's `assessments` table keeps it for metrics: the JSON text (`json.dumps`) as a
/// dimension, and a number to aggregate (booleans and `yes`/`no` as 1 and 0, finite numbers as they are). MLflow's
/// value went through protobuf's `Value`, whose numbers are doubles: `7` is written `7.0`, at any depth.
enum AssessmentAggregate {
    static func value(_ json: String) -> Double? {
        guard let v = try? JSONParser.parse(Array(json.utf8)) else { return nil }
        switch v {
        case .bool(let b): return b ? 1 : 0
        case .number(let n): return Double(n).flatMap { $0.isFinite ? $0 : nil }
        case .string(let s):
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            return t == "yes" ? 1 : t == "no" ? 0 : nil
        default: return nil
        }
    }

    static func dimension(_ json: String?) -> String {
        guard let json, let v = try? JSONParser.parse(Array(json.utf8)) else { return "null" }
        return doubles(v).pythonDumps()
    }

    static func doubles(_ v: JSONValue) -> JSONValue {
        switch v {
        case .number(let n): Double(n).map { .number(Validation.pythonFloat($0)) } ?? v
        case .array(let items): .array(items.map(doubles))
        case .object(let members): .object(members.map { ($0.0, doubles($0.1)) })
        default: v
        }
    }
}
