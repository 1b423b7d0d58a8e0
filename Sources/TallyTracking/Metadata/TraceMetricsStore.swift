/// Where `traces/metrics` aggregates: both metadata stores, with the same SQL (``TraceMetricsSQL``). The store
/// selects (experiments, time range, filter clauses), groups (time bucket, dimensions) and aggregates in one statement
/// over the columns MLflow aggregates too (``TraceAnalyticsSQL``), so no row leaves the database; the service orders
/// the groups and renders them (``TraceMetricsRenderer``).
public protocol TraceMetricsStore {
    /// The groups a selection makes, each with its aggregations' values, in no particular order.
    func traceMetricGroups(_ selection: TraceMetricsSelection) throws -> [TraceMetricsGroup]
}

/// What a `traces/metrics` query reads and how it groups it (made by ``TrackingService/queryTraceMetrics(_:)``).
public struct TraceMetricsSelection: Sendable {
    /// The query: its view, metric, aggregations and dimensions.
    let query: TraceMetricsQuery
    /// The experiments read.
    let experimentIDs: [Int64]
    /// Every clause must hold.
    let filters: [TraceMetricsFilter]
    /// The range of the trace's request time, in milliseconds, inclusive (`nil`: unbounded on that side).
    let traceTime: (start: Int64?, end: Int64?)
    /// The range of a span's start, in nanoseconds (`start` inclusive, `end` exclusive); `empty` when a bound lies
    /// beyond 64 bits (MLflow's constant false).
    let spanTime: (start: Int64?, end: Int64?, empty: Bool)
    /// The width of a time bucket in milliseconds (`nil`: no buckets).
    let bucketMs: Int64?
}

/// One group of a selection: its time bucket's start (milliseconds), its dimensions' values (as stored: an
/// assessment's value is its JSON text, `nil` when it has none) and each aggregation's value (`nil`: SQL's NULL, a
/// group without values).
public struct TraceMetricsGroup: Sendable, Equatable {
    /// The bucket's start, in milliseconds (`nil`: no buckets).
    public var bucket: Int64?
    /// Each dimension's value, in the query's order.
    public var dimensions: [String?]
    /// Each aggregation's value, in the query's order.
    public var values: [Double?]
}

/// The statement of ``TraceMetricsStore``, in the SQL both dialects read alike (the percentile aside:
/// ``SQLConnection/percentile(_:)`` and ``SQLConnection/total(_:mean:)``).
enum TraceMetricsSQL {
    static func groups(_ db: some SQLConnection, _ s: TraceMetricsSelection) throws -> [TraceMetricsGroup] {
        guard let (sql, values, grouped) = try statement(db, s) else { return [] }
        let bucketed = s.bucketMs != nil
        return try db.rows(sql, values).map { r in
            let dims = r[(bucketed ? 1 : 0)..<grouped].map(\.string)
            // A sum or mean PostgreSQL computed as NUMERIC arrives as its text (past a double's range: infinite).
            let values = r[grouped...].map { $0.double ?? $0.string.flatMap(Double.init) }
            return TraceMetricsGroup(bucket: bucketed ? r[0].int : nil, dimensions: Array(dims), values: values)
        }
    }

    /// The statement, its values, and how many of its columns are the group's (the bucket, then the dimensions);
    /// `nil` when nothing can be selected.
    static func statement(_ db: some SQLConnection, _ s: TraceMetricsSelection) throws -> (sql: String, values: [SQLValue], grouped: Int)? {
        let q = s.query
        if s.spanTime.empty || s.experimentIDs.isEmpty { return nil }
        let from: String, time: String
        switch q.view {
        case .traces: (from, time) = ("traces t", "t.request_time")
        case .spans: (from, time) = ("spans sp JOIN traces t ON t.trace_id = sp.trace_id", "(sp.start_time / 1000000)")
        case .assessments: (from, time) = ("assessments a JOIN traces t ON t.trace_id = a.trace_id", "t.request_time")
        }
        // Every number a request gives is a value, not text of the statement: one prepared statement per query shape.
        var conditions: [String] = [], values: [SQLValue] = [], selected: [SQLValue] = []
        let value = metric(q)
        if let value { conditions.append("\(value) IS NOT NULL") }
        var columns: [String] = []
        if let ms = s.bucketMs {
            columns.append("(\(time) / ? - CASE WHEN \(time) % ? < 0 THEN 1 ELSE 0 END) * ?")
            selected += [.integer(ms), .integer(ms), .integer(ms)]
            conditions.append("\(time) >= ?")  // a bucket below 64 bits is no time
            values.append(.integer(Int64.min + ms))
        }
        for d in q.dimensions {
            guard let column = dimensionColumns[d] else {
                throw TrackingError(.internalError, "no column for the dimension '\(d)'")  // the query's rules name only these
            }
            if d != "assessment_value" { conditions.append("\(column) IS NOT NULL") }  // an assessment without a value is `null`
            columns.append(column)
        }
        let grouped = columns.count
        for a in q.aggregations {
            columns.append(aggregate(a, value, distinct: q.metricName == "session_count", db))
            if a.kind == .percentile, value != nil { selected.append(.real((a.percentile ?? 50) / 100)) }
        }
        let experiments = Set(s.experimentIDs).sorted()
        conditions.append("t.experiment_id IN (\(sqlMarks(experiments.count)))")
        values += experiments.map(SQLValue.integer)
        if q.view == .assessments { conditions.append("a.valid = 1") }
        if let start = s.traceTime.start { conditions.append("t.request_time >= ?"); values.append(.integer(start)) }
        if let end = s.traceTime.end { conditions.append("t.request_time <= ?"); values.append(.integer(end)) }
        if let start = s.spanTime.start { conditions.append("sp.start_time >= ?"); values.append(.integer(start)) }
        if let end = s.spanTime.end { conditions.append("sp.start_time < ?"); values.append(.integer(end)) }
        for f in s.filters {
            let (condition, given) = clause(f)
            conditions.append(condition)
            values += given
        }
        var sql = "SELECT " + columns.joined(separator: ", ") + " FROM " + from + " WHERE " + conditions.joined(separator: " AND ")
        if grouped > 0 { sql += " GROUP BY " + (1...grouped).map(String.init).joined(separator: ", ") }
        return (sql, selected + values, grouped)
    }

