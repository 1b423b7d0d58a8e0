import Foundation
@testable import TallyStore
import Testing
@testable import TallyTracking

private func a(_ key: String, _ value: OTLPValue) -> OTLPAttribute { OTLPAttribute(key: key, value: value) }

/// `traces/metrics`: MLflow's rules, its filter language, and the aggregation over each backend's records. The
/// answers are compared with a real `mlflow server` in `Tests/Interop/test_trace_metrics.py`.
@Suite struct TraceMetricsTests {
    static let count = try! TraceMetricAggregation(kind: "COUNT", percentile: nil)
    static func p(_ v: Double) -> TraceMetricAggregation { try! TraceMetricAggregation(kind: "PERCENTILE", percentile: v) }

    /// Each aggregation in each dialect's SQL (SQLite's percentile is Tally's own aggregate): four traces' latencies,
    /// token counts (one trace without usage, left out of the token metrics) and sessions.
    @Test(arguments: Backend.all) func aggregationsAsMLflowComputesThem(_ backend: Backend) throws {
        let f = try Fixture("trace-metrics-sql", backend: backend)
        for (n, ms) in [10, 40, 20, 30].enumerated() {
            var metadata = [KeyValue(key: TraceKeys.session, value: n % 2 == 0 ? "a" : "b")]
            if n < 3 { metadata.append(KeyValue(key: TraceKeys.tokenUsage, value: #"{"input_tokens": \#(n + 1), "total_tokens": \#(Int64(1) << 60)}"#)) }
            _ = try f.service.startTrace(TraceTests.trace(n + 1, duration: Int64(ms), metadata: metadata))
        }
        func one(_ metric: String, _ kind: String, _ p: Double? = nil) throws -> Double? {
            let q = TraceMetricsQuery(experimentIDs: ["0"], view: .traces, metricName: metric,
                                      aggregations: [try TraceMetricAggregation(kind: kind, percentile: p)])
            return try f.service.queryTraceMetrics(q).first?.values.first?.value
        }
        #expect(try one("latency", "AVG") == 25 && one("latency", "MIN") == 10 && one("latency", "MAX") == 40)
        #expect(try one("latency", "PERCENTILE", 50) == 25 && one("latency", "PERCENTILE", 0) == 10 && one("latency", "PERCENTILE", 100) == 40)
        #expect(abs(try one("latency", "PERCENTILE", 90)! - 37) < 1e-12)  // numpy's linear: 30 + 0.7 * 10
        #expect(try one("input_tokens", "SUM") == 6 && one("input_tokens", "AVG") == 2)
        #expect(try one("total_tokens", "SUM") == Double(3 << 60 as Int64))  // past 64 bits' reach when summed exactly: a double
        #expect(try one("session_count", "COUNT") == 2)  // sessions: distinct
        #expect(try one("trace_count", "COUNT") == 4)
        // Nothing selected: a count of 0, no percentile.
        #expect(try f.service.queryTraceMetrics(TraceMetricsQuery(experimentIDs: [], view: .traces, metricName: "trace_count", aggregations: [Self.count]))
                .map { $0.values.map(\.value) } == [[0]])
        #expect(try f.service.queryTraceMetrics(TraceMetricsQuery(experimentIDs: ["0"], view: .traces, metricName: "latency", aggregations: [Self.p(50)],
                                                                  filters: ["trace.status = 'ERROR'"])).isEmpty)
        #expect(Self.p(99.9).label == "P99.9" && Self.p(50).label == "P50.0" && Self.count.label == "COUNT")
        // The experiments are values of one statement: more than its bound is refused, as many repeated are one.
        let many = (0...TraceMetricsQuery.maxExperiments).map(String.init)
        expectError(.invalidParameterValue, "At most 10000 experiments") {
            _ = try f.service.queryTraceMetrics(TraceMetricsQuery(experimentIDs: many, view: .traces, metricName: "trace_count", aggregations: [Self.count]))
        }
        #expect(try f.service.queryTraceMetrics(TraceMetricsQuery(experimentIDs: Array(repeating: "0", count: 20_000), view: .traces,
                                                                  metricName: "trace_count", aggregations: [Self.count])).map { $0.values.map(\.value) } == [[4]])
    }

    /// A sum past a double's range is infinite on both backends (PostgreSQL's own sum of doubles fails instead).
    @Test(arguments: Backend.all) func sumsPastADoublesRange(_ backend: Backend) throws {
        let f = try Fixture("trace-metrics-huge", backend: backend)
        let cost = a("mlflow.llm.cost", .string(#"{"total_cost": 1e308}"#))
        try f.service.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [
            SpanTests.span("0000000000000001", name: "a", start: 1, end: 2, attributes: [cost]),
            SpanTests.span("0000000000000002", name: "b", start: 1, end: 2, attributes: [cost]),
        ])])
        let q = TraceMetricsQuery(experimentIDs: ["0"], view: .spans, metricName: "total_cost",
                                  aggregations: [try TraceMetricAggregation(kind: "SUM", percentile: nil), try TraceMetricAggregation(kind: "MAX", percentile: nil)])
        #expect(try f.service.queryTraceMetrics(q).first?.values.map(\.value) == [.infinity, 1e308])
    }

    /// The one interpolation both dialects compute (PostgreSQL's `percentile_cont`, SQLite's `tally_percentile`).
    @Test func percentileInterpolatesLinearly() {
        #expect(TraceMetricsRenderer.percentile([10, 20, 30, 40], fraction: 0.5) == 25)
        #expect(TraceMetricsRenderer.percentile([7], fraction: 0.99) == 7)
        #expect(abs(TraceMetricsRenderer.percentile([10, 20, 30, 40], fraction: 0.9) - 37) < 1e-12)
    }

    @Test func spanModelAndCostSkimmedFromTheTopLevelAttributes() {
        // Events and links carry attributes too, and values may hold the key's text: only the span's own count.
        let content = #"{"name": "x \"mlflow.llm.model\": \"no\"", "events": [{"attributes": {"mlflow.llm.model": "\"event\""}}], "#
            + #""attributes": {"mlflow.llm.model": "\"first\"", "other": {"a": ["]", "}"]}, "mlflow.llm.\u006dodel": "\"gpt-4o\"", "#
            + #""mlflow.llm.provider": "openai", "mlflow.llm.cost": "{\"input_cost\": 1e-3, \"total_cost\": \"0.5\", \"output_cost\": true}"}, "#
            + #""links": [{"attributes": {"mlflow.llm.provider": "\"link\""}}]}"#
        let a = SpanAnalytics(content)
        #expect(a.model == "gpt-4o" && a.provider == "openai")  // the last of a key given twice; a text not JSON kept as it is
        #expect(a.cost("input_cost") == 0.001 && a.cost("total_cost") == 0.5 && a.cost("output_cost") == nil)
        #expect(SpanAnalytics(#"{"attributes": {"mlflow.llm.model": "\"#).model == nil)  // cut short: nothing
        #expect(SpanAnalytics(#"{"attributes": {"mlflow.llm.model": "\"\#(String(repeating: "é", count: 600))\""}}"#).model?.count == 500)
    }

    /// A span being logged takes its analytics from its translated attributes, a stored one from its content: the
    /// same values, whatever the convention, the escapes, or a cost that is no object.
    @Test func analyticsFromAttributesAsFromTheContent() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"models": {"m": {"pricing": {"input_per_million_tokens": 2, "output_per_million_tokens": 8}}}}"#.utf8)
            .write(to: dir.appendingPathComponent("acme.json"))
        let prices = try ModelPrices(directory: dir)
        let cases: [[OTLPAttribute]] = [
            [],
            [a("gen_ai.request.model", .string("acme/m")), a("gen_ai.usage.input_tokens", .int(1_000)), a("gen_ai.usage.output_tokens", .int(20))],
            [a("openinference.span.kind", .string("LLM")), a("llm.model_name", .string("m")), a("llm.provider", .string("acme")),
             a("llm.token_count.prompt", .int(7)), a("llm.token_count.completion", .int(3))],
            [a("mlflow.llm.model", .string(#""caf\u00e9 \"q\"""#)), a("mlflow.llm.provider", .string("plain text")),
             a("mlflow.llm.cost", .string(#"{"input_cost": 1, "total_cost": "2", "output_cost": 1e400}"#))],
            [a("mlflow.llm.model", .string(String(repeating: "é", count: 600))), a("mlflow.llm.cost", .string("[1, 2]"))],
            [a("mlflow.llm.model", .int(5)), a("mlflow.llm.cost", .string("not json"))],
        ]
        for (n, attributes) in cases.enumerated() {
            let c = try ConvertedSpan(SpanTests.span("00000000000000a\(n)", name: "s", start: 1, end: 2, attributes: attributes), resource: [], prices: prices)
            let logged = SpanAnalytics(attributes: c.attributes), stored = SpanAnalytics(c.stored.content)
            #expect(logged == stored, "case \(n): \(logged) against \(stored)")
        }
        let priced = try ConvertedSpan(SpanTests.span("00000000000000b1", name: "s", start: 1, end: 2, attributes: cases[1]), resource: [], prices: prices)
        #expect(SpanAnalytics(attributes: priced.attributes).cost("total_cost") == 0.00216 && SpanAnalytics(priced.stored.content).model == "acme/m")
    }

    @Test func bucketsAndTimesAsPythonWritesThem() {
        #expect(TraceMetricsRenderer.isoTime(1_767_225_600_000) == "2026-01-01T00:00:00+00:00")
        #expect(TraceMetricsRenderer.isoTime(951_782_400_000) == "2000-02-29T00:00:00+00:00")
        #expect(TraceMetricsRenderer.isoTime(-1000) == "1969-12-31T23:59:59+00:00")
        #expect(TraceMetricsRenderer.isoTime(1500) == "1970-01-01T00:00:01.500000+00:00")
        #expect(CivilDate.floorDiv(-1, 3600) == -1 && CivilDate.floorDiv(7199, 3600) == 1)
    }

    @Test func queriesCheckedWithMLflowsMessages() throws {
        func query(_ view: TraceMetricsQuery.View, _ metric: String, _ aggs: [TraceMetricAggregation], dims: [String] = [],
                   interval: Int64? = nil) -> TraceMetricsQuery {
            TraceMetricsQuery(experimentIDs: ["0"], view: view, metricName: metric, aggregations: aggs, dimensions: dims, timeIntervalSeconds: interval)
        }
        #expect(throws: TrackingError.invalid("metric_name must be one of ['span_count', 'latency', 'input_cost', 'output_cost', 'total_cost'], got 'x'")) {
            try query(.spans, "x", [Self.count]).validate()
        }
        #expect(throws: TrackingError.invalid("Found invalid aggregation_type(s): ['COUNT']. Supported aggregation types: ['AVG', 'MAX', 'MIN', 'PERCENTILE']")) {
            try query(.traces, "latency", [Self.count]).validate()
        }
        #expect(throws: TrackingError.invalid("Found invalid dimension(s): ['span_name']. Supported dimensions: ['trace_name', 'trace_status']")) {
            try query(.traces, "trace_count", [Self.count], dims: ["span_name"]).validate()
        }
        #expect(throws: TrackingError.invalid("start_time_ms and end_time_ms are required if time_interval_seconds is set")) {
            try query(.traces, "trace_count", [Self.count], interval: 60).validate()
        }
        #expect(throws: TrackingError.invalid("Percentile value must be between 0 and 100, got nan")) {
            try TraceMetricAggregation(kind: "PERCENTILE", percentile: .nan)
        }
        #expect(try TraceMetricAggregation(kind: nil, percentile: nil).kind == .count)  // protobuf's default
        try query(.assessments, "assessment_value", [Self.p(50)], dims: ["assessment_name"]).validate()
    }

    @Test func filtersParsedAsMLflowParsesThem() throws {
        #expect(try TraceMetricsFilter(parsing: "trace.tag.mlflow.traceName = 'chat'") == TraceMetricsFilter(target: .traceTag("mlflow.traceName"), value: "chat"))
        #expect(try TraceMetricsFilter(parsing: "trace.metadata.`a.b` = \"v\"") == TraceMetricsFilter(target: .traceMetadata("a.b"), value: "v"))
        #expect(try TraceMetricsFilter(parsing: "span.type='LLM'").target == .spanType)
        let refusals: [(String, String)] = [
            ("trace.status != 'OK'", "Invalid comparator: '!=', only '=' operator is supported"),
            ("trace.status = 5", "Expected a quoted string value for status value (e.g. 'my-value'). Got value 5"),
            ("trace.tag = 'x'", "Filtering by tag requires a key, e.g. 'trace.tag.<key> = <value>'"),
            ("span.name.x = 'x'", "Filtering by name does not require a key, use 'span.name' instead"),
            ("run.status = 'OK'", "Invalid view type 'run'. Valid values are dict_keys(['trace', 'span', 'assessment'])"),
            ("trace.name = 'x'", "Invalid entity 'name' specified for view type 'trace'. Valid entities are ['status', 'tag', 'metadata']"),
            ("status = 'OK'", "Invalid identifier 'status'. Columns should be specified as 'trace.<key>', 'span.<key>', 'assessment.<key>'."),
            ("trace.status = 'a' AND span.name = 'b'", "Invalid clause(s) in filter string: AND"),
        ]
        for (text, message) in refusals {
            #expect(throws: TrackingError.invalid(message), "\(text)") { try TraceMetricsFilter(parsing: text) }
        }
        #expect(throws: TrackingError.invalid("Filtering by span is only supported for SPANS view type, got TRACES")) {
            try TraceMetricsFilter(parsing: "span.name = 'x'").check(.traces)
        }
    }

    /// Two traces an hour apart, each a root and a priced chat span, one failed; feedback on both.
    @Test(arguments: Backend.all) func metricsOverEachBackend(_ backend: Backend) throws {
        let f = try Fixture("trace-metrics", backend: backend)
        let s = f.service
        let hour: UInt64 = 3_600_000_000_000, base: UInt64 = 1_767_225_600_000_000_000
        for (i, hex) in ["11111111111111111111111111111111", "22222222222222222222222222222222"].enumerated() {
            let start = base + UInt64(i) * hour, trace = SpanTests.bytes(hex)
            let cost = a("mlflow.llm.cost", .string(#"{"input_cost": \#(i + 1), "output_cost": 0.5, "total_cost": \#(Double(i) + 1.5)}"#))
            try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [
                SpanTests.span("000000000000000\(i + 1)", name: i == 0 ? "chat" : "search", start: start, end: start + UInt64(100 + i * 100) * 1_000_000,
                               status: i == 1 ? 2 : 1, attributes: [a("session.id", .string("s"))]
                                   + (i == 0 ? [a("mlflow.traceTag.mlflow.traceName", .string("chat"))] : []), trace: trace),
                SpanTests.span("00000000000000a\(i + 1)", parent: "000000000000000\(i + 1)", name: "llm", start: start + 1_000_000,
                               end: start + 51_000_000, attributes: [a("mlflow.llm.model", .string("\"m\(i)\"")), cost,
                                                                     a("mlflow.chat.tokenUsage", .string(#"{"input_tokens": \#(10 * (i + 1))}"#))], trace: trace),
            ])])
            let id = "tr-" + hex
            if i == 1 { try s.setTraceTag(id: id, key: TraceKeys.traceName, value: "search") }  // the first's from its root span
            _ = try s.createAssessment(Assessment(id: "", traceID: id, name: "ok", kind: .feedback, createTime: 0, lastUpdateTime: 0,
                                                  value: i == 0 ? "true" : "\"no\"", body: "{}"), kind: .feedback)
        }
        func ask(_ view: TraceMetricsQuery.View, _ metric: String, _ aggs: [TraceMetricAggregation], dims: [String] = [], filters: [String] = [],
                 interval: Int64? = nil) throws -> [TraceMetricPoint] {
            try s.queryTraceMetrics(TraceMetricsQuery(experimentIDs: ["0"], view: view, metricName: metric, aggregations: aggs, dimensions: dims,
                                                      filters: filters, timeIntervalSeconds: interval, startTimeMs: 1_767_225_600_000,
                                                      endTimeMs: 1_767_232_800_000))
        }
        let sum = try TraceMetricAggregation(kind: "SUM", percentile: nil), avg = try TraceMetricAggregation(kind: "AVG", percentile: nil)
        func point(_ metric: String, _ dims: [(String, String)], _ values: [(String, Double)]) -> TraceMetricPoint {
            TraceMetricPoint(metricName: metric, dimensions: dims.map { KeyValue(key: $0.0, value: $0.1) }, values: values.map { (label: $0.0, value: $0.1) })
        }
        #expect(try ask(.traces, "trace_count", [Self.count], dims: ["trace_status"], interval: 3600) == [
            point("trace_count", [("time_bucket", "2026-01-01T00:00:00+00:00"), ("trace_status", "OK")], [("COUNT", 1)]),
            point("trace_count", [("time_bucket", "2026-01-01T01:00:00+00:00"), ("trace_status", "ERROR")], [("COUNT", 1)]),
        ])
        #expect(try ask(.traces, "latency", [avg, Self.p(50)]) == [point("latency", [], [("AVG", 150), ("P50.0", 150)])])
        let tokens = try ask(.traces, "input_tokens", [sum], dims: ["trace_name"])
        #expect(tokens == [
            point("input_tokens", [("trace_name", "chat")], [("SUM", 10)]), point("input_tokens", [("trace_name", "search")], [("SUM", 20)]),
        ], "\(tokens)")
        #expect(try ask(.traces, "session_count", [Self.count]) == [point("session_count", [], [("COUNT", 1)])])
        #expect(try ask(.spans, "total_cost", [sum], dims: ["span_model_name"]) == [
            point("total_cost", [("span_model_name", "m0")], [("SUM", 1.5)]), point("total_cost", [("span_model_name", "m1")], [("SUM", 2.5)]),
        ])
        #expect(try ask(.spans, "span_count", [Self.count], filters: ["span.name = 'llm'", "trace.status = 'ERROR'"]) == [point("span_count", [], [("COUNT", 1)])])
        #expect(try ask(.spans, "latency", [avg], dims: ["span_name"]) == [
            point("latency", [("span_name", "chat")], [("AVG", 100)]), point("latency", [("span_name", "llm")], [("AVG", 50)]),
            point("latency", [("span_name", "search")], [("AVG", 200)]),
        ])
        #expect(try ask(.assessments, "assessment_value", [avg], dims: ["assessment_name"]) == [point("assessment_value", [("assessment_name", "ok")], [("AVG", 0.5)])])
        #expect(try ask(.assessments, "assessment_count", [Self.count], filters: ["trace.tag.mlflow.traceName = 'search'"], ) == [
            point("assessment_count", [], [("COUNT", 1)]),
        ])
        #expect(try ask(.traces, "latency", [avg], filters: ["trace.status = 'IN_PROGRESS'"]).isEmpty)
        // The trace's name column follows its tag: renamed, then removed.
        try s.setTraceTag(id: "tr-22222222222222222222222222222222", key: TraceKeys.traceName, value: "chat")
        #expect(try ask(.traces, "trace_count", [Self.count], dims: ["trace_name"]) == [point("trace_count", [("trace_name", "chat")], [("COUNT", 2)])])
        try s.deleteTraceTag(id: "tr-11111111111111111111111111111111", key: TraceKeys.traceName)
        #expect(try ask(.traces, "trace_count", [Self.count], dims: ["trace_name"]) == [point("trace_count", [("trace_name", "chat")], [("COUNT", 1)])])
    }
}

