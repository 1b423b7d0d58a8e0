/// Where trace metadata is kept (MLflow 3's trace infos, tags, metadata and assessments): both metadata stores,
/// with the same SQL (``TraceSQL``). Span data is not: the client writes it to the artifact store.
public protocol TraceStore {
    /// Stores a trace with its tags, metadata, assessments and run links; a trace already stored under the id is
    /// updated (its fields replaced, tags and metadata upserted, new assessments and links added), as MLflow's store does when a client
    /// sends a trace again. `false` (nothing written) when the id is taken by a trace of another experiment.
    func insertTrace(_ trace: TraceInfo) throws -> Bool
    /// Traces by id, whole (tags, metadata, assessments), in no particular order; unknown ids are left out.
    func traces(ids: [String]) throws -> [TraceInfo]
    /// The experiment of a trace (its row alone: access checks), `nil` when there is no such trace.
    func traceExperiment(id: String) throws -> Int64?
    /// The traces of some experiments, in no particular order, with the parts a search needs (``TraceParts``): every
    /// one that satisfies `filter`, and perhaps others (the store leaves out what it can decide itself; the caller
    /// checks every clause again).
    func traces(experimentIDs: [Int64], parts: TraceParts, matching filter: SearchFilter) throws -> [TraceInfo]
    /// The ids of a page of some experiments' traces that satisfy `filter`, in the order of `keys` (missing values
    /// last): a search whose every clause the store decides itself (``TraceSQL/decidesAll(_:)``).
    func traceIDs(experimentIDs: [Int64], matching filter: SearchFilter, orderedBy keys: [TraceOrder], offset: Int, limit: Int) throws -> [String]
    /// Upserts a trace tag; `false` when the trace does not exist.
    func setTraceTag(traceID: String, _ tag: KeyValue) throws -> Bool
    /// Deletes a trace tag; `false` when there was none.
    func deleteTraceTag(traceID: String, key: String) throws -> Bool
    /// Deletes traces of an experiment (with their tags, metadata and assessments): those of `ids`, or the oldest
    /// `limit` that started at or before `maxTime`. Returns how many.
    func deleteTraces(experimentID: Int64, ids: [String]?, maxTime: Int64?, limit: Int64?) throws -> Int
    /// Adds an assessment and marks the one it overrides (if any) invalid; `false` when the trace does not exist.
    func insertAssessment(_ a: Assessment) throws -> Bool
    /// Reads an assessment, lets `change` change it (a throw changes nothing) and writes it back, in one transaction
    /// holding its row: no write made in between is lost. `nil` when it does not exist.
    func updateAssessment(traceID: String, id: String, _ change: (inout Assessment) throws -> Void) throws -> Assessment?
    /// Deletes an assessment; `false` when there was none.
    func deleteAssessment(traceID: String, id: String) throws -> Bool
    /// Links traces to a run (unknown traces and links already there are skipped).
    func linkTraces(_ ids: [String], toRun runID: String) throws
    /// Links prompt versions (``PromptLink``) to a trace, keeping links already there; `false` when the trace does not
    /// exist.
    func linkPrompts(_ prompts: [String], toTrace traceID: String) throws -> Bool
}

/// Which parts of each trace a read brings besides its own row: a search reads only the tags and metadata its filter
/// and order name, and assessments, run links or prompt links only when they ask about them.
public struct TraceParts: Sendable, Equatable {
    /// Tags of these keys (`nil`: every tag).
    public var tagKeys: [String]?
    /// Metadata of these keys (`nil`: every entry).
    public var metadataKeys: [String]?
    /// Whether assessments are read.
    public var assessments: Bool
    /// Whether run links are read.
    public var runs: Bool
    /// Whether prompt links are read.
    public var prompts: Bool

    /// Parts.
    public init(tagKeys: [String]?, metadataKeys: [String]?, assessments: Bool, runs: Bool, prompts: Bool) {
        self.tagKeys = tagKeys
        self.metadataKeys = metadataKeys
        self.assessments = assessments
        self.runs = runs
        self.prompts = prompts
    }

