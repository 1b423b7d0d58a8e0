import Foundation
import Synchronization
import TallyStore

/// A write that another server owns: the server layer forwards the request to `url` (docs/scale-out.md).
public struct OwnedElsewhere: Error, Sendable, Equatable {
    /// The run written.
    public let run: String
    /// The owning server's id.
    public let node: String
    /// Where it is reached (its `--advertise-url`).
    public let url: String
}

/// This server as a member of a cluster (docs/scale-out.md): it owns the metric writes of the runs whose leases it
/// holds, makes each of their appends durable in the shared log inside the write's metadata transaction (fenced by
/// the lease's epoch), and keeps its local metric store as a copy of the log for every run it reads.
///
/// Per run, the local store holds a prefix of the run's log records (``Progress/appliedSeq``); the owner's own
/// appends extend it. A run whose local copy may hold points the log does not (an append refused by the fence, a
/// commit whose answer was lost) is *dirty*: its local data is dropped and rebuilt from the log before its next
/// use, as is every run after a restart (the local copy's place in the log is not remembered).
///
/// The owner serialises a run's writes (each holds the run while its transaction commits), so a run's records
/// commit in `seq` order and a reader catching up from its last `seq` misses none.
public final class ClusterNode: Sendable {
    /// The shared state (its own small pool, so heartbeats do not queue behind requests).
    public let state: ClusterState
    let metadata: PostgresMetadataStore
    let metrics: MetricStore
    let slots = Mutex<[String: RunSlot]>([:])
    let stopping = Atomic<Bool>(false)
    /// Set while the heartbeat thread runs.
    let beating = Atomic<Bool>(false)
    /// The last heartbeat's failure, `nil` after one that succeeded.
    let heartbeatError = Mutex<String?>(nil)

    /// A member of the cluster of `state`, writing its records through `metadata`'s transactions and keeping run
    /// copies in `metrics`. Registers the server; call ``start()`` for the heartbeat.
    public init(state: ClusterState, metadata: PostgresMetadataStore, metrics: MetricStore) throws {
        self.state = state
        self.metadata = metadata
        self.metrics = metrics
        try state.register()
    }

    /// What the local store holds of a run's log.
    struct Progress: Sendable {
        /// The last record applied locally; `-1`: unknown (rebuild before use).
        var appliedSeq: Int64 = -1
        /// The local copy may hold points the log does not: rebuild before use.
        var dirty = false
    }

    /// This server's view of a run's lease.
    struct LeaseView: Sendable {
        /// The epoch held, `nil` when not owned.
        var epoch: Int64?
        /// When the lease was last confirmed (acquired or renewed; the request's start, to err early).
        var confirmed = ContinuousClock.now
        /// When this server last wrote the run: a lease idle for ``ClusterNode/idleLeases`` leases is given up, so
        /// heartbeats renew only the runs being written.
        var used = ContinuousClock.now
    }

    /// Leases' lengths a run may go unwritten before this server gives its lease up.
    static let idleLeases = 4

    /// One run's state here. `work` is held by a write for its whole commit and by a catch-up or rebuild; `lease`
    /// only briefly (the heartbeat updates it without waiting for writes).
    final class RunSlot: Sendable {
        let work = Mutex(Progress())
        let lease = Mutex(LeaseView())
    }

    func slot(_ run: String) -> RunSlot {
        slots.withLock { s in
            if let x = s[run] { return x }
            let x = RunSlot()
            s[run] = x
            return x
        }
    }

    var leaseDuration: Duration { .milliseconds(state.leaseMillis) }

    /// The epoch this server holds the run under, when its lease was confirmed within half a lease.
    func freshEpoch(_ slot: RunSlot) -> Int64? {
        slot.lease.withLock { v in v.epoch != nil && ContinuousClock.now - v.confirmed < leaseDuration / 2 ? v.epoch : nil }
    }

    // MARK: Writes

    /// Runs a write of the run's points as its owner: takes the lease when free (bringing the local copy up to date
    /// first), or throws ``OwnedElsewhere`` when a live server holds it (503 when its holder is silent but its lease
    /// has not lapsed). `body` gets the function that logs an append's record: call it inside the metadata
    /// transaction, after the append became visible.
    public func write<R>(run: String, _ body: (_ log: (PendingAppend) throws -> Void) throws -> R) throws -> R {
        let slot = slot(run)
        return try slot.work.withLock { progress in
            let epoch = try own(run, slot, &progress)
            var touched = false, logged: Int64?
            do {
                let r = try body { pending in
                    guard let record = pending.record else { return }
                    touched = true
                    logged = try metadata.inTransaction { c in try ClusterState.append(c, node: state.node, [(run, epoch, record)]).first }
                }
                if let logged { progress.appliedSeq = logged }
                return r
            } catch {
                if touched { progress.dirty = true }
                if let e = error as? TrackingError, e.code == .temporarilyUnavailable { slot.lease.withLock { $0.epoch = nil } }
                throw error
            }
        }
    }

