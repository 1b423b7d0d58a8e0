import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Servers of one cluster in process (docs/scale-out.md), each with its own metric store, on the real PostgreSQL of
/// `make test`: the run's owner writes through the shared log; every other server reads the run from the log at
/// once; a write reaching another server names the owner (the server layer forwards it); a takeover after the
/// owner's lease lapsed replays everything acknowledged; a paused owner's late write is refused by the epoch and its
/// local copy rebuilt; a restarted server rebuilds the runs it reads.
@Suite(.serialized, .enabled(if: PostgresDatabaseTests.available)) final class ClusterNodeTests {
    let fixture: Fixture
    var closers: [() -> Void] = []

    init() throws { fixture = try Fixture("cluster", backend: .postgres) }

    deinit { for c in closers.reversed() { c() } }

    /// The test's own prefix in the test bucket, where its servers seal segments.
    let prefix = S3LiveTests.prefix()

    /// A server of the cluster: its own metadata pool and metric store, a node id, a short lease, no heartbeat or
    /// sealing thread (tests beat and seal by hand); with `sealing`, a metrics destination in the test SeaweedFS.
    func server(_ node: String, leaseMillis: Int64 = 800, metrics dir: String? = nil, sealing: Bool = false, cacheBytes: Int64? = nil) throws -> TrackingService {
        let meta = try PostgresMetadataStore(uri: fixture.scratch!.uri, poolSize: 4, now: fixture.clock())
        let db = try PostgresDatabase(uri: fixture.scratch!.uri, poolSize: 2)
        let metrics = try MetricStore(directory: dir ?? fixture.dir + "/metrics-" + node, configuration: ClusterNode.storeConfiguration(StoreConfiguration()))
        var destination: SegmentDestination?
        if sealing {
            let client = try S3LiveTests.client()
            closers.append { client.close() }
            destination = try SegmentDestination(client: client, location: S3Location(bucket: "tally", prefix: prefix), spool: fixture.dir + "/spool-" + node,
                                                 cacheBytes: cacheBytes)
        }
        let cluster = try ClusterNode(state: ClusterState(db: db, node: node, url: "http://\(node).test", leaseMillis: leaseMillis),
                                      metadata: meta, metrics: metrics, destination: destination)
        closers.append { try? metrics.close(); meta.close(); db.close() }
        return TrackingService(metadata: meta, metrics: metrics, cluster: cluster, clock: fixture.clock)
    }

    static func points(_ s: TrackingService, _ run: String, _ key: String) throws -> [UInt64] {
        try s.history(runID: run, key: key).map { $0.value.bitPattern }
    }

    /// Values bit-exact across the hop: NaN payloads, -0.0, subnormals, infinities.
    static let awkward: [Double] = [0.5, -0.0, .leastNonzeroMagnitude, -.infinity, Double(bitPattern: 0x7FF8_0000_0000_0123), 1e308]

    @Test func theOwnerWritesAndEveryServerReadsAtOnce() throws {
        let a = try server("a", leaseMillis: 10_000), b = try server("b", leaseMillis: 10_000), c = try server("c", leaseMillis: 10_000)
        let run = try a.createRun(experimentID: "0", runName: "r").info.runID
        let batch = Self.awkward.enumerated().map { Metric(key: "loss", value: $1, timestamp: 10, step: Int64($0)) }
        try a.logBatch(runID: run, metrics: batch)
        #expect(try Self.points(b, run, "loss") == Self.awkward.map(\.bitPattern), "read through another server right after the write")
        try a.logBatch(runID: run, metrics: [Metric(key: "loss", value: 7, timestamp: 11, step: 9), Metric(key: "acc", value: 0.25, timestamp: 11, step: 9)])
        #expect(try Self.points(b, run, "loss").count == 7 && Self.points(c, run, "acc") == [Double(0.25).bitPattern])
        // A write reaching another server names the owner (the server layer forwards it there); nothing is stored.
        a.cluster!.beat()
        #expect(throws: OwnedElsewhere(run: run, node: "a", url: "http://a.test")) {
            try b.logBatch(runID: run, metrics: [Metric(key: "loss", value: 1, timestamp: 12, step: 10)])
        }
        #expect(try Self.points(c, run, "loss").count == 7)
        // Native columnar appends go the same way, idempotent by batch id across the hop.
        let cols = [SeriesBatch(key: "lr", steps: [1, 2], timestamps: [5, 6], values: [0.1, 0.2])]
        #expect(try a.logColumns(runID: run, series: cols, batchID: "b1") == .init(points: 2, stored: true))
        #expect(try a.logColumns(runID: run, series: cols, batchID: "b1") == .init(points: 0, stored: false))
        #expect(try Self.points(c, run, "lr") == [Double(0.1).bitPattern, Double(0.2).bitPattern])
        // MLflow's exact-repeat rule holds on the owner: a repeated point adds nothing to the log either.
        try a.logBatch(runID: run, metrics: [Metric(key: "acc", value: 0.25, timestamp: 11, step: 9)])
        #expect(try Self.points(b, run, "acc") == [Double(0.25).bitPattern])
        // Params, tags and latest values are the database's, whoever writes them.
        try b.logBatch(runID: run, params: [KeyValue(key: "lr", value: "0.1")])
        #expect(try c.run(id: run).metrics.first { $0.key == "loss" }?.value == 7)
    }

    /// Readiness in a cluster: a heartbeat that fails (its update of the server's row refused by a constraint added
    /// for the test) makes the server unready, and only that check fails, until a heartbeat succeeds again.
    @Test func readinessFollowsTheHeartbeat() throws {
        let a = try server("a", leaseMillis: 10_000)
        a.cluster!.beat()
        #expect(a.readiness().isReady && a.readiness().checks.map(\.name) == ["metadata", "metrics", "cluster"])
        let db = try PostgresDatabase(uri: fixture.scratch!.uri, poolSize: 1)
        defer { db.close() }
        try db.withConnection { try $0.execute("ALTER TABLE tally_nodes ADD CONSTRAINT away CHECK (heartbeat_ms < 0) NOT VALID") }
        a.cluster!.beat()
        let down = a.readiness()
        #expect(down.checks.map(\.name) == ["metadata", "metrics", "cluster"] && down.checks[0].failure == nil && down.checks[1].failure == nil)
        #expect(down.checks[2].failure == "the cluster heartbeat fails: this server's leases lapse")
        #expect(down.checks[2].detail?.contains("away") == true, "\(down.checks[2].detail ?? "")")
        try db.withConnection { try $0.execute("ALTER TABLE tally_nodes DROP CONSTRAINT away") }
        a.cluster!.beat()
        #expect(a.readiness().isReady, "\(a.readiness())")
    }

    /// What `/metrics` serves of a cluster member: the log records it wrote, what waits for a seal and for how long,
    /// the runs it owns and holds copies of, and the sealing thread's seals and failures.
    @Test func activityCountsTheLogAndTheSeals() throws {
        let a = try server("a", leaseMillis: 10_000, sealing: true), b = try server("b", leaseMillis: 10_000, sealing: true)
        #expect(a.cluster!.activity == ClusterActivity())
        let run = try a.createRun(experimentID: "0").info.runID
        _ = try Self.write(a, run, from: 0, batches: 3)
        _ = try Self.points(b, run, "loss")
        let written = a.cluster!.activity
        #expect(written.logRecords == 3 && written.logBytes > 0 && written.unsealedBytes == written.logBytes)
        #expect(written.runsOwned == 1 && written.runCopies == 1 && written.copyBytes > 0)
        #expect(written.oldestUnsealedSeconds > 0 && !written.heartbeatFailing && !written.sealingFailing)
        let reader = b.cluster!.activity
        #expect(reader.runsOwned == 0 && reader.runCopies == 1 && reader.logRecords == 0 && reader.unsealedBytes == 0)
        // The sealing thread's round, with the run idle past two leases' worth of `used`: sealed, counted.
        a.cluster!.slot(run).lease.withLock { $0.used = .now - .seconds(60) }
        a.cluster!.sealRound(adopting: false)
        let sealed = a.cluster!.activity
        #expect(sealed.seals == 1 && sealed.sealFailures == 0 && sealed.unsealedBytes == 0 && sealed.oldestUnsealedSeconds == 0)
        #expect(sealed.logRecords == 3, "sealing moves records, it appends none")
    }

    @Test func aTakeoverReplaysEveryAcknowledgedPointAndFencesTheOldOwner() throws {
        let a = try server("a", leaseMillis: 500), b = try server("b", leaseMillis: 500)
        let run = try a.createRun(experimentID: "0").info.runID
        for i in 0..<50 { try a.logBatch(runID: run, metrics: [Metric(key: "m", value: Double(i), timestamp: 1, step: Int64(i))]) }
        // `a` stops beating (paused); once its lease lapsed, `b` takes the run over at the next epoch.
        Thread.sleep(forTimeInterval: 0.7)
        try b.logBatch(runID: run, metrics: [Metric(key: "m", value: 50, timestamp: 1, step: 50)])
        #expect(b.cluster!.ownedRuns[run] == 2)
        #expect(try Self.points(b, run, "m") == (0...50).map { Double($0).bitPattern })
        // `a` wakes up still believing it owns the run (its view confirmed just now): its write is refused by the
        // epoch before anything of it is visible, even in a's own copy, which then catches up with b's point.
        let slot = a.cluster!.slot(run)
        slot.lease.withLock { $0 = ClusterNode.LeaseView(epoch: 1, confirmed: .now) }
        #expect(throws: TrackingError.self) { try a.logBatch(runID: run, metrics: [Metric(key: "m", value: -1, timestamp: 2, step: 51)]) }
        #expect(!slot.work.withLock { $0.dirty }, "refused before the append: the local copy is still a prefix of the log")
        #expect(try a.metrics.read(run: run, key: "m").count == 50, "the refused point never showed")
        #expect(try Self.points(a, run, "m") == (0...50).map { Double($0).bitPattern }, "b's point is there, the refused one is not")
        #expect(try Self.points(b, run, "m").count == 51)
        #expect(try b.run(id: run).metrics.first?.value == 50, "the refused write left no latest value")
        // `a` now forwards to `b`.
        b.cluster!.beat()
        #expect(throws: OwnedElsewhere.self) { try a.logBatch(runID: run, metrics: [Metric(key: "m", value: 0, timestamp: 3, step: 52)]) }
    }

    @Test func heartbeatsKeepLeasesAndARestartedServerRebuildsWhatItReads() throws {
        let a = try server("a", leaseMillis: 400), b = try server("b", leaseMillis: 400)
        let run = try a.createRun(experimentID: "0").info.runID
        try a.logBatch(runID: run, metrics: [Metric(key: "m", value: 1, timestamp: 1, step: 1)])
        // Beating every third of a lease keeps the run a's past several lease lengths.
        for _ in 0..<6 {
            Thread.sleep(forTimeInterval: 0.13)
            a.cluster!.beat()
        }
        #expect(throws: OwnedElsewhere.self) { try b.logBatch(runID: run, metrics: [Metric(key: "m", value: 2, timestamp: 1, step: 2)]) }
        try a.logBatch(runID: run, metrics: [Metric(key: "m", value: 3, timestamp: 1, step: 3)])
        // A clean stop gives the leases up: b takes the run at once.
        a.cluster!.stop()
        try b.logBatch(runID: run, metrics: [Metric(key: "m", value: 4, timestamp: 1, step: 4)])
        // a restarted on its old directory: its local copy's place in the log is unknown, so it is rebuilt.
        try a.metrics.close()
        let again = try server("a2", leaseMillis: 400, metrics: fixture.dir + "/metrics-a")
        #expect(again.metrics.runIDs().contains(run), "the old local copy is still on disk")
        #expect(try Self.points(again, run, "m") == [1.0, 3, 4].map(\.bitPattern))
    }

    // MARK: Sealing into object storage

    /// `n` batches of 100 points of `loss` from step `from`, awkward values among them; the bit patterns written.
    static func write(_ s: TrackingService, _ run: String, from: Int, batches n: Int) throws -> [UInt64] {
        var written: [UInt64] = []
        for b in 0..<n {
            let metrics = (0..<100).map { i -> Metric in
                let step = from + b * 100 + i
                return Metric(key: "loss", value: i % 10 == 0 ? awkward[step % awkward.count] : 1 / Double(step + 1), timestamp: Int64(step), step: Int64(step))
            }
            try s.logBatch(runID: run, metrics: metrics)
            written += metrics.map(\.value.bitPattern)
        }
        return written
    }

    @Test(.enabled(if: S3LiveTests.endpoint != nil))
    func sealedRunsAreReadFromTheBucketAndTheirLogIsTrimmed() throws {
        let a = try server("a", leaseMillis: 10_000, sealing: true), b = try server("b", leaseMillis: 10_000, sealing: true)
        let c = try server("c", leaseMillis: 10_000, sealing: true)
        let s3 = try S3LiveTests.client()
        defer { s3.close() }
        let run = try a.createRun(experimentID: "0").info.runID
        var want = try Self.write(a, run, from: 0, batches: 20)
        #expect(try Self.points(b, run, "loss") == want, "b's copy comes from the log")
        #expect(a.cluster!.waitsForSeal(a.cluster!.slot(run)))
        #expect(try a.cluster!.seal(run: run))
        #expect(!a.cluster!.waitsForSeal(a.cluster!.slot(run)))
        #expect(try a.cluster!.state.records(run: run).isEmpty, "the log keeps nothing the segments hold")
        let first = try #require(try a.cluster!.state.sealed(run: run))
        #expect(!first.segments.isEmpty && first.epoch == 1)
        for seg in first.segments { #expect(try s3.size(bucket: "tally", key: seg.key) == Int(seg.bytes)) }
        #expect(try !a.cluster!.seal(run: run), "nothing new to seal")
        #expect(try Self.points(c, run, "loss") == want, "a server that never read the run installs it from the bucket")
        want += try Self.write(a, run, from: 2_000, batches: 5)
        #expect(try Self.points(b, run, "loss") == want, "b's copy was at the sealed place: it goes on from the log")
        #expect(try Self.points(c, run, "loss") == want)
        // Sealing again: c, behind the new set, starts from it; objects the new set no longer names are deleted.
        try a.metrics.compact(run: run)
        want += try Self.write(a, run, from: 2_500, batches: 3)
        #expect(try a.cluster!.seal(run: run))
        let second = try #require(try a.cluster!.state.sealed(run: run))
        #expect(second.through > first.through)
        for gone in Set(first.segments.map(\.key)).subtracting(second.segments.map(\.key)) {
            #expect(try s3.size(bucket: "tally", key: gone) == nil, "replaced object \(gone) deleted")
        }
        #expect(try Self.points(c, run, "loss") == want)
        // A restarted server (a fresh copy) reads the run from the bucket alone.
        let d = try server("d", leaseMillis: 10_000, sealing: true)
        #expect(try Self.points(d, run, "loss") == want)
    }

    @Test(.enabled(if: S3LiveTests.endpoint != nil))
    func aTakeoverStartsFromTheSealedSetAndTheOldOwnersSealIsFenced() throws {
        let a = try server("a", leaseMillis: 500, sealing: true), b = try server("b", leaseMillis: 500, sealing: true)
        let run = try a.createRun(experimentID: "0").info.runID
        var want = try Self.write(a, run, from: 0, batches: 10)
        #expect(try a.cluster!.seal(run: run))
        want += try Self.write(a, run, from: 1_000, batches: 5)
        let sealed = try #require(try a.cluster!.state.sealed(run: run))
        // a stops beating; b takes the run over: the sealed set, then the log's records after it.
        Thread.sleep(forTimeInterval: 0.7)
        want += try Self.write(b, run, from: 1_500, batches: 1)
        #expect(b.cluster!.ownedRuns[run] == 2)
        #expect(try Self.points(b, run, "loss") == want)
        #expect(b.cluster!.waitsForSeal(b.cluster!.slot(run)), "the records a left unsealed are b's to seal")
        // a wakes up believing it still owns the run: its seal is refused by the epoch; nothing changed.
        a.cluster!.slot(run).lease.withLock { $0 = ClusterNode.LeaseView(epoch: 1, confirmed: .now) }
        #expect(throws: TrackingError.self) { try a.cluster!.seal(run: run) }
        #expect(try a.cluster!.state.sealed(run: run) == sealed)
        #expect(try a.cluster!.state.records(run: run).count == 6)
        #expect(try b.cluster!.seal(run: run))
        #expect(try b.cluster!.state.records(run: run).isEmpty && b.cluster!.state.sealed(run: run)?.epoch == 2)
        #expect(try Self.points(a, run, "loss") == want, "a, behind the new set, starts from it")
    }

    @Test(.enabled(if: S3LiveTests.endpoint != nil))
    func copiesOverTheBudgetAreDroppedLeastRecentlyReadFirstAndInstalledAgain() throws {
        let a = try server("a", leaseMillis: 10_000, sealing: true, cacheBytes: 1)
        let c = try server("c", leaseMillis: 10_000, sealing: true, cacheBytes: 1)
        let runs = try (0..<3).map { _ in try a.createRun(experimentID: "0").info.runID }
        var want: [String: [UInt64]] = [:]
        for (i, run) in runs.enumerated() {
            want[run] = try Self.write(a, run, from: 0, batches: 5 + i)
            if i < 2 { #expect(try a.cluster!.seal(run: run)) }  // the third stays in the log
        }
        for run in runs { #expect(try Self.points(c, run, "loss") == want[run]) }
        #expect(c.cluster!.evictCopies().isEmpty, "copies read in the last 30 s are kept")
        for (i, run) in runs.enumerated() { c.cluster!.slot(run).lastRead.withLock { $0 = .now - .seconds(100 - i) } }
        #expect(c.cluster!.evictCopies() == runs, "least recently read first")
        #expect(c.metrics.runIDs().isEmpty)
        for run in runs.reversed() { #expect(try Self.points(c, run, "loss") == want[run], "installed again from the bucket and the log") }
        // The owner keeps the copies it writes, whatever the budget.
        for run in runs { a.cluster!.slot(run).lastRead.withLock { $0 = .now - .seconds(100) } }
        #expect(a.cluster!.evictCopies().isEmpty)
    }

    @Test(.enabled(if: S3LiveTests.endpoint != nil))
    func aNewOwnerNeverRecordsObjectsAnotherSealDeleted() throws {
        let a = try server("a", leaseMillis: 500, sealing: true), b = try server("b", leaseMillis: 500, sealing: true)
        let run = try a.createRun(experimentID: "0").info.runID
        var want = try Self.write(a, run, from: 0, batches: 6)
        #expect(try a.cluster!.seal(run: run))
        #expect(try Self.points(b, run, "loss") == want, "b installs the first set")
        // a compacts and seals again: the first set's objects are replaced and deleted; b follows from the log.
        want += try Self.write(a, run, from: 600, batches: 3)
        #expect(try Self.points(b, run, "loss") == want)
        try a.metrics.flush(run: run)
        #expect(try a.metrics.compact(run: run) >= 2, "the first set's segment is merged away")
        #expect(try a.cluster!.seal(run: run))
        #expect(try Self.points(b, run, "loss") == want)
        // b takes the run over and seals it: every object it names must exist.
        Thread.sleep(forTimeInterval: 0.7)
        want += try Self.write(b, run, from: 900, batches: 1)
        #expect(try b.cluster!.seal(run: run))
        let s3 = try S3LiveTests.client()
        defer { s3.close() }
        for seg in try #require(try b.cluster!.state.sealed(run: run)).segments {
            #expect(try s3.size(bucket: "tally", key: seg.key) == Int(seg.bytes), "\(seg.key) exists")
        }
        let d = try server("d", leaseMillis: 500, sealing: true)
        #expect(try Self.points(d, run, "loss") == want)
        // A seal naming an object the current set does not hold is refused whole.
        let set = try #require(try b.cluster!.state.sealed(run: run))
        #expect(throws: ClusterState.StaleObjects.self) {
            _ = try b.cluster!.state.commitSealed(run: run, epoch: 2, through: set.through + 1,
                                                 segments: [.init(seq: 1, key: "gone", bytes: 1)])
        }
    }
}

