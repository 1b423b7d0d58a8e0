import Testing
import TallyWorkloads
@testable import TallyStore
@testable import TallyTracking

/// Compare queries against brute force over the raw points: same grid for every run, exact M4 (first, min, max,
/// last per bucket), means, summaries, LTTB shape, raw caps and the param/tag differences.
@Suite struct CompareTests {
    struct Points {
        var steps: [Int64] = []
        var values: [Double] = []
    }

    /// Random series with NaN and ±∞ sprinkled in, half sealed into segments, half left in the head.
    func populate(_ s: TrackingService, runs: Int, seed: UInt64) throws -> [(String, Points)] {
        var rng = SplitMix64(seed: seed)
        var out: [(String, Points)] = []
        for r in 0..<runs {
            let id = try s.createRun(experimentID: nil, runName: "run-\(r)").info.runID
            var p = Points()
            var step = Int64(rng.next() % 50)
            for _ in 0..<(3000 + Int(rng.next() % 3000)) {
                step += Int64(1 + rng.next() % 3)
                p.steps.append(step)
                let u = rng.next() % 200
                p.values.append(u == 0 ? .nan : u == 1 ? .infinity : u == 2 ? -.infinity : Double(Int64(rng.next() % 10_000) - 5000) / 7)
            }
            let half = p.steps.count / 2
            _ = try s.logColumns(runID: id, series: [SeriesBatch(key: "loss", steps: Array(p.steps[..<half]),
                                                                  timestamps: [Int64](repeating: 1, count: half), values: Array(p.values[..<half]))])
            try s.metrics.flush(run: id)
            let rest = p.steps.count - half
            _ = try s.logColumns(runID: id, series: [SeriesBatch(key: "loss", steps: Array(p.steps[half...]),
                                                                  timestamps: [Int64](repeating: 2, count: rest), values: Array(p.values[half...]))])
            out.append((id, p))
        }
        return out
    }

    /// First/min/max/last per bucket of the grid, in step order, each point once (ties: earliest).
    func oracleM4(_ p: Points, _ grid: BucketGrid) -> (steps: [Int64], values: [Double]) {
        var buckets: [Int: [Int]] = [:]
        for (i, s) in p.steps.enumerated() where s >= grid.lo && s <= grid.hi { buckets[grid.bucket(of: s), default: []].append(i) }
        var steps: [Int64] = [], values: [Double] = []
        for b in buckets.keys.sorted() {
            let idx = buckets[b]!
            let nonNaN = idx.filter { !p.values[$0].isNaN }
            var picks = [idx.first!]
            if let mn = nonNaN.min(by: { p.values[$0] < p.values[$1] }) { picks.append(mn) }
            if let mx = nonNaN.min(by: { p.values[$0] > p.values[$1] }) { picks.append(mx) }
            picks.append(idx.last!)
            var seen: [Int] = []
            for k in picks where !seen.contains(where: { p.steps[$0] == p.steps[k] && p.values[$0].bitPattern == p.values[k].bitPattern }) {
                seen.append(k)
            }
            for k in seen.sorted() {
                steps.append(p.steps[k])
                values.append(p.values[k])
            }
        }
        return (steps, values)
    }