    /// Takes (or confirms) the run's lease and brings its local copy up to date before a write reads what the run
    /// holds (MLflow's duplicate rule reads the stored points); the write itself confirms it again.
    public func prepareWrite(run: String) throws {
        let slot = slot(run)
        _ = try slot.work.withLock { try own(run, slot, &$0) }
    }

    /// The epoch this server writes the run under, taking (or renewing) its lease.
    func own(_ run: String, _ slot: RunSlot, _ progress: inout Progress) throws -> Int64 {
        if let e = freshEpoch(slot), progress.appliedSeq >= 0, !progress.dirty {
            slot.lease.withLock { $0.used = .now }
            return e
        }
        let asked = ContinuousClock.now
        switch try state.acquire(run: run) {
        case .owned(let lease):
            let had = slot.lease.withLock { $0.epoch }
            // Another server may have written since this one last held it (or this one never knew the run).
            if had != lease.epoch || progress.dirty || progress.appliedSeq < 0 { try catchUp(run, &progress) }
            slot.lease.withLock { $0 = LeaseView(epoch: lease.epoch, confirmed: asked, used: asked) }
            return lease.epoch
        case .heldElsewhere(let lease):
            slot.lease.withLock { $0.epoch = nil }
            if let owner = try state.nodes().first(where: { $0.id == lease.owner }) {
                throw OwnedElsewhere(run: run, node: owner.id, url: owner.url)
            }
            throw TrackingError(.temporarilyUnavailable, "The writes of run \(run) belong to server \(lease.owner), which is not answering; "
                                + "another server takes them over when its lease lapses: send the request again")
        }
    }

    // MARK: Reads

    /// Brings the local copy of the run up to date with the shared log before a read: nothing to do on its owner,
    /// one query elsewhere (the records after the last one applied), a rebuild when the copy is dirty or unknown.
    public func readable(run: String) throws {
        let slot = slot(run)
        try slot.work.withLock { progress in
            if freshEpoch(slot) != nil, progress.appliedSeq >= 0, !progress.dirty { return }
            try catchUp(run, &progress)
        }
    }

    /// Applies the run's records after the last one applied (dropping the local copy first when it is dirty or its
    /// place in the log unknown). Call with the run's `work` held.
    func catchUp(_ run: String, _ progress: inout Progress) throws {
        do {
            if progress.dirty || progress.appliedSeq < 0 {
                try metrics.deleteRun(run)
                progress = Progress(appliedSeq: 0, dirty: false)
            }
            while true {
                let records = try state.records(run: run, after: progress.appliedSeq, limit: 1_000)
                guard let last = records.last else { return }
                try metrics.apply(run: run, records: records.map(\.payload))
                progress.appliedSeq = last.seq
            }
        } catch let e as StorageError {
            progress.dirty = true
            throw TrackingError(.internalError, "bringing run \(run) up to date from the shared log failed: \(e)")
        } catch {
            progress.dirty = true
            throw error
        }
    }

    // MARK: Heartbeat

    /// Starts the heartbeat: every third of a lease, this server's record and leases are renewed, and the runs
    /// whose leases lapsed are no longer written here.
    public func start() {
        beating.store(true, ordering: .releasing)
        let t = Thread { [self] in
            defer { beating.store(false, ordering: .releasing) }
            while !stopping.load(ordering: .acquiring) {
                beat()
                let until = ContinuousClock.now + leaseDuration / 3
                while !stopping.load(ordering: .acquiring), ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.02) }
            }
        }
        t.name = "tally-cluster-heartbeat"
        t.start()
    }

    /// One heartbeat (also called by tests).
    func beat() {
        let asked = ContinuousClock.now
        do {
            let held = try state.renew()
            heartbeatError.withLock { $0 = nil }
            var idle: [(String, Int64)] = []
            for (run, slot) in slots.withLock({ Array($0) }) {
                slot.lease.withLock { v in
                    guard let e = v.epoch else { return }
                    if held[run] != e {
                        v.epoch = nil
                    } else if asked - v.used > leaseDuration * Self.idleLeases {
                        v.epoch = nil
                        idle.append((run, e))
                    } else {
                        v.confirmed = asked
                    }
                }
            }
            for (run, epoch) in idle { try state.release(run: run, epoch: epoch) }
        } catch {
            heartbeatError.withLock { $0 = "\(error)" }
        }
    }

    /// Stops the heartbeat and gives up this server's leases, so the others take its runs at once.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        while beating.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.01) }
        for (run, slot) in slots.withLock({ Array($0) }) {
            if let e = slot.lease.withLock({ $0.epoch }) { try? state.release(run: run, epoch: e) }
        }
    }

    /// The runs this server believes it owns, with their epochs (for status pages and tests).
    public var ownedRuns: [String: Int64] {
        Dictionary(uniqueKeysWithValues: slots.withLock { Array($0) }.compactMap { run, slot in slot.lease.withLock { $0.epoch }.map { (run, $0) } })
    }
}
