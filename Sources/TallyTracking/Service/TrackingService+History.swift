import TallyStore

extension TrackingService {
    /// Brings this server's copy of a run's points up to date before a read (in a cluster: ``ClusterNode/readable(run:)``).
    func readable(_ runID: String) throws {
        guard let cluster else { return }
        // A run this server never saw is looked up first: reads of unknown ids (an empty history, as MLflow answers)
        // leave no state behind.
        if !cluster.knows(run: runID) {
            guard (try? experimentID(ofRun: runID)) != nil else { return }
        }
        try cluster.readable(run: runID)
    }

    /// A metric's points in MLflow's history order: timestamp, then step, then value. Like MLflow, an unknown run
    /// or key is an empty history, not an error.
    public func history(runID: String, key: String) throws -> [MetricPoint] {
        try readable(runID)
        return try orderedHistory(runID: runID, key: key)
    }

    /// ``history(runID:key:)`` of the local copy as it is.
    func orderedHistory(runID: String, key: String) throws -> [MetricPoint] {
        let pts = try metrics.read(run: runID, key: key).points
        // Stored by step; already in MLflow's order whenever timestamps grow with steps.
        // Equal (timestamp, step) pairs are ordered by value, so only strictly increasing pairs skip the sort.
        if zip(pts, pts.dropFirst()).allSatisfy({ ($0.timestamp, $0.step) < ($1.timestamp, $1.step) }) { return pts }
        return pts.enumerated().sorted { a, b in
            (a.element.timestamp, a.element.step, LatestRule.valueKey(a.element.value), a.offset)
                < (b.element.timestamp, b.element.step, LatestRule.valueKey(b.element.value), b.offset)
        }.map(\.element)
    }

    /// One page of `history(runID:key:)`: read directly when the stored order already is MLflow's (the common case,
    /// so a page costs what it holds, not its offset), otherwise cut from the sorted series.
    public func historyPage(runID: String, key: String, offset: Int, limit: Int) throws -> (points: [MetricPoint], total: Int) {
        try readable(runID)
        if let page = try metrics.timeOrderedPage(run: runID, key: key, offset: offset, limit: limit) { return page }
        let all = try orderedHistory(runID: runID, key: key)
        let start = min(offset, all.count), end = limit >= all.count - start ? all.count : start + limit
        return (Array(all[start..<end]), all.count)
    }

    /// MLflow 3.18's `get-history-bulk-interval` sampling of one run's metric (reference §7.4): rows in
    /// (step, timestamp, value, is_nan) order, optionally within `steps`, split into `maxResults` NTILE buckets
    /// (sizes differ by at most one, larger first); the first row of each bucket is kept, and the last row always
    /// ends the result (replacing the last sample when the result is full).
    ///
    /// Costs one count from the segment index and one streaming scan; no point is materialised but the samples.
    public func sampledHistory(runID: String, key: String, maxResults: Int, steps: ClosedRange<Int64>? = nil) throws -> [MetricPoint] {
        let m = max(1, maxResults)
        try readable(runID)
        let n = try metrics.summary(run: runID, key: key, steps: steps).count
        guard n > 0 else { return [] }
        // Indices to keep, ascending.
        var picks: [Int]
        if n <= m {
            picks = Array(0..<n)
        } else {
            let q = n / m, r = n % m
            picks = (0..<(m - 1)).map { b in b * q + min(b, r) }
            picks.append(n - 1)
        }
        var out: [MetricPoint] = []
        out.reserveCapacity(picks.count)
        var next = 0  // position in picks
        var index = 0  // global row index
        var group: [MetricPoint] = []  // points of the current step, sorted before indexing
        func flush() {
            guard !group.isEmpty else { return }
            if group.count > 1 {
                group.sort { a, b in
                    (a.timestamp, LatestRule.valueKey(a.value), a.value.isNaN ? 1 : 0) < (b.timestamp, LatestRule.valueKey(b.value), b.value.isNaN ? 1 : 0)
                }
            }
            let end = index + group.count
            while next < picks.count, picks[next] < end {
                out.append(group[picks[next] - index])
                next += 1
            }
            index = end
            group.removeAll(keepingCapacity: true)
        }
        try metrics.scan(run: runID, key: key, steps: steps) { c in
            for i in 0..<c.count {
                let s = c.steps[i]
                if let last = group.last, last.step != s { flush() }
                // Skip whole steps that hold no pick (the common case) without buffering them.
                if group.isEmpty, next >= picks.count || (picks[next] > index && i + 1 < c.count && c.steps[i + 1] != s) {
                    index += 1
                    continue
                }
                group.append(MetricPoint(step: s, timestamp: c.timestamps[i], value: c.values[i]))
            }
        }
        flush()
        return out
    }
}