    /// Everything.
    public static let whole = TraceParts(tagKeys: nil, metadataKeys: nil, assessments: true, runs: true, prompts: true)
}

/// The trace tables' statements, in the SQL both dialects read alike.
enum TraceSQL {
    /// SQLite's version 10 and PostgreSQL's version 9 (`text` and `integer` are the dialect's types).
    static func schema(text: String, integer: String) -> String {
        """
        CREATE TABLE traces (
            trace_id \(text) PRIMARY KEY, experiment_id \(integer) NOT NULL REFERENCES experiments(experiment_id), client_request_id \(text),
            request_time \(integer) NOT NULL, execution_duration \(integer), state \(text) NOT NULL, request_preview \(text), response_preview \(text));
        CREATE INDEX traces_by_experiment ON traces (experiment_id, request_time);
        CREATE TABLE trace_tags (
            trace_id \(text) NOT NULL REFERENCES traces(trace_id) ON DELETE CASCADE, key \(text) NOT NULL, value \(text) NOT NULL,
            PRIMARY KEY (trace_id, key));
        CREATE TABLE trace_metadata (
            trace_id \(text) NOT NULL REFERENCES traces(trace_id) ON DELETE CASCADE, key \(text) NOT NULL, value \(text) NOT NULL,
            PRIMARY KEY (trace_id, key));
        CREATE TABLE assessments (
            assessment_id \(text) PRIMARY KEY, trace_id \(text) NOT NULL REFERENCES traces(trace_id) ON DELETE CASCADE, name \(text) NOT NULL,
            kind \(text) NOT NULL, create_time \(integer) NOT NULL, last_update_time \(integer) NOT NULL, valid \(integer) NOT NULL,
            overrides \(text), value \(text), body \(text) NOT NULL);
        CREATE INDEX assessments_by_trace ON assessments (trace_id);
        CREATE TABLE trace_runs (
            trace_id \(text) NOT NULL REFERENCES traces(trace_id) ON DELETE CASCADE, run_id \(text) NOT NULL, PRIMARY KEY (trace_id, run_id));
        """
    }

    /// The tables `tally metadata migrate` copies, in an order that satisfies their references.
    static let tables = ["traces", "trace_tags", "trace_metadata", "assessments", "trace_runs"]

    static func insert(_ db: some SQLConnection, _ t: TraceInfo) throws -> Bool {
        let changed = try db.run("""
            INSERT INTO traces (trace_id, experiment_id, client_request_id, request_time, execution_duration, state, request_preview,
            response_preview) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET
            client_request_id = COALESCE(excluded.client_request_id, traces.client_request_id), request_time = excluded.request_time,
            execution_duration = COALESCE(excluded.execution_duration, traces.execution_duration), state = excluded.state,
            request_preview = COALESCE(excluded.request_preview, traces.request_preview),
            response_preview = COALESCE(excluded.response_preview, traces.response_preview)
            WHERE traces.experiment_id = excluded.experiment_id
            """, [.text(t.traceID), .integer(Int64(t.experimentID) ?? 0), .text(orNull: t.clientRequestID), .integer(t.requestTime),
                  t.executionDuration.map(SQLValue.integer) ?? .null, .text(t.state.rawValue), .text(orNull: t.requestPreview), .text(orNull: t.responsePreview)])
        guard changed > 0 else { return false }
        try upsert(db, "trace_tags", t.traceID, t.tags)
        try upsert(db, "trace_metadata", t.traceID, try analytics(db, t))
        for a in t.assessments { try addAssessment(db, a, keepingTaken: true) }  // one already stored (under any trace) is kept
        for run in t.linkedRuns { try link(db, [t.traceID], run) }
        try TracePromptSQL.insert(db, t.traceID, t.linkedPrompts)
        return true
    }

