/// Where `traces/metrics` reads its records: both metadata stores, with the same SQL (``TraceMetricsSQL``). The
/// store selects (experiments, time range, filter clauses, all in SQL); the service groups and aggregates
/// (``TraceMetricsAggregator``), so that both dialects answer alike, percentiles included.
public protocol TraceMetricsStore {
    /// The records of a view that a query's experiments, time range and filters select, in no particular order.
    func traceMetricRecords(_ selection: TraceMetricsSelection) throws -> [TraceMetricsRecord]
}

/// What a `traces/metrics` query reads (made by ``TrackingService/queryTraceMetrics(_:scope:)``).
public struct TraceMetricsSelection: Sendable {
    /// The view: trace infos, spans or valid assessments.
    let view: TraceMetricsQuery.View
    /// The experiments read.
    let experimentIDs: [Int64]
    /// Every clause must hold.
    let filters: [TraceMetricsFilter]
    /// The range of the trace's request time, in milliseconds, inclusive (`nil`: unbounded on that side).
    let traceTime: (start: Int64?, end: Int64?)
    /// The range of a span's start, in nanoseconds (`start` inclusive, `end` exclusive); `empty` when a bound lies
    /// beyond 64 bits (MLflow's constant false).
    let spanTime: (start: Int64?, end: Int64?, empty: Bool)
    /// Whether a span's content is read (its model, provider and cost).
    let content: Bool
    /// Which of a trace's name, session and token usage are read (each a lookup per trace).
    let traceName: Bool, session: Bool, usage: Bool
}

/// One record of a view, the columns the metrics read (`nil` where the view has none).
public struct TraceMetricsRecord: Sendable {
    /// Milliseconds: the trace's request time (traces, assessments) or the span's start (spans, truncated).
    public var time: Int64
    /// The trace's name, the span's or the assessment's.
    public var name: String?
    /// The trace's state or the span's status code.
    public var status: String?
    /// The span's type.
    public var type: String?
    /// The trace's execution time, or the span's duration, in milliseconds.
    public var duration: Int64?
    /// The trace's session id, or the assessment's value as JSON text.
    public var text: String?
    /// The trace's token usage (`mlflow.trace.tokenUsage`).
    public var usage: String?
    /// The span's content (when asked).
    public var content: String?
}

/// The statements of ``TraceMetricsStore``, in the SQL both dialects read alike.
enum TraceMetricsSQL {
    static func records(_ db: some SQLConnection, _ s: TraceMetricsSelection) throws -> [TraceMetricsRecord] {
        if s.spanTime.empty { return [] }
        var out: [TraceMetricsRecord] = []
        for chunk in s.experimentIDs.chunks(of: TraceSQL.idsPerStatement) {
            var sql: String, values: [SQLValue]
            switch s.view {
            case .traces:
                // Only the lookups the query needs; a column not read is NULL (the record's positions stay).
                let lookups = [(s.traceName, "trace_tags", TraceKeys.traceName), (s.session, "trace_metadata", TraceKeys.session),
                               (s.usage, "trace_metadata", TraceKeys.tokenUsage)]
                sql = "SELECT t.request_time, t.execution_duration, t.state"
                var joins = ""
                values = []
                for (n, (needed, table, key)) in lookups.enumerated() {
                    guard needed else { sql += ", CAST(NULL AS TEXT)"; continue }
                    sql += ", j\(n).value"
                    joins += " LEFT JOIN \(table) j\(n) ON j\(n).trace_id = t.trace_id AND j\(n).key = ?"
                    values.append(.text(key))
                }
                sql += " FROM traces t" + joins
            case .spans:
                sql = "SELECT sp.start_time, sp.end_time, sp.name, sp.type, sp.status\(s.content ? ", sp.content" : "") FROM spans sp "
                    + "JOIN traces t ON t.trace_id = sp.trace_id"
                values = []
            case .assessments:
                sql = "SELECT t.request_time, a.name, a.value FROM assessments a JOIN traces t ON t.trace_id = a.trace_id"
                values = []
            }
            var conditions = ["t.experiment_id IN (\(sqlMarks(chunk.count)))"]
            values += chunk.map(SQLValue.integer)
            if s.view == .assessments { conditions.append("a.valid = 1") }
            if let start = s.traceTime.start { conditions.append("t.request_time >= ?"); values.append(.integer(start)) }
            if let end = s.traceTime.end { conditions.append("t.request_time <= ?"); values.append(.integer(end)) }
            if let start = s.spanTime.start { conditions.append("sp.start_time >= ?"); values.append(.integer(start)) }
            if let end = s.spanTime.end { conditions.append("sp.start_time < ?"); values.append(.integer(end)) }
            for f in s.filters {
                let (condition, given) = clause(f)
                conditions.append(condition)
                values += given
            }
            sql += " WHERE " + conditions.joined(separator: " AND ")
            try db.query(sql, values) { r in out.append(try record(s, r)) }
        }
        return out
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

    static func record(_ s: TraceMetricsSelection, _ r: [SQLValue]) throws -> TraceMetricsRecord {
        switch s.view {
        case .traces:
            return TraceMetricsRecord(time: r[0].int ?? 0, name: r[3].string, status: r[2].string, duration: r[1].int, text: r[4].string,
                                      usage: r[5].string)
        case .spans:
            let start = r[0].int ?? 0, end = r[1].int ?? 0
            var content: String?
            if s.content {
                guard case .blob(let stored) = r[5] else { throw SpanContentCodec.Corrupt(description: "spans: content is not bytes") }
                content = try SpanContentCodec.decode(stored, where: "spans (\(r[2].string ?? ""))")
            }
            let (duration, overflow) = end.subtractingReportingOverflow(start)
            return TraceMetricsRecord(time: start / 1_000_000, name: r[2].string, status: r[4].string, type: r[3].string,
                                      duration: overflow ? nil : duration / 1_000_000, content: content)
        case .assessments:
            return TraceMetricsRecord(time: r[0].int ?? 0, name: r[1].string, text: r[2].string)
        }
    }
}

extension SQLiteMetadataStore: TraceMetricsStore {
    public func traceMetricRecords(_ selection: TraceMetricsSelection) throws -> [TraceMetricsRecord] {
        try with { try TraceMetricsSQL.records($0, selection) }
    }
}

extension PostgresMetadataStore: TraceMetricsStore {
    public func traceMetricRecords(_ selection: TraceMetricsSelection) throws -> [TraceMetricsRecord] {
        try conn { try TraceMetricsSQL.records($0, selection) }
    }
}
