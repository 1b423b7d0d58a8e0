import Foundation
import Synchronization
import Testing
@testable import TallyStore

/// A run's segments handed from one store to another (how a cluster server seals a run into object storage and
/// another installs it): the linked set holds every point, survives the owner's compactions, installs into another
/// store as the whole run, bit-exact, with batch ids and later appends going on from it; a damaged or incomplete
/// set installs nothing and names the file.
@Suite struct SegmentSetTests {
    static func append(_ s: MetricStore, _ run: String, _ from: Int, _ n: Int, batch: String) throws {
        var c = SeriesColumns()
        let steps = (from..<from + n).map { Int64($0) }
        c.append(key: "loss", steps: steps, timestamps: steps, values: steps.map { specialValues[Int($0) % specialValues.count] })
        c.append(key: "lr", steps: steps, timestamps: steps, values: steps.map { 1 / Double($0 + 1) })
        try s.settle(try s.appendVisible(try s.prepareAppend(run: run, columns: c, batchID: batch)))
    }

    static func config() -> StoreConfiguration {
        var c = StoreConfiguration()
        c.blockPoints = 256
        c.wal = nil
        return c
    }

    @Test func aLinkedSetInstallsAsTheWholeRunInAnotherStore() throws {
        let dirA = TempDir("set-a"), dirB = TempDir("set-b"), spool = TempDir("set-spool")
        let a = try MetricStore(directory: dirA.path, configuration: Self.config())
        let b = try MetricStore(directory: dirB.path, configuration: Self.config())
        for i in 0..<6 { try Self.append(a, "r", i * 300, 300, batch: "b\(i)") }
        let first = try a.linkSegments(run: "r", into: spool.path + "/1")
        #expect(!first.isEmpty && first.allSatisfy { $0.path.hasPrefix(spool.path + "/1/") })
        // The owner compacts and deletes its files: the linked set stays readable.
        try a.compact(run: "r")
        try b.installRun("r", segments: first)
        for key in ["loss", "lr"] {
            #expect(bits(try b.read(run: "r", key: key).values) == bits(try a.read(run: "r", key: key).values))
        }
        // Batch ids came with the segments; appends go on from the installed set.
        try Self.append(b, "r", 0, 300, batch: "b0")
        #expect(try b.read(run: "r", key: "loss").values.count == 1_800, "a batch id of the installed set is not stored again")
        try Self.append(b, "r", 1_800, 10, batch: "b6")
        #expect(try b.read(run: "r", key: "lr").steps.last == 1_809)
        // A store holding the run refuses an installation over it.
        #expect(throws: StorageError.self) { try b.installRun("r", segments: first) }
        // The owner's compacted set installs the same points elsewhere after a restart of the receiving store.
        let second = try a.linkSegments(run: "r", into: spool.path + "/2")
        #expect(second.count < first.count)
        try b.installRun("r2", segments: second)
        try b.close()
        let b2 = try MetricStore(directory: dirB.path, configuration: Self.config())
        #expect(bits(try b2.read(run: "r2", key: "loss").values) == bits(try a.read(run: "r", key: "loss").values))
        #expect(try a.linkSegments(run: "absent", into: spool.path + "/3").isEmpty)
        try a.close()
        try b2.close()
    }

    /// A store with a write-ahead log refuses an installation: after a crash its log would replay the run's
    /// earlier deletion or points over the installed copy.
    @Test func aStoreWithALogInstallsNothing() throws {
        let dirA = TempDir("log-a"), dirB = TempDir("log-b"), spool = TempDir("log-spool")
        let a = try MetricStore(directory: dirA.path, configuration: Self.config())
        try Self.append(a, "r", 0, 300, batch: "a")
        let set = try a.linkSegments(run: "r", into: spool.path + "/1")
        var logged = Self.config()
        logged.wal = WALConfiguration()
        let b = try MetricStore(directory: dirB.path, configuration: logged)
        #expect(throws: StorageError.self) { try b.installRun("r", segments: set) }
        #expect(try b.read(run: "r", key: "loss").count == 0)
        #expect(try FileIO.list(dirB.path + "/runs").isEmpty)
        try a.close()
        try b.close()
    }

    @Test func aDamagedOrIncompleteSetInstallsNothing() throws {
        let dirA = TempDir("bad-a"), dirB = TempDir("bad-b"), spool = TempDir("bad-spool")
        let a = try MetricStore(directory: dirA.path, configuration: Self.config())
        let b = try MetricStore(directory: dirB.path, configuration: Self.config())
        for i in 0..<3 {
            try Self.append(a, "r", i * 300, 300, batch: "b\(i)")
            try a.flush(run: "r")
        }
        let set = try a.linkSegments(run: "r", into: spool.path + "/ok")
        #expect(set.count == 3)
        // A copy with one byte of its footer flipped: refused, naming the file.
        let damaged = spool.path + "/damaged"
        try FileIO.makeDirectories(damaged)
        var files: [SegmentFile] = []
        for f in set {
            let path = damaged + "/" + f.fileName
            try FileIO.copy(f.path, to: path)
            files.append(SegmentFile(seq: f.seq, path: path, bytes: f.bytes))
        }
        let victim = files[1].path
        let file = try ReadOnlyFile(path: victim)
        var bytes = try file.read(at: 0, count: Int(file.size), what: "test")
        bytes[bytes.count - 40] ^= 0x10
        try FileIO.writeAtomically(path: victim, bytes: bytes, durable: false)
        do {
            try b.installRun("r", segments: files)
            Issue.record("a damaged segment was installed")
        } catch let e as StorageError {
            #expect("\(e)".contains(SegmentFormat.fileName(seq: files[1].seq)), "\(e)")
        }
        // A set missing its middle segment breaks the chain of predecessors: refused.
        #expect(throws: StorageError.self) { try b.installRun("r", segments: [set[0], set[2]]) }
        #expect(try b.runIDs().isEmpty && FileIO.list(dirB.path + "/runs").isEmpty, "nothing left behind")
        try b.installRun("r", segments: set)
        #expect(try b.read(run: "r", key: "loss").values.count == 900)
        try a.close()
        try b.close()
    }