    /// A trace's metadata with its token usage and cost as MLflow keeps them (in columns: ``SpanUsage``): the counts
    /// given set over the trace's own, in MLflow's order; a key left without counts is removed.
    static func analytics(_ db: some SQLConnection, _ t: TraceInfo) throws -> [KeyValue] {
        var metadata = t.metadata
        for key in [TraceKeys.tokenUsage, TraceKeys.cost] {
            guard let given = metadata.last(where: { $0.key == key })?.value else { continue }
            let existing = try db.rows("SELECT value FROM trace_metadata WHERE trace_id = ? AND key = ?", [.text(t.traceID), .text(key)]).first?[0].string
            metadata.removeAll { $0.key == key }
            if let text = SpanUsage.startTraceText(key, given: given, existing: existing) {
                metadata.append(KeyValue(key: key, value: text))
            } else if existing != nil {
                try TraceAnalyticsSQL.writeEntryColumns(db, "trace_metadata", t.traceID, [(key: key, value: nil)])
                try db.run("DELETE FROM trace_metadata WHERE trace_id = ? AND key = ?", [.text(t.traceID), .text(key)])
            }
        }
        return metadata
    }

    /// Upserts key-value rows of a trace, a statement per 300 (the last of a key given twice wins: one statement may
    /// not update a row twice); first the trace's columns that repeat entries (``TraceAnalyticsSQL``), unless the
    /// caller wrote them (`columnsWritten`).
    static func upsert(_ db: some SQLConnection, _ table: String, _ id: String, _ kvs: [KeyValue], columnsWritten: Bool = false) throws {
        var last: [String: Int] = [:]
        for (i, kv) in kvs.enumerated() { last[kv.key] = i }
        let rows = kvs.enumerated().filter { last[$0.element.key] == $0.offset }.map(\.element)
        if !columnsWritten { try TraceAnalyticsSQL.writeEntryColumns(db, table, id, rows.map { (key: $0.key, value: $0.value) }) }
        for chunk in rows.chunks(of: 300) {
            try db.run("INSERT INTO \(table) VALUES " + Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ")
                       + " ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value",
                       chunk.flatMap { [SQLValue.text(id), .text($0.key), .text($0.value)] })
        }
    }

    /// Reads traces in one statement (one snapshot on PostgreSQL): each table's rows in common columns — kind, trace
    /// id, six texts, three integers — grouped by trace afterwards; `parts` says which rows besides the traces'.
    static func traces(_ db: some SQLConnection, where cond: String, _ values: [SQLValue], parts: TraceParts = .whole) throws -> [TraceInfo] {
        let nulls = "CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)"
        var sql = "SELECT 0, t.trace_id, t.client_request_id, t.state, t.request_preview, t.response_preview, CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            + "t.experiment_id, t.request_time, t.execution_duration FROM traces t WHERE \(cond)"
        var all = values
        for (kind, table, keys) in [(1, "trace_tags", parts.tagKeys), (2, "trace_metadata", parts.metadataKeys)] where keys?.isEmpty != true {
            sql += " UNION ALL SELECT \(kind), x.trace_id, x.key, x.value, \(nulls) FROM \(table) x JOIN traces t ON t.trace_id = x.trace_id WHERE \(cond)"
            all += values
            if let keys {
                sql += " AND x.key IN (\(sqlMarks(keys.count)))"
                all += keys.map(SQLValue.text)
            }
        }
        if parts.assessments {
            sql += " UNION ALL SELECT 3, a.trace_id, \(assessmentColumns) FROM assessments a JOIN traces t ON t.trace_id = a.trace_id WHERE \(cond)"
            all += values
        }
        if parts.runs {
            sql += " UNION ALL SELECT 4, l.trace_id, l.run_id, CAST(NULL AS TEXT), \(nulls) FROM trace_runs l JOIN traces t ON t.trace_id = l.trace_id WHERE \(cond)"
            all += values
        }
        if parts.prompts {
            sql += " UNION ALL SELECT 5, p.trace_id, p.prompt, CAST(NULL AS TEXT), \(nulls) FROM trace_prompts p JOIN traces t ON t.trace_id = p.trace_id WHERE \(cond)"
            all += values
        }
        var byID: [String: TraceInfo] = [:]
        var tags: [String: [KeyValue]] = [:], metadata: [String: [KeyValue]] = [:], assessments: [String: [Assessment]] = [:], runs: [String: [String]] = [:]
        var prompts: [String: [String]] = [:]
        try db.query(sql, all) { r in
            let id = r[1].string ?? ""
            switch r[0].int {
            case 0:
                byID[id] = TraceInfo(traceID: id, experimentID: String(r[8].int ?? 0), clientRequestID: r[2].string, requestTime: r[9].int ?? 0,
                                     executionDuration: r[10].int, state: TraceState(apiName: r[3].string), requestPreview: r[4].string,
                                     responsePreview: r[5].string)
            case 1: tags[id, default: []].append(KeyValue(key: r[2].string ?? "", value: r[3].string ?? ""))
            case 2: metadata[id, default: []].append(KeyValue(key: r[2].string ?? "", value: r[3].string ?? ""))
            case 4: runs[id, default: []].append(r[2].string ?? "")
            case 5: prompts[id, default: []].append(r[2].string ?? "")
            default: assessments[id, default: []].append(assessment(r))
            }
        }
        return byID.values.map { t in
            var t = t
            t.tags = (tags[t.traceID] ?? []).sorted { binaryLess($0.key, $1.key) }
            t.metadata = (metadata[t.traceID] ?? []).sorted { binaryLess($0.key, $1.key) }
            t.assessments = (assessments[t.traceID] ?? []).sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
            t.linkedRuns = (runs[t.traceID] ?? []).sorted(by: binaryLess)
            t.linkedPrompts = (prompts[t.traceID] ?? []).sorted(by: binaryLess)
            return t
        }
    }

