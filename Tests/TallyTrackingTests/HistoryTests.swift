import Testing
@testable import TallyStore
@testable import TallyTracking

@Suite struct HistoryTests {
    /// MLflow 3.18's NTILE sampling, written from the reference (§7.4) over all rows.
    func oracle(_ pts: [MetricPoint], maxResults: Int, range: ClosedRange<Int64>?) -> [MetricPoint] {
        let m = max(1, maxResults)
        let rows = pts.filter { range?.contains($0.step) ?? true }.sorted { a, b in
            (a.step, a.timestamp, a.value.isNaN ? 0 : a.value, a.value.isNaN ? 1 : 0) < (b.step, b.timestamp, b.value.isNaN ? 0 : b.value, b.value.isNaN ? 1 : 0)
        }
        let n = rows.count
        guard n > 0 else { return [] }
        // NTILE(m): bucket sizes differ by at most one, larger first; keep each bucket's first row.
        var sampled: [Int] = []
        var start = 0
        for b in 0..<min(m, n) {
            sampled.append(start)
            start += n / m + (b < n % m ? 1 : 0)
        }
        if sampled.last != n - 1 {
            if sampled.count == m { sampled[sampled.count - 1] = n - 1 } else { sampled.append(n - 1) }
        }
        return sampled.map { rows[$0] }
    }

    @Test(arguments: Backend.all) func bulkIntervalSamplingMatchesMLflow(_ backend: Backend) throws {
        let f = try Fixture("hist", backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        var rng = SystemRandomNumberGenerator()
        var pts: [MetricPoint] = []
        for i in 0..<3000 {
            // Mostly one point per step, some steps with several points (same or different timestamps), some NaN.
            let step = Int64(i / (i % 7 == 0 ? 1 : 1)) - (i % 11 == 0 ? 1 : 0)
            let v = i % 97 == 0 ? Double.nan : Double(Int.random(in: 0..<50, using: &rng))
            pts.append(MetricPoint(step: step, timestamp: 1_000 + Int64(i % 5), value: v))
        }
        for chunk in stride(from: 0, to: pts.count, by: 500) {
            let part = pts[chunk..<min(pts.count, chunk + 500)]
            try s.logBatch(runID: id, metrics: part.map { Metric(key: "m", value: $0.value, timestamp: $0.timestamp, step: $0.step) })
        }
        try s.metrics.flush()
        try s.logBatch(runID: id, metrics: [Metric(key: "m", value: 7, timestamp: 5, step: 10)])  // an unsealed point too
        let all = try s.metrics.read(run: id, key: "m").points
        for (m, range) in [(1, nil), (2, nil), (5, nil), (320, nil), (2500, nil), (2999, nil), (3001, nil), (10, 100...200), (7, 2998...5000), (3, 5000...6000)]
            as [(Int, ClosedRange<Int64>?)] {
            let got = try s.sampledHistory(runID: id, key: "m", maxResults: m, steps: range)
            #expect(got == oracle(all, maxResults: m, range: range), "max_results \(m) range \(String(describing: range))")
        }
        #expect(try s.sampledHistory(runID: "nope", key: "m", maxResults: 10).isEmpty)
        #expect(try s.history(runID: "nope", key: "m").isEmpty)
    }
}

@Suite struct HistoryPageTests {
    @Test(arguments: Backend.all) func pagesEqualSlicesOfTheSortedHistory(_ backend: Backend) throws {
        let f = try Fixture("pages", backend: backend)
        let s = f.service
        let ordered = try s.createRun(experimentID: nil).info.runID
        let shuffled = try s.createRun(experimentID: nil).info.runID
        var rng = SystemRandomNumberGenerator()
        for chunk in 0..<10 {
            let base = chunk * 300
            try s.logBatch(runID: ordered, metrics: (0..<300).map { Metric(key: "m", value: Double($0), timestamp: Int64(1000 + base + $0), step: Int64(base + $0)) })
            // Timestamps that go back in time, and repeated (timestamp, step) pairs with different values.
            try s.logBatch(runID: shuffled, metrics: (0..<300).map {
                Metric(key: "m", value: Double(Int.random(in: 0..<5, using: &rng)), timestamp: Int64(Int.random(in: 0..<400, using: &rng)),
                            step: Int64((base + $0) / 2))
            })
            if chunk % 3 == 0 { try s.metrics.flush() }
        }
        #expect(try s.metrics.timeOrderedPage(run: ordered, key: "m", offset: 0, limit: 10) != nil, "the ordered run takes the fast path")
        #expect(try s.metrics.timeOrderedPage(run: shuffled, key: "m", offset: 0, limit: 10) == nil, "the shuffled run cannot")
        for id in [ordered, shuffled] {
            let all = try s.history(runID: id, key: "m")
            let n = all.count  // exact repeats inside a batch are stored once, as MLflow does
            #expect(n > 2900)
            for (offset, limit) in [(0, 1), (0, 3000), (299, 2), (1000, 1000), (2998, 10), (3000, 5), (123, 4567)] {
                let page = try s.historyPage(runID: id, key: "m", offset: offset, limit: limit)
                #expect(page.total == n)
                #expect(page.points == Array(all[min(offset, n)..<min(n, offset + limit)]), "offset \(offset) limit \(limit)")
            }
        }
        #expect(try s.historyPage(runID: "nope", key: "m", offset: 0, limit: 5).total == 0)
    }
}
