import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TallyWorkloads
@testable import TallyStore

/// Small blocks, tiny rollup buckets and no fsync, so tests exercise many blocks, levels and seals quickly. Series of
/// fewer than `pack` points in a segment are packed.
func testConfig(blockPoints: Int = 64, rollup: Int = 4, pack: Int = 8, durability: Durability? = Durability.none) -> StoreConfiguration {
    var c = StoreConfiguration()
    c.blockPoints = blockPoints
    c.packPoints = pack
    c.rollupPointsPerBucket = rollup
    c.durableSegments = false
    c.compactionThreshold = 0
    if let durability {
        var w = WALConfiguration()
        w.durability = durability
        w.segmentBytes = 1 << 20
        c.wal = w
    } else {
        c.wal = nil
    }
    return c
}

/// Appends `pts` (arrival order) in random batch sizes, optionally flushing at random moments.
func appendAll(_ store: MetricStore, run: String, key: String, _ pts: [MetricPoint], rng: inout SplitMix64, flushes: Bool) throws {
    var i = 0
    while i < pts.count {
        let j = min(pts.count, i + 1 + Int(rng.next() % 50))
        let part = pts[i..<j]
        try store.append(run: run, series: [SeriesBatch(key: key, steps: part.map(\.step), timestamps: part.map(\.timestamp),
                                                        values: part.map(\.value))])
        if flushes && rng.next() % 7 == 0 { try store.flush(run: run) }
        i = j
    }
}

/// Random series: regular, unsorted, duplicated steps, extremes.
func randomSeries(_ rng: inout SplitMix64, count: Int, kind: Int) -> [MetricPoint] {
    (0..<count).map { i in
        let step: Int64
        switch kind {
        case 0: step = Int64(i)
        case 1: step = rng.int(0...Int64(count / 3 + 1))  // unsorted with many duplicates
        case 2: step = [Int64.min, Int64.max, 0, -1, 1][Int(rng.next() % 5)]
        default: step = Int64(i / 3) * 1000 - rng.int(0...2)  // mostly ascending, sparse, small reorderings
        }
        return MetricPoint(step: step, timestamp: rng.int(0...Int64.max), value: rng.anyDouble())
    }
}

@Suite struct StoreTests {
    @Test(arguments: 0..<4)
    func roundTripAcrossHeadsSealsCompactionAndReopen(kind: Int) throws {
        let dir = TempDir("rt")
        var rng = SplitMix64(seed: UInt64(10 + kind))
        var expected: [String: [MetricPoint]] = [:]
        do {
            let store = try MetricStore(directory: dir.path, configuration: testConfig())
            for (k, n) in [("a", 1), ("b", 64), ("c", 65), ("d", 700), ("e", 128)] {
                let pts = randomSeries(&rng, count: n, kind: kind)
                expected[k] = pts
                try appendAll(store, run: "run-\(kind)", key: k, pts, rng: &rng, flushes: true)
            }
            for (k, pts) in expected {
                let got = try store.read(run: "run-\(kind)", key: k)
                #expect(got.points == stableSorted(pts), "series \(k) before compaction")
            }
            #expect(try store.compact(run: "run-\(kind)") > 1)
            for (k, pts) in expected {
                #expect(try store.read(run: "run-\(kind)", key: k).points == stableSorted(pts), "series \(k) after compaction")
            }
            try store.close()
        }
        let reopened = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect(try reopened.keys(run: "run-\(kind)") == expected.keys.sorted())
        for (k, pts) in expected {
            #expect(try reopened.read(run: "run-\(kind)", key: k).points == stableSorted(pts), "series \(k) after reopen")
        }
        #expect(try reopened.read(run: "run-\(kind)", key: "missing").count == 0)
        #expect(try reopened.read(run: "no-such-run", key: "a").count == 0)
    }