    @Test(arguments: Backend.all) func m4IsExactAndAlignedAcrossRuns(_ backend: Backend) throws {
        let f = try Fixture("cmp", backend: backend)
        let runs = try populate(f.service, runs: 4, seed: 7)
        for buckets in [1, 7, 100, 1000] {
          for align in [false, true] {
            let r = try f.service.compare(CompareQuery(runIDs: runs.map(\.0), keys: ["loss"], buckets: buckets, align: align))
            let lo = runs.map { $0.1.steps.first! }.min()!, hi = runs.map { $0.1.steps.last! }.max()!
            let w = try #require(r.steps)
            if align {
                // Power-of-two buckets at aligned steps, about as many as asked, covering the data.
                let width = (w.upperBound - w.lowerBound + 1) / Int64(r.buckets)
                #expect(width > 0 && width & (width - 1) == 0 && w.lowerBound % width == 0)
                #expect(w.lowerBound <= lo && w.upperBound >= hi && w.upperBound - width < hi)
                #expect(Double(r.buckets) >= Double(buckets) / 1.5 - 1 && Double(r.buckets) <= Double(buckets) * 1.5 + 1)
            } else {
                #expect(w == lo...hi && r.buckets == buckets)
            }
            let grid = BucketGrid(lo: w.lowerBound, hi: w.upperBound, count: r.buckets)
            #expect(r.series.map(\.runID) == runs.map(\.0))
            for (s, (_, p)) in zip(r.series, runs) {
                let want = oracleM4(p, grid)
                #expect(s.steps == want.steps, "buckets \(buckets)")
                #expect(s.values.map(\.bitPattern) == want.values.map(\.bitPattern), "buckets \(buckets)")
                #expect(s.summary.count == p.steps.count)
                #expect(s.summary.nanCount == p.values.filter(\.isNaN).count)
                #expect(s.summary.max?.value == p.values.filter { !$0.isNaN }.max())
                #expect(s.summary.first?.step == p.steps.first && s.summary.last?.step == p.steps.last)
            }
          }
        }
    }

    @Test(arguments: Backend.all) func windowsMeansLTTBAndRaw(_ backend: Backend) throws {
        let f = try Fixture("cmp2", backend: backend)
        let runs = try populate(f.service, runs: 2, seed: 11)
        let (id, p) = runs[0]
        let window: ClosedRange<Int64> = 1000...4000
        let inWindow = p.steps.indices.filter { window.contains(p.steps[$0]) }
        let m4 = try f.service.compare(CompareQuery(runIDs: [id], keys: ["loss"], steps: window, buckets: 50)).series[0]
        #expect(m4.summary.count == inWindow.count && m4.steps.allSatisfy(window.contains))
        #expect(m4.steps == oracleM4(p, BucketGrid(lo: 1000, hi: 4000, count: 50)).steps)

        let mean = try f.service.compare(CompareQuery(runIDs: [id], keys: ["loss"], steps: window, buckets: 10, mode: .mean)).series[0]
        let grid = BucketGrid(lo: 1000, hi: 4000, count: 10)
        for (st, v) in zip(mean.steps, mean.values) {
            let b = grid.bucket(of: st)
            let xs = inWindow.filter { grid.bucket(of: p.steps[$0]) == b }.map { p.values[$0] }.filter(\.isFinite)
            #expect(abs(v - xs.reduce(0, +) / Double(xs.count)) < 1e-9)
        }

        let lttb = try f.service.compare(CompareQuery(runIDs: [id], keys: ["loss"], buckets: 200, mode: .lttb)).series[0]
        #expect(lttb.steps.count == 200 && lttb.steps.first == p.steps.first && lttb.steps.last == p.steps.last)
        #expect(lttb.steps == lttb.steps.sorted() && Set(lttb.steps).isSubset(of: Set(p.steps)))

        let raw = try f.service.compare(CompareQuery(runIDs: [id], keys: ["loss"], steps: window, mode: .raw(cap: 100))).series[0]
        #expect(raw.truncated && raw.steps == inWindow.prefix(100).map { p.steps[$0] })
        let all = try f.service.compare(CompareQuery(runIDs: [id], keys: ["loss"], mode: .raw(cap: 1_000_000))).series[0]
        #expect(!all.truncated && all.values.map(\.bitPattern) == p.values.map(\.bitPattern))
    }

