/// What one batch of spans does to one trace (MLflow's `log_spans`, per trace): its spans, and what its info is
/// derived from them — made from these if the trace is new, widened and completed if not.
public struct SpanTraceWrite: Sendable, Equatable {
    /// The trace.
    public var traceID: String
    /// Its spans in this batch (one per span id: the last sent).
    public var spans: [StoredSpan]
    /// The earliest start among them, in milliseconds.
    public var start: Int64
    /// The latest end among them, in milliseconds (`nil`: none has one).
    public var end: Int64?
    /// The state its root span gives the trace (`nil`: no root span in the batch).
    public var rootState: TraceState?
    /// Previews from the root span's inputs and outputs, set where the trace has none.
    public var requestPreview: String?
    /// See ``requestPreview``.
    public var responsePreview: String?
    /// Tags upserted (where the spans are, the resource's attributes, the root span's `mlflow.traceTag.*`).
    public var tags: [KeyValue]
    /// Metadata written only where the trace has no entry of the key (`mlflow.trace.user`, `mlflow.trace.session`).
    public var metadataIfAbsent: [KeyValue]
    /// Each span's token usage in this batch, for the trace's sum (``SpanUsage``).
    var usageNodes: [SpanUsage.Node] = []
    /// Each span's cost in this batch.
    var costNodes: [SpanUsage.Node] = []
    /// The batch's own token sum (`nil`: no span in it has usage; nothing is written).
    var batchTokens: [String: PyNumber]?
    /// The batch's own cost sum.
    var batchCost: [String: PyNumber]?
    /// Each span's analytics columns, from its translated attributes (``spans``' order); empty: read from the content.
    var analytics: [SpanAnalytics] = []

    /// A trace's part of a batch.
    public init(traceID: String, spans: [StoredSpan], start: Int64, end: Int64?, rootState: TraceState?, requestPreview: String?,
                responsePreview: String?, tags: [KeyValue], metadataIfAbsent: [KeyValue]) {
        self.traceID = traceID
        self.spans = spans
        self.start = start
        self.end = end
        self.rootState = rootState
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.tags = tags
        self.metadataIfAbsent = metadataIfAbsent
    }
}

/// Where spans sent over OTLP are kept: both metadata stores, in a `spans` table beside the traces (``SpanSQL``), as
/// MLflow's tracking store keeps them.
public protocol SpanStore {
    /// Stores a batch in one transaction: each trace made (in `experimentID`, its artifact location tag from
    /// `artifactLocation`) when it does not exist, its spans upserted, its info widened and completed (times unless the
    /// info is final, the state while it is in progress, previews where it has none), its tags and metadata written.
    func logSpans(experimentID: Int64, artifactLocation: @Sendable (String) -> String, _ traces: [SpanTraceWrite]) throws
    /// The spans of traces, each trace's roots first, then by start time; a trace with none is left out.
    func spans(traceIDs: [String]) throws -> [String: [StoredSpan]]
    /// Stores spans of an existing trace (an import) and marks it as keeping them here, in one transaction; `false`
    /// when there is no such trace.
    func insertSpans(traceID: String, _ spans: [StoredSpan]) throws -> Bool
}

/// The span table's statements, in the SQL both dialects read alike.
enum SpanSQL {
    /// SQLite's version 14 and PostgreSQL's version 13 (`text`, `integer` and `blob` are the dialect's types). The
    /// content is ``SpanContentCodec``'s form.
    static func schema(text: String, integer: String, blob: String) -> String {
        """
        CREATE TABLE spans (
            trace_id \(text) NOT NULL REFERENCES traces(trace_id) ON DELETE CASCADE, span_id \(text) NOT NULL, parent_span_id \(text),
            name \(text) NOT NULL, type \(text), status \(text) NOT NULL, start_time \(integer) NOT NULL, end_time \(integer) NOT NULL,
            content \(blob) NOT NULL, PRIMARY KEY (trace_id, span_id));
        """
    }

    /// The tables `tally metadata migrate` copies (after the traces').
    static let tables = ["spans"]

    /// Rows per multi-row statement (14 values each).
    static let spansPerStatement = 100