/// PostgreSQL's plan for a spans query on tables it has not analysed yet (a new database right after an ingest): no
/// nested loop over a materialised relation, which compared every span with every trace (4 s for 25,000 spans; the
/// store plans without `Materialize`). The rows are written by SQL, the traces rewritten as an ingest rewrites them: on
/// fewer rows, or traces never rewritten, PostgreSQL 15 plans well without the store's setting; on these it did not.
@Suite struct TraceMetricsPlanTests {
    @Test(.enabled(if: PostgresDatabaseTests.available)) func spansJoinedWithoutComparingEveryPair() throws {
        let f = try Fixture("trace-metrics-plan", backend: .postgres)
        let store = try #require(f.service.metadata as? PostgresMetadataStore)
        let start: Int64 = 1_767_225_600_000_000_000
        try store.db.withConnection { c in
            for table in ["spans", "traces"] { try c.execute("ALTER TABLE \(table) SET (autovacuum_enabled = false)") }  // never analysed
            try c.execute("""
                INSERT INTO traces (trace_id, experiment_id, request_time, state, request_preview, response_preview)
                SELECT 'tr-' || i, 0, 1767225600000 + i, 'OK', NULL, NULL FROM generate_series(1, 5000) i;
                UPDATE traces SET request_preview = 'q'; UPDATE traces SET response_preview = 'a'; UPDATE traces SET execution_duration = 1;
                INSERT INTO spans (trace_id, span_id, name, status, start_time, end_time, content, model_name, total_cost)
                SELECT 'tr-' || (i / 5 + 1), 's' || i, 'n', 'OK', \(start) + i, \(start) + i + 1000000, decode(repeat('ab', 170), 'hex'),
                'm' || (i % 3), 0.5 FROM generate_series(0, 24999) i;
                """)
        }
        let q = TraceMetricsQuery(experimentIDs: ["0"], view: .spans, metricName: "total_cost", aggregations: [try TraceMetricAggregation(kind: "SUM", percentile: nil)],
                                  dimensions: ["span_model_name"], timeIntervalSeconds: 3600, startTimeMs: 1_767_225_600_000, endTimeMs: 1_767_232_800_000)
        let selection = TraceMetricsSelection(query: q, experimentIDs: [0], filters: [], traceTime: (nil, nil),
                                              spanTime: (start, start + 7_200_001_000_000, false), bucketMs: 3_600_000)
        let plan = try store.traceMetricsPlan(selection)
        #expect(!plan.isEmpty && !plan.contains { $0.contains("Materialize") || $0.contains("Join Filter") }, "\(plan.joined(separator: "\n"))")
        #expect(try f.service.queryTraceMetrics(q).map { $0.values[0].value } == [4_167, 4_166.5, 4_166.5] as [Double])
    }
}

