import Dispatch
import Foundation
import Testing
@testable import TallyStore
import TallyTracking
@testable import TallyServer

/// Memory pressure over HTTP: while queued seals cannot keep up, log-batch answers at once with MLflow's 429
/// (`REQUEST_LIMIT_EXCEEDED`, `Retry-After`), which the MLflow client retries, storing nothing; once the seals catch
/// up the same request succeeds and every acknowledged point is in the history.
@Suite struct BackpressureRouteTests {
    @Test func logBatchPastTheMemoryLimitIsA429ToRetry() async throws {
        try await LiveServer.with({ $0.metricMemoryBytes = 1 << 20 }) { s in
            let p = "/api/2.0/mlflow"
            let (_, runID) = try await RouteTests.run(s, p, name: "pressure")
            let release = DispatchSemaphore(value: 0)
            s.service.metrics.maintenance.seals.lanes.forEach { $0.async { release.wait() } }  // seals that cannot keep up
            func batch(_ b: Int) -> String {
                let metrics = (0..<1000).map { i in #"{"key": "loss", "value": \#(b * 1000 + i), "timestamp": 1, "step": \#(b * 1000 + i)}"# }
                return #"{"run_id": "\#(runID)", "metrics": [\#(metrics.joined(separator: ","))]}"#
            }
            var acknowledged = 0
            var refusal: HTTPAnswer?
            for b in 0..<200 where refusal == nil {
                let answer = try await s.post(p + "/runs/log-batch", batch(b))
                if answer.status == 200 { acknowledged += 1 } else { refusal = answer }
            }
            let r = try #require(refusal, "a log-batch past the limit is refused")
            #expect(r.status == 429, "\(r.text)")
            #expect(r.errorCode == "REQUEST_LIMIT_EXCEEDED")
            #expect(r.headers["retry-after"] == "1")
            #expect((r.json["message"] as? String)?.contains("nothing was stored") == true, "\(r.text)")
            for _ in 0..<BackgroundMaintenance.sealLanes { release.signal() }
            var retried = r
            for _ in 0..<500 where retried.status == 429 {
                try await Task.sleep(for: .milliseconds(10))
                retried = try await s.post(p + "/runs/log-batch", batch(acknowledged))
            }
            #expect(retried.status == 200, "\(retried.text)")
            let history = try await s.get(p + "/metrics/get-history?run_id=\(runID)&metric_key=loss&max_results=1000000")
            let points = try #require(history.json["metrics"] as? [[String: Any]])
            #expect(points.count == (acknowledged + 1) * 1000, "every acknowledged point, the refused batch once")
            #expect(Set(points.compactMap { $0["step"] as? Int }).count == points.count)
        }
    }
}
