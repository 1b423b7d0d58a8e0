import TallyStore

/// MLflow 3's `traces/search` grammar (its `SearchTraceUtils`): attributes under `attribute.`, `attributes.` or
/// `trace.`; `tag.`/`tags.`; `metadata.`/`request_metadata.`; `feedback.<name>` and `expectation.<name>`; `issue.id`;
/// `prompt`.
/// `span.*` clauses search the spans kept here (sent over OTLP), as MLflow's tracking store searches its `spans` table.
extension SearchFilter {
    static let traceStringAttributes: Set<String> = ["request_id", "status", "client_request_id", "name", "run_id"]
    static let traceNumericAttributes: Set<String> = ["timestamp_ms", "execution_time_ms", "end_time_ms"]
    static let traceAttributeAliases = ["timestamp": "timestamp_ms", "execution_time": "execution_time_ms", "end_time": "end_time_ms"]
    static let validTraceAttributeKeys = "{'request_id', 'timestamp', 'timestamp_ms', 'execution_time', 'execution_time_ms', 'end_time', "
        + "'end_time_ms', 'status', 'client_request_id', 'name', 'run_id', 'prompt', 'text'}"
}

extension SearchFilter.Parser {
    static let traceListAttributes: Set<String> = ["name", "status", "request_id", "run_id", "client_request_id"]

    static func traceEntity(_ text: String) throws -> SearchEntity {
        switch text {
        case "attribute", "attributes", "trace": return .attribute
        case "tag", "tags": return .tag
        case "request_metadata", "metadata": return .metadata
        case "feedback": return .feedback
        case "expectation": return .expectation
        case "span": return .span
        case "issue": return .issue
        default:
            throw TrackingError.invalid("Invalid entity type '\(text)'. Valid values are {'tag', 'tags', 'request_metadata', 'metadata', "
                + "'attribute', 'attributes', 'trace', 'span', 'feedback', 'expectation', 'issue'}")
        }
    }

    static func traceAttribute(_ key: String) throws -> String {
        let k = SearchFilter.traceAttributeAliases[key] ?? key
        guard SearchFilter.traceStringAttributes.contains(k) || SearchFilter.traceNumericAttributes.contains(k) || k == "prompt" else {
            throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are '\(SearchFilter.validTraceAttributeKeys)'")
        }
        return k
    }

    /// A span key: `name`, `type`, `status`, `content`, or `attributes.<key>` (backquotes trimmed), with MLflow's
    /// messages for others.
    static func spanKey(_ key: String) throws -> String {
        if key.hasPrefix("attributes.") {
            var name = String(key.dropFirst("attributes.".count))
            if name.count >= 2, name.hasPrefix("`"), name.hasSuffix("`") { name = String(name.dropFirst().dropLast()) }
            guard !name.isEmpty else { throw TrackingError.invalid("Span attribute name cannot be empty after 'attributes.'") }
            return "attributes." + name
        }
        guard ["name", "type", "status", "content"].contains(key) else {
            throw TrackingError.invalid("Invalid span attribute '\(key)'. Supported attributes: name, status, type, attributes.<attribute_name>.")
        }
        return key
    }

    func traceComparators(_ entity: SearchEntity, _ key: String) -> [String] {
        switch entity {
        case .span where key == "content": ["LIKE", "ILIKE"]
        case .span: ["!=", "=", "IN", "NOT IN", "LIKE", "ILIKE", "RLIKE"]
        case .feedback, .expectation: ["=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "RLIKE"]
        case .issue, .prompt: ["="]
        case .attribute where Self.traceListAttributes.contains(key): ["=", "!=", "IN", "NOT IN", "LIKE", "ILIKE", "RLIKE"]
        default: ["=", "!=", "LIKE", "ILIKE", "RLIKE"]
        }
    }
}

extension SearchFilter {
    /// Refuses a pattern on a trace's token usage or cost, which MLflow keeps in columns: only `=`, `!=`, `IS NULL`
    /// and `IS NOT NULL` (against the text it renders) are answered.
    func checkSummedMetadata() throws {
        for c in clauses where c.entity == .metadata && TraceKeys.summedMetadata.contains(c.key)
            && !["=", "!=", "IS NULL", "IS NOT NULL"].contains(c.comparator) {
            throw TrackingError.invalid("Comparator '\(c.comparator)' is not supported for reserved metadata '\(c.key)'. "
                + "Only '=', '!=', 'IS NULL', and 'IS NOT NULL' are supported.")
        }
    }
}

extension FilterClause {
    /// Refuses an `RLIKE` pattern that is not a regular expression (the clause would match nothing, silently).
    static func checkPattern(_ p: String) throws {
        guard (try? Regex(p)) != nil else { throw TrackingError.invalid("Invalid regular expression in filter string: '\(p)'") }
    }

