extension IssueFilter {
    /// The fields, as MLflow's messages list them.
    static let fieldList = "{" + fields.map { "'\($0)'" }.joined(separator: ", ") + "}"

    /// Parses an `issues/search` filter as MLflow's `SearchIssuesUtils` reads it: `field = value` or `field != value`
    /// clauses, joined by AND or side by side. A field is a bare or double-quoted name; a value a quoted string, or a
    /// bare word or number taken as written; both stripped of whitespace. (`<>` is `!=` here, as in Tally's other
    /// filters; MLflow refuses it.) Nothing selects every issue; only whitespace is refused, as MLflow's parser finds
    /// no statement in it.
    public init(parsing filter: String?) throws {
        clauses = []
        guard let filter, !filter.isEmpty else { return }
        guard !filter.allSatisfy(\.isWhitespace) else { throw TrackingError.invalid("Invalid filter '\(filter)'. Could not be parsed.") }
        let tokens = try FilterToken.tokenize(filter)
        var i = 0
        func isAnd(_ k: Int) -> Bool { if case .word(let w) = tokens[k] { w.uppercased() == "AND" } else { false } }
        while i < tokens.count {
            if isAnd(i) {
                i += 1
                continue
            }
            let field: String
            switch tokens[i] {
            case .word(let w) where ["OR", "NOT"].contains(w.uppercased()):
                throw TrackingError.invalid("Invalid clause(s) in filter string: \(w)")
            case .word(let w): field = w
            case .doubleQuoted(let w): field = PythonNumber.strip(w)
            case .backticked: field = tokens[i].text  // MLflow keeps the backquotes: no field is called so
            case .singleQuoted, .number:
                throw TrackingError.invalid("Invalid comparison: left side must be an identifier, got \(tokens[i].text)")
            default:
                throw TrackingError.invalid("Invalid clause(s) in filter string: \(tokens[i].text)")
            }
            guard i + 2 < tokens.count, !isAnd(i + 1) else {
                throw TrackingError.invalid("Invalid clause(s) in filter string: \(tokens[i..<min(i + 2, tokens.count)].map(\.text).joined(separator: " "))")
            }
            guard Self.fields.contains(field) else {
                throw TrackingError.invalid("Invalid filter field '\(field)'. Supported fields: \(Self.fieldList)")
            }
            let op: String
            switch tokens[i + 1] {
            case .comparator(let c): op = c
            case .word(let w): op = w.uppercased()
            default: op = tokens[i + 1].text
            }
            guard op == "=" || op == "!=" else {
                throw TrackingError.invalid("Invalid comparator '\(op)'. Supported comparators: {'=', '!='}")
            }
            guard !isAnd(i + 2) else { throw TrackingError.invalid("Invalid clause(s) in filter string: \(field) \(op) \(tokens[i + 2].text)") }
            let value: String
            switch tokens[i + 2] {
            case .singleQuoted(let s), .doubleQuoted(let s): value = PythonNumber.strip(s)
            case .word(let s), .number(let s): value = s
            default: throw TrackingError.invalid("Invalid comparison: expected a value after '\(field) \(op)', got \(tokens[i + 2].text)")
            }
            clauses.append(Clause(field: field, negated: op == "!=", value: value))
            i += 3
        }
    }
}
