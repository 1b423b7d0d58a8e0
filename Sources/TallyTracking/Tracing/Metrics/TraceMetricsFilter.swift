/// One clause of a `traces/metrics` filter: `trace.status`, `trace.tag.<key>`, `trace.metadata.<key>`,
/// `span.name|status|type` or `assessment.name|type`, `=` a quoted value (MLflow's `SearchTraceMetricsUtils`, its
/// messages). Each filter of a query is one clause; a record satisfies all of them.
struct TraceMetricsFilter: Equatable {
    /// What the clause compares.
    enum Target: Equatable {
        case traceStatus, traceTag(String), traceMetadata(String)
        case spanName, spanStatus, spanType
        case assessmentName, assessmentType
    }

    /// What the clause compares.
    let target: Target
    /// The value it must equal.
    let value: String

    /// The entities of each view type, in MLflow's order: whether each takes a key, and the clause's target.
    static let entities: [(view: String, entities: [(name: String, keyed: Bool, target: @Sendable (String) -> Target)])] = [
        ("trace", [("status", false, { _ in .traceStatus }), ("tag", true, Target.traceTag), ("metadata", true, Target.traceMetadata)]),
        ("span", [("name", false, { _ in .spanName }), ("status", false, { _ in .spanStatus }), ("type", false, { _ in .spanType })]),
        ("assessment", [("name", false, { _ in .assessmentName }), ("type", false, { _ in .assessmentType })]),
    ]

    /// A clause.
    init(target: Target, value: String) {
        self.target = target
        self.value = value
    }

    /// Parses one filter.
    init(parsing text: String) throws {
        let tokens = try FilterToken.tokenize(text)
        let ands = tokens.filter { if case .word(let w) = $0 { w.uppercased() == "AND" } else { false } }
        if !ands.isEmpty { throw TrackingError.invalid("Invalid clause(s) in filter string: \(ands.map(\.text).joined(separator: ", "))") }
        guard let at = tokens.firstIndex(where: { if case .comparator = $0 { true } else { false } }), at > 0 else {
            throw TrackingError.invalid("Invalid filter: '\(text)'. Expected one filter clause.")
        }
        guard tokens.count == at + 2 else {
            throw TrackingError.invalid("Invalid comparison clause. Expected 3 tokens found \(tokens.count - at + 1)")
        }
        let identifier = tokens[..<at].map(\.text).joined()
        target = try Self.target(identifier)
        let comparator = tokens[at].text
        guard comparator == "=" else { throw TrackingError.invalid("Invalid comparator: '\(comparator)', only '=' operator is supported") }
        switch tokens[at + 1] {
        case .singleQuoted(let v), .doubleQuoted(let v): value = v
        case let other:
            let entity = identifier.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? ""
            throw TrackingError.invalid("Expected a quoted string value for \(entity) value (e.g. 'my-value'). Got value \(other.text)")
        }
    }

    /// `<view>.<entity>[.<key>]`, split at its first two dots as MLflow splits it; the key unquoted.
    static func target(_ identifier: String) throws -> Target {
        let parts = identifier.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else {
            throw TrackingError.invalid("Invalid identifier \(PythonRepr.string(identifier)). Columns should be specified as "
                + "'trace.<key>', 'span.<key>', 'assessment.<key>'.")
        }
        let view = trimmed(parts[0], "`"), entity = parts[1]
        guard let known = entities.first(where: { $0.view == view }) else {
            throw TrackingError.invalid("Invalid view type '\(view)'. Valid values are dict_keys(\(PythonRepr.strings(entities.map(\.view))))")
        }
        guard let e = known.entities.first(where: { $0.name == entity }) else {
            throw TrackingError.invalid("Invalid entity '\(entity)' specified for view type '\(view)'. "
                + "Valid entities are \(PythonRepr.strings(known.entities.map(\.name)))")
        }
        if e.keyed && parts.count == 2 {
            throw TrackingError.invalid("Filtering by \(entity) requires a key, e.g. '\(view).\(entity).<key> = <value>'")
        }
        if !e.keyed && parts.count == 3 {
            throw TrackingError.invalid("Filtering by \(entity) does not require a key, use '\(view).\(entity)' instead")
        }
        return e.target(parts.count == 3 ? trimmed(unquoted(parts[2]), "`") : "")
    }

    /// `s` without the quote `q` at both ends, when it has them (and is longer than one character).
    static func trimmed(_ s: String, _ q: Character) -> String {
        s.count >= 2 && s.first == q && s.last == q ? String(s.dropFirst().dropLast()) : s
    }

    /// `s` without single or double quotes at both ends.
    static func unquoted(_ s: String) -> String {
        let single = trimmed(s, "'")
        return single != s ? single : trimmed(s, "\"")
    }

    /// The view the clause belongs to: a span clause needs the spans view, an assessment clause the assessments view
    /// (MLflow's messages); a trace clause fits every view.
    func check(_ view: TraceMetricsQuery.View) throws {
        switch target {
        case .spanName, .spanStatus, .spanType:
            if view != .spans { throw TrackingError.invalid("Filtering by span is only supported for SPANS view type, got \(view.rawValue)") }
        case .assessmentName, .assessmentType:
            if view != .assessments {
                throw TrackingError.invalid("Filtering by assessment is only supported for ASSESSMENTS view type, got \(view.rawValue)")
            }
        case .traceStatus, .traceTag, .traceMetadata: break
        }
    }
}
