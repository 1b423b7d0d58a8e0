import TallyTracking

/// Builds MLflow's response JSON: int64 as numbers, NaN as `"NaN"`, infinities as MLflow returns them, unset
/// fields omitted.
public struct JSONWriter {
    /// The text so far.
    public private(set) var text = ""

    /// An empty writer.
    public init() {}

    /// A JSON string literal.
    static func quote(_ s: String) -> String { JSONText.quote(s) }

    /// A double as MLflow's server writes it (``JSONBytes/double(_:)``, the one number writer).
    static func double(_ v: Double) -> String {
        var out = JSONBytes(capacity: 32)
        out.double(v)
        return out.text
    }
}

/// A tiny builder for JSON objects with ordered members.
struct Obj {
    private var members: [String] = []

    init() {}

    mutating func add(_ k: String, _ v: String) { members.append(JSONWriter.quote(k) + ": " + JSONWriter.quote(v)) }
    mutating func add(_ k: String, _ v: String?) { if let v { add(k, v) } }
    mutating func add(_ k: String, _ v: Int64) { members.append(JSONWriter.quote(k) + ": " + String(v)) }
    mutating func add(_ k: String, _ v: Int64?) { if let v { add(k, v) } }
    mutating func add(_ k: String, double v: Double) { members.append(JSONWriter.quote(k) + ": " + JSONWriter.double(v)) }
    mutating func add(_ k: String, bool v: Bool) { members.append(JSONWriter.quote(k) + ": " + (v ? "true" : "false")) }
    /// Adds pre-rendered JSON.
    mutating func add(_ k: String, raw: String) { members.append(JSONWriter.quote(k) + ": " + raw) }
    /// Adds an array of pre-rendered JSON values, omitted when empty (MLflow omits empty repeated fields).
    mutating func add(_ k: String, array: [String]) { if !array.isEmpty { add(k, raw: "[" + array.joined(separator: ", ") + "]") } }

    var json: String { "{" + members.joined(separator: ", ") + "}" }
}