    @Test(arguments: [1, 63, 64, 65, 128, 129])
    func exactlyBlockSizedSeries(count: Int) throws {
        let dir = TempDir("bs")
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 64))
        let pts = (0..<count).map { MetricPoint(step: Int64($0), timestamp: 1000 + Int64($0), value: Double($0) / 7) }
        try store.append(run: "r", series: [SeriesBatch(key: "m", steps: pts.map(\.step), timestamps: pts.map(\.timestamp), values: pts.map(\.value))])
        try store.flush()
        #expect(try store.read(run: "r", key: "m").points == pts)
        #expect(try store.stats(run: "r").headPoints == 0)
        #expect(try store.stats(run: "r").sealedPoints == count)
    }

    @Test func stepRangeReads() throws {
        let dir = TempDir("range")
        var rng = SplitMix64(seed: 20)
        let store = try MetricStore(directory: dir.path, configuration: testConfig())
        let pts = randomSeries(&rng, count: 500, kind: 3)
        try appendAll(store, run: "r", key: "m", pts, rng: &rng, flushes: true)
        let sorted = stableSorted(pts)
        for _ in 0..<30 {
            let a = rng.int(-2000...170_000), b = a + rng.int(0...50_000)
            #expect(try store.read(run: "r", key: "m", steps: a...b).points == sorted.filter { (a...b).contains($0.step) })
        }
    }

    @Test func latestFollowsMLflowsRule() throws {
        let dir = TempDir("latest")
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 4))
        func log(_ step: Int64, _ ts: Int64, _ v: Double) throws { try store.append(run: "r", key: "m", step: step, timestamp: ts, value: v) }
        try log(10, 5, 1.0)
        try log(3, 99, 2.0)  // older step, newer time: not latest
        #expect(try store.latest(run: "r", key: "m") == MetricPoint(step: 10, timestamp: 5, value: 1.0))
        try log(10, 5, 0.5)  // tie on step and time, smaller value: not latest
        try log(10, 6, -1.0)  // same step, later time: latest
        #expect(try store.latest(run: "r", key: "m") == MetricPoint(step: 10, timestamp: 6, value: -1.0))
        try log(10, 6, .nan)  // NaN compares as 0 > -1
        #expect(try store.latest(run: "r", key: "m")?.value.isNaN == true)
        try store.flush()
        #expect(try store.latest(run: "r", key: "m")?.value.isNaN == true)
        try log(11, 0, 3)
        #expect(try store.latest(run: "r", key: "m") == MetricPoint(step: 11, timestamp: 0, value: 3))
        #expect(try store.latest(run: "r", key: "other") == nil)
    }

    /// One open store per directory: a second open is refused with the holder's pid, until the first closes (or
    /// its process dies, which `abandon()` stands for).
    @Test func aStoreDirectoryIsOpenedOnceAtATime() throws {
        let dir = TempDir("lock")
        let first = try MetricStore(directory: dir.path, configuration: testConfig())
        try first.append(run: "r", key: "m", step: 1, timestamp: 1, value: 1)
        do {
            _ = try MetricStore(directory: dir.path, configuration: testConfig())
            Issue.record("a second store opened a directory in use")
        } catch let e as StorageError {
            #expect(e.code == .locked && e.message.contains("pid \(getpid())") && e.path == dir.path + "/LOCK", "\(e)")
        }
        // Repair rewrites files: it refuses a directory an open store holds.
        #expect { _ = try StoreCheck.repair(directory: dir.path) } throws: { ($0 as? StorageError)?.code == .locked }
        try first.close()
        let second = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect(try second.read(run: "r", key: "m").count == 1)
        second.abandon()
        let third = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect(try third.read(run: "r", key: "m").count == 1)
        try third.close()
    }

    /// With little room for open indexes, idle runs are closed and reopened on use: every point stays readable,
    /// appends after a reopen continue the segment chain, retried batch ids are still recognised, the open indexes
    /// stay near the budget, and the directory checks clean after a restart.
    @Test func idleRunsAreClosedAndReopenedOnUse() throws {
        let dir = TempDir("unload")
        var config = testConfig(durability: .sync)
        config.openIndexBytes = 64 << 10
        var store = try MetricStore(directory: dir.path, configuration: config)
        let runs = (0..<60).map { "run\($0)" }
        let keys = (0..<100).map { "suite/task_\($0)/acc" }
        var expected: [String: [String: [MetricPoint]]] = [:]
        for round in 0..<3 {
            for r in runs {
                let batch = keys.enumerated().map { k, key in
                    SeriesBatch(key: key, steps: [Int64(round)], timestamps: [Int64(round)], values: [Double(k + round)])
                }
                #expect(try store.append(run: r, series: batch, batchID: "\(r)-\(round)"))
                for (k, key) in keys.enumerated() {
                    expected[r, default: [:]][key, default: []].append(MetricPoint(step: Int64(round), timestamp: Int64(round), value: Double(k + round)))
                }
                try store.flush(run: r)
            }
            #expect(store.openIndexBytes <= config.openIndexBytes + (64 << 10), "\(store.openIndexBytes) bytes of open indexes")
        }
        // Retries of batches sealed before their run was closed are recognised after it reopens.
        for r in runs.prefix(5) {
            #expect(try store.append(run: r, series: [SeriesBatch(key: keys[0], steps: [0], timestamps: [0], values: [99])], batchID: "\(r)-1") == false)
        }
        for r in runs {
            for key in [keys[0], keys[57], keys[99]] { #expect(try store.read(run: r, key: key).points == expected[r]![key]!) }
        }
        try store.close()
        store = try MetricStore(directory: dir.path, configuration: config)
        for r in runs { #expect(try store.read(run: r, key: keys[42]).points == expected[r]![keys[42]]!) }
        try store.close()
        let report = try StoreCheck.check(directory: dir.path)
        #expect(report.problems.isEmpty && report.points == runs.count * keys.count * 3)
    }

    @Test func deleteRunRemovesEverything() throws {
        let dir = TempDir("del")
        let store = try MetricStore(directory: dir.path, configuration: testConfig())
        for i in 0..<200 { try store.append(run: "gone", key: "m", step: Int64(i), timestamp: 0, value: 1) }
        try store.append(run: "kept", key: "m", step: 0, timestamp: 0, value: 1)
        try store.flush()
        try store.deleteRun("gone")
        #expect(try store.read(run: "gone", key: "m").count == 0)
        #expect(store.runIDs() == ["kept"])
        #expect(try FileIO.list(dir.path + "/runs") == ["kept"])
        store.abandon()  // the process "dies": the directory is free again
        let reopened = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect(reopened.runIDs() == ["kept"])
    }

    @Test func runIDsWithAnyCharactersRoundTrip() throws {
        let dir = TempDir("ids")
        let ids = ["abc123", "with/slash", "../escape", "ünïcode ✓", "%41", ".hidden"]
        do {
            let store = try MetricStore(directory: dir.path, configuration: testConfig())
            for id in ids { try store.append(run: id, key: "k/ey", step: 1, timestamp: 2, value: 3) }
            try store.close()
        }
        let store = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect(store.runIDs() == ids.sorted())
        for id in ids { #expect(try store.read(run: id, key: "k/ey").points == [MetricPoint(step: 1, timestamp: 2, value: 3)]) }
        #expect(try FileIO.list(dir.path + "/runs").allSatisfy { !$0.contains("/") && !$0.hasPrefix(".") })
    }

    @Test func badAppendsStoreNothing() throws {
        let dir = TempDir("bad")
        let store = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect(throws: StorageError.self) {
            try store.append(run: "r", series: [SeriesBatch(key: "ok", steps: [1], timestamps: [1], values: [1]),
                                                SeriesBatch(key: "bad", steps: [1, 2], timestamps: [1], values: [1, 2])])
        }
        #expect(throws: StorageError.self) { try store.append(run: "r", key: "", step: 0, timestamp: 0, value: 0) }
        #expect(try store.keys(run: "r").isEmpty)
        try store.close()
        #expect(throws: StorageError.self) { try store.append(run: "r", key: "m", step: 0, timestamp: 0, value: 0) }
    }

    @Test func headMemoryBudgetHoldsWithAThousandRuns() throws {
        let dir = TempDir("budget")
        var config = testConfig(blockPoints: 4096, rollup: 64)
        config.headMemoryBudget = 4 << 20
        let store = try MetricStore(directory: dir.path, configuration: config)
        var rng = SplitMix64(seed: 30)
        var peak = 0
        var total = 0
        for round in 0..<6 {
            for r in 0..<1000 {
                let n = 20 + Int(rng.next() % 40)
                let base = Int64(round * 100)
                try store.append(run: "run\(r)", series: [
                    SeriesBatch(key: "loss", steps: (0..<n).map { base + Int64($0) }, timestamps: Array(repeating: 0, count: n),
                                values: (0..<n).map { _ in rng.unit() })
                ])
                total += n
                peak = max(peak, store.headBytes)
            }
        }
        #expect(peak <= config.headMemoryBudget)
        #expect(store.headBytes == store.runs.withLock { $0.values.reduce(0) { $0 + $1.headBytes.load(ordering: .relaxed) } })
        var stored = 0
        for r in 0..<1000 {
            let st = try store.stats(run: "run\(r)")
            stored += st.sealedPoints + st.headPoints
        }
        #expect(stored == total)
        #expect(try store.stats(run: "run0").segments > 0)
    }

    /// Appends count only the heads they touch; the total must still equal a full recount of every head, through
    /// wide batches, growing series, seals and a replay.
    @Test func incrementalHeadAccountingMatchesARecount() throws {
        let dir = TempDir("account")
        var config = testConfig(blockPoints: 128, rollup: 64)  // the dense series seal as they grow
        config.headMemoryBudget = 256 << 20
        func recount(_ store: MetricStore) -> Int {
            store.runs.withLock { runs in
                runs.values.reduce(0) { sum, run in
                    sum + run.state.withLock { s in s.heads.values.reduce(0) { $0 + $1.bytes } + s.frozen.reduce(0) { $0 + $1.bytes } }
                }
            }
        }
        do {
            let store = try MetricStore(directory: dir.path, configuration: config)
            for c in 0..<3 {
                for r in 0..<5 {
                    // A benchmark-suite checkpoint: 1,500 keys, one point each.
                    try store.append(run: "wide\(r)", series: (0..<1500).map { k in
                        SeriesBatch(key: "suite/task_\(k)/acc", steps: [Int64(c)], timestamps: [1], values: [Double(k)])
                    })
                    // A dense series growing by 100 points.
                    try store.append(run: "dense\(r)", series: [SeriesBatch(key: "loss", steps: (0..<100).map { Int64(c * 100 + $0) },
                                                                               timestamps: Array(repeating: 1, count: 100),
                                                                               values: (0..<100).map(Double.init))])
                    #expect(store.headBytes == recount(store))
                    #expect(minLSNsMatchARecount(store))
                }
            }
            // One-point series cost about what they hold, not a reserved block each.
            #expect(store.headBytes < 5 * 1500 * 400 + 5 * 64 << 10)
        }
        let reopened = try MetricStore(directory: dir.path, configuration: config)  // no clean close: replay
        #expect(reopened.headBytes == recount(reopened))
        #expect(minLSNsMatchARecount(reopened))
        try reopened.flush(run: "dense0")
        #expect(minLSNsMatchARecount(reopened))
        try reopened.close()
    }

    /// Every run's kept oldest-WAL-record equals a walk over its heads and frozen sets.
    func minLSNsMatchARecount(_ store: MetricStore) -> Bool {
        store.runs.withLock { runs in
            runs.values.allSatisfy { run in
                run.state.withLock { s in
                    let heads = s.heads.values.compactMap(\.minLSN).min()
                    let frozen = s.frozen.compactMap(\.minLSN).min()
                    let walked = [heads, frozen].compactMap { $0 }.min()
                    return s.minLSN == walked && (s.heads.isEmpty || heads != nil)
                }
            }
        }
    }

    /// Seals under memory pressure in every appending thread checkpoint the log concurrently: their manifest writes
    /// must not collide (they shared one temporary file, and a run-of-the-mill 500 came out of it with 10,000 runs).
    @Test func concurrentCheckpointsNeverCollide() async throws {
        let dir = TempDir("ckpt")
        var config = testConfig(blockPoints: 64)
        config.headMemoryBudget = 256 << 10
        config.wal!.segmentBytes = 32 << 10
        config.wal!.maxSegments = 1
        let store = try MetricStore(directory: dir.path, configuration: config)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<8 {
                group.addTask {
                    for r in 0..<40 {
                        for c in 0..<3 {
                            try store.append(run: "w\(w)r\(r)", series: (0..<100).map { k in
                                SeriesBatch(key: "k\(k)", steps: [Int64(c)], timestamps: [1], values: [Double(k)])
                            })
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(store.maintenanceError == nil)
        for w in 0..<8 {
            for r in [0, 17, 39] { #expect(try store.read(run: "w\(w)r\(r)", key: "k7").steps == [0, 1, 2]) }
        }
        try store.close()
        #expect(try StoreCheck.check(directory: dir.path).problems.isEmpty)
    }

    @Test func autoSealKeepsLockstepSeriesAlignedAndSharesColumns() throws {
        let dir = TempDir("share")
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 1000, rollup: 64))
        let data = SyntheticRun(rows: 5000)
        var r0 = 0
        while r0 < data.rows {
            let r1 = min(data.rows, r0 + 137)
            try store.append(run: "r", series: SyntheticRun.keys.map { k in
                SeriesBatch(key: k, steps: Array(data.steps[r0..<r1]), timestamps: Array(data.timestamps[r0..<r1]),
                            values: Array(data.values[k]![r0..<r1]))
            })
            r0 = r1
        }
        try store.flush()
        let seg = try #require(try store.run("r", create: false)?.state.withLock { $0.segments.first })
        let tsRefs = Set((0..<seg.series.count).map { seg.series.blocks($0)[0].timestamps.offset })
        #expect(tsRefs.count == 1, "all seven series share one timestamp chunk")
        // What `tally store stats` reports: blocks per series, and shared step/timestamp chunks counted once for the
        // run but in full for each series.
        let storage = try store.storage(run: "r")
        let blocks = Set(storage.values.map(\.blocks))
        #expect(storage.values.allSatisfy { $0.points == 5000 } && blocks.count == 1 && blocks.first! >= 5, "\(blocks)")
        let perSeries = storage.values.reduce(0) { $0 + $1.stepBytes + $1.timestampBytes }
        let once = try store.stats(run: "r").stepTimestampBytes
        #expect(once > 0 && Int(once) * SyntheticRun.keys.count == perSeries, "\(once) once, \(perSeries) over the series")
        for k in SyntheticRun.keys {
            let got = try store.read(run: "r", key: k)
            #expect(got.steps == data.steps && got.timestamps == data.timestamps && bits(got.values) == bits(data.values[k]!))
        }
    }

    @Test func concurrentAppendsAndReadsAreConsistent() async throws {
        let dir = TempDir("conc")
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 256, rollup: 8))
        let writers = 4, batches = 60, perBatch = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for b in 0..<batches {
                        let base = Int64(b * perBatch)
                        // Two writers share each run; each owns its key.
                        try store.append(run: "run\(w % 2)", series: [
                            SeriesBatch(key: "w\(w)", steps: (0..<perBatch).map { base + Int64($0) },
                                        timestamps: Array(repeating: Int64(w), count: perBatch),
                                        values: (0..<perBatch).map { Double(base) + Double($0) })
                        ])
                        if b % 17 == 0 { try store.flush(run: "run\(w % 2)") }
                    }
                }
            }
            group.addTask {
                // Readers always see whole batches, in order, with the right values.
                for _ in 0..<100 {
                    for w in 0..<writers {
                        let d = try store.read(run: "run\(w % 2)", key: "w\(w)")
                        #expect(d.count % perBatch == 0)
                        #expect(d.steps == (0..<d.count).map { Int64($0) })
                        #expect(d.values == (0..<d.count).map { Double($0) })
                        let s = try store.summary(run: "run\(w % 2)", key: "w\(w)")
                        #expect(s.count >= d.count)
                    }
                }
            }
            try await group.waitForAll()
        }
        for w in 0..<writers {
            #expect(try store.read(run: "run\(w % 2)", key: "w\(w)").count == batches * perBatch)
        }
        try store.compact(run: "run0")
        #expect(try store.read(run: "run0", key: "w0").values == (0..<(batches * perBatch)).map { Double($0) })
    }
}