    /// The column a query's metric reads (`nil`: the metric counts rows).
    static func metric(_ q: TraceMetricsQuery) -> String? {
        switch (q.view, q.metricName) {
        case (.traces, "trace_count"), (.spans, "span_count"), (.assessments, "assessment_count"): return nil
        case (.traces, "session_count"): return "t.session_id"
        case (.traces, "latency"): return "t.execution_duration"
        case (.traces, let tokens): return "t." + tokens  // one of TraceAnalyticsSQL.tokenColumns (checked by the query's rules)
        case (.spans, "latency"):
            // Whole milliseconds, truncated; a difference beyond 64 bits is none.
            return """
                (CASE WHEN (sp.start_time < 0 AND sp.end_time > \(Int64.max) + sp.start_time) \
                OR (sp.start_time > 0 AND sp.end_time < sp.start_time - \(Int64.max) - 1) THEN NULL \
                ELSE (sp.end_time - sp.start_time) / 1000000 END)
                """
        case (.spans, let cost): return "sp." + cost  // one of TraceAnalyticsSQL.costColumns
        case (.assessments, _): return "a.aggregate_value"
        }
    }

    /// The columns of the dimensions.
    static let dimensionColumns = [
        "trace_name": "t.trace_name", "trace_status": "t.state", "span_name": "sp.name", "span_type": "sp.type", "span_status": "sp.status",
        "span_model_name": "sp.model_name", "span_model_provider": "sp.model_provider", "assessment_name": "a.name", "assessment_value": "a.value",
    ]

    /// One aggregation of the metric's column (`nil`: rows counted); a percentile takes its fraction as a value.
    static func aggregate(_ a: TraceMetricAggregation, _ value: String?, distinct: Bool, _ db: some SQLConnection) -> String {
        guard let value else { return "COUNT(*)" }
        switch a.kind {
        case .count: return distinct ? "COUNT(DISTINCT \(value))" : "COUNT(\(value))"
        case .sum: return db.total(value, mean: false)
        case .avg: return db.total(value, mean: true)
        case .min: return "MIN(\(value))"
        case .max: return "MAX(\(value))"
        case .percentile: return db.percentile(value)
        }
    }

    /// A filter clause as a condition on the rows of `t` (traces), `sp` (spans) or `a` (assessments).
    static func clause(_ f: TraceMetricsFilter) -> (String, [SQLValue]) {
        let v = SQLValue.text(f.value)
        switch f.target {
        case .traceStatus: return ("t.state = ?", [v])
        case .traceTag(let key): return TraceSQL.entry("trace_tags", key, f.value)
        case .traceMetadata(let key):
            let (entry, given) = TraceSQL.entry("trace_metadata", key, f.value)
            guard key == TraceKeys.sourceRun else { return (entry, given) }
            // A trace linked to the run afterwards (`traces/link-to-run`) counts as one made in it, as in MLflow.
            return ("(\(entry) OR EXISTS (SELECT 1 FROM trace_runs l WHERE l.trace_id = t.trace_id AND l.run_id = ?))", given + [v])
        case .spanName: return ("sp.name = ?", [v])
        case .spanStatus: return ("sp.status = ?", [v])
        case .spanType: return ("sp.type = ?", [v])
        case .assessmentName: return ("a.name = ?", [v])
        case .assessmentType: return ("a.kind = ?", [v])
        }
    }
}

extension SQLiteMetadataStore: TraceMetricsStore {
    public func traceMetricGroups(_ selection: TraceMetricsSelection) throws -> [TraceMetricsGroup] {
        try with { try TraceMetricsSQL.groups($0, selection) }
    }
}

extension PostgresMetadataStore: TraceMetricsStore {
    /// In a transaction that plans without `Materialize` nodes: on tables PostgreSQL has not analysed yet (a new
    /// database after an ingest, until autovacuum's first `ANALYZE`) it guessed a few dozen spans and planned a nested
    /// loop comparing every span with every trace, materialised (4 s for 25,000 spans; 20 ms as a hash join). Plans
    /// that read spans through an index, or hash them, need no such node.
    public func traceMetricGroups(_ selection: TraceMetricsSelection) throws -> [TraceMetricsGroup] {
        try planned { try TraceMetricsSQL.groups($0, selection) }
    }

    /// The plan PostgreSQL makes for a selection's statement (`EXPLAIN`'s lines), in the transaction it runs in.
    func traceMetricsPlan(_ selection: TraceMetricsSelection) throws -> [String] {
        try planned { c in
            guard let (sql, values, _) = try TraceMetricsSQL.statement(c, selection) else { return [] }
            return try c.rows("EXPLAIN " + sql, values).compactMap { $0.first?.string }
        }
    }

    private func planned<R>(_ body: (PostgresDatabase.Connection) throws -> R) throws -> R {
        try write { c in
            try c.execute("SET LOCAL enable_material = off")
            return try body(c)
        }
    }
}
