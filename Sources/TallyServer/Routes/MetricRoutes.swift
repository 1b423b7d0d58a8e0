import Hummingbird
import NIOCore
import TallyStore
import TallyTracking

/// MLflow's metric history endpoints. Histories can be large: they are written as bytes by ``JSONBytes``.
struct MetricRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("metrics/get-history", .get, access: .needs(.read, .runField), use: e.json(fast: nil) { r in
            let key = try r.string("metric_key", required: true)!
            let page = try s.historyPage(runID: try r.runID(), key: key, maxResults: try r.int64("max_results"), pageToken: try r.string("page_token"))
            var out = JSONBytes(capacity: 64 + page.points.count * (key.utf8.count + 72))
            out.raw("{")
            if !page.points.isEmpty {
                out.raw("\"metrics\": [")
                Render.metrics(&out, key: key, page.points)
                out.raw("]")
            }
            if let token = page.nextPageToken {
                out.raw(page.points.isEmpty ? "\"next_page_token\": " : ", \"next_page_token\": ")
                out.string(token)
            }
            out.raw("}")
            return out.buffer
        })
        t.on("metrics/get-history-bulk-interval", .get, access: .user, use: e.json(fast: nil) { r in
            let key = try r.string("metric_key", required: true)!
            let runs = try s.historyBulkInterval(runIDs: try r.strings("run_ids"), key: key, maxResults: try r.int64("max_results"),
                                                 startStep: try r.int64("start_step"), endStep: try r.int64("end_step"), scope: r.grants)
            var out = JSONBytes(capacity: 256 + runs.reduce(0) { $0 + $1.points.count * 96 })
            out.raw("{")
            for (i, run) in runs.enumerated() {
                out.raw(i == 0 ? "\"metrics\": [" : ", ")
                Render.metrics(&out, key: key, run.points, runID: run.runID)
            }
            out.raw(runs.isEmpty ? "}" : "]}")
            return out.buffer
        })
    }

    /// `GET /ajax-api/2.0/mlflow/metrics/get-history-bulk` (a plain Flask route in MLflow, served under the ajax
    /// prefix only: compact JSON with alphabetical keys).
    func addBulk(to t: RouteTable) {
        let s = endpoints.service
        t.on("metrics/get-history-bulk", .get, access: .user, use: endpoints.json(fast: nil) { r in
            let key = try r.string("metric_key")
            let runs = try s.historyBulk(runIDs: try r.strings("run_id"), key: key, maxResults: try r.int64("max_results"), scope: r.grants)
            let quotedKey = JSONText.quote(key ?? "")
            var out = JSONBytes(capacity: 4096)
            out.raw("{\"metrics\":[")
            var first = true
            for run in runs {
                let prefix = "{\"key\":" + quotedKey + ",\"run_id\":" + JSONText.quote(run.runID) + ",\"step\":"
                for p in run.points {
                    if !first { out.raw(",") }
                    first = false
                    out.rawText(prefix)
                    out.int(p.step)
                    out.raw(",\"timestamp\":")
                    out.int(p.timestamp)
                    out.raw(",\"value\":")
                    out.double(p.value)
                    out.raw("}")
                }
            }
            out.raw("]}")
            return out.buffer
        })
    }
}
