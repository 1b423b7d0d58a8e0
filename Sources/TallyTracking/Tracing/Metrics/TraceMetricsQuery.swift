/// What `traces/metrics` (MLflow's `QueryTraceMetrics`) is asked: one metric of an experiment's traces, spans or
/// assessments, aggregated over groups of the dimensions named (and of time buckets), with MLflow's rules for which
/// metric takes which aggregations and dimensions (`docs/api.md`, "Trace metrics").
public struct TraceMetricsQuery: Sendable, Equatable {
    /// What is counted or measured.
    public enum View: String, Sendable, CaseIterable {
        /// Trace infos: counts, sessions, latency, token usage.
        case traces = "TRACES"
        /// Spans: counts, latency, cost.
        case spans = "SPANS"
        /// Valid assessments: counts and values.
        case assessments = "ASSESSMENTS"

        /// The protocol's enum numbers (MLflow's `MetricViewType`).
        public static let protocolNumbers: [Int64: String] = [1: "TRACES", 2: "SPANS", 3: "ASSESSMENTS"]
    }

    /// The experiments whose traces are read.
    public var experimentIDs: [String]
    /// The view.
    public var view: View
    /// The metric (`trace_count`, `latency`, `total_cost`, …).
    public var metricName: String
    /// What each group's values are (at least one).
    public var aggregations: [TraceMetricAggregation]
    /// Group by these, in this order, after the time bucket.
    public var dimensions: [String]
    /// Clauses a record must satisfy, each one `<view>.<entity>[.<key>] = '<value>'` (``TraceMetricsFilter``).
    public var filters: [String]
    /// The width of a time bucket, in seconds (`nil` or 0: no buckets).
    public var timeIntervalSeconds: Int64?
    /// The earliest time read, in milliseconds (inclusive).
    public var startTimeMs: Int64?
    /// The latest time read, in milliseconds (inclusive).
    public var endTimeMs: Int64?
    /// The most data points answered.
    public var maxResults: Int64

    /// MLflow's default and the most it answers without being asked for more.
    public static let defaultMaxResults: Int64 = 1000
    /// The most distinct experiments one query reads (Tally's bound: each is a value of one statement).
    public static let maxExperiments = 10_000

    /// A query.
    public init(experimentIDs: [String], view: View, metricName: String, aggregations: [TraceMetricAggregation], dimensions: [String] = [],
                filters: [String] = [], timeIntervalSeconds: Int64? = nil, startTimeMs: Int64? = nil, endTimeMs: Int64? = nil,
                maxResults: Int64 = TraceMetricsQuery.defaultMaxResults) {
        self.experimentIDs = experimentIDs
        self.view = view
        self.metricName = metricName
        self.aggregations = aggregations
        self.dimensions = dimensions
        self.filters = filters
        self.timeIntervalSeconds = timeIntervalSeconds
        self.startTimeMs = startTimeMs
        self.endTimeMs = endTimeMs
        self.maxResults = maxResults
    }
}

/// How a group's values are aggregated (MLflow's `MetricAggregation`).
public struct TraceMetricAggregation: Sendable, Equatable {
    /// The aggregation.
    public enum Kind: String, Sendable, CaseIterable {
        case count = "COUNT", sum = "SUM", avg = "AVG", percentile = "PERCENTILE", min = "MIN", max = "MAX"

        /// The protocol's enum numbers (MLflow's `AggregationType`).
        public static let protocolNumbers: [Int64: String] = [1: "COUNT", 2: "SUM", 3: "AVG", 4: "PERCENTILE", 5: "MIN", 6: "MAX"]
    }

    /// The aggregation.
    public let kind: Kind
    /// For ``Kind/percentile``, which one (0–100).
    public let percentile: Double?

    /// An aggregation as a request names it, with MLflow's checks. `kind` `nil` (the request named none, or a name
    /// the protocol lacks, which its parser ignores) is `COUNT`, the enum's first value and so its default.
    public init(kind name: String?, percentile: Double?) throws {
        let kind = name.flatMap(Kind.init(rawValue:)) ?? .count
        if kind == .percentile {
            guard let p = percentile else { throw TrackingError.invalid("Percentile value is required for PERCENTILE aggregation") }
            guard p >= 0 && p <= 100 else {  // NaN included, as Python's comparisons refuse it
                throw TrackingError.invalid("Percentile value must be between 0 and 100, got \(Validation.pythonFloat(p))")
            }
        } else if percentile != nil {
            throw TrackingError.invalid("Percentile value is only allowed for PERCENTILE aggregation type, got \(kind.rawValue)")
        }
        self.kind = kind
        self.percentile = percentile
    }

    /// The key of its value in a data point: the kind's name, or `P` and the percentile as Python writes a float
    /// (`P50.0`, `P99.9`).
    public var label: String {
        guard kind == .percentile, let p = percentile else { return kind.rawValue }
        return "P" + Validation.pythonFloat(p)
    }
}