    @Test func replacingARunNeverShowsAReadAnEmptyRun() throws {
        let copies = try Copies()
        defer { copies.close() }
        let c = copies.c, setA = copies.setA, setB = copies.setB
        try Self.append(c, "r", 600, 5, batch: "c")  // heads of the copy being replaced are dropped with it
        let stop = Atomic<Bool>(false), bad = Atomic<Int>(0), reads = Atomic<Int>(0)
        let reader = Thread {
            while !stop.load(ordering: .relaxed) {
                let n = (try? c.read(run: "r", key: "loss").count) ?? -1
                if ![600, 605, 900].contains(n) { bad.add(1, ordering: .relaxed) }
                reads.add(1, ordering: .relaxed)
            }
        }
        reader.start()
        for i in 0..<40 { try c.installRun("r", segments: i % 2 == 0 ? setB : setA, replacing: true) }
        while reads.load(ordering: .relaxed) < 50 { usleep(1_000) }
        stop.store(true, ordering: .relaxed)
        while !reader.isFinished { usleep(1_000) }
        #expect(bad.load(ordering: .relaxed) == 0, "every read saw one whole copy")
        #expect(try c.read(run: "r", key: "loss").count == 600)
        #expect(try FileIO.list(copies.dirC.path + "/runs").count == 1, "the replaced copies' directories are gone")
        #expect(c.openIndexBytes >= 0)
    }

    @Test func aReadThatLookedUpTheReplacedCopyFinishesOnIt() throws {
        let copies = try Copies()
        defer { copies.close() }
        let c = copies.c
        // A read looks the installed copy up (not loaded yet: installed copies open on first use) …
        let held = try #require(try c.run("r", create: false))
        // … the copy is replaced before the read takes its state …
        try c.installRun("r", segments: copies.setB, replacing: true)
        // … and the read still sees the whole copy it looked up, not an empty run.
        var shared = MetricStore.SharedColumns()
        let seen = try MetricStore.readUnits(try held.snapshot(key: "loss"), lo: .min, hi: .max, planes: PlaneCodec(), shared: &shared)
        #expect(seen.count == 600)
        #expect(try c.read(run: "r", key: "loss").count == 900)
        #expect(c.openIndexBytes >= 0)
    }

    @Test func aDeletionThatLookedUpTheReplacedCopyLeavesTheNewOneAlone() throws {
        let copies = try Copies()
        defer { copies.close() }
        let c = copies.c
        // A deletion looks the installed copy up, the copy is replaced before the deletion takes its locks …
        let held = try #require(try c.run("r", create: false))
        try c.installRun("r", segments: copies.setB, replacing: true)
        // … and the deletion of the copy it holds does nothing: the directory is the new copy's now.
        #expect(try c.deleteRun("r", held) == false)
        #expect(try c.read(run: "r", key: "loss").count == 900)
        // Deleting the run deletes the copy that replaced it.
        try c.deleteRun("r")
        #expect(try c.read(run: "r", key: "loss").count == 0)
        #expect(try FileIO.list(copies.dirC.path + "/runs").isEmpty)
    }

    @Test func aClosedStoreInstallsNothing() throws {
        let copies = try Copies()
        defer { copies.close() }
        try copies.c.close()
        #expect(throws: StorageError.self) { try copies.c.installRun("r", segments: copies.setB, replacing: true) }
        // The copy on disk is still the first one.
        let again = try MetricStore(directory: copies.dirC.path, configuration: Self.config())
        #expect(try again.read(run: "r", key: "loss").count == 600)
        try again.close()
    }

    /// Two copies of run `r` linked out of stores of their own (`setA`: 600 points, `setB`: 900), and a third store
    /// `c` with `setA` installed, ready to be replaced.
    final class Copies {
        let dirA = TempDir("rep-a"), dirB = TempDir("rep-b"), dirC = TempDir("rep-c"), spool = TempDir("rep-spool")
        let a: MetricStore, b: MetricStore, c: MetricStore
        let setA: [SegmentFile], setB: [SegmentFile]

        init() throws {
            a = try MetricStore(directory: dirA.path, configuration: SegmentSetTests.config())
            b = try MetricStore(directory: dirB.path, configuration: SegmentSetTests.config())
            c = try MetricStore(directory: dirC.path, configuration: SegmentSetTests.config())
            try SegmentSetTests.append(a, "r", 0, 600, batch: "a")
            try SegmentSetTests.append(b, "r", 0, 900, batch: "b")
            setA = try a.linkSegments(run: "r", into: spool.path + "/a")
            setB = try b.linkSegments(run: "r", into: spool.path + "/b")
            try c.installRun("r", segments: setA)
        }

        func close() {
            for store in [a, b, c] { try? store.close() }
        }
    }
}