    static func experiment(_ db: some SQLConnection, _ id: String) throws -> Int64? {
        try db.rows("SELECT experiment_id FROM traces WHERE trace_id = ?", [.text(id)]).first?.first?.int
    }

    /// An assessment's columns as a read gives them (after the kind of row and the trace id).
    static let assessmentColumns = "a.assessment_id, a.name, a.kind, a.overrides, a.value, a.body, a.create_time, a.last_update_time, a.valid"

    /// An assessment from a row of `kind, trace_id,` then ``assessmentColumns``.
    static func assessment(_ r: [SQLValue]) -> Assessment {
        Assessment(id: r[2].string ?? "", traceID: r[1].string ?? "", name: r[3].string ?? "", kind: AssessmentKind(rawValue: r[4].string ?? "") ?? .feedback,
                   createTime: r[8].int ?? 0, lastUpdateTime: r[9].int ?? 0, valid: r[10].int != 0, overrides: r[5].string, value: r[6].string,
                   body: r[7].string ?? "{}")
    }

    /// Traces by id, a bounded number of placeholders per statement.
    static func traces(_ db: some SQLConnection, ids: [String]) throws -> [TraceInfo] {
        var out: [TraceInfo] = []
        for chunk in Array(Set(ids)).chunks(of: idsPerStatement) {
            out += try traces(db, where: "t.trace_id IN (\(sqlMarks(chunk.count)))", chunk.map(SQLValue.text))
        }
        return out
    }

    static func traces(_ db: some SQLConnection, experimentIDs: [Int64], parts: TraceParts, matching filter: SearchFilter) throws -> [TraceInfo] {
        var out: [TraceInfo] = []
        let (narrow, narrowValues) = narrowing(filter)
        for chunk in Array(Set(experimentIDs)).chunks(of: idsPerStatement) {
            out += try traces(db, where: "t.experiment_id IN (\(sqlMarks(chunk.count)))" + narrow, chunk.map(SQLValue.integer) + narrowValues, parts: parts)
        }
        return out
    }