    static func log(_ db: some SQLConnection, experimentID: Int64, artifactLocation: (String) -> String, _ traces: [SpanTraceWrite]) throws {
        for w in traces.sorted(by: { $0.traceID < $1.traceID }) {  // rows locked in key order: two batches never deadlock
            func make() throws -> Bool {
                try db.run("""
                    INSERT INTO traces (trace_id, experiment_id, client_request_id, request_time, execution_duration, state, request_preview,
                    response_preview) VALUES (?, ?, NULL, ?, ?, ?, NULL, NULL) ON CONFLICT (trace_id) DO NOTHING
                    """, [.text(w.traceID), .integer(experimentID), .integer(w.start), w.end.map { .integer($0 - w.start) } ?? .null,
                          .text((w.rootState ?? .inProgress).rawValue)]) > 0
            }
            // A trace already there is kept from being deleted until this transaction ends (its spans reference it);
            // one deleted in between is made again. One of another experiment is refused, as `traces` (POST) refuses
            // it: an export may only write the experiment it names.
            var made = try make()
            if !made {
                let found = try db.rows("SELECT experiment_id FROM traces WHERE trace_id = ?" + db.locking(.keep), [.text(w.traceID)])
                if let owner = found.first?[0].int, owner != experimentID {
                    throw TrackingError(.resourceAlreadyExists, "Trace with ID '\(w.traceID)' already exists in another experiment.")
                }
                if found.isEmpty { made = try make() }
            }
            if made {
                try TraceSQL.upsert(db, "trace_tags", w.traceID, [KeyValue(key: TraceKeys.artifactLocation, value: artifactLocation(w.traceID))])
            }
            // One statement: every right-hand side reads the row as it was, as MLflow's CASE expressions do. A final
            // info (its client's own times) keeps its times; a trace out of progress keeps its state.
            var sets = ["request_preview = COALESCE(request_preview, ?)", "response_preview = COALESCE(response_preview, ?)"]
            var values: [SQLValue] = [.text(orNull: w.requestPreview), .text(orNull: w.responsePreview)]
            let open = "NOT EXISTS (SELECT 1 FROM trace_metadata m WHERE m.trace_id = traces.trace_id AND m.key = ?)"
            sets.append("request_time = CASE WHEN \(open) AND request_time > ? THEN ? ELSE request_time END")
            values += [.text(TraceKeys.infoFinalized), .integer(w.start), .integer(w.start)]
            if w.end == nil {  // an earlier start with no end: the trace's end stays where it was
                sets.append("execution_duration = CASE WHEN \(open) AND request_time > ? THEN execution_duration + (request_time - ?) "
                            + "ELSE execution_duration END")
                values += [.text(TraceKeys.infoFinalized), .integer(w.start), .integer(w.start)]
            }
            if let end = w.end {
                sets.append("""
                    execution_duration = CASE WHEN \(open) THEN (CASE WHEN request_time + execution_duration > ? THEN request_time + \
                    execution_duration ELSE ? END) - (CASE WHEN request_time > ? THEN ? ELSE request_time END) ELSE execution_duration END
                    """)
                values += [.text(TraceKeys.infoFinalized), .integer(end), .integer(end), .integer(w.start), .integer(w.start)]
            }
            if let state = w.rootState {
                sets.append("state = CASE WHEN state IN ('IN_PROGRESS', 'STATE_UNSPECIFIED') THEN ? ELSE state END")
                values.append(.text(state.rawValue))
            }
            // The trace's name, session and token columns, with the tags and metadata written below (TraceAnalyticsSQL).
            let written = try totals(db, w, made: made)
            for (table, entries, ifAbsent) in [("trace_tags", w.tags, false), ("trace_metadata", w.metadataIfAbsent, true), ("trace_metadata", written, false)] {
                let (columns, given) = TraceAnalyticsSQL.entryAssignments(table, entries.map { (key: $0.key, value: $0.value) }, ifAbsent: ifAbsent)
                sets += columns
                values += given
            }
            try db.run("UPDATE traces SET " + sets.joined(separator: ", ") + " WHERE trace_id = ?", values + [.text(w.traceID)])
            try upsert(db, w.spans, analytics: w.analytics)
            try TraceSQL.upsert(db, "trace_metadata", w.traceID, written, columnsWritten: true)
            try TraceSQL.upsert(db, "trace_tags", w.traceID, w.tags, columnsWritten: true)
            for m in w.metadataIfAbsent {
                try db.run("INSERT INTO trace_metadata VALUES (?, ?, ?) ON CONFLICT (trace_id, key) DO NOTHING",
                           [.text(w.traceID), .text(m.key), .text(m.value)])
            }
        }
    }

