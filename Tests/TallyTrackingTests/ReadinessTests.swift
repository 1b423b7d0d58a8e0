import Foundation
import Synchronization
import SystemPackage
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import TallyStore
@testable import TallyTracking

/// `TrackingService.readiness()`: each check fails for its own cause and passes again once the cause is gone; what
/// it says names no host or path.
@Suite struct ReadinessTests {
    @Test(arguments: Backend.all) func readyThenEachCause(_ backend: Backend) throws {
        let f = try Fixture("ready", backend: backend)
        let (s, meta) = try VisibilityTests.open(f, f.dir + "/r")
        #expect(s.readiness() == Readiness(checks: [.init(name: "metadata"), .init(name: "metrics")]))
        #expect(s.readiness().isReady && s.readiness().checks.map(\.name) == ["metadata", "metrics"])

        meta.failing.withLock { $0 = ["ping"] }
        let down = s.readiness()
        #expect(!down.isReady)
        #expect(down.checks[0] == .init(name: "metadata", failure: "the metadata database does not answer",
                                        detail: "INTERNAL_ERROR: injected failure: ping"))
        #expect(down.checks[1] == .init(name: "metrics"))
        meta.failing.withLock { $0 = [] }
        #expect(s.readiness().isReady)

        try s.metrics.close()
        #expect(s.readiness().checks == [.init(name: "metadata"), .init(name: "metrics", failure: "the metric store is closed")])
    }

    /// A write-ahead log whose file fails (its descriptor turned into `/dev/full`: the write fails, and so does
    /// cutting the partial record off again) refuses every later append, and readiness says so.
    @Test func anIOErrorClosesTheLogAndTheServerIsUnready() throws {
        let dir = "/tmp/tally-ready-wal-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileIO.removeTree(dir) }
        let store = try MetricStore(directory: dir, configuration: StoreConfiguration())  // durable: sync
        let s = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: store)
        try store.append(run: "r", key: "k", step: 0, timestamp: 1, value: 1)
        #expect(store.writeRefusal == nil && s.readiness().isReady)
        let full = open("/dev/full", O_WRONLY)
        defer { close(full) }
        store.wal!.state.withLock { w in #expect(dup2(full, w.fd!.rawValue) >= 0) }
        #expect(throws: (any Error).self) { try store.append(run: "r", key: "k", step: 1, timestamp: 1, value: 2) }
        #expect(store.writeRefusal == "the write-ahead log refuses writes after an I/O error (a failed fsync or segment switch): restart the server")
        #expect(s.readiness().checks == [.init(name: "metadata"), .init(name: "metrics", failure: store.writeRefusal)])
        #expect(throws: StorageError.self) { try store.append(run: "r", key: "k", step: 2, timestamp: 1, value: 3) }
        try? s.close()
    }

    /// A failed fsync closes the log for good, in a group commit and in a segment switch alike (a retry could
    /// otherwise "succeed" over pages the kernel dropped): later appends are refused even once fsyncs work again,
    /// and readiness says so.
    @Test(arguments: ["group commit", "segment switch"]) func aFailedFsyncClosesTheLog(_ place: String) throws {
        let dir = "/tmp/tally-ready-fsync-\(UInt64.random(in: 0...UInt64.max))"
        var config = StoreConfiguration()
        config.wal!.durability = .sync
        if place == "segment switch" {
            config.wal!.segmentBytes = 1  // every append after the first switches segments, fsyncing the old one first
            config.wal!.preallocateBytes = 0
        }
        let store = try MetricStore(directory: dir, configuration: config)
        defer {
            FileIO.failingSyncs.stop(dir)
            try? store.close()
            try? FileIO.removeTree(dir)
        }
        try store.append(run: "r", key: "k", step: 0, timestamp: 1, value: 1)
        #expect(store.writeRefusal == nil)
        FileIO.failingSyncs.start(dir)
        #expect(throws: StorageError.self) { try store.append(run: "r", key: "k", step: 1, timestamp: 1, value: 2) }
        FileIO.failingSyncs.stop(dir)
        #expect(store.writeRefusal == "the write-ahead log refuses writes after an I/O error (a failed fsync or segment switch): restart the server")
        #expect(throws: StorageError.self) { try store.append(run: "r", key: "k", step: 2, timestamp: 1, value: 3) }
    }

    /// Seals that fail for real (the run's directory replaced by a file) while appends fill the heads: the failures
    /// are counted (for alerts), and appends past the memory limit are refused with the seal's error, but the server
    /// stays ready — the heads' memory rises and falls with each try, so appends come and go (docs/monitoring.md).
    @Test func failingSealsAreCountedNotUnready() throws {
        let dir = "/tmp/tally-ready-seal-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileIO.removeTree(dir) }
        var config = StoreConfiguration()
        config.sealsInBackground = true
        config.headMemoryBudget = 256 << 10
        config.wal!.durability = .none
        let store = try MetricStore(directory: dir, configuration: config)
        let s = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: store)
        try store.append(run: "r", key: "k", step: 0, timestamp: 1, value: 1)
        #expect(store.activity.maintenanceFailures == 0)
        let runDir = store.runsDirectory + "/" + RunDirectoryName.encode("r")
        try? FileIO.removeTree(runDir)
        try FileManager.default.createDirectory(atPath: store.runsDirectory, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: runDir, contents: Data("not a directory".utf8)))
        var refused: StorageError?
        for b in 0..<400 where refused == nil {
            let steps = (0..<1000).map { Int64(b * 1000 + $0 + 1) }
            do {
                _ = try store.append(run: "r", series: [SeriesBatch(key: "k", steps: steps, timestamps: steps, values: steps.map(Double.init))])
            } catch let e as StorageError {
                refused = e  // past the limit: overloaded, or the failed seal's own error once one is recorded
            }
        }
        #expect(refused != nil, "appends reached the memory limit")
        for _ in 0..<500 where store.activity.maintenanceFailures == 0 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(store.activity.maintenanceFailures > 0 && store.maintenanceError != nil)
        #expect(store.writeRefusal == nil && s.readiness().isReady)
        try? FileIO.removeTree(runDir)
        try? s.close()
    }

    /// A PostgreSQL database that refuses connections makes the server unready, with the reason and no address;
    /// once it takes them again the pool reconnects and the server is ready.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func aDatabaseAwayAndBack() throws {
        let f = try Fixture("ready-pg", backend: .postgres)
        #expect(f.service.readiness().isReady)
        try f.scratch!.allowConnections(false)
        let down = f.service.readiness()
        #expect(down.checks[0].failure == "the metadata database does not answer")
        #expect(down.checks[0].detail?.contains("PostgreSQL") == true, "\(down.checks[0].detail ?? "")")
        #expect(!down.checks[0].failure!.contains("127.0.0.1"))
        try f.scratch!.allowConnections(true)
        #expect(f.service.readiness().isReady)
    }

    /// The role's password changed under a running server (its sessions ended): requests answer 503 with the reason
    /// at once (a refused login is not retried for the reconnect's 10 s), the server is unready, and both recover when
    /// the password is the server's again.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func aPasswordChangedUnderTheServer() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let role = "rotated_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 1)
        defer { admin.close() }
        try admin.withConnection { try $0.execute("CREATE ROLE \(role) LOGIN PASSWORD 'first'; ALTER DATABASE \(scratch.name) OWNER TO \(role)") }
        defer { try? admin.withConnection { try $0.execute("DROP DATABASE IF EXISTS \(scratch.name) WITH (FORCE); DROP ROLE IF EXISTS \(role)") } }
        var uri = scratch.uri
        uri.user = role
        uri.password = "first"
        let dir = NSTemporaryDirectory() + "tally-rotated-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try PostgresMetadataStore(uri: uri, poolSize: 2, now: 1)
        defer { store.close() }
        let service = TrackingService(metadata: store, metrics: try Fixture.metricStore(dir), clock: { 1_700_000_000_000 })
        _ = try service.createExperiment(name: "before")
        func rotate(_ password: String) throws {
            try admin.withConnection { c in
                try c.execute("ALTER ROLE \(role) PASSWORD '\(password)'")
                _ = try c.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ?", [.text(role)])
            }
        }
        try rotate("second")
        var said = ""
        let started = DispatchTime.now().uptimeNanoseconds
        // The first ones may meet connections the database just ended (the pool's two and the readiness probe's key
        // connection, in whatever order requests take them); a new login comes after them.
        for attempt in 0..<6 where !said.contains("refused the login") {
            do {
                _ = try service.createExperiment(name: "during-\(attempt)")
            } catch let e as TrackingError {
                #expect(e.code == .temporarilyUnavailable, "\(e)")
                said = e.message
            }
        }
        #expect(said.contains("refused the login: password authentication failed for user \"\(role)\""), "\(said)")
        #expect(DispatchTime.now().uptimeNanoseconds - started < 5_000_000_000, "a refused login was retried")
        #expect(!service.readiness().isReady)
        try rotate("first")
        _ = try service.createExperiment(name: "after")
        #expect(service.readiness().isReady)
    }
}
