import Hummingbird
import NIOCore
import TallyStore
import TallyTracking

extension MLflowAPI {
    /// History routes: large answers written as bytes.
    func historyRoutes() -> [(String, [HTTPRequest.Method], BufferHandler)] {
        let s = service
        return [
            ("/metrics/get-history", [.get], { r in
                let id = try r.runID()
                let key = try r.string("metric_key", required: true)!
                let maxResults = try r.int64("max_results")
                if let m = maxResults, m <= 0 {
                    throw TrackingError(.invalidParameterValue, "Invalid value \(m) for parameter 'max_results' supplied. It must be a positive integer.")
                }
                let offset = try PageToken.decode(try r.string("page_token"))
                // No run check, as in MLflow: an unknown run or key is an empty history.
                let page = try s.historyPage(runID: id, key: key, offset: offset, limit: maxResults.map { Int(clamping: $0) } ?? Int.max)
                var out = JSONBytes(capacity: 64 + page.points.count * (key.utf8.count + 72))
                out.raw("{")
                if !page.points.isEmpty {
                    out.raw("\"metrics\": [")
                    Render.metrics(&out, key: key, page.points)
                    out.raw("]")
                }
                if offset + page.points.count < page.total {
                    out.raw(page.points.isEmpty ? "\"next_page_token\": " : ", \"next_page_token\": ")
                    out.string(PageToken.encode(offset: offset + page.points.count))
                }
                out.raw("}")
                return out.buffer
            }),
            ("/metrics/get-history-bulk-interval", [.get], { r in
                let runIDs = try r.strings("run_ids")
                guard !runIDs.isEmpty else { throw TrackingError(.invalidParameterValue, "Missing value for required parameter 'run_ids'.") }
                guard runIDs.count <= 100 else {
                    throw TrackingError(.invalidParameterValue,
                                        "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received \(runIDs.count) run_ids.")
                }
                let key = try r.string("metric_key", required: true)!
                let maxResults = Int(try r.int64("max_results") ?? 2500)
                guard (1...2500).contains(maxResults) else { throw TrackingError(.invalidParameterValue, "max_results must be between 1 and 2500.") }
                let start = try r.int64("start_step"), end = try r.int64("end_step")
                var range: ClosedRange<Int64>?
                switch (start, end) {
                case (nil, nil): range = nil
                case let (a?, b?):
                    guard a <= b else {
                        throw TrackingError(.invalidParameterValue, "end_step must be greater than start_step. Found start_step=\(a) and end_step=\(b).")
                    }
                    range = a...b
                default:
                    throw TrackingError(.invalidParameterValue, "If either start step or end step are specified, both must be specified.")
                }
                var out = JSONBytes(capacity: 256 + runIDs.count * maxResults * 64)
                out.raw("{")
                var first = true
                for id in runIDs {
                    let points = try s.sampledHistory(runID: id, key: key, maxResults: maxResults, steps: range)
                    guard !points.isEmpty else { continue }
                    out.raw(first ? "\"metrics\": [" : ", ")
                    first = false
                    Render.metrics(&out, key: key, points, runID: id)
                }
                out.raw(first ? "}" : "]}")
                return out.buffer
            }),
        ]
    }

    /// `GET /ajax-api/2.0/mlflow/metrics/get-history-bulk` (a plain Flask route in MLflow: compact JSON with
    /// alphabetical keys, sorted by run id then MLflow's history order, `max_results` truncating the total).
    func historyBulk(_ r: MLflowRequest) throws -> ByteBuffer {
        let runIDs = try r.strings("run_id")
        guard !runIDs.isEmpty else { throw TrackingError(.invalidParameterValue, "GetMetricHistoryBulk request must specify at least one run_id.") }
        guard runIDs.count <= 100 else {
            throw TrackingError(.invalidParameterValue, "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received \(runIDs.count) run_ids.")
        }
        guard let key = try r.string("metric_key"), !key.isEmpty else {
            throw TrackingError(.invalidParameterValue, "GetMetricHistoryBulk request must specify a metric_key.")
        }
        let cap = min(25_000, max(0, Int(try r.int64("max_results") ?? 25_000)))
        var out = JSONBytes(capacity: 4096)
        out.raw("{\"metrics\":[")
        var left = cap
        for id in Set(runIDs).sorted() where left > 0 {
            let points = try service.history(runID: id, key: key).prefix(left)
            let prefix = "{\"key\":" + JSONText.quote(key) + ",\"run_id\":" + JSONText.quote(id) + ",\"step\":"
            for p in points {
                if left != cap { out.raw(",") }
                left -= 1
                out.raw(prefix)
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
    }
}