    /// A trace's token usage and cost from its spans (MLflow's `log_spans`), the metadata entries for the caller to
    /// write: for a trace made by this batch, the batch's sums; for one already there, the sums over its stored spans
    /// the batch does not replace and the batch's, written over the counts it has — unless its client finalised it
    /// with counts of its own, which stand. None when the batch has no span with usage (or cost). Read before the
    /// batch's spans are written (it reads only stored spans the batch does not replace).
    static func totals(_ db: some SQLConnection, _ w: SpanTraceWrite, made: Bool) throws -> [KeyValue] {
        guard w.batchTokens != nil || w.batchCost != nil else { return [] }
        var meta: [String: String] = [:]
        for r in try db.rows("SELECT key, value FROM trace_metadata WHERE trace_id = ? AND key IN (?, ?, ?)",
                             [.text(w.traceID), .text(TraceKeys.infoFinalized), .text(TraceKeys.tokenUsage), .text(TraceKeys.cost)]) {
            if let k = r[0].string { meta[k] = r[1].string ?? "" }
        }
        let finalized = meta[TraceKeys.infoFinalized] != nil
        var tokens = finalized && !SpanUsage.tokenColumns(meta[TraceKeys.tokenUsage]).isEmpty ? nil : w.batchTokens
        var cost = finalized && !SpanUsage.costColumns(meta[TraceKeys.cost]).isEmpty ? nil : w.batchCost
        if !made, tokens != nil || cost != nil {  // rollups may come in another batch than their children: sum the whole tree
            let batch = Set(w.spans.map(\.spanID))
            var usage: [SpanUsage.Node] = [], costs: [SpanUsage.Node] = []
            for r in try db.rows("SELECT span_id, parent_span_id, content FROM spans WHERE trace_id = ?", [.text(w.traceID)]) {
                guard let id = r[0].string, !batch.contains(id), case .blob(let stored) = r[2],
                      let content = try? SpanContentCodec.decode(stored, where: "spans (\(w.traceID), \(id))"),
                      let dict = try? JSONParser.parse(Array(content.utf8)) else { continue }  // as MLflow, a malformed span is skipped
                let attributes = dict.pythonMember("attributes") ?? .null
                usage.append(SpanUsage.Node(spanID: id, parentID: r[1].string, value: attributes.pythonMember(SpanTranslation.usageKey)))
                costs.append(SpanUsage.Node(spanID: id, parentID: r[1].string, value: attributes.pythonMember(SpanTranslation.costKey)))
            }
            if tokens != nil { tokens = try SpanUsage.tokens(w.usageNodes + usage) }
            if cost != nil { cost = try SpanUsage.cost(w.costNodes + costs) }
        }
        var written: [KeyValue] = []
        if let tokens, let text = SpanUsage.tokenText(tokens, over: meta[TraceKeys.tokenUsage]) { written.append(KeyValue(key: TraceKeys.tokenUsage, value: text)) }
        if let cost, let text = SpanUsage.costText(cost, over: meta[TraceKeys.cost]) { written.append(KeyValue(key: TraceKeys.cost, value: text)) }
        return written
    }

