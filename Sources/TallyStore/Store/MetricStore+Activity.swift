import Synchronization

/// What a store has done since it opened, counted without locks by the threads doing it (monitoring reads a
/// ``StoreActivity`` snapshot).
final class StoreCounters: Sendable {
    /// Points made visible by appends (repeats MLflow's rule dropped and retried batches not counted).
    let pointsAppended = Atomic<Int>(0)
    /// Bytes of records written to the write-ahead log.
    let walBytes = Atomic<Int>(0)
    /// Fsyncs of the write-ahead log (its segments and its directory) that succeeded, and the nanoseconds they took.
    let walSyncs = Atomic<Int>(0), walSyncNanos = Atomic<Int>(0)
    /// Segments written by seals, the points they hold, and their bytes.
    let seals = Atomic<Int>(0), sealedPoints = Atomic<Int>(0), sealedBytes = Atomic<Int>(0)
    /// Segments written by compactions, the segments they replaced, and their bytes.
    let compactions = Atomic<Int>(0), compactedInputs = Atomic<Int>(0), compactedBytes = Atomic<Int>(0)
    /// Seals (and the maintenance after them) that failed after their append had succeeded.
    let maintenanceFailures = Atomic<Int>(0)

    /// Counts one fsync of the log (of a segment or of its directory) that took `nanos`.
    func synced(nanos: Int) {
        walSyncs.add(1, ordering: .relaxed)
        walSyncNanos.add(nanos, ordering: .relaxed)
    }

    /// Runs `sync`, an fsync of the log, and counts it with the time it took when it succeeds.
    func timedSync(_ sync: () throws -> Void) rethrows {
        let start = ContinuousClock.now
        try sync()
        synced(nanos: Int((ContinuousClock.now - start).totalNanoseconds))
    }
}

/// A snapshot of a store's activity since it opened and of the memory it holds: what `tally server
/// --expose-prometheus` serves as `tally_store_*` and `tally_wal_*`. Counters only grow while the store is open.
public struct StoreActivity: Sendable, Equatable {
    /// Points made visible by appends since the store opened (points dropped as repeats of logged ones not counted).
    public var pointsAppended = 0
    /// Bytes of records written to the write-ahead log.
    public var walBytesWritten = 0
    /// Fsyncs of the write-ahead log that succeeded (one per group commit in `sync` durability, and those of segment
    /// rotations, of the log's directory, and at close), and the seconds they took in all.
    public var walSyncs = 0, walSyncSeconds = 0.0
    /// Segments written by seals, the points moved into them, and their bytes.
    public var segmentsSealed = 0, pointsSealed = 0, sealedBytes = 0
    /// Segments written by compactions, the segments they replaced, and their bytes.
    public var compactions = 0, segmentsCompacted = 0, compactedBytes = 0
    /// Seals, and the work after them (trimming the write-ahead log), that failed after their append had succeeded:
    /// the points stay in memory and in the log, and the seal is tried again; while they keep failing, the heads'
    /// memory fills and appends are refused (429).
    public var maintenanceFailures = 0
    /// Runs the store holds (loaded or not).
    public var runs = 0
    /// Memory held by unsealed points, and by open segment indexes.
    public var headBytes = 0, indexBytes = 0
    /// The budget for unsealed points (``StoreConfiguration/headMemoryBudget``).
    public var headBudgetBytes = 0

    /// All zero.
    public init() {}
}

extension MetricStore {
    /// The store's activity since it opened, and the memory it holds now.
    public var activity: StoreActivity {
        let c = account.counters
        var a = StoreActivity()
        a.pointsAppended = c.pointsAppended.load(ordering: .relaxed)
        a.walBytesWritten = c.walBytes.load(ordering: .relaxed)
        a.walSyncs = c.walSyncs.load(ordering: .relaxed)
        a.walSyncSeconds = Double(c.walSyncNanos.load(ordering: .relaxed)) / 1e9
        a.segmentsSealed = c.seals.load(ordering: .relaxed)
        a.pointsSealed = c.sealedPoints.load(ordering: .relaxed)
        a.sealedBytes = c.sealedBytes.load(ordering: .relaxed)
        a.compactions = c.compactions.load(ordering: .relaxed)
        a.segmentsCompacted = c.compactedInputs.load(ordering: .relaxed)
        a.compactedBytes = c.compactedBytes.load(ordering: .relaxed)
        a.maintenanceFailures = c.maintenanceFailures.load(ordering: .relaxed)
        a.runs = runs.withLock { $0.count }
        a.headBytes = headBytes
        a.indexBytes = account.indexBytes.load(ordering: .relaxed)
        a.headBudgetBytes = configuration.headMemoryBudget
        return a
    }
}

extension MetricStore {
    /// Why every append would be refused now, `nil` while they are taken: the store was closed, or its write-ahead
    /// log refuses writes for good (after a failed fsync or segment switch; a restart recovers it). What a readiness
    /// probe asks; read without waiting for any lock, in words that name no path. Refusals that come and go are not
    /// the store's state and are not counted: a write that found the disk full, the memory limit's 429 — also while
    /// seals fail, when the heads' memory rises and falls with each try (``StoreActivity/maintenanceFailures``
    /// counts those failures for alerts).
    public var writeRefusal: String? {
        if closed.load(ordering: .acquiring) { return "the metric store is closed" }
        if let wal, wal.refusing.load(ordering: .acquiring) {
            return "the write-ahead log refuses writes after an I/O error (a failed fsync or segment switch): restart the server"
        }
        return nil
    }

    /// Keeps `e`, the error of a seal (or of the maintenance after it) that failed after its append had succeeded,
    /// for ``maintenanceError``, and counts it.
    func recordMaintenanceFailure(_ e: StorageError) {
        lastMaintenanceError.withLock { $0 = e }
        account.counters.maintenanceFailures.add(1, ordering: .relaxed)
    }
}