/// The analytics columns of rows stored before them (SQLite's version 15, PostgreSQL's 14): filled by the migration
/// from each span's content (more spans than a page; one whose content cannot be read is left without, and does not stop
/// the migration), each trace's name, session and token usage, and each assessment's value.
@Suite struct TraceAnalyticsMigrationTests {
    static let spans = TraceAnalyticsSQL.fillPage + 7

    /// A trace with usage, its spans (every third with a model, provider and cost), and two assessments.
    static func store(_ db: some SQLConnection) throws {
        try db.run("INSERT INTO traces (trace_id, experiment_id, request_time, state) VALUES ('tr-1', 0, 5, 'OK')", [])
        try db.run("INSERT INTO trace_metadata VALUES ('tr-1', ?, ?)", [.text(TraceKeys.tokenUsage), .text(#"{"input_tokens": 3, "total_tokens": 9}"#)])
        try db.run("INSERT INTO trace_metadata VALUES ('tr-1', ?, 's')", [.text(TraceKeys.session)])
        try db.run("INSERT INTO trace_tags VALUES ('tr-1', ?, 'chat')", [.text(TraceKeys.traceName)])
        for i in 0..<spans {
            let attributes = i % 3 == 0 ? #""mlflow.llm.model": "\"m\#(i)\"", "mlflow.llm.provider": "\"p\"", "mlflow.llm.cost": "{\"total_cost\": \#(i).5}""# : ""
            try db.run("INSERT INTO spans VALUES ('tr-1', ?, NULL, 'n', NULL, 'OK', 1, 2, ?)",
                       [.text(String(format: "%016x", i)), .blob(SpanContentCodec.encode(#"{"name": "n", "attributes": {\#(attributes)}}"#))])
        }
        try db.run("INSERT INTO spans VALUES ('tr-1', 'unreadable', NULL, 'n', NULL, 'OK', 1, 2, ?)", [.blob([0x01, 0x02, 0x03])])  // no codec's bytes
        for (id, value) in [("a-1", "true"), ("a-2", #""maybe""#)] {
            try db.run("INSERT INTO assessments VALUES (?, 'tr-1', 'ok', 'feedback', 0, 0, 1, NULL, ?, '{}')", [.text(id), .text(value)])
        }
    }

    static func check(_ db: some SQLConnection) throws {
        #expect(try db.rows("SELECT input_tokens, output_tokens, total_tokens, trace_name, session_id FROM traces", [])
                == [[.integer(3), .null, .integer(9), .text("chat"), .text("s")]])
        let filled = try db.rows("SELECT span_id, model_name, model_provider, total_cost, input_cost FROM spans WHERE model_name IS NOT NULL ORDER BY span_id", [])
        #expect(filled.count == (spans + 2) / 3)
        #expect(filled.last == [.text(String(format: "%016x", (spans - 1) / 3 * 3)), .text("m\((spans - 1) / 3 * 3)"), .text("p"),
                                .real(Double((spans - 1) / 3 * 3) + 0.5), .null])
        #expect(try db.rows("SELECT COUNT(*) FROM spans WHERE model_name IS NULL AND total_cost IS NULL", [])[0][0].int == Int64(spans - filled.count + 1))
        #expect(try db.rows("SELECT assessment_id, aggregate_value FROM assessments ORDER BY assessment_id", []) == [[.text("a-1"), .real(1)], [.text("a-2"), .null]])
    }

    @Test func sqliteVersion15FillsTheColumns() throws {
        let (dir, path) = try olderSQLiteMetadata(version: 14) { try Self.store($0) }
        defer { try? FileIO.removeTree(dir) }
        try SQLiteMetadataStore(path: path, now: 0).close()
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        try Self.check(db)
    }

    @Test(.enabled(if: PostgresDatabaseTests.available)) func postgresVersion14FillsTheColumns() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 1)
        defer { db.close() }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "a", now: 1, through: 13)
        try db.withConnection { try Self.store($0) }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "a", now: 2)
        try db.withConnection { try Self.check($0) }
    }
}