    /// Upserts spans, a statement per 100 (the last of an id given twice wins), with the columns trace metrics
    /// aggregate (``TraceAnalyticsSQL``): `analytics`, each span's in order (one per span), or else read from each span's
    /// content.
    static func upsert(_ db: some SQLConnection, _ all: [StoredSpan], analytics: [SpanAnalytics] = []) throws {
        var last: [String: Int] = [:]
        for (i, s) in all.enumerated() { last[s.traceID + "/" + s.spanID] = i }
        let given = analytics.count == all.count  // else read from the content
        let spans = all.indices.filter { last[all[$0].traceID + "/" + all[$0].spanID] == $0 }
            .map { (span: all[$0], analytics: given ? analytics[$0] : SpanAnalytics(all[$0].content)) }
        let updated = ["parent_span_id", "name", "type", "status", "start_time", "end_time", "content"] + TraceAnalyticsSQL.spanColumnNames
        let columns = ["trace_id", "span_id"] + updated
        for chunk in spans.chunks(of: spansPerStatement) {
            try db.run("INSERT INTO spans (\(columns.joined(separator: ", "))) VALUES "
                       + Array(repeating: "(\(sqlMarks(columns.count)))", count: chunk.count).joined(separator: ", ")
                       + " ON CONFLICT (trace_id, span_id) DO UPDATE SET " + updated.map { "\($0) = excluded.\($0)" }.joined(separator: ", "),
                       chunk.flatMap { row -> [SQLValue] in
                    let s = row.span
                    return [.text(s.traceID), .text(s.spanID), .text(orNull: s.parentSpanID), .text(s.name), .text(orNull: s.type), .text(s.status),
                            .integer(s.startTime), .integer(s.endTime), .blob(SpanContentCodec.encode(s.content))] + TraceAnalyticsSQL.spanValues(row.analytics)
                })
        }
    }

    static func insert(_ db: some SQLConnection, _ traceID: String, _ spans: [StoredSpan]) throws -> Bool {
        guard try TraceSQL.keep(db, traceID) else { return false }
        try upsert(db, spans)
        try TraceSQL.upsert(db, "trace_tags", traceID, [KeyValue(key: TraceKeys.spansLocation, value: TraceKeys.trackingStore)])
        return true
    }

    static func spans(_ db: some SQLConnection, _ ids: [String]) throws -> [String: [StoredSpan]] {
        var out: [String: [StoredSpan]] = [:]
        for chunk in Array(Set(ids)).chunks(of: TraceSQL.idsPerStatement) {
            try db.query("""
                SELECT trace_id, span_id, parent_span_id, name, type, status, start_time, end_time, content FROM spans
                WHERE trace_id IN (\(sqlMarks(chunk.count))) ORDER BY trace_id, CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END, start_time, span_id
                """, chunk.map(SQLValue.text)) { r in
                let trace = r[0].string ?? "", span = r[1].string ?? ""
                guard case .blob(let stored) = r[8] else { throw SpanContentCodec.Corrupt(description: "spans (\(trace), \(span)): content is not bytes") }
                let s = StoredSpan(traceID: trace, spanID: span, parentSpanID: r[2].string, name: r[3].string ?? "", type: r[4].string,
                                   status: r[5].string ?? "UNSET", startTime: r[6].int ?? 0, endTime: r[7].int ?? 0,
                                   content: try SpanContentCodec.decode(stored, where: "spans (\(trace), \(span))"))
                out[s.traceID, default: []].append(s)
            }
        }
        return out
    }
}

extension SQLiteMetadataStore: SpanStore {
    /// Version 14: spans sent over OTLP (``SpanSQL``).
    static let schemaVersion14 = SpanSQL.schema(text: "TEXT", integer: "INTEGER", blob: "BLOB")

    public func logSpans(experimentID: Int64, artifactLocation: @Sendable (String) -> String, _ traces: [SpanTraceWrite]) throws {
        try transaction { try with { try SpanSQL.log($0, experimentID: experimentID, artifactLocation: artifactLocation, traces) } }
    }
    public func spans(traceIDs: [String]) throws -> [String: [StoredSpan]] { try with { try SpanSQL.spans($0, traceIDs) } }
    public func insertSpans(traceID: String, _ spans: [StoredSpan]) throws -> Bool {
        try transaction { try with { try SpanSQL.insert($0, traceID, spans) } }
    }
}

extension PostgresMetadataStore: SpanStore {
    /// Version 13: spans sent over OTLP (``SpanSQL``).
    static let schemaVersion13 = SpanSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT", blob: "BYTEA")

    public func logSpans(experimentID: Int64, artifactLocation: @Sendable (String) -> String, _ traces: [SpanTraceWrite]) throws {
        try write { try SpanSQL.log($0, experimentID: experimentID, artifactLocation: artifactLocation, traces) }
    }
    public func spans(traceIDs: [String]) throws -> [String: [StoredSpan]] { try conn { try SpanSQL.spans($0, traceIDs) } }
    public func insertSpans(traceID: String, _ spans: [StoredSpan]) throws -> Bool { try write { try SpanSQL.insert($0, traceID, spans) } }
}
