/// What `mlflow server --expose-prometheus` counts of the requests it answers, and under which names: MLflow 3.17 sets
/// up prometheus-flask-exporter 0.23.2 with the prefix `mlflow`, its default metrics, `/health` and `/version` left
/// out, and the requests grouped by a label `mlflow_version` instead of by path. `tally server --expose-prometheus`
/// serves the same (docs/monitoring.md; Tests/Interop/test_metrics.py compares the two servers' pages).
public enum RequestMetricsRules {
    /// Requests answered, by `method` and `status` (a counter).
    public static let requestsTotal = "mlflow_http_request_total"
    /// Their durations, by `method`, `status` and ``versionLabel`` (a histogram in ``durationBucketsMillis``).
    public static let duration = "mlflow_http_request_duration_seconds"
    /// Requests that failed inside the server (500), by `method` and `status` (a counter).
    public static let exceptionsTotal = "mlflow_http_request_exceptions_total"
    /// The label that carries the server's version (what `/version` answers) on every duration.
    public static let versionLabel = "mlflow_version"
    /// The histogram's upper bounds, milliseconds (the exporter's defaults, 0.005 s to 10 s; `+Inf` comes last).
    public static let durationBucketsMillis: [Int64] = [5, 10, 25, 50, 75, 100, 250, 500, 750, 1_000, 2_500, 5_000, 7_500, 10_000]
    /// Where the page is served (without and under the static prefix).
    public static let path = "/metrics"
    /// The text format's content type.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// Methods kept as their own label value.
    public static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    /// The `method` label of a request: its method, or `other` for one outside ``methods`` (a WebDAV method, say),
    /// so that clients cannot add series without bound. MLflow labels any method as sent.
    public static func methodLabel(_ method: String) -> String {
        methods.contains(method) ? method : "other"
    }

    /// Whether the exceptions counter counts an answer: an error inside the server (500), as the exporter counts
    /// requests whose handler raised. A 503 (a database away, a pool exhausted) is backpressure, not counted.
    public static func isException(status: Int) -> Bool { status == 500 }

    /// Whether a request is counted: every one but the probes (`/health`, `/ready`, `/version`, any method) and the scrapes (GET or HEAD of
    /// ``path``; another method's 405 is counted, as MLflow counts it), with the static `prefix` or without. Empty
    /// segments do not count (`//health/`), as the router ignores them.
    public static func counts(method: String, path: Substring, prefix: String) -> Bool {
        var p = path
        while p.last == "/" { p = p.dropLast() }
        // Most requests end in none of the four names: decided without splitting.
        let last = p.lastIndex(of: "/").map { p[p.index(after: $0)...] } ?? p
        let isScrape = last == "metrics"
        guard last == "health" || last == "ready" || last == "version" || isScrape else { return true }
        if isScrape && method != "GET" && method != "HEAD" { return true }
        let segments = p.split(separator: "/"), under = prefix.split(separator: "/")
        let named = segments.count == 1 || (segments.count == under.count + 1 && segments.dropLast().elementsEqual(under))
        return !named
    }
}