    /// What the database can decide of a search's clauses exactly as the service does (text equal byte for byte,
    /// as SQLite's `BINARY` and PostgreSQL's `"C"` compare; whole numbers compared), as conditions on `t`, the traces
    /// table: equality and presence of tags and metadata, the trace name, id, state and client id, times, issue
    /// and prompt links. The rest (patterns, negations, feedback and expectations, runs) only the service decides.
    static func narrowing(_ f: SearchFilter) -> (String, [SQLValue]) {
        var sql = "", values: [SQLValue] = []
        func exists(_ table: String, _ key: String, _ value: String?) {
            let (condition, given) = entry(table, key, value)
            sql += " AND " + condition
            values += given
        }
        let columns = ["request_id": "t.trace_id", "status": "t.state", "client_request_id": "t.client_request_id"]
        for c in f.clauses {
            switch (c.entity, c.comparator, c.value) {
            case (.tag, "=", .string(let v)): exists("trace_tags", c.key, v)
            case (.metadata, "=", .string(let v)) where c.key != TraceKeys.sourceRun:  // that one also matches linked runs
                exists("trace_metadata", c.key, v)
            case (.tag, "IS NOT NULL", _): exists("trace_tags", c.key, nil)
            case (.metadata, "IS NOT NULL", _): exists("trace_metadata", c.key, nil)
            case (.attribute, "=", .string(let v)) where c.key == "name": exists("trace_tags", TraceKeys.traceName, v)
            case (.issue, "=", .string(let v)):
                // The issue's traces found once (its references, by name), not one probe per trace of the experiment.
                sql += " AND t.trace_id IN (SELECT n.trace_id FROM assessments n WHERE n.name = ? AND n.kind = 'issue')"
                values.append(.text(v))
            case (.prompt, "=", .string(let v)):  // likewise the prompt version's links
                sql += " AND t.trace_id IN (SELECT p.trace_id FROM trace_prompts p WHERE p.prompt = ?)"
                values.append(.text(v))
            case (.attribute, "=", .string(let v)) where columns[c.key] != nil:
                sql += " AND \(columns[c.key]!) = ?"
                values.append(.text(v))
            case (.attribute, let op, .number(let v)) where ["=", "<", "<=", ">", ">="].contains(op) && abs(v) <= 9_007_199_254_740_992:
                guard let n = Int64(exactly: v) else { continue }  // a fraction: the service compares
                switch c.key {
                case "timestamp_ms": sql += " AND t.request_time \(op) ?"
                case "execution_time_ms": sql += " AND t.execution_duration \(op) ?"
                case "end_time_ms": sql += " AND t.request_time + COALESCE(t.execution_duration, 0) \(op) ?"
                default: continue
                }
                values.append(.integer(n))
            default: break
            }
        }
        return (sql, values)
    }

    /// A condition on `t` (traces): the trace has an entry `key` in `table` (`trace_tags` or `trace_metadata`),
    /// whose value is `value` when one is given.
    static func entry(_ table: String, _ key: String, _ value: String?) -> (String, [SQLValue]) {
        ("EXISTS (SELECT 1 FROM \(table) n WHERE n.trace_id = t.trace_id AND n.key = ?" + (value == nil ? ")" : " AND n.value = ?)"),
         [.text(key)] + (value.map { [SQLValue.text($0)] } ?? []))
    }

    /// A page of ids of the traces `filter` selects, in `keys`' order (``ordering(_:)``; no keys: in no particular
    /// order); every clause must be one ``narrowing(_:)`` decides.
    static func page(_ db: some SQLConnection, experimentIDs: [Int64], matching filter: SearchFilter, orderedBy keys: [TraceOrder],
                     offset: Int, limit: Int) throws -> [String] {
        precondition(decidesAll(filter), "a clause only the service decides")
        let ids = Array(Set(experimentIDs))
        guard !ids.isEmpty else { return [] }
        let (narrow, values) = narrowing(filter)
        let (order, orderValues) = keys.isEmpty ? ("", []) : ordering(keys)
        return try db.rows("SELECT t.trace_id FROM traces t WHERE t.experiment_id IN (\(sqlMarks(ids.count)))\(narrow) "
                           + (keys.isEmpty ? "" : "ORDER BY \(order) ") + "LIMIT \(limit) OFFSET \(offset)", ids.map(SQLValue.integer) + values + orderValues)
            .compactMap { $0[0].string }
    }

