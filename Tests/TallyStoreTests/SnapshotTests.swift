import Foundation
import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore

/// ``MetricStore/snapshot(before:)``: copies taken while writers append and seal and compact their runs
/// and a run is deleted; each copy opens, checks clean, and holds every point acknowledged before it was taken.
@Suite struct SnapshotTests {
    static func config() -> StoreConfiguration {
        var c = testConfig(blockPoints: 64, pack: 8, durability: Durability.none)
        c.sealPoints = 50
        c.compactionThreshold = 2
        c.sealsInBackground = false  // seals and compactions on the writers' threads, beside the snapshots
        c.wal!.segmentBytes = 64 << 10  // many log segments, rotated and checkpointed during the test
        return c
    }

    /// The value every writer stores at `step` of `key`: a copy's points are checked against it.
    static func value(_ run: Int, _ key: String, _ step: Int64) -> Double { Double(run * 1_000_000) + Double(step) * (key == "a" ? 0.5 : -0.25) }

    @Test func copiesTakenWhileWritersGoOnHoldEveryAcknowledgedPoint() throws {
        let dir = TempDir("snapshot")
        let store = try MetricStore(directory: dir.path + "/store", configuration: Self.config())
        let writers = 3, keys = ["a", "b"], steps: Int64 = 4_000
        // Points acknowledged per writer (both keys get the same steps).
        let acknowledged = Mutex([Int](repeating: 0, count: writers))
        let done = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        for w in 0..<writers {
            Thread {
                defer { done.add(1, ordering: .releasing) }
                var rng = SplitMix64(seed: UInt64(w + 1))
                var next: Int64 = 0
                do {
                    while next < steps {
                        let n = 1 + Int64(rng.next() % 40)
                        let steps = Array(next..<(next + n))
                        try store.append(run: "r\(w)", series: keys.map { k in
                            SeriesBatch(key: k, steps: steps, timestamps: steps.map { $0 * 10 }, values: steps.map { Self.value(w, k, $0) })
                        })
                        next += n
                        acknowledged.withLock { $0[w] = Int(next) }
                    }
                } catch {
                    failures.withLock { $0.append("writer \(w): \(error)") }
                }
            }.start()
        }
        // A run written and deleted before the copies: none of them may bring it back.
        try store.append(run: "gone", series: [SeriesBatch(key: "a", steps: [1, 2], timestamps: [1, 2], values: [1, 2])])
        try store.flush(run: "gone")
        try store.deleteRun("gone")
        var copies: [(path: String, floor: [Int], snapshot: StoreSnapshot)] = []
        for i in 0..<4 {
            while acknowledged.withLock({ $0.max()! < 500 + 1_000 * i }) && done.load(ordering: .acquiring) < writers { usleep(1000) }
            let floor = acknowledged.withLock { $0 }
            var ranBefore = false
            let snapshot = try store.snapshot(before: { ranBefore = true })
            #expect(ranBefore)
            copies.append((dir.path + "/copy\(i)", floor, snapshot))
        }
        while done.load(ordering: .acquiring) < writers { usleep(1000) }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(store.activity.segmentsSealed > 0 && store.activity.compactions > 0, "seals and compactions ran while the copies were taken")
        // Written after the writers moved on (the links keep what the store since removed), then the staging goes.
        for c in copies {
            try c.snapshot.write(to: c.path)
            c.snapshot.discard()
            #expect(!FileManager.default.fileExists(atPath: c.snapshot.staging))
        }
        try store.close()
        for c in copies {
            let report = try StoreCheck.check(directory: c.path)
            #expect(report.problems.isEmpty, "\(c.path): \(report.problems)")
            let copy = try MetricStore(directory: c.path, configuration: Self.config())
            #expect(!copy.runIDs().contains("gone"))
            for w in 0..<writers {
                for k in keys {
                    let data = try copy.read(run: "r\(w)", key: k)
                    // A prefix of what was appended, at least as long as what was acknowledged before the copy.
                    #expect(data.steps == Array(0..<Int64(data.steps.count)), "\(c.path) r\(w)/\(k): not a prefix")
                    #expect(data.steps.count >= c.floor[w], "\(c.path) r\(w)/\(k): \(data.steps.count) < \(c.floor[w]) acknowledged")
                    #expect(bits(data.values) == bits(data.steps.map { Self.value(w, k, $0) }))
                }
            }
            try copy.close()
        }
    }

    /// A copy goes into a new directory only; staging left by a process that died mid-copy is removed at the next
    /// open; a store without a log (a cluster copy) is refused.
    @Test func refusalsAndLeftovers() throws {
        let dir = TempDir("snapshot-edges")
        var store: MetricStore? = try MetricStore(directory: dir.path + "/store", configuration: Self.config())
        try store!.append(run: "r", series: [SeriesBatch(key: "a", steps: [1], timestamps: [1], values: [1])])
        let first = try store!.snapshot()
        try first.write(to: dir.path + "/copy")
        #expect(throws: StorageError.self) { try first.write(to: dir.path + "/copy") }
        let left = try store!.snapshot()  // never written nor discarded: as if the process died
        #expect(FileManager.default.fileExists(atPath: left.staging))
        try store!.close()
        store = try MetricStore(directory: dir.path + "/store", configuration: Self.config())
        #expect(!FileManager.default.fileExists(atPath: left.staging))
        try store!.close()
        var logless = Self.config()
        logless.wal = nil
        let cluster = try MetricStore(directory: dir.path + "/cluster", configuration: logless)
        #expect(throws: StorageError.self) { try cluster.snapshot() }
        try cluster.close()
    }
}
