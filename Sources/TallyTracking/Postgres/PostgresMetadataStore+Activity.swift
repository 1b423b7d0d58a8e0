import Synchronization

/// A snapshot of a PostgreSQL backend store's connections and write lane: what `tally server --expose-prometheus`
/// serves as `tally_postgres_*`.
public struct PostgresActivity: Sendable, Equatable {
    /// The most connections the pool may hold (`--backend-store-pool-size`), those held by a call now, and those idle.
    public var poolSize = 0, poolInUse = 0, poolIdle = 0
    /// Calls that failed because no connection of the pool came free in time.
    public var poolTimeouts = 0
    /// Batches the write lane sent, the writes they held, and writes sent alone on the pool (a batch refused, or the
    /// lane's connection down).
    public var laneBatches = 0, laneWrites = 0, laneWritesAlone = 0

    /// All zero.
    public init() {}
}

extension PostgresMetadataStore {
    /// The pool's and the write lane's figures now.
    public var activity: PostgresActivity {
        var a = PostgresActivity()
        a.poolSize = db.poolSize
        a.poolInUse = db.inUse.load(ordering: .relaxed)
        a.poolIdle = db.idle.withLock { $0.count }
        a.poolTimeouts = db.poolTimeouts.load(ordering: .relaxed)
        a.laneBatches = lane.batchesSent.load(ordering: .relaxed)
        a.laneWrites = lane.writesSent.load(ordering: .relaxed)
        a.laneWritesAlone = lane.writesAlone.load(ordering: .relaxed)
        return a
    }
}