    /// `keys` as an `ORDER BY` list over `t`, as ``TraceOrder/less(_:_:_:)`` orders: text by its bytes, a missing
    /// value (a tag or metadata entry the trace lacks, no duration) last either way.
    static func ordering(_ keys: [TraceOrder]) -> (String, [SQLValue]) {
        var terms: [String] = [], values: [SQLValue] = []
        for k in keys {
            let column: String
            switch (k.entity, k.key) {
            case (.tag, _), (.attribute, "name"):
                column = "(SELECT o.value FROM trace_tags o WHERE o.trace_id = t.trace_id AND o.key = ?)"
                values.append(.text(k.entity == .tag ? k.key : TraceKeys.traceName))
            case (.metadata, _), (.attribute, "run_id"):
                column = "(SELECT o.value FROM trace_metadata o WHERE o.trace_id = t.trace_id AND o.key = ?)"
                values.append(.text(k.entity == .metadata ? k.key : TraceKeys.sourceRun))
            case (_, "experiment_id"): column = "t.experiment_id"
            case (_, "timestamp_ms"): column = "t.request_time"
            case (_, "execution_time_ms"): column = "t.execution_duration"
            case (_, "end_time_ms"): column = "t.request_time + COALESCE(t.execution_duration, 0)"
            case (_, "status"): column = "t.state"
            default: column = "t.trace_id"
            }
            terms.append(column + (k.ascending ? " ASC" : " DESC") + " NULLS LAST")
        }
        return (terms.joined(separator: ", "), values)
    }

    /// Whether ``narrowing(_:)`` decides every clause of `f` (the database can then order and page the search).
    static func decidesAll(_ f: SearchFilter) -> Bool {
        f.clauses.allSatisfy { narrowing(SearchFilter(clauses: [$0])).0 != "" }
    }

    /// Ids per statement.
    static let idsPerStatement = 500

    /// Whether the trace is stored, kept so until the transaction ends (a delete racing the caller's insert waits
    /// for it, or is seen as done).
    static func keep(_ db: some SQLConnection, _ id: String) throws -> Bool {
        try !db.rows("SELECT 1 FROM traces WHERE trace_id = ?" + db.locking(.keep), [.text(id)]).isEmpty
    }

    static func setTag(_ db: some SQLConnection, _ id: String, _ tag: KeyValue) throws -> Bool {
        guard try keep(db, id) else { return false }
        try upsert(db, "trace_tags", id, [tag])
        return true
    }

    static func deleteTag(_ db: some SQLConnection, _ id: String, _ key: String) throws -> Bool {
        try TraceAnalyticsSQL.writeEntryColumns(db, "trace_tags", id, [(key: key, value: nil)])
        return try db.run("DELETE FROM trace_tags WHERE trace_id = ? AND key = ?", [.text(id), .text(key)]) > 0
    }

    static func delete(_ db: some SQLConnection, experimentID: Int64, ids: [String]?, maxTime: Int64?, limit: Int64?) throws -> Int {
        var gone: [String] = []  // the traces deleted, which review queues then forget
        if let ids {
            for chunk in Array(Set(ids)).chunks(of: idsPerStatement) {
                gone += try db.rows("DELETE FROM traces WHERE experiment_id = ? AND trace_id IN (\(sqlMarks(chunk.count))) RETURNING trace_id",
                                    [.integer(experimentID)] + chunk.map(SQLValue.text)).compactMap { $0[0].string }
            }
        } else {
            let limitClause = limit.map { "LIMIT \($0)" } ?? ""
            gone = try db.rows("""
                DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM traces WHERE experiment_id = ? AND request_time <= ?
                ORDER BY request_time, trace_id \(limitClause)) RETURNING trace_id
                """, [.integer(experimentID), .integer(maxTime ?? Int64.max)]).compactMap { $0[0].string }
        }
        try ReviewSQL.forgetTraces(db, gone)
        return gone.count
    }

    /// Adds one assessment to a stored trace: `false` when the trace is not there.
    static func insertAssessment(_ db: some SQLConnection, _ a: Assessment) throws -> Bool {
        guard try keep(db, a.traceID) else { return false }
        try addAssessment(db, a, keepingTaken: false)
        return true
    }

