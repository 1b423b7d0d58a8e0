import Prometheus

/// MLflow's metrics of OTLP trace ingest (`mlflow/server/otlp_metrics.py`), under its names, labels and buckets:
/// spans stored, server-side failures, and each export's duration, raw body size and span count. The two counters
/// appear when first counted, as MLflow's labelled counters do.
struct OTLPInstruments: Sendable {
    private let registry: PrometheusCollectorRegistry
    private static let otlp = [("protocol", "otlp")]
    /// `mlflow_spans_ingested_total{protocol="otlp"}`.
    private var spans: Counter {
        registry.makeCounter(descriptor: .named("mlflow_spans_ingested_total", "Total number of spans successfully ingested"), labels: Self.otlp)
    }
    /// `mlflow_trace_ingestion_server_errors_total{protocol="otlp"}`: exports the store failed to keep (not bad requests).
    private var errors: Counter {
        registry.makeCounter(descriptor: .named("mlflow_trace_ingestion_server_errors_total", "Total number of server errors during trace ingestion"),
                             labels: Self.otlp)
    }
    /// `mlflow_otlp_request_duration_seconds`, every export.
    let duration: DurationHistogram
    /// `mlflow_otlp_request_payload_bytes`: the body as sent (before decompression).
    let payload: ValueHistogram
    /// `mlflow_otlp_spans_per_request`, exports whose spans were stored.
    let perRequest: ValueHistogram

    init(_ registry: PrometheusCollectorRegistry, durationBuckets: [Duration]) {
        self.registry = registry
        duration = registry.makeDurationHistogram(descriptor: .named("mlflow_otlp_request_duration_seconds",
                                                                                       "End-to-end duration of OTLP export_traces requests"),
                                                  buckets: durationBuckets)
        payload = registry.makeValueHistogram(descriptor: .named("mlflow_otlp_request_payload_bytes",
                                                                                   "Size of raw OTLP request body (before decompression)"),
                                              buckets: [1_024, 5_120, 20_480, 102_400, 524_288, 1_048_576, 5_242_880, 10_485_760, 33_554_432])
        perRequest = registry.makeValueHistogram(descriptor: .named("mlflow_otlp_spans_per_request",
                                                                                      "Number of spans in each OTLP export request"),
                                                 buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500])
    }

    /// An export's body as sent.
    func received(bytes: Int) { payload.record(Double(bytes)) }
    /// An export's spans, stored.
    func stored(_ n: Int) {
        guard n > 0 else { return }
        spans.increment(by: Int64(n))
        perRequest.record(Double(n))
    }
    /// An export the store failed to keep.
    func failed() { errors.increment() }
    /// An export answered after `d`.
    func answered(after d: Duration) { duration.record(d) }
}
