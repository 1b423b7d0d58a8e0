import Foundation
import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore

/// MLflow's exact-duplicate rule in the store (``DuplicateCheck``): against a brute-force oracle for random arrival
/// orders, with seals, compaction and reopening between batches, and under concurrent writers.
@Suite struct DuplicateTests {
    /// MLflow's comparison: same step, timestamp and value, NaN equal to NaN (and 0 to -0).
    static func same(_ a: MetricPoint, _ b: MetricPoint) -> Bool {
        a.step == b.step && a.timestamp == b.timestamp && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
    }

    /// Appends `pts` as the tracking layer does: mark, then the latest value, then the checked append.
    static func appendChecked(_ store: MetricStore, run: String, key: String, _ pts: [MetricPoint], latest: MetricPoint?? = nil) throws {
        let mark = try store.duplicateMark(run: run)
        let known = try latest ?? store.latest(run: run, key: key)
        let check = DuplicateCheck(mark: mark, latest: known.map { [key: $0] } ?? [:])
        let columns = SeriesColumns([SeriesBatch(key: key, steps: pts.map(\.step), timestamps: pts.map(\.timestamp), values: pts.map(\.value))])
        try store.settle(try store.appendVisible(try store.prepareAppend(run: run, columns: columns, duplicates: check)))
    }

    /// Stored points as a sorted multiset (NaN and -0 canonical).
    static func canonical(_ pts: [MetricPoint]) -> [[UInt64]] {
        pts.map { p in
            let v = p.value.isNaN ? Double.nan.bitPattern : (p.value == 0 ? 0 : p.value.bitPattern)
            return [UInt64(bitPattern: p.step), UInt64(bitPattern: p.timestamp), v]
        }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    static func stored(_ store: MetricStore, run: String, key: String) throws -> [MetricPoint] {
        let d = try store.read(run: run, key: key)
        return d.steps.indices.map { MetricPoint(step: d.steps[$0], timestamp: d.timestamps[$0], value: d.values[$0]) }
    }

    @Test(arguments: 0..<12)
    func randomArrivalOrdersStoreEachPointOnce(seed: Int) throws {
        let dir = TempDir("dups")
        var rng = SplitMix64(seed: UInt64(700 + seed))
        var config = testConfig(blockPoints: 16, pack: 4, durability: seed % 3 == 0 ? nil : Durability.none)
        config.compactionThreshold = seed % 2 == 0 ? 0 : 3
        var store = try MetricStore(directory: dir.path, configuration: config)
        // A small space of points, so repeats are frequent: several values and timestamps per step.
        let values: [Double] = [0.5, 1, .nan, 0, -0.0, 2, -3.25]
        let universe: [MetricPoint] = (0..<60).flatMap { step in
            (0..<2).flatMap { t in values.indices.filter { _ in rng.next() % 3 == 0 }.map { MetricPoint(step: Int64(step), timestamp: Int64(100 + t), value: values[$0]) } }
        }
        var oracle: [MetricPoint] = []
        for round in 0..<80 {
            // A batch of distinct points (MLflow's batch drops its own repeats before the store sees it).
            var batch: [MetricPoint] = []
            for _ in 0..<(1 + Int(rng.next() % 20)) {
                let p = universe[Int(rng.next() % UInt64(universe.count))]
                if !batch.contains(where: { Self.same($0, p) }) { batch.append(p) }
            }
            try Self.appendChecked(store, run: "r", key: "loss", batch)
            oracle += batch.filter { p in !oracle.contains(where: { Self.same($0, p) }) }
            switch rng.next() % 10 {
            case 0, 1: try store.flush(run: "r")
            case 2: try store.compact(run: "r")
            case 3 where config.wal != nil:
                try store.close()
                store = try MetricStore(directory: dir.path, configuration: config)
            default: break
            }
            if round % 10 == 9 { #expect(Self.canonical(try Self.stored(store, run: "r", key: "loss")) == Self.canonical(oracle)) }
        }
        try store.flush(run: "r")
        try store.compact(run: "r")
        #expect(Self.canonical(try Self.stored(store, run: "r", key: "loss")) == Self.canonical(oracle))
        try store.close()
    }

    /// A point stored and sealed after the caller's mark but before its latest read saw it (another server's write,
    /// say): compared under the lock whatever the stale latest value says.
    @Test func pointsSealedAfterTheMarkAreComparedDespiteAStaleLatest() throws {
        let dir = TempDir("dups-mark")
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 16, pack: 4))
        defer { try? store.close() }
        try store.append(run: "r", key: "loss", step: 1, timestamp: 10, value: 1)
        try store.flush(run: "r")
        let mark = try store.duplicateMark(run: "r")
        let stale = try store.latest(run: "r", key: "loss")
        // Meanwhile another writer stores (5, 50, 5) and it is sealed, then compacted with the older segment.
        try store.append(run: "r", key: "loss", step: 5, timestamp: 50, value: 5)
        try store.flush(run: "r")
        try store.compact(run: "r")
        let check = DuplicateCheck(mark: mark, latest: stale.map { ["loss": $0] } ?? [:])
        let columns = SeriesColumns([SeriesBatch(key: "loss", steps: [5, 1, 6], timestamps: [50, 10, 60], values: [5, 1, 6])])
        try store.settle(try store.appendVisible(try store.prepareAppend(run: "r", columns: columns, duplicates: check)))
        #expect(try Self.stored(store, run: "r", key: "loss").map(\.step) == [1, 5, 6])
    }