    /// `RLIKE`: the pattern found anywhere in the value (SQL's `REGEXP`, Python's `re.search`).
    static func regexSearch(_ s: String, _ p: String) -> Bool {
        guard let r = try? Regex(p) else { return false }
        return s.contains(r)
    }

    /// A clause on an assessment's value (JSON text): `=`/`!=` against the value as written or as a JSON string
    /// (`'0.9'` matches `0.9`, `'good'` matches `"good"`), order comparisons on numbers, patterns on the JSON text.
    func testAssessment(_ json: String) -> Bool {
        switch (comparator, value) {
        case ("=", .string(let v)): return ExactKey.sameBytes(json, v) || ExactKey.sameBytes(json, JSONText.quote(v))
        case ("!=", .string(let v)): return !(ExactKey.sameBytes(json, v) || ExactKey.sameBytes(json, JSONText.quote(v)))
        case (_, .number): return Double(json).map { test($0) } ?? false
        default: return test(json)
        }
    }
}

extension SearchFilter {
    /// Whether a trace satisfies every clause. A tag, metadata or assessment clause needs the key to exist
    /// (`IS NULL` asks that it does not); a feedback or expectation clause holds when any valid assessment of that
    /// kind and name satisfies it.
    public func matches(_ t: TraceInfo) -> Bool {
        clauses.allSatisfy { c in
            switch c.entity {
            case .tag: return Self.test(c, t.tag(c.key))
            case .metadata where c.key == TraceKeys.sourceRun && c.comparator == "=":
                return t.runs.contains { c.test($0) }  // as `run_id =`: made in the run, or linked to it
            case .metadata: return Self.test(c, t.metadata(c.key))
            case .feedback, .expectation:
                let kind: AssessmentKind = c.entity == .feedback ? .feedback : .expectation
                let found = t.assessments.filter { $0.valid && $0.kind == kind && ExactKey.sameBytes($0.name, c.key) }
                switch c.comparator {
                case "IS NULL": return found.isEmpty
                case "IS NOT NULL": return !found.isEmpty
                default: return found.contains { a in a.value.map(c.testAssessment) ?? false }
                }
            case .attribute:
                switch c.key {
                case "request_id": return c.test(t.traceID)
                case "status": return c.test(t.state.rawValue)
                case "client_request_id": return t.clientRequestID.map { c.test($0) } ?? false
                case "name": return t.tag(TraceKeys.traceName).map { c.test($0) } ?? false
                case "run_id":  // `=` finds the traces made in the run or linked to it; other comparisons the run made in (MLflow's)
                    return c.comparator == "=" ? t.runs.contains { c.test($0) } : t.metadata(TraceKeys.sourceRun).map { c.test($0) } ?? false
                case "timestamp_ms": return c.test(Double(t.requestTime))
                case "execution_time_ms": return t.executionDuration.map { c.test(Double($0)) } ?? false
                case "end_time_ms": return c.test(Double(t.endTime))
                default: return false
                }
            case .issue:  // any reference to the issue, as MLflow's subquery finds them
                return t.assessments.contains { a in a.kind == .issue && c.test(a.name) }
            case .prompt: return t.linkedPrompts.contains { c.test($0) }
            case .span: return true  // decided over the trace's spans (``FilterClause/matches(_:)``)
            case .metric, .parameter, .dataset: return false
            }
        }
    }

    /// The clauses on spans.
    var spanClauses: [FilterClause] { clauses.filter { $0.entity == .span } }

    static func test(_ c: FilterClause, _ v: String?) -> Bool {
        switch c.comparator {
        case "IS NULL": return v == nil
        case "IS NOT NULL": return v != nil
        default: return v.map { c.test($0) } ?? false
        }
    }
}

/// One `order_by` item of `traces/search`: an attribute (`timestamp_ms`, `execution_time_ms`, `end_time_ms`,
/// `status`, `request_id`, `experiment_id`, `name`, `run_id`), `tags.<key>` or `metadata.<key>`.
public struct TraceOrder: Sendable, Equatable {
    /// `.attribute`, `.tag` or `.metadata`.
    public var entity: SearchEntity
    /// The key (canonical attribute name for attributes).
    public var key: String
    /// Ascending unless `DESC` was given.
    public var ascending: Bool

    static let attributes = ["experiment_id": "experiment_id", "timestamp": "timestamp_ms", "timestamp_ms": "timestamp_ms",
                             "execution_time": "execution_time_ms", "execution_time_ms": "execution_time_ms", "end_time": "end_time_ms",
                             "end_time_ms": "end_time_ms", "status": "status", "request_id": "request_id", "name": "name", "run_id": "run_id"]

