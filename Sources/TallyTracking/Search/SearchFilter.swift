/// What a filter clause or order key refers to.
public enum SearchEntity: String, Sendable {
    case metric, parameter, tag, attribute, dataset
    /// A trace's metadata (`metadata.<key>`, `request_metadata.<key>`).
    case metadata
    /// A trace's feedback of a name (`feedback.<name>`).
    case feedback
    /// A trace's expectation of a name (`expectation.<name>`).
    case expectation
    /// A trace's link to an issue (`issue.id = '<issue id>'`): any issue reference to it, valid or not.
    case issue
    /// A trace's link to a prompt version (`prompt = 'name/version'`, also written `tags.mlflow.linkedPrompts = …`,
    /// as MLflow reads it): `traces/link-prompts`' links; only `=` is answered.
    case prompt
    /// A trace's span, spans kept here (`span.name`, `span.type`, `span.status`, `span.content`,
    /// `span.attributes.<key>`; `trace.text` is `span.content`): every span clause of a search must hold for one span.
    case span
}

/// One `identifier comparator value` clause.
public struct FilterClause: Sendable, Equatable {
    /// The entity.
    public var entity: SearchEntity
    /// The key (for attributes, the canonical attribute name).
    public var key: String
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`, `IS NULL`, `IS NOT NULL`.
    public var comparator: String
    /// The value.
    public var value: FilterValue
}

/// A clause's value.
public enum FilterValue: Sendable, Equatable {
    case number(Double)
    case string(String)
    case list([String])
    case none
}

/// A parsed `runs/search` or `experiments/search` filter: clauses joined by AND.
public struct SearchFilter: Sendable, Equatable {
    /// The clauses (empty: everything matches).
    public var clauses: [FilterClause]

    /// Which grammar to parse.
    public enum Kind: Sendable {
        case runs
        case experiments
        /// `logged-models/search`: entities `attributes`, `metrics`, `params`, `tags` (plural only).
        case loggedModels
        /// `registered-models/search`: the attribute `name` and tags.
        case registeredModels
        /// `model-versions/search`: the attributes `name`, `version_number`, `run_id`, `source_path` and tags.
        case modelVersions
        /// `traces/search`: attributes (`trace.`), tags, metadata, feedback and expectations (SearchFilter+Traces).
        case traces
        /// `datasets/search` (evaluation datasets): the attributes `name`, `created_by`, `last_updated_by`,
        /// `created_time`, `last_update_time` and `tags.<key>` (SearchFilter+Datasets).
        case evaluationDatasets
    }

    static let loggedModelStringAttributes: Set<String> = ["name", "model_id", "experiment_id", "source_run_id", "model_type"]
    static let loggedModelNumericAttributes: Set<String> = ["status", "creation_timestamp", "last_updated_timestamp"]
    static let loggedModelAttributeAliases = ["creation_timestamp_ms": "creation_timestamp", "creation_time": "creation_timestamp",
                                              "last_updated_timestamp_ms": "last_updated_timestamp"]

    static let runStringAttributes: Set<String> = ["run_id", "run_name", "status", "user_id", "artifact_uri"]
    static let runNumericAttributes: Set<String> = ["start_time", "end_time"]
    static let runAttributeAliases: [String: String] = ["created": "start_time", "Created": "start_time", "run name": "run_name",
                                                         "Run name": "run_name", "Run Name": "run_name"]
    static let validRunAttributeKeys = "{'run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', 'end_time', 'created', 'Created', 'run name', 'Run name', 'Run Name'}"

    /// A filter of these clauses.
    init(clauses: [FilterClause]) { self.clauses = clauses }

    /// Parses a filter. An empty filter matches everything; one of only whitespace is refused, as MLflow's parser
    /// finds no statement in it.
    public init(parsing filter: String?, kind: Kind) throws {
        clauses = []
        guard let filter, !filter.isEmpty else { return }
        guard !filter.allSatisfy(\.isWhitespace) else {
            throw TrackingError.invalid(kind == .loggedModels ? "Invalid filter string: '\(filter)'. Expected a single SQL expression."
                                                              : "Invalid filter '\(filter)'. Could not be parsed.")
        }
        let tokens = try FilterToken.tokenize(filter)
        var p = Parser(tokens: tokens, kind: kind)
        clauses = try p.parseAll()
    }

    struct Parser {
        let tokens: [FilterToken]
        let kind: Kind
        var i = 0

        init(tokens: [FilterToken], kind: Kind) {
            self.tokens = tokens
            self.kind = kind
        }

        func peekWord(_ w: String, at k: Int? = nil) -> Bool {
            let j = k ?? i
            guard j < tokens.count, case .word(let s) = tokens[j] else { return false }
            return s.uppercased() == w
        }

        /// The clauses. As in MLflow's parser, an `AND` is skipped wherever it stands (`AND a > 1`, `a > 1 AND`,
        /// `a > 1 AND AND b > 2`, a lone `AND`), and two clauses side by side need none; anything else between clauses
        /// is an invalid clause.
        mutating func parseAll() throws -> [FilterClause] {
            var out: [FilterClause] = []
            while true {
                while peekWord("AND") { i += 1 }
                guard i < tokens.count else { return out }
                if i < tokens.count, tokens[i] == .leftParen {
                    var depth = 0
                    var text: [String] = []
                    while i < tokens.count {
                        let t = tokens[i]
                        if t == .leftParen { depth += 1 }
                        if t == .rightParen { depth -= 1 }
                        text.append(t.text)
                        i += 1
                        if depth == 0 { break }
                    }
                    throw TrackingError.invalid("Invalid clause(s) in filter string: '\(Self.join(text))'")
                }
                if !out.isEmpty, !peekWord("AND", at: i - 1) {
                    // A clause right after another: what stands there must be one (`a > 1 b > 2`), not `OR`, `NOT`, ….
                    let start = i
                    do { _ = try identifier() } catch { throw TrackingError.invalid("Invalid clause(s) in filter string: '\(tokens[start].text)'") }
                    i = start
                }
                out.append(try clause())
            }
        }

        /// Joins token texts the way they read: no spaces around parentheses, dots and commas.
        static func join(_ parts: [String]) -> String {
            var s = ""
            for p in parts {
                if !s.isEmpty, !s.hasSuffix("("), !s.hasSuffix("."), p != ")", p != ",", p != "." { s += " " }
                s += p
            }
            return s
        }

        /// `[entity.]key` → (entity, key).
        mutating func identifier() throws -> (SearchEntity, String) {
            guard i < tokens.count else { throw TrackingError.invalid("Invalid filter string: expected an identifier") }
            var entityText: String?
            var key: String
            switch tokens[i] {
            case .backticked(let k) where i + 2 < tokens.count && tokens[i + 1] == .dot:
                // `metrics`.loss: a backquoted entity (MLflow's runs grammar trims the backquotes; the others do not).
                entityText = kind == .runs ? k : tokens[i].text
                switch tokens[i + 2] {
                case .word(let w): key = w
                case .backticked(let w), .doubleQuoted(let w), .singleQuoted(let w): key = w
                default: throw TrackingError.invalid("Invalid identifier '\(tokens[i].text).\(tokens[i + 2].text)'")
                }
                i += 3
            case .backticked(let k) where kind == .registeredModels || kind == .modelVersions:
                key = "`\(k)`"  // the registry's grammar keeps a bare name's backquotes: no attribute is called so
                i += 1
            case .backticked(let k), .doubleQuoted(let k):
                key = k
                i += 1
            case .word(let w):
                i += 1
                if let dot = w.firstIndex(of: ".") {
                    entityText = String(w[..<dot])
                    key = String(w[w.index(after: dot)...])
                    if key.isEmpty, i < tokens.count {
                        switch tokens[i] {
                        case .backticked(let k), .doubleQuoted(let k), .singleQuoted(let k):
                            key = k
                            i += 1
                        default:
                            throw TrackingError.invalid("Invalid identifier '\(w)'")
                        }
                    }
                } else {
                    key = w
                }
            default:
                throw TrackingError.invalid("Invalid clause(s) in filter string: '\(tokens[i].text)'")
            }
            var entity = try Self.entity(entityText, kind: kind)
            if entity == .span, key.hasPrefix("attributes."), key.hasSuffix("."), i < tokens.count, case .backticked(let k) = tokens[i] {
                key += "`\(k)`"  // span.attributes.`a.b`
                i += 1
            }
            if entity == .attribute, kind == .traces, key == "text" { (entity, key) = (.span, "content") }  // MLflow's alias
            if entity == .attribute { key = try Self.attribute(key, kind: kind) }
            if entity == .span { key = try Self.spanKey(key) }
            if entity == .issue, key != "id" { throw TrackingError.invalid("Invalid issue attribute '\(key)'. Supported attributes: id") }
            if kind == .traces, (entity, key) == (.attribute, "prompt") || (entity, key) == (.tag, TraceKeys.linkedPrompts) { return (.prompt, "prompt") }
            return (entity, key)
        }

        static func entity(_ text: String?, kind: Kind) throws -> SearchEntity {
            guard let text else { return .attribute }
            switch kind {
            case .runs:
                switch text {
                case "metric", "metrics": return .metric
                case "param", "params", "parameter", "parameters": return .parameter
                case "tag", "tags": return .tag
                case "attribute", "attributes", "attr", "run": return .attribute
                case "dataset", "datasets": return .dataset
                default:
                    throw TrackingError.invalid("Invalid entity type '\(text)'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']")
                }
            case .experiments:
                switch text {
                case "attribute": return .attribute  // not `attributes`, which MLflow's experiment grammar refuses
                case "tag", "tags": return .tag
                default:
                    throw TrackingError.invalid("Invalid entity type '\(text)'. Valid entity types are ('attribute', 'tag', 'tags')")
                }
            case .registeredModels, .modelVersions:
                switch text {
                case "attribute": return .attribute
                case "tag", "tags": return .tag
                default:
                    throw TrackingError.invalid("Invalid entity type '\(text)'. Valid entity types are ('attribute', 'tag', 'tags')")
                }
            case .traces:
                return try traceEntity(text)
            case .evaluationDatasets:
                guard text == "tags" || text == "tag" else { throw TrackingError.invalid("Invalid identifier token '\(text)' specified") }
                return .tag
            case .loggedModels:
                switch text {
                case "attributes": return .attribute
                case "metrics": return .metric
                case "params": return .parameter
                case "tags": return .tag
                default:
                    throw TrackingError.invalid("Invalid entity type: '\(text)'. Expected one of ['attributes', 'metrics', 'params', 'tags'].")
                }
            }
        }

        static func attribute(_ key: String, kind: Kind) throws -> String {
            switch kind {
            case .runs:
                let k = runAttributeAliases[key] ?? key
                guard runStringAttributes.contains(k) || runNumericAttributes.contains(k) else {
                    throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are '\(validRunAttributeKeys)'")
                }
                return k
            case .traces:
                return try traceAttribute(key)
            case .evaluationDatasets:
                guard datasetStringAttributes.contains(key) || datasetNumericAttributes.contains(key) else {
                    throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are: "
                        + "{'name', 'created_by', 'last_updated_by', 'created_time', 'last_update_time'}")
                }
                return key
            case .registeredModels:
                guard key == "name" else { throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are '{'name'}'") }
                return key
            case .modelVersions:
                guard ["name", "version_number", "run_id", "source_path"].contains(key) else {
                    throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are '{'run_id', 'source_path', 'version_number', 'name'}'")
                }
                return key
            case .loggedModels:
                let k = loggedModelAttributeAliases[key] ?? key
                guard loggedModelStringAttributes.contains(k) || loggedModelNumericAttributes.contains(k) else {
                    throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are '{'name', 'model_id', 'experiment_id', "
                        + "'source_run_id', 'status', 'model_type', 'creation_timestamp', 'last_updated_timestamp'}'")
                }
                return k
            case .experiments:
                guard ["name", "experiment_id", "creation_time", "last_update_time"].contains(key) else {
                    throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are "
                        + "'{'name', 'experiment_id', 'creation_time', 'last_update_time'}'")
                }
                return key
            }
        }

        mutating func clause() throws -> FilterClause {
            let (entity, key) = try identifier()
            guard i < tokens.count else { throw TrackingError.invalid("Invalid clause(s) in filter string: missing comparator after '\(key)'") }
            // IS [NOT] NULL
            if peekWord("IS") {
                i += 1
                var negated = false
                if peekWord("NOT") { negated = true; i += 1 }
                guard peekWord("NULL") else { throw TrackingError.invalid("Invalid clause(s) in filter string: expected NULL after IS") }
                i += 1
                let op = negated ? "IS NOT NULL" : "IS NULL"
                if kind == .loggedModels || kind == .registeredModels || kind == .modelVersions {
                    throw TrackingError.invalid("Invalid comparison: '\(key) \(op)'. Expected a comparison with 3 tokens.")
                }
                if kind == .evaluationDatasets { throw TrackingError.invalid("Invalid comparator for \(entity == .tag ? "tag" : "attribute"): \(op)") }
                guard [.parameter, .tag, .metadata, .feedback, .expectation].contains(entity) else { throw invalidComparator(op, entity, key) }
                return FilterClause(entity: entity, key: key, comparator: op, value: .none)
            }
            var op: String
            if case .comparator(let c) = tokens[i] {
                op = c
                i += 1
            } else if peekWord("LIKE") || peekWord("ILIKE") || peekWord("IN") || (kind == .traces && peekWord("RLIKE")) {
                op = { if case .word(let w) = tokens[i] { return w.uppercased() } else { return "" } }()
                i += 1
            } else if peekWord("NOT") && peekWord("IN", at: i + 1) {
                op = "NOT IN"
                i += 2
            } else {
                throw TrackingError.invalid("Invalid clause(s) in filter string: '\(tokens[i].text)'")
            }
            guard allowed(entity, key).contains(op) else {
                if kind == .registeredModels, entity == .attribute { throw TrackingError.invalid("Invalid comparator for attribute: \(op)") }
                throw invalidComparator(op, entity, key)
            }
            let value = try self.value(for: entity, key: key, op: op)
            return FilterClause(entity: entity, key: key, comparator: op, value: value)
        }

        func isNumeric(_ entity: SearchEntity, _ key: String) -> Bool {
            switch (kind, entity) {
            case (_, .metric): true
            case (.runs, .attribute): runNumericAttributes.contains(key)
            case (.experiments, .attribute): key == "creation_time" || key == "last_update_time"
            case (.loggedModels, .attribute): loggedModelNumericAttributes.contains(key)
            case (.modelVersions, .attribute): key == "version_number"
            case (.traces, .attribute): traceNumericAttributes.contains(key)
            case (.evaluationDatasets, .attribute): datasetNumericAttributes.contains(key)
            default: false
            }
        }

        func allowed(_ entity: SearchEntity, _ key: String) -> [String] {
            if isNumeric(entity, key) { return ["=", "!=", ">", ">=", "<", "<="] }
            if kind == .traces { return traceComparators(entity, key) }
            if kind == .evaluationDatasets {  // MLflow's SQL also orders a string attribute's values by their bytes
                guard entity == .attribute else { return ["=", "!=", "LIKE", "ILIKE"] }
                return ["=", "!=", "LIKE", "ILIKE", ">", ">=", "<", "<="] + (key == "name" ? ["IN"] : [])
            }
            switch entity {
            case .parameter, .tag: return ["=", "!=", "LIKE", "ILIKE"]
            case .dataset: return ["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]
            case .attribute where kind == .experiments && key == "experiment_id": return ["=", "!=", "IN", "NOT IN"]
            case .attribute where kind == .experiments: return ["=", "!=", "LIKE", "ILIKE"]
            case .attribute where kind == .modelVersions && key == "source_path": return ["=", "!=", "LIKE", "ILIKE"]
            default: return ["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]
            }
        }

        func invalidComparator(_ op: String, _ entity: SearchEntity, _ key: String) -> TrackingError {
            if entity == .prompt { return PromptLink.invalidFilterComparator(op) }
            if entity == .span || entity == .issue {
                return .invalid("\(entity.rawValue).\(key) comparator '\(op)' not one of '{\(allowed(entity, key).map { "'\($0)'" }.joined(separator: ", "))}'")
            }
            var all = allowed(entity, key)
            if [.parameter, .tag, .metadata, .feedback, .expectation].contains(entity) { all += ["IS NULL", "IS NOT NULL"] }
            return .invalid("Invalid comparator '\(op)' not one of '{\(all.map { "'\($0)'" }.joined(separator: ", "))}'")
        }

        mutating func value(for entity: SearchEntity, key: String, op: String) throws -> FilterValue {
            guard i < tokens.count else { throw TrackingError.invalid("Invalid clause(s) in filter string: missing value for '\(key)'") }
            let t = tokens[i]
            if op == "IN" || op == "NOT IN" {
                if kind == .runs && entity == .attribute && key != "run_id" {
                    throw TrackingError.invalid("Only ['run_id'] attributes support comparison with a list of quoted string values.")
                }
                guard t == .leftParen else { throw TrackingError.invalid("Expected a list of quoted string values for '\(op)', got \(t.text)") }
                i += 1
                var items: [String] = []
                while i < tokens.count, tokens[i] != .rightParen {
                    switch tokens[i] {
                    case .singleQuoted(let s), .doubleQuoted(let s): items.append(s)
                    case .comma: break
                    default:
                        throw TrackingError.invalid("While parsing a list in the query, expected string value, punctuation, or whitespace, but got "
                            + "different type in list: \(tokens[i].text)")
                    }
                    i += 1
                }
                guard i < tokens.count else { throw TrackingError.invalid("Invalid filter string: unclosed list") }
                i += 1
                return .list(items)
            }
            i += 1
            if kind == .traces, entity == .feedback || entity == .expectation, [">", ">=", "<", "<="].contains(op) {
                guard case .number(let n) = t, let v = Double(n) else {
                    throw TrackingError.invalid("Expected numeric value type for assessment comparison '\(op)'. Found \(t.text)")
                }
                return .number(v)
            }
            if isNumeric(entity, key) {
                if kind == .modelVersions, case .singleQuoted(let q) = t, let v = Int64(q) { return .number(Double(v)) }  // '1' is 1
                guard case .number(let n) = t, let v = Double(n) else {
                    let what = entity == .metric ? "metric" : "attribute"
                    throw TrackingError.invalid("Expected numeric value type for \(what). Found \(t.text)")
                }
                if kind == .evaluationDatasets, Int64(n) == nil {
                    throw TrackingError.invalid("Invalid value for numeric attribute '\(key)': '\(n)'")
                }
                if kind == .experiments, Int64(n) == nil {
                    throw TrackingError.invalid("Invalid numeric value for '\(key)': \(n). Expected an integer.")
                }
                if kind == .modelVersions, Int64(n) == nil {  // 1.5, and 1e0 too: a float literal, as MLflow's store refuses it
                    throw TrackingError.invalid("Invalid value for numeric attribute '\(key)': \(Validation.pythonFloat(v))")
                }
                return .number(v)
            }
            switch t {
            case .singleQuoted(let s), .doubleQuoted(let s):
                if op == "RLIKE" { try FilterClause.checkPattern(s) }
                if entity == .prompt { try PromptLink.checkFilterValue(s) }
                return .string(s)
            default:
                let what = entity == .parameter ? "parameter" : entity == .tag ? "tag" : entity == .dataset ? "dataset" : entity == .issue ? "issue" : "attribute"
                throw TrackingError.invalid("Expected a quoted string value for \(what) (e.g. 'my-value'). Got value \(t.text)")
            }
        }
    }
}
