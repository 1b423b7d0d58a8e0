#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore

/// With seals in the background, memory pressure is answered by refusing appends at once (nothing stored) until the
/// queued seals catch up, never by sealing in the appending thread.
@Suite struct BackpressureTests {
    @Test func appendsPastTheLimitAreRefusedAtOnceAndStoreNothing() throws {
        let dir = TempDir("pressure")
        var config = testConfig(blockPoints: 1 << 16, pack: 8, durability: .sync)
        config.sealPoints = 1 << 20  // no seal falls due by size: only the budget
        config.headMemoryBudget = 256 << 10
        config.sealsInBackground = true
        let store = try MetricStore(directory: dir.path, configuration: config)
        let release = DispatchSemaphore(value: 0)
        store.maintenance.seals.lanes.forEach { $0.async { release.wait() } }  // seals that cannot keep up
        var acknowledged = 0
        var refused: StorageError?
        for b in 0..<200 where refused == nil {
            let steps = (Int64(b * 1000)..<Int64(b * 1000 + 1000)).map { $0 }
            do {
                try store.append(run: "r\(b % 3)", series: [SeriesBatch(key: "m", steps: steps, timestamps: steps, values: steps.map(Double.init))])
                acknowledged += 1
                #expect(store.headBytes <= config.headMemoryLimit + (64 << 10), "one batch at most past the limit")
            } catch let e as StorageError {
                refused = e
            }
        }
        let error = try #require(refused, "appends past the limit are refused")
        #expect(error.code == .overloaded)
        #expect(acknowledged > 0)
        let stored = { try (0..<3).reduce(0) { $0 + (try store.read(run: "r\($1)", key: "m").count) } }
        #expect(try stored() == acknowledged * 1000, "the refused batch stored nothing")
        for _ in 0..<BackgroundMaintenance.sealLanes { release.signal() }
        // The queued seals catch up; appends are accepted again.
        var waited = 0
        while store.headBytes > config.headMemoryBudget && waited < 5_000 {
            usleep(1_000)
            waited += 1
        }
        let steps = (Int64(1_000_000)..<Int64(1_000_100)).map { $0 }
        try store.append(run: "r0", series: [SeriesBatch(key: "m", steps: steps, timestamps: steps, values: steps.map(Double.init))])
        #expect(try stored() == acknowledged * 1000 + 100)
        try store.close()
        let reopened = try MetricStore(directory: dir.path, configuration: config)
        #expect(try (0..<3).reduce(0) { $0 + (try reopened.read(run: "r\($1)", key: "m").count) } == acknowledged * 1000 + 100)
        try reopened.close()
    }

    /// Without background seals the appending thread seals the largest heads itself: nothing is ever refused.
    @Test func inlineSealsNeverRefuse() throws {
        let dir = TempDir("pressure-inline")
        var config = testConfig(blockPoints: 1 << 16, pack: 8, durability: .sync)
        config.sealPoints = 1 << 20
        config.headMemoryBudget = 256 << 10
        let store = try MetricStore(directory: dir.path, configuration: config)
        for b in 0..<100 {
            let steps = (Int64(b * 1000)..<Int64(b * 1000 + 1000)).map { $0 }
            try store.append(run: "r\(b % 3)", series: [SeriesBatch(key: "m", steps: steps, timestamps: steps, values: steps.map(Double.init))])
        }
        #expect(store.headBytes <= config.headMemoryBudget + (64 << 10))
        try store.close()
    }

    /// When seals fail (a full disk), a refusal names that failure instead of asking for retries that cannot succeed.
    @Test func aFailingSealIsReportedInsteadOfARetry() throws {
        let dir = TempDir("pressure-failing")
        var config = testConfig(blockPoints: 1 << 16, pack: 8, durability: .sync)
        config.sealPoints = 1 << 20
        config.headMemoryBudget = 128 << 10
        config.sealsInBackground = true
        let store = try MetricStore(directory: dir.path, configuration: config)
        let release = DispatchSemaphore(value: 0)
        store.maintenance.seals.lanes.forEach { $0.async { release.wait() } }
        defer { for _ in 0..<BackgroundMaintenance.sealLanes { release.signal() } }
        store.lastMaintenanceError.withLock { $0 = StorageError(.io, "write failed: No space left on device") }
        var thrown: StorageError?
        for b in 0..<100 where thrown == nil {
            let steps = (Int64(b * 1000)..<Int64(b * 1000 + 1000)).map { $0 }
            do {
                try store.append(run: "r", series: [SeriesBatch(key: "m", steps: steps, timestamps: steps, values: steps.map(Double.init))])
            } catch let e as StorageError {
                thrown = e
            }
        }
        #expect(thrown?.code == .io)
        #expect(thrown?.message.contains("No space left") == true)
        #expect(MetricStore.megabytes(3 << 19) == "1.5 MB")
    }
}
