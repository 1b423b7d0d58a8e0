import Hummingbird
import TallyStore
import TallyTracking

extension MLflowAPI {
    func metricRoutes() -> [(String, [HTTPRequest.Method], Handler)] {
        let s = service
        return [
            ("/metrics/get-history", [.get], { r in
                let id = try r.runID()
                let key = try r.string("metric_key", required: true)!
                _ = try s.run(id: id)
                let maxResults = Int(try r.int64("max_results") ?? 25_000)
                guard maxResults >= 1 else {
                    throw TrackingError(.invalidParameterValue, "Invalid value \(maxResults) for parameter 'max_results' supplied.")
                }
                let offset = try HistoryPaging.offset(try r.string("page_token"))
                let points = HistoryPaging.ordered(try s.metrics.read(run: id, key: key))
                let end = min(points.count, offset + maxResults)
                var o = Obj()
                o.add("metrics", array: points[min(offset, end)..<end].map {
                    Render.metric(key: key, value: $0.value, timestamp: $0.timestamp, step: $0.step)
                })
                if end < points.count { o.add("next_page_token", HistoryPaging.token(end)) }
                return o.json
            }),
        ]
    }
}

/// Metric history paging in MLflow's order: timestamp, then step, then value.
enum HistoryPaging {
    static func ordered(_ d: SeriesData) -> [MetricPoint] {
        let pts = d.points
        // Series are stored by step; they are already in MLflow's order whenever timestamps grow with steps.
        var sorted = true
        for i in pts.indices.dropFirst() where (pts[i - 1].timestamp, pts[i - 1].step) > (pts[i].timestamp, pts[i].step) {
            sorted = false
            break
        }
        if sorted { return pts }
        return pts.enumerated().sorted { a, b in
            (a.element.timestamp, a.element.step, a.element.value.isNaN ? 0 : a.element.value, a.offset)
                < (b.element.timestamp, b.element.step, b.element.value.isNaN ? 0 : b.element.value, b.offset)
        }.map(\.element)
    }

    static func token(_ offset: Int) -> String { PageToken.encode(offset: offset) }

    static func offset(_ token: String?) throws -> Int { try PageToken.decode(token) }
}
