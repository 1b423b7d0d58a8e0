import Testing
import TallyTracking

/// Which requests `--expose-prometheus` counts, and how they are labelled (MLflow's rule).
@Suite struct RequestMetricsRulesTests {
    @Test func probesAndScrapesAreLeftOutHoweverSpelt() {
        typealias R = RequestMetricsRules
        for (method, path, prefix) in [("GET", "/health", ""), ("POST", "/health", ""), ("GET", "/ready", ""), ("GET", "/mlflow/ready", "/mlflow"),
                                       ("GET", "/version", ""), ("GET", "//health/", ""),
                                       ("GET", "/metrics", ""), ("HEAD", "/metrics/", ""), ("GET", "///metrics", ""),
                                       ("GET", "/mlflow/health", "/mlflow"), ("GET", "/mlflow//version/", "/mlflow"), ("GET", "/mlflow/metrics", "/mlflow"),
                                       ("GET", "/metrics", "/mlflow"), ("GET", "/health", "/mlflow"), ("GET", "/a/b/metrics", "/a/b")] {
            #expect(!R.counts(method: method, path: Substring(path), prefix: prefix), "\(method) \(path) under '\(prefix)'")
        }
        for (method, path, prefix) in [("GET", "/api/2.0/mlflow/experiments/search", ""), ("POST", "/metrics", ""), ("DELETE", "/metrics/", ""),
                                       ("GET", "/other/health", ""), ("GET", "/healthy", ""), ("GET", "/x/metrics", "/mlflow"),
                                       ("GET", "/mlflow/x/version", "/mlflow"), ("GET", "/", ""), ("GET", "", "")] {
            #expect(R.counts(method: method, path: Substring(path), prefix: prefix), "\(method) \(path) under '\(prefix)'")
        }
    }

    @Test func labels() {
        #expect(RequestMetricsRules.methodLabel("PATCH") == "PATCH" && RequestMetricsRules.methodLabel("PROPFIND") == "other")
        #expect(RequestMetricsRules.isException(status: 500) && !RequestMetricsRules.isException(status: 503) && !RequestMetricsRules.isException(status: 400))
        #expect(RequestMetricsRules.durationBucketsMillis == [5, 10, 25, 50, 75, 100, 250, 500, 750, 1_000, 2_500, 5_000, 7_500, 10_000])
    }
}