    /// Distributed training's shape: four ranks log the same steps with their own values through log-batch, chunks in
    /// a shuffled order, part sealed: every value is kept, and history, raw, M4 and summaries see them all in step
    /// order with ties in arrival order.
    @Test(arguments: Backend.all) func ranksLoggingTheSameStepsAreAllKeptOnEveryReadPath(_ backend: Backend) throws {
        let f = try Fixture("ranks", backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        var rng = SplitMix64(seed: 19)
        var chunks = Array(0..<8)
        for i in stride(from: chunks.count - 1, to: 0, by: -1) { chunks.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var arrival: [(step: Int64, value: Double)] = []
        for (n, c) in chunks.enumerated() {
            for rank in [2, 0, 3, 1] {
                let steps = (c * 100)..<(c * 100 + 100)
                let ms = steps.map { Metric(key: "loss", value: Double(rank * 1000 + $0 % 97) / 8, timestamp: Int64(5000 + $0), step: Int64($0)) }
                try s.logBatch(runID: id, metrics: ms)
                arrival += ms.map { ($0.step, $0.value) }
            }
            if n == 3 { try s.metrics.flush(run: id) }
        }
        // A rank's chunk sent again (a retry after a lost answer): exact repeats, stored once.
        let again: [Metric] = (0..<100).map { (k: Int) -> Metric in
            Metric(key: "loss", value: Double(2000 + k % 97) / 8, timestamp: Int64(5000 + k), step: Int64(k))
        }
        try s.logBatch(runID: id, metrics: again)
        // Step order, ties in arrival order.
        let order = arrival.indices.sorted { (arrival[$0].step, $0) < (arrival[$1].step, $1) }
        let p = Points(steps: order.map { arrival[$0].step }, values: order.map { arrival[$0].value })
        let history = try s.history(runID: id, key: "loss")
        #expect(history.count == 3200)
        #expect(history.map { "\($0.step)/\($0.value)" }.sorted() == arrival.map { "\($0.step)/\($0.value)" }.sorted())
        let raw = try s.compare(CompareQuery(runIDs: [id], keys: ["loss"], mode: .raw(cap: 1_000_000))).series[0]
        #expect(raw.steps == p.steps && raw.values.map(\.bitPattern) == p.values.map(\.bitPattern))
        for buckets in [1, 7, 100, 800] {
            let m4 = try s.compare(CompareQuery(runIDs: [id], keys: ["loss"], buckets: buckets, align: false)).series[0]
            let want = oracleM4(p, BucketGrid(lo: 0, hi: 799, count: buckets))
            #expect(m4.steps == want.steps, "buckets \(buckets)")
            #expect(m4.values.map(\.bitPattern) == want.values.map(\.bitPattern), "buckets \(buckets)")
            #expect(m4.summary.count == 3200 && m4.summary.max?.value == p.values.max())
        }
    }

    @Test(arguments: Backend.all) func extremeStepsDoNotOverflow(_ backend: Backend) throws {
        let f = try Fixture("cmpx", backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        _ = try s.logColumns(runID: id, series: [SeriesBatch(key: "k", steps: [.min, -1, 0, .max], timestamps: [1, 1, 1, 1], values: [1, 2, 3, 4])])
        for mode in [CompareMode.m4, .mean, .lttb, .raw(cap: 10)] {
            for buckets in [1, 2, 1000] {
                for window in [nil, Int64.min...Int64.max, -1...Int64.max] as [ClosedRange<Int64>?] {
                    let r = try s.compare(CompareQuery(runIDs: [id], keys: ["k"], steps: window, buckets: buckets, mode: mode))
                    let expected = window.map { w in [Int64.min, -1, 0, Int64.max].filter(w.contains).count } ?? 4
                    #expect(r.series.first?.summary.count == expected, "\(mode) \(buckets) \(String(describing: window))")
                }
            }
        }
    }

    @Test(arguments: Backend.all) func differencesAndErrors(_ backend: Backend) throws {
        let f = try Fixture("cmp3", backend: backend)
        let s = f.service
        let a = try s.createRun(experimentID: nil, runName: "a").info.runID
        let b = try s.createRun(experimentID: nil, runName: "b").info.runID
        try s.logBatch(runID: a, params: [KeyValue(key: "lr", value: "0.1"), KeyValue(key: "bs", value: "32")], tags: [KeyValue(key: "t", value: "x")])
        try s.logBatch(runID: b, params: [KeyValue(key: "lr", value: "0.2"), KeyValue(key: "bs", value: "32")])
        let r = try s.compare(CompareQuery(runIDs: [a, b, a], keys: ["none"]))
        #expect(r.runs.map(\.runName) == ["a", "b"] && r.series.isEmpty && r.steps == nil)
        #expect(r.params == [CompareDifference(key: "lr", values: ["0.1", "0.2"])])
        #expect(r.tags.contains(CompareDifference(key: "t", values: ["x", nil])))
        expectError(.invalidParameterValue, "run_ids must list") { _ = try s.compare(CompareQuery(runIDs: [], keys: ["k"])) }
        expectError(.invalidParameterValue, "buckets must be") { _ = try s.compare(CompareQuery(runIDs: [a], keys: ["k"], buckets: 0)) }
        expectError(.resourceDoesNotExist, "not found") { _ = try s.compare(CompareQuery(runIDs: ["0123456789abcdef0123456789abcdef"], keys: ["k"])) }
    }

    @Test(arguments: Backend.all) func columnsAreValidatedBeforeAnythingIsStored(_ backend: Backend) throws {
        let f = try Fixture("cols", backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        let good = SeriesBatch(key: "a", steps: [1, 2], timestamps: [1, 1], values: [1, 2])
        expectError(.invalidParameterValue, "timestamps[1] is -1") {
            _ = try s.logColumns(runID: id, series: [good, SeriesBatch(key: "b", steps: [1, 2], timestamps: [0, -1], values: [1, 2])])
        }
        expectError(.invalidParameterValue, "same length") {
            _ = try s.logColumns(runID: id, series: [good, SeriesBatch(key: "b", steps: [1], timestamps: [0, 1], values: [1])])
        }
        expectError(.invalidParameterValue, "Names may only contain") {
            _ = try s.logColumns(runID: id, series: [good, SeriesBatch(key: "b!", steps: [1], timestamps: [0], values: [1])])
        }
        #expect(try s.history(runID: id, key: "a").isEmpty)
        #expect(try s.logColumns(runID: id, series: [good, good], batchID: "x") == .init(points: 4, stored: true))
        #expect(try s.logColumns(runID: id, series: [good], batchID: "x") == .init(points: 0, stored: false))
        #expect(try s.history(runID: id, key: "a").count == 4)
        #expect(try s.run(id: id).metrics.first?.value == 2)
    }
}

@Suite struct DuplicateTests {
    @Test(arguments: Backend.all) func exactRepeatsAcrossRequestsAreDroppedAsMLflowDoes(_ backend: Backend) throws {
        let f = try Fixture("dups", backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        func log(_ ms: [(Int64, Int64, Double)]) throws {
            try s.logBatch(runID: id, metrics: ms.map { Metric(key: "m", value: $0.2, timestamp: $0.1, step: $0.0) })
        }
        try log([(1, 10, 0.5), (2, 20, .nan), (3, 30, 1.5)])
        try log([(2, 20, .nan)])  // a different batch holding a stored point: dropped (NaN equals NaN, as is_nan)
        try log([(1, 10, 0.5), (1, 11, 0.5), (1, 10, 0.25)])  // same step: only the exact repeat is dropped
        try log([(3, 30, 1.5), (4, 40, 2)])  // latest repeated plus a new point
        _ = try s.logColumns(runID: id, series: [SeriesBatch(key: "m", steps: [9], timestamps: [90], values: [7])])
        try log([(9, 90, 7)])  // natively ingested, then repeated through MLflow's API
        let h = try s.history(runID: id, key: "m").map { "\($0.step)/\($0.timestamp)/\($0.value)" }
        #expect(h.sorted() == ["1/10/0.25", "1/10/0.5", "1/11/0.5", "2/20/nan", "3/30/1.5", "4/40/2.0", "9/90/7.0"])
        // Default step 0 with new timestamps each time: all kept.
        for t in 0..<50 { try s.logBatch(runID: id, metrics: [Metric(key: "z", value: 1, timestamp: Int64(100 + t))]) }
        #expect(try s.history(runID: id, key: "z").count == 50)
    }
}