/// One group's values (MLflow's `MetricDataPoint`).
public struct TraceMetricPoint: Sendable, Equatable {
    /// The metric queried.
    public var metricName: String
    /// The group: `time_bucket` (ISO 8601, UTC) first when bucketed, then each dimension's value.
    public var dimensions: [KeyValue]
    /// Each aggregation's value by its label; one whose group had no values is left out.
    public var values: [(label: String, value: Double)]

    /// A data point.
    public init(metricName: String, dimensions: [KeyValue], values: [(label: String, value: Double)]) {
        self.metricName = metricName
        self.dimensions = dimensions
        self.values = values
    }

    public static func == (a: TraceMetricPoint, b: TraceMetricPoint) -> Bool {
        a.metricName == b.metricName && a.dimensions == b.dimensions
            && a.values.map(\.label) == b.values.map(\.label) && a.values.map(\.value) == b.values.map(\.value)
    }
}

extension TraceMetricsQuery {
    /// Which aggregations and dimensions a metric takes (MLflow's `VIEW_TYPE_CONFIGS`), in MLflow's order of metrics.
    struct Rule {
        let metric: String
        let aggregations: Set<TraceMetricAggregation.Kind>
        let dimensions: Set<String>
    }

    static let measures: Set<TraceMetricAggregation.Kind> = [.sum, .avg, .min, .max, .percentile]
    static let spread: Set<TraceMetricAggregation.Kind> = [.avg, .min, .max, .percentile]
    static let models: Set<String> = ["span_model_name", "span_model_provider"]

    /// The token counts a trace's `mlflow.trace.tokenUsage` holds, each a metric of the traces view.
    static let tokenMetrics = SpanUsage.tokenKeys.filter { $0 != "cache_creation_input_tokens_above_1hr" }  // MLflow has no metric of it
    /// The costs a span's `mlflow.llm.cost` holds, each a metric of the spans view.
    static let costMetrics = SpanUsage.costKeys

    static func rules(_ view: View) -> [Rule] {
        switch view {
        case .traces:
            [Rule(metric: "trace_count", aggregations: [.count], dimensions: ["trace_name", "trace_status"]),
             Rule(metric: "session_count", aggregations: [.count], dimensions: []),
             Rule(metric: "latency", aggregations: spread, dimensions: ["trace_name"])]
                + tokenMetrics.map { Rule(metric: $0, aggregations: measures, dimensions: ["trace_name"]) }
        case .spans:
            [Rule(metric: "span_count", aggregations: [.count], dimensions: Set(["span_name", "span_type", "span_status"]).union(models)),
             Rule(metric: "latency", aggregations: spread, dimensions: ["span_name", "span_status"])]
                + costMetrics.map { Rule(metric: $0, aggregations: measures, dimensions: models) }
        case .assessments:
            [Rule(metric: "assessment_count", aggregations: [.count], dimensions: ["assessment_name", "assessment_value"]),
             Rule(metric: "assessment_value", aggregations: spread, dimensions: ["assessment_name"])]
        }
    }

    /// MLflow's checks of a query, in its order and with its messages; then the query's own numbers.
    func validate() throws {
        let rules = Self.rules(view)
        guard let rule = rules.first(where: { $0.metric == metricName }) else {
            throw TrackingError.invalid("metric_name must be one of \(PythonRepr.strings(rules.map(\.metric))), got '\(metricName)'")
        }
        let invalid = Set(aggregations.map(\.kind)).subtracting(rule.aggregations)
        if !invalid.isEmpty {
            throw TrackingError.invalid("Found invalid aggregation_type(s): \(PythonRepr.strings(invalid.map(\.rawValue).sorted())). "
                + "Supported aggregation types: \(PythonRepr.strings(rule.aggregations.map(\.rawValue).sorted()))")
        }
        let badDimensions = Set(dimensions).subtracting(rule.dimensions)
        if !badDimensions.isEmpty {
            throw TrackingError.invalid("Found invalid dimension(s): \(PythonRepr.strings(badDimensions.sorted())). "
                + "Supported dimensions: \(PythonRepr.strings(rule.dimensions.sorted()))")
        }
        if let interval = timeIntervalSeconds, interval != 0, startTimeMs == nil || endTimeMs == nil {
            throw TrackingError.invalid("start_time_ms and end_time_ms are required if time_interval_seconds is set")
        }
        // MLflow answers these with a database's error or nonsense; Tally refuses them.
        if let interval = timeIntervalSeconds, interval < 0 {
            throw TrackingError.invalid("Invalid value \(interval) for parameter 'time_interval_seconds' supplied: it must be a positive number of seconds")
        }
        if let interval = timeIntervalSeconds, interval > Int64.max / 1_000_000_000 {
            throw TrackingError.invalid("Invalid value \(interval) for parameter 'time_interval_seconds' supplied: it must be at most \(Int64.max / 1_000_000_000)")
        }
        if maxResults < 0 {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied: it must not be negative")
        }
    }
}
