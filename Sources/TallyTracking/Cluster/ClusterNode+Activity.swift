import Synchronization
import TallyStore

/// What a cluster member has done since it started, counted without locks by the threads doing it.
final class ClusterCounters: Sendable {
    /// Records this server appended to the shared log (its writes as the runs' owner), and their bytes.
    let logRecords = Atomic<Int>(0), logBytes = Atomic<Int>(0)
    /// Seals by the sealing thread that recorded a new sealed set, and those that failed (retried with backoff).
    let seals = Atomic<Int>(0), sealFailures = Atomic<Int>(0)
}

/// A snapshot of a cluster member's state and activity: what `tally server --expose-prometheus` serves as
/// `tally_cluster_*` in cluster mode (docs/monitoring.md). Counters only grow while the server runs.
public struct ClusterActivity: Sendable, Equatable {
    /// Runs this server holds the lease of (it writes them).
    public var runsOwned = 0
    /// Runs with a local copy holding points here (owned, or read lately), and the bytes the copies take.
    public var runCopies = 0, copyBytes: Int64 = 0
    /// Bytes of records this server wrote to the shared log as the owner of runs it still owns and has not sealed
    /// into the metrics destination yet, and the age of the oldest of them (0 when none): what grows while object
    /// storage is away. (A run whose lease went to another server is sealed there.)
    public var unsealedBytes = 0, oldestUnsealedSeconds = 0.0
    /// Whether the heartbeat fails (``ClusterNode/heartbeatFailure``: this server's leases lapse), and whether the
    /// last seal of any run this server owns failed (retried with backoff until one succeeds).
    public var heartbeatFailing = false, sealingFailing = false
    /// Records appended to the shared log, and their bytes.
    public var logRecords = 0, logBytes = 0
    /// Seals that recorded a new sealed set, and seals that failed.
    public var seals = 0, sealFailures = 0

    /// All zero.
    public init() {}
}

extension ClusterNode {
    /// The server's cluster state and activity now (walks the runs it knows: a scrape's work, not a request's).
    public var activity: ClusterActivity {
        var a = ClusterActivity()
        let now = ContinuousClock.now
        var oldest: ContinuousClock.Instant?
        for slot in slots.withLock({ Array($0.values) }) {
            let bytes = slot.bytes.load(ordering: .relaxed)
            if bytes > 0 {
                a.runCopies += 1
                a.copyBytes += bytes
            }
            guard slot.lease.withLock({ $0.epoch != nil }) else { continue }
            a.runsOwned += 1
            // What waits, and what the seal in progress took (a retry's failures count until it succeeds).
            for unsealed in [slot.unsealed.withLock { $0 }, slot.sealing.withLock { $0 }] {
                a.unsealedBytes += unsealed.bytes
                if unsealed.failures > 0 { a.sealingFailing = true }
                if let since = unsealed.since, oldest.map({ since < $0 }) ?? true { oldest = since }
            }
        }
        if let oldest { a.oldestUnsealedSeconds = (now - oldest).totalSeconds }
        a.heartbeatFailing = heartbeatFailure != nil
        a.logRecords = counters.logRecords.load(ordering: .relaxed)
        a.logBytes = counters.logBytes.load(ordering: .relaxed)
        a.seals = counters.seals.load(ordering: .relaxed)
        a.sealFailures = counters.sealFailures.load(ordering: .relaxed)
        return a
    }

    /// A seal by the sealing thread, counted.
    func countedSeal(run: String) throws {
        do {
            if try seal(run: run) { counters.seals.add(1, ordering: .relaxed) }
        } catch {
            counters.sealFailures.add(1, ordering: .relaxed)
            throw error
        }
    }
}