    /// An append visible but not settled (its caller's metadata transaction not committed, so the latest values
    /// another writer reads do not show it) whose points are sealed before that writer's mark: still compared.
    @Test func pointsOfAnUnsettledAppendSealedBeforeTheMarkAreCompared() throws {
        let dir = TempDir("dups-unsettled")
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 16, pack: 4))
        defer { try? store.close() }
        func columns(_ steps: [Int64]) -> SeriesColumns {
            SeriesColumns([SeriesBatch(key: "loss", steps: steps, timestamps: steps.map { $0 * 10 }, values: steps.map { Double($0) })])
        }
        let first = try store.appendVisible(try store.prepareAppend(run: "r", columns: columns([1, 2, 3])))
        try store.flush(run: "r")  // sealed while its writer has not settled
        let mark = try store.duplicateMark(run: "r")
        let check = DuplicateCheck(mark: mark, latest: [:])  // the other writer's latest values: nothing committed yet
        try store.settle(try store.appendVisible(try store.prepareAppend(run: "r", columns: columns([2, 3, 4]), duplicates: check)))
        try store.settle(first)
        #expect(try Self.stored(store, run: "r", key: "loss").map(\.step) == [1, 2, 3, 4])
        // Settled: the mark moves on.
        #expect(try store.duplicateMark(run: "r") != mark)
    }

    /// Writers appending overlapping batches into one run at once (ranks and retries): each point stored once.
    @Test(arguments: [false, true]) func concurrentWritersStoreEachPointOnce(background: Bool) throws {
        let dir = TempDir("dups-threads")
        var config = testConfig(blockPoints: 64, pack: 8)
        config.sealPoints = 200
        config.compactionThreshold = 4
        config.sealsInBackground = background
        let store = try MetricStore(directory: dir.path, configuration: config)
        defer { try? store.close() }
        let failures = Mutex<[String]>([])
        let sent = Mutex<Set<Int64>>([])
        let threads = 6
        let done = Atomic<Int>(0)
        for t in 0..<threads {
            Thread {
                defer { done.add(1, ordering: .releasing) }
                var rng = SplitMix64(seed: UInt64(t))
                do {
                    for _ in 0..<150 {
                        // Every thread logs the same points: steps in a sliding window, one value per step.
                        let start = Int64(rng.next() % 2000)
                        let pts = (start..<(start + 1 + Int64(rng.next() % 40))).map { MetricPoint(step: $0, timestamp: $0 * 10, value: Double($0 % 7)) }
                        try Self.appendChecked(store, run: "r", key: "loss", pts)
                        sent.withLock { $0.formUnion(pts.map(\.step)) }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }.start()
        }
        while done.load(ordering: .acquiring) < threads { usleep(1000) }
        #expect(failures.withLock { $0 }.isEmpty)
        let stored = try Self.stored(store, run: "r", key: "loss")
        #expect(Set(stored.map(\.step)).count == stored.count, "a point stored twice")
        #expect(Set(stored.map(\.step)) == sent.withLock { $0 }, "a point sent and not stored")
    }

    /// Seals in the background: a head that fills up is sealed (and the run compacted) by the maintenance queue, every
    /// point stays readable throughout, and close drains the queue.
    @Test func backgroundSealsKeepEveryPointReadable() throws {
        let dir = TempDir("bg-seals")
        var config = testConfig(blockPoints: 64, pack: 8, durability: .sync)
        config.sealPoints = 100
        config.compactionThreshold = 3
        config.sealsInBackground = true
        let store = try MetricStore(directory: dir.path, configuration: config)
        var sent: [Int64] = []
        for b in 0..<40 {
            let steps = (Int64(b * 30)..<Int64(b * 30 + 30)).reversed().map { $0 }  // out of order within the head too
            try store.append(run: "r", series: [SeriesBatch(key: "loss", steps: steps, timestamps: steps, values: steps.map(Double.init))])
            sent += steps
            #expect(try store.read(run: "r", key: "loss").steps == sent.sorted())
        }
        var waited = 0
        while try store.stats(run: "r").segments == 0 && waited < 5_000 {
            usleep(1_000)
            waited += 1
        }
        #expect(try store.stats(run: "r").segments > 0, "the queue sealed the run")
        try store.close()
        let reopened = try MetricStore(directory: dir.path, configuration: config)
        defer { try? reopened.close() }
        #expect(try reopened.read(run: "r", key: "loss").steps == sent.sorted())
        #expect(try reopened.stats(run: "r").headPoints == 0, "close sealed everything after draining the queue")
    }
}