    /// Inserts an assessment and marks the one it overrides invalid; with `keepingTaken`, an id already stored is left
    /// as it is (a trace sent again) instead of refused. Without it, an overridden assessment that is not there
    /// (deleted since the caller looked) fails the write with MLflow's 404, for the caller's transaction to undo.
    static func addAssessment(_ db: some SQLConnection, _ a: Assessment, keepingTaken: Bool) throws {
        try db.run("INSERT INTO assessments (assessment_id, trace_id, name, kind, create_time, last_update_time, valid, overrides, value, body, "
                   + "aggregate_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + (keepingTaken ? " ON CONFLICT (assessment_id) DO NOTHING" : ""), row(a))
        if let o = a.overrides,
           try db.run("UPDATE assessments SET valid = 0 WHERE trace_id = ? AND assessment_id = ?", [.text(a.traceID), .text(o)]) == 0, !keepingTaken {
            throw TrackingService.assessmentNotFound(o, trace: a.traceID)
        }
    }

    static func row(_ a: Assessment) -> [SQLValue] {
        [.text(a.id), .text(a.traceID), .text(a.name), .text(a.kind.rawValue), .integer(a.createTime), .integer(a.lastUpdateTime),
         .integer(a.valid ? 1 : 0), .text(orNull: a.overrides), .text(orNull: a.value), .text(a.body), TraceAnalyticsSQL.aggregateValue(a.value)]
    }

    static func updateAssessment(_ db: some SQLConnection, _ traceID: String, _ id: String, _ change: (inout Assessment) throws -> Void) throws -> Assessment? {
        guard let r = try db.rows("SELECT 3, a.trace_id, \(assessmentColumns) FROM assessments a WHERE a.trace_id = ? AND a.assessment_id = ?"
                                  + db.locking(.update), [.text(traceID), .text(id)]).first else { return nil }
        var a = assessment(r)
        try change(&a)
        (a.id, a.traceID) = (id, traceID)
        try db.run("""
            UPDATE assessments SET name = ?, kind = ?, create_time = ?, last_update_time = ?, valid = ?, overrides = ?, value = ?, body = ?,
            aggregate_value = ? WHERE assessment_id = ? AND trace_id = ?
            """, Array(row(a).dropFirst(2)) + [.text(id), .text(traceID)])
        return a
    }

    static func link(_ db: some SQLConnection, _ ids: [String], _ runID: String) throws {
        for id in Set(ids) {
            try db.run("INSERT INTO trace_runs SELECT trace_id, ? FROM traces WHERE trace_id = ?\(db.locking(.keep)) ON CONFLICT (trace_id, run_id) DO NOTHING",
                       [.text(runID), .text(id)])
        }
    }

    /// Deletes an assessment; the one it overrode is valid again, as MLflow makes it.
    static func deleteAssessment(_ db: some SQLConnection, _ traceID: String, _ id: String) throws -> Bool {
        let overridden = try db.rows("SELECT overrides FROM assessments WHERE trace_id = ? AND assessment_id = ?", [.text(traceID), .text(id)])
        guard let row = overridden.first else { return false }
        try db.run("DELETE FROM assessments WHERE trace_id = ? AND assessment_id = ?", [.text(traceID), .text(id)])
        if let o = row[0].string {
            try db.run("UPDATE assessments SET valid = 1 WHERE trace_id = ? AND assessment_id = ?", [.text(traceID), .text(o)])
        }
        return true
    }
}

extension SQLiteMetadataStore {
    /// Version 10: traces (``TraceSQL``).
    static let schemaVersion10 = TraceSQL.schema(text: "TEXT", integer: "INTEGER")

