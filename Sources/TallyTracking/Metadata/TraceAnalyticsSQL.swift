/// The columns `traces/metrics` aggregates in SQL, kept beside the rows they come from, as MLflow keeps them: a span's
/// model, provider and costs (its content's attributes, ``SpanAnalytics``), a trace's name, session and token counts
/// (its `mlflow.traceName` tag, its `mlflow.trace.session` and `mlflow.trace.tokenUsage` metadata,
/// ``SpanUsage/tokenColumns(_:)``), an assessment's value as a number (``AssessmentAggregate``). Every write of those
/// sources writes them: spans in ``SpanSQL/upsert(_:_:analytics:)``, a trace's entries through ``writeEntryColumns(_:_:_:_:)``
/// (called before the entries are, so that the trace's row is locked before its entries' rows, the order a batch of
/// spans takes), assessments in their row. SQLite's version 15 and PostgreSQL's version 14 add them and fill them from
/// what is stored (``fill(_:)``). SQLite also indexes the spans' columns by trace (``spanIndex``), so that a spans
/// query reads an index in trace order instead of every span's row, content and all; PostgreSQL does not: its index
/// entries are limited to ~2.7 KB and a span's name has no limit.
enum TraceAnalyticsSQL {
    /// A trace's token columns, named as the traces view's metrics.
    static let tokenColumns = TraceMetricsQuery.tokenMetrics
    /// A span's cost columns, named as the spans view's metrics.
    static let costColumns = SpanUsage.costKeys
    /// The entries a trace's row repeats as they are: (table, key, column).
    static let entryColumns = [("trace_tags", TraceKeys.traceName, "trace_name"), ("trace_metadata", TraceKeys.session, "session_id")]

    /// The statements adding the columns (`text`, `integer` and `real` are the dialect's types).
    static func schema(text: String, integer: String, real: String) -> String {
        let columns = [("spans", "model_name", text), ("spans", "model_provider", text)] + costColumns.map { ("spans", $0, real) }
            + entryColumns.map { ("traces", $0.2, text) } + tokenColumns.map { ("traces", $0, integer) } + [("assessments", "aggregate_value", real)]
        return columns.map { "ALTER TABLE \($0.0) ADD COLUMN \($0.1) \($0.2);" }.joined(separator: "\n")
    }

    /// SQLite's covering index of the spans' columns a spans query reads, by trace.
    static let spanIndex = """
        CREATE INDEX spans_analytics ON spans (trace_id, start_time, end_time, name, status, type, model_name, model_provider, \
        \(costColumns.joined(separator: ", ")));
        """

    /// Before a trace's entries are written to `table` (tags or metadata; a `nil` value: removed), writes the trace's
    /// columns that repeat them: its name, its session, its token counts.
    static func writeEntryColumns(_ db: some SQLConnection, _ table: String, _ traceID: String, _ entries: [(key: String, value: String?)]) throws {
        let (sets, values) = entryAssignments(table, entries)
        if !sets.isEmpty { try db.run("UPDATE traces SET " + sets.joined(separator: ", ") + " WHERE trace_id = ?", values + [.text(traceID)]) }
    }

    /// ``writeEntryColumns(_:_:_:_:)`` as assignments of an `UPDATE traces`, for a statement that updates the trace
    /// anyway (a batch of spans: no round trip of its own). `ifAbsent`: the entries are written only where the trace
    /// has none of the key (its column keeps a value it has).
    static func entryAssignments(_ table: String, _ entries: [(key: String, value: String?)], ifAbsent: Bool = false) -> (sets: [String], values: [SQLValue]) {
        var sets: [String] = [], values: [SQLValue] = []
        for (t, key, column) in entryColumns where t == table {
            guard let e = entries.last(where: { $0.key == key }) else { continue }
            sets.append("\(column) = " + (ifAbsent ? "COALESCE(\(column), ?)" : "?"))
            values.append(.text(orNull: e.value))
        }
        // Token usage is only ever written over (a span batch's totals, a trace's info), never "if absent".
        if table == "trace_metadata", !ifAbsent, let usage = entries.last(where: { $0.key == TraceKeys.tokenUsage }) {
            let counts = SpanUsage.tokenColumns(usage.value)
            for key in tokenColumns {
                sets.append("\(key) = ?")
                if case .number(let n)? = counts[key], let count = Int64(n) { values.append(.integer(count)) } else { values.append(.null) }
            }
        }
        return (sets, values)
    }

