import TallyStore

/// One page of MLflow's `metrics/get-history`.
public struct HistoryPage: Sendable {
    /// The page's points, in MLflow's history order.
    public var points: [MetricPoint]
    /// The token of the next page, when there is one.
    public var nextPageToken: String?
}

/// Points of one run, for the multi-run history endpoints.
public struct RunPoints: Sendable {
    /// The run.
    public var runID: String
    /// Its points.
    public var points: [MetricPoint]
}

extension TrackingService {
    /// Most runs of one `get-history-bulk-interval` or `get-history-bulk` request.
    public static let maxHistoryRuns = 100
    /// Default and largest `max_results` of `get-history-bulk-interval`.
    public static let maxBulkIntervalResults = 2500
    /// Default and largest `max_results` of the UI's `get-history-bulk`.
    public static let maxBulkResults = 25_000

    /// MLflow's `metrics/get-history`: every point (no `max_results`), or pages of `maxResults`. No run check, as in
    /// MLflow: an unknown run or key is an empty history.
    public func historyPage(runID: String, key: String, maxResults: Int64?, pageToken: String?) throws -> HistoryPage {
        if let m = maxResults, m <= 0 {
            throw TrackingError.invalid("Invalid value \(m) for parameter 'max_results' supplied. It must be a positive integer.")
        }
        let offset = try PageToken.decode(pageToken)
        let page = try historyPage(runID: runID, key: key, offset: offset, limit: maxResults.map { Int(clamping: $0) } ?? Int.max)
        let next = offset + page.points.count < page.total ? PageToken.encode(offset: offset + page.points.count) : nil
        return HistoryPage(points: page.points, nextPageToken: next)
    }

    /// MLflow's `metrics/get-history-bulk-interval`: up to 100 runs, each sampled to `maxResults` (1–2,500, default
    /// 2,500) points within an optional step window. Runs without points are left out.
    public func historyBulkInterval(runIDs: [String], key: String, maxResults: Int64?, startStep: Int64?, endStep: Int64?,
                                    scope: Grants = .unrestricted) throws -> [RunPoints] {
        for id in runIDs { try requireRead(run: id, scope) }
        guard !runIDs.isEmpty else { throw TrackingError.invalid("Missing value for required parameter 'run_ids'.") }
        guard runIDs.count <= Self.maxHistoryRuns else {
            throw TrackingError.invalid("GetMetricHistoryBulkInterval request must specify at most \(Self.maxHistoryRuns) run_ids. "
                + "Received \(runIDs.count) run_ids.")
        }
        let m = maxResults ?? Int64(Self.maxBulkIntervalResults)
        guard (1...Int64(Self.maxBulkIntervalResults)).contains(m) else {
            throw TrackingError.invalid("max_results must be between 1 and \(Self.maxBulkIntervalResults).")
        }
        let window = try StepWindow.range(start: startStep, end: endStep)
        return try runIDs.compactMap { id in
            let points = try sampledHistory(runID: id, key: key, maxResults: Int(m), steps: window)
            return points.isEmpty ? nil : RunPoints(runID: id, points: points)
        }
    }

    /// The UI's `get-history-bulk` (a plain route in MLflow): runs sorted by id (each once), MLflow's history
    /// order within a run, `maxResults` (default and most 25,000) capping the total.
    public func historyBulk(runIDs: [String], key: String?, maxResults: Int64?, scope: Grants = .unrestricted) throws -> [RunPoints] {
        for id in runIDs { try requireRead(run: id, scope) }
        guard !runIDs.isEmpty else { throw TrackingError.invalid("GetMetricHistoryBulk request must specify at least one run_id.") }
        guard runIDs.count <= Self.maxHistoryRuns else {
            throw TrackingError.invalid("GetMetricHistoryBulk request cannot specify more than \(Self.maxHistoryRuns) run_ids. "
                + "Received \(runIDs.count) run_ids.")
        }
        guard let key, !key.isEmpty else { throw TrackingError.invalid("GetMetricHistoryBulk request must specify a metric_key.") }
        var left = min(Self.maxBulkResults, max(0, Int(clamping: maxResults ?? Int64(Self.maxBulkResults))))
        var out: [RunPoints] = []
        for id in Set(runIDs).sorted() where left > 0 {
            let points = Array(try history(runID: id, key: key).prefix(left))
            left -= points.count
            out.append(RunPoints(runID: id, points: points))
        }
        return out
    }
}
