import Foundation
import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore

/// ``MetricStore/snapshot(before:)``: copies taken while writers append and seal and compact their runs
/// and a run is deleted; each copy opens, checks clean, and holds every point acknowledged before it was listed.
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
            // Listed, then staged while the writers seal, compact and checkpoint (their removals held off meanwhile).
            let listing = try store.listSnapshot(before: { ranBefore = true })
            #expect(ranBefore)
            usleep(UInt32(5_000 * (i + 1)))
            let snapshot = try store.stage(listing)
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

    /// Between a listing and its staging, a compaction's inputs and the log segments a checkpoint frees stay on disk
    /// (removed when the listing is staged), and a run's deletion waits: the staging links every file listed.
    @Test func removalsWaitForTheListingToBeStaged() throws {
        let dir = TempDir("snapshot-held")
        var config = Self.config()
        config.compactionThreshold = 100  // compactions only when asked for
        let store = try MetricStore(directory: dir.path + "/store", configuration: config)
        func add(_ run: String, _ steps: Range<Int64>) throws {
            try store.append(run: run, series: [SeriesBatch(key: "a", steps: Array(steps), timestamps: Array(steps), values: steps.map(Double.init))])
            try store.flush(run: run)
        }
        for part in 0..<4 { try add("kept", Int64(part * 100)..<Int64(part * 100 + 100)) }
        try add("deleted", 0..<100)
        let runDirectory = try #require(try store.run("kept", create: false)).directory
        let inputs = try FileIO.list(runDirectory).filter { $0.hasSuffix(".seg") }
        #expect(inputs.count >= 4)

        let listing = try store.listSnapshot()
        let listedLog = listing.files.filter { $0.path.hasPrefix("wal/") }.map(\.source)
        #expect(try store.compact(run: "kept") >= 4)
        // The log rotated past every segment listed, all of it sealed, then checkpointed.
        for part in 0..<40 { try add("later", Int64(part * 250)..<Int64(part * 250 + 250)) }
        try store.maintainWAL()
        let wal = try #require(store.wal)
        let dropped = listedLog.filter { p in !wal.closedSegments.contains { $0.path == p } }
        #expect(!dropped.isEmpty, "the checkpoint dropped log segments that were listed")
        #expect(dropped.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "and their files stay while held")
        #expect(try FileIO.list(runDirectory).filter { $0.hasSuffix(".seg") }.count == inputs.count + 1, "the inputs stay while held")
        #expect(store.removals.deferredCount >= inputs.count + dropped.count)
        let deleted = Atomic<Bool>(false)
        let deletion = Thread {
            try? store.deleteRun("deleted")
            deleted.store(true, ordering: .releasing)
        }
        deletion.start()
        while store.removals.waitingDeletions == 0 { usleep(1_000) }
        usleep(20_000)
        let deletedEarly = deleted.load(ordering: .acquiring)
        #expect(!deletedEarly, "a deletion waits for the staging")
        let snapshot = try store.stage(listing)
        while !deleted.load(ordering: .acquiring) { usleep(1_000) }
        #expect(try FileIO.list(runDirectory).filter { $0.hasSuffix(".seg") }.count == 1, "the inputs are removed once staged")
        #expect(store.removals.deferredCount == 0)
        #expect(dropped.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        #expect(!store.runIDs().contains("deleted"))
        try snapshot.write(to: dir.path + "/copy")
        snapshot.discard()
        try store.close()
        let copy = try MetricStore(directory: dir.path + "/copy", configuration: config)
        #expect(try copy.read(run: "kept", key: "a").steps == Array(0..<400))
        #expect(try copy.read(run: "deleted", key: "a").steps == Array(0..<100), "deleted after the listing: in the copy")
        try copy.close()
        #expect(try StoreCheck.check(directory: dir.path + "/copy").problems.isEmpty)
    }

    /// The last hold's release removes the deferred files before a waiting deletion goes on: a run deleted and made
    /// again under the same id writes segment names a deferred removal could otherwise take from it.
    @Test func aDeletionGoesOnOnceTheDeferredFilesAreGone() throws {
        let dir = TempDir("removals")
        let removals = FileRemovals()
        let paths = (0..<200).map { dir.path + "/f\($0)" }
        for p in paths { #expect(FileManager.default.createFile(atPath: p, contents: Data([1]))) }
        removals.hold()
        for p in paths { try removals.remove(p) }
        #expect(removals.deferredCount == paths.count && paths.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        let seen = Mutex<Int?>(nil)
        let deletion = Thread {
            removals.excludingHolds { seen.withLock { $0 = paths.filter { FileManager.default.fileExists(atPath: $0) }.count } }
        }
        deletion.start()
        while removals.waitingDeletions == 0 { usleep(1_000) }
        removals.release()
        while seen.withLock({ $0 }) == nil { usleep(1_000) }
        #expect(seen.withLock { $0 } == 0, "the deletion ran only after every deferred file was removed")
        try removals.remove(paths[0])  // no hold: at once, and a missing file is no error
        #expect(removals.deferredCount == 0)
    }

    /// A copy written next to an earlier one links the segments that did not change (the same files: one inode),
    /// copies the rest, and opens with every point.
    @Test func anIncrementalCopyLinksWhatDidNotChange() throws {
        let dir = TempDir("snapshot-incremental")
        let store = try MetricStore(directory: dir.path + "/store", configuration: Self.config())
        func add(_ run: String, _ steps: Range<Int64>) throws {
            try store.append(run: run, series: [SeriesBatch(key: "a", steps: Array(steps), timestamps: Array(steps), values: steps.map(Double.init))])
            try store.flush(run: run)
        }
        try add("still", 0..<300)
        try add("growing", 0..<300)
        let first = try store.snapshot()
        let a = try first.write(to: dir.path + "/a")
        first.discard()
        #expect(a.reusedFiles == 0 && a.copiedBytes > 0)
        try add("growing", 300..<600)
        let second = try store.snapshot()
        let b = try second.write(to: dir.path + "/b", reusing: dir.path + "/a")
        second.discard()
        let stillSegments = try FileIO.list(dir.path + "/a/runs/still").filter { $0.hasSuffix(".seg") }
        #expect(b.reusedFiles >= stillSegments.count + 1, "the unchanged run's segments and the growing run's first")
        for name in stillSegments {
            var x = stat(), y = stat()
            #expect(stat(dir.path + "/a/runs/still/" + name, &x) == 0 && stat(dir.path + "/b/runs/still/" + name, &y) == 0 && x.st_ino == y.st_ino)
        }
        #expect(b.copiedBytes > 0, "the new segment and the log are copied")
        for name in try FileIO.list(dir.path + "/b/wal") {
            var st = stat()
            #expect(stat(dir.path + "/b/wal/" + name, &st) == 0 && st.st_nlink == 1, "log segments are never linked: \(name)")
        }
        try store.close()
        let copy = try MetricStore(directory: dir.path + "/b", configuration: Self.config())
        #expect(try copy.read(run: "growing", key: "a").steps == Array(0..<600))
        #expect(try copy.read(run: "still", key: "a").steps == Array(0..<300))
        try copy.close()
        #expect(try StoreCheck.check(directory: dir.path + "/b").problems.isEmpty)
    }

    /// Runs not loaded since the store opened, and runs unloaded when idle, are copied whole: from a listing made
    /// before the snapshot (``MetricStore/prepareSnapshot()``), or made during it, and kept across an unload.
    @Test func runsNotLoadedAreCopiedWhole() throws {
        let dir = TempDir("snapshot-unloaded")
        var store = try MetricStore(directory: dir.path + "/store", configuration: Self.config())
        for r in 0..<3 {
            try store.append(run: "r\(r)", series: [SeriesBatch(key: "a", steps: Array(0..<200), timestamps: Array(0..<200), values: (0..<200).map(Double.init))])
            try store.flush(run: "r\(r)")
        }
        try store.close()
        store = try MetricStore(directory: dir.path + "/store", configuration: Self.config())
        func copy(_ name: String, prepare: Bool) throws -> MetricStore {
            if prepare { try store.prepareSnapshot() }
            let snapshot = try store.snapshot()
            try snapshot.write(to: dir.path + "/" + name)
            snapshot.discard()
            return try MetricStore(directory: dir.path + "/" + name, configuration: Self.config())
        }
        func expectWhole(_ c: MetricStore, _ steps: [Int: Int64]) throws {
            for (r, n) in steps { #expect(try c.read(run: "r\(r)", key: "a").steps == Array(0..<n), "r\(r)") }
            try c.close()
        }
        try expectWhole(try copy("listed-during", prepare: false), [0: 200, 1: 200, 2: 200])
        try expectWhole(try copy("listed-before", prepare: true), [0: 200, 1: 200, 2: 200])
        // r1 loaded and given a segment more, then unloaded: its kept list has the new segment.
        try store.append(run: "r1", series: [SeriesBatch(key: "a", steps: Array(200..<300), timestamps: Array(200..<300), values: (200..<300).map(Double.init))])
        try store.flush(run: "r1")
        let r1 = try #require(try store.run("r1", create: false))
        r1.unloadIfIdle()
        #expect(r1.state.withLock { !$0.loaded && $0.unloadedSeqs?.count == 2 })
        try expectWhole(try copy("after-unload", prepare: true), [0: 200, 1: 300, 2: 200])
        try store.close()
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