    /// A span's columns, in the order of ``spanColumnNames``.
    static func spanValues(_ a: SpanAnalytics) -> [SQLValue] {
         [.text(orNull: a.model), .text(orNull: a.provider)] + costColumns.map { a.cost($0).map(SQLValue.real) ?? .null }
    }

    /// The span columns this type keeps.
    static let spanColumnNames = ["model_name", "model_provider"] + costColumns

    /// An assessment's value as a number (`nil`: it is none).
    static func aggregateValue(_ json: String?) -> SQLValue {
        json.flatMap(AssessmentAggregate.value).map(SQLValue.real) ?? .null
    }

    /// Rows a migration reads at a time.
    static let fillPage = 500

    /// Fills the columns of what is stored (the migration's step after its statements): each span's content read
    /// once, a page of spans at a time in key order (one whose content cannot be read is left without); every trace
    /// with token usage; every assessment with a value.
    static func fill(_ db: some SQLConnection) throws {
        var after: [SQLValue] = []
        while true {
            var page: [(key: [SQLValue], values: [SQLValue])] = []
            try db.query("SELECT trace_id, span_id, content FROM spans" + (after.isEmpty ? "" : " WHERE (trace_id, span_id) > (?, ?)")
                         + " ORDER BY trace_id, span_id LIMIT \(fillPage)", after) { r in
                // A span whose content cannot be read keeps its columns empty, as a span batch's totals skip it: the
                // migration does not stop a server from starting over it; reading that span still reports it.
                guard case .blob(let stored) = r[2], let content = try? SpanContentCodec.decode(stored, where: "spans") else {
                    page.append((key: [r[0], r[1]], values: []))
                    return
                }
                page.append((key: [r[0], r[1]], values: spanValues(SpanAnalytics(content))))
            }
            guard let last = page.last else { break }
            for row in page where row.values.contains(where: { $0 != .null }) {  // (an unreadable span has none)
                try db.run("UPDATE spans SET " + spanColumnNames.map { "\($0) = ?" }.joined(separator: ", ") + " WHERE trace_id = ? AND span_id = ?",
                           row.values + row.key)
            }
            after = last.key
        }
        for (table, key, column) in entryColumns {
            try db.run("UPDATE traces SET \(column) = (SELECT n.value FROM \(table) n WHERE n.trace_id = traces.trace_id AND n.key = ?)", [.text(key)])
        }
        let usage = try db.rows("SELECT trace_id, value FROM trace_metadata WHERE key = ?", [.text(TraceKeys.tokenUsage)])
        for r in usage { try writeEntryColumns(db, "trace_metadata", r[0].string ?? "", [(key: TraceKeys.tokenUsage, value: r[1].string)]) }
        let values = try db.rows("SELECT assessment_id, value FROM assessments WHERE value IS NOT NULL", [])
        for r in values {
            let v = aggregateValue(r[1].string)
            if v != .null { try db.run("UPDATE assessments SET aggregate_value = ? WHERE assessment_id = ?", [v, r[0]]) }
        }
    }
}

extension SQLiteMetadataStore {
    /// Version 15: the columns trace metrics aggregate (``TraceAnalyticsSQL``), filled, then indexed.
    static let schemaVersion15 = TraceAnalyticsSQL.schema(text: "TEXT", integer: "INTEGER", real: "REAL")
}

extension PostgresMetadataStore {
    /// Version 14: the columns trace metrics aggregate (``TraceAnalyticsSQL``).
    static let schemaVersion14 = TraceAnalyticsSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT", real: "DOUBLE PRECISION")
}