    public func insertTrace(_ trace: TraceInfo) throws -> Bool { try transaction { try with { try TraceSQL.insert($0, trace) } } }
    public func traces(ids: [String]) throws -> [TraceInfo] { try with { try TraceSQL.traces($0, ids: ids) } }
    public func traceExperiment(id: String) throws -> Int64? { try with { try TraceSQL.experiment($0, id) } }
    public func traces(experimentIDs: [Int64], parts: TraceParts, matching filter: SearchFilter) throws -> [TraceInfo] {
        try with { try TraceSQL.traces($0, experimentIDs: experimentIDs, parts: parts, matching: filter) }
    }
    public func traceIDs(experimentIDs: [Int64], matching filter: SearchFilter, orderedBy keys: [TraceOrder], offset: Int, limit: Int) throws -> [String] {
        try with { try TraceSQL.page($0, experimentIDs: experimentIDs, matching: filter, orderedBy: keys, offset: offset, limit: limit) }
    }
    public func setTraceTag(traceID: String, _ tag: KeyValue) throws -> Bool { try transaction { try with { try TraceSQL.setTag($0, traceID, tag) } } }
    public func deleteTraceTag(traceID: String, key: String) throws -> Bool { try transaction { try with { try TraceSQL.deleteTag($0, traceID, key) } } }
    public func deleteTraces(experimentID: Int64, ids: [String]?, maxTime: Int64?, limit: Int64?) throws -> Int {
        try transaction { try with { try TraceSQL.delete($0, experimentID: experimentID, ids: ids, maxTime: maxTime, limit: limit) } }
    }
    public func insertAssessment(_ a: Assessment) throws -> Bool { try transaction { try with { try TraceSQL.insertAssessment($0, a) } } }
    public func updateAssessment(traceID: String, id: String, _ change: (inout Assessment) throws -> Void) throws -> Assessment? {
        try transaction { try with { try TraceSQL.updateAssessment($0, traceID, id, change) } }
    }
    public func deleteAssessment(traceID: String, id: String) throws -> Bool {
        try transaction { try with { try TraceSQL.deleteAssessment($0, traceID, id) } }
    }
    public func linkTraces(_ ids: [String], toRun runID: String) throws { try transaction { try with { try TraceSQL.link($0, ids, runID) } } }
}

extension PostgresMetadataStore {
    /// Version 9: traces (``TraceSQL``).
    static let schemaVersion9 = TraceSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT")

    public func insertTrace(_ trace: TraceInfo) throws -> Bool { try write { try TraceSQL.insert($0, trace) } }
    public func traces(ids: [String]) throws -> [TraceInfo] { try conn { try TraceSQL.traces($0, ids: ids) } }
    public func traceExperiment(id: String) throws -> Int64? { try conn { try TraceSQL.experiment($0, id) } }
    public func traces(experimentIDs: [Int64], parts: TraceParts, matching filter: SearchFilter) throws -> [TraceInfo] {
        try conn { try TraceSQL.traces($0, experimentIDs: experimentIDs, parts: parts, matching: filter) }
    }
    public func traceIDs(experimentIDs: [Int64], matching filter: SearchFilter, orderedBy keys: [TraceOrder], offset: Int, limit: Int) throws -> [String] {
        try conn { try TraceSQL.page($0, experimentIDs: experimentIDs, matching: filter, orderedBy: keys, offset: offset, limit: limit) }
    }
    public func setTraceTag(traceID: String, _ tag: KeyValue) throws -> Bool { try write { try TraceSQL.setTag($0, traceID, tag) } }
    public func deleteTraceTag(traceID: String, key: String) throws -> Bool { try write { try TraceSQL.deleteTag($0, traceID, key) } }
    public func deleteTraces(experimentID: Int64, ids: [String]?, maxTime: Int64?, limit: Int64?) throws -> Int {
        try write { try TraceSQL.delete($0, experimentID: experimentID, ids: ids, maxTime: maxTime, limit: limit) }
    }
    public func insertAssessment(_ a: Assessment) throws -> Bool { try write { try TraceSQL.insertAssessment($0, a) } }
    public func updateAssessment(traceID: String, id: String, _ change: (inout Assessment) throws -> Void) throws -> Assessment? {
        try write { try TraceSQL.updateAssessment($0, traceID, id, change) }
    }
    public func deleteAssessment(traceID: String, id: String) throws -> Bool { try write { try TraceSQL.deleteAssessment($0, traceID, id) } }
    public func linkTraces(_ ids: [String], toRun runID: String) throws { try write { try TraceSQL.link($0, ids, runID) } }
}
