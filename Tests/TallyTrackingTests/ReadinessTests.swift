import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// `TrackingService.readiness()`: each check fails for its own cause and passes again once the cause is gone; what
/// it says names no host or path.
@Suite struct ReadinessTests {
    @Test(arguments: Backend.all) func readyThenEachCause(_ backend: Backend) throws {
        let f = try Fixture("ready", backend: backend)
        let (s, meta) = try VisibilityTests.open(f, f.dir + "/r")
        #expect(s.readiness() == Readiness(checks: [.init(name: "metadata"), .init(name: "metrics")]))
        #expect(s.readiness().isReady && s.readinessCheckNames == ["metadata", "metrics"])

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

    /// A write-ahead log closed under the store (as a failed fsync closes it) refuses appends, and readiness says so.
    @Test func aClosedLogIsNotReady() throws {
        let f = try Fixture("ready-wal")
        let s = try VisibilityTests.open(f, f.dir + "/w").0
        #expect(s.metrics.writeRefusal == nil)
        try s.metrics.wal!.close()
        #expect(s.metrics.writeRefusal == "the write-ahead log refuses writes (closed after a failed fsync)")
        #expect(s.readiness().checks[1].failure == s.metrics.writeRefusal)
        #expect(throws: StorageError.self) { try s.metrics.append(run: "r", key: "k", step: 0, timestamp: 1, value: 1) }
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
}