    /// Parses an item (`timestamp_ms DESC`, `tags.priority`, ``metadata.`mlflow.user` ASC``).
    public init(parsing text: String) throws {
        let (name, ascending) = try OrderKey.nameAndDirection(text)
        self.ascending = ascending
        let (named, unquoted) = OrderKey.entityAndKey(name)
        let entityText = named ?? "attribute"
        var key = unquoted
        entity = try SearchFilter.Parser.traceEntity(entityText)
        switch entity {
        case .attribute:
            guard let k = Self.attributes[key] else {
                throw TrackingError.invalid("Invalid attribute key '\(key)' specified. Valid keys are '{'experiment_id', 'timestamp', 'timestamp_ms', "
                    + "'execution_time', 'execution_time_ms', 'end_time', 'end_time_ms', 'status', 'request_id', 'name', 'run_id'}'")
            }
            key = k
        case .tag: break
        case .metadata:
            if TraceKeys.summedMetadata.contains(key) {  // MLflow keeps it in several columns
                throw TrackingError.invalid("Ordering by reserved metadata '\(key)' is not supported because it is represented by multiple columns.")
            }
        default: throw TrackingError.invalid("Invalid order_by entity `\(entityText)` with key `\(key)`")
        }
        self.key = key
    }

    /// The order a search without one uses, and the ties it breaks last: newest first, then by id.
    static let defaults = [TraceOrder(entity: .attribute, key: "timestamp_ms", ascending: false), TraceOrder(entity: .attribute, key: "request_id", ascending: true)]

    init(entity: SearchEntity, key: String, ascending: Bool) {
        self.entity = entity
        self.key = key
        self.ascending = ascending
    }

    /// A list with MLflow's tie-breakers appended (`timestamp_ms DESC`, `request_id`) where not already ordered by.
    static func list(_ items: [String]) throws -> [TraceOrder] {
        var keys = try items.map(TraceOrder.init(parsing:))
        var seen = Set<String>()
        let dups = keys.map { "\($0.entity.rawValue).\($0.key)" }.filter { !seen.insert($0).inserted }
        guard dups.isEmpty else {
            throw TrackingError.invalid("`order_by` contains duplicate fields: [\(dups.map { "'\($0)'" }.joined(separator: ", "))]")
        }
        for d in defaults where !keys.contains(where: { $0.entity == d.entity && $0.key == d.key }) { keys.append(d) }
        return keys
    }

    func value(_ t: TraceInfo) -> SortValue {
        switch (entity, key) {
        case (.tag, _): return t.tag(key).map(SortValue.string) ?? .missing
        case (.metadata, _): return t.metadata(key).map(SortValue.string) ?? .missing
        case (_, "experiment_id"): return .number(Double(t.experimentID) ?? 0)
        case (_, "timestamp_ms"): return .number(Double(t.requestTime))
        case (_, "execution_time_ms"): return t.executionDuration.map { .number(Double($0)) } ?? .missing
        case (_, "end_time_ms"): return .number(Double(t.endTime))
        case (_, "status"): return .string(t.state.rawValue)
        case (_, "request_id"): return .string(t.traceID)
        case (_, "name"): return t.tag(TraceKeys.traceName).map(SortValue.string) ?? .missing
        case (_, "run_id"): return t.metadata(TraceKeys.sourceRun).map(SortValue.string) ?? .missing
        default: return .missing
        }
    }

    /// What a search with filter `f` and order `keys` reads of each candidate: the tags and metadata they name (the
    /// trace name is a tag, the run a metadata entry and links), assessments only for feedback and expectations.
    static func parts(_ f: SearchFilter, _ keys: [TraceOrder]) -> TraceParts {
        var tags: [String] = [], metadata: [String] = [], assessments = false, runs = false, prompts = false
        for (entity, key) in f.clauses.map({ ($0.entity, $0.key) }) + keys.map({ ($0.entity, $0.key) }) {
            switch (entity, key) {
            case (.tag, _): tags.append(key)
            case (.metadata, _):
                metadata.append(key)
                if key == TraceKeys.sourceRun { runs = true }
            case (.feedback, _), (.expectation, _), (.issue, _): assessments = true
            case (.prompt, _): prompts = true
            case (.attribute, "name"): tags.append(TraceKeys.traceName)
            case (.attribute, "run_id"):
                metadata.append(TraceKeys.sourceRun)
                runs = true
            default: break
            }
        }
        return TraceParts(tagKeys: Array(Set(tags)), metadataKeys: Array(Set(metadata)), assessments: assessments, runs: runs, prompts: prompts)
    }

    /// Whether `a` sorts before `b` under `keys`.
    static func less(_ a: TraceInfo, _ b: TraceInfo, _ keys: [TraceOrder]) -> Bool {
        for k in keys {
            let c = SortValue.compare(k.value(a), k.value(b), ascending: k.ascending)
            if c != 0 { return c < 0 }
        }
        return false
    }
}
