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
    /// The shared state (its own small pool, apart from the requests' metadata pool).
    public let state: ClusterState
    /// The same, on a connection of its own: heartbeats never queue behind lease or log queries.
    let heartbeatState: ClusterState
    let metadata: PostgresMetadataStore
    let metrics: MetricStore
    let slots = Mutex<[String: RunSlot]>([:])
    let stopping = Atomic<Bool>(false)
    /// Background threads running (the heartbeat and the sealing thread): ``stop()`` waits for none.
    let threads = Atomic<Int>(0)
    /// The last heartbeat's failure, `nil` after one that succeeded (a change is reported once).
    let heartbeatError = Mutex<String?>(nil)
    /// When a heartbeat last renewed this server's leases (its start, before the first).
    let renewed = Mutex(ContinuousClock.now)
    /// Told when heartbeats start failing and when they succeed again (the server's log).
    let report: @Sendable (String) -> Void
    /// Where sealed segments go (`--metrics-destination`); `nil`: never sealed, the log keeps every record.
    let destination: SegmentDestination?
    /// The last sealing failure, `nil` after a round without one (a change is reported once).
    let sealError = Mutex<String?>(nil)
    /// What this server has done (``activity``).
    let counters = ClusterCounters()

    /// A member of the cluster of `state`, writing its records through `metadata`'s transactions and keeping run
    /// copies in `metrics`. Registers the server; call ``start()`` for the heartbeat.
    public init(state: ClusterState, heartbeat: ClusterState? = nil, metadata: PostgresMetadataStore, metrics: MetricStore,
                destination: SegmentDestination? = nil, report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.report = report
        self.destination = destination
        precondition(heartbeat.map { $0.node == state.node } ?? true, "one server, one node id")
        self.state = state
        heartbeatState = heartbeat ?? state
        self.metadata = metadata
        self.metrics = metrics
        try shared { try state.register() }
    }

    /// `work` with PostgreSQL's errors as tracking errors (lost connections, lock timeouts: 503).
    func shared<R>(_ work: () throws -> R) throws -> R {
        do {
            return try work()
        } catch let e as PostgresError {
            throw PostgresMetadataStore.trackingError(e, state.db.uri)
        }
    }

    /// What the local store holds of a run's log.
    struct Progress: Sendable {
        /// The last record applied locally; `-1`: unknown (rebuild before use).
        var appliedSeq: Int64 = -1
        /// The local copy may hold points the log does not: rebuild before use.
        var dirty = false
        /// The segment objects whose bytes local segment files hold, by segment number (installed from a sealed
        /// set, or uploaded from here): a rebuild links them instead of downloading them again.
        var objects: [UInt64: String] = [:]
        /// Bumped each time the local copy is dropped: a seal that started before does not touch ``objects``.
        var generation = 0
        /// The ``ClusterState/SealedSet/through`` this server last sealed or installed (nothing to seal up to it).
        var sealedThrough: Int64 = 0
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
        /// What this server wrote of the run since its last seal (read by the sealing thread without waiting for writes).
        let unsealed = Mutex(Unsealed())
        /// What the seal in progress took from ``unsealed`` (empty between seals): still unsealed for ``activity``.
        let sealing = Mutex(Unsealed())
        /// Bytes the local copy takes, approximately (sealed sets installed, records applied since): what the copies'
        /// budget counts (``SegmentDestination/cacheBytes``).
        let bytes = Atomic<Int64>(0)
        /// When a read last asked for the run here: copies are dropped least recently read first.
        let lastRead = Mutex(ContinuousClock.now)
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

    /// The epoch this server writes the run under with nothing to check first: a lease confirmed lately and a local
    /// copy known to hold the whole log; `nil` when the lease or the copy must be looked at.
    func settledEpoch(_ slot: RunSlot, _ progress: Progress) -> Int64? {
        progress.appliedSeq >= 0 && !progress.dirty ? freshEpoch(slot) : nil
    }

    // MARK: Writes

    /// Runs a write of the run's points as its owner: takes the lease when free (bringing the local copy up to date
    /// first), or throws ``OwnedElsewhere`` when a live server holds it (503 when its holder is silent but its lease
    /// has not lapsed). `body` gets two functions to call inside the metadata transaction: `fence` first (locks the
    /// lease row and checks this server still holds it under its epoch, so a refused write never becomes visible),
    /// then `log` once the append is visible (its record joins the transaction).
    public func write<R>(run: String, _ body: (_ fence: () throws -> Void, _ log: (PendingAppend) throws -> Void) throws -> R) throws -> R {
        let slot = slot(run)
        return try slot.work.withLock { progress in
            let epoch = try own(run, slot, &progress)
            var touched = false, logged: Int64?, bytes = 0
            do {
                let r = try body({
                    try metadata.inTransaction { c in try ClusterState.checkLease(c, node: state.node, run: run, epoch: epoch) }
                }, { pending in
                    guard let record = try pending.record() else { return }
                    touched = true
                    logged = try metadata.inTransaction { c in try ClusterState.insert(c, [(run, epoch, record)]).first }
                    bytes = record.count
                })
                if let logged {
                    progress.appliedSeq = logged
                    counters.logRecords.add(1, ordering: .relaxed)
                    counters.logBytes.add(bytes, ordering: .relaxed)
                    slot.unsealed.withLock { $0.add(bytes) }
                    slot.bytes.add(Int64(bytes), ordering: .relaxed)
                }
                return r
            } catch {
                // Visible here but maybe not in the log (a commit whose answer was lost): rebuilt before its next use.
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
        if let e = settledEpoch(slot, progress) {
            slot.lease.withLock { $0.used = .now }
            return e
        }
        let asked = ContinuousClock.now
        // Held by another live server: forwarded without taking the lease row's lock (an acquire would wait for
        // that server's appends in flight).
        if let held = try shared({ try state.liveLease(of: run) }), held.owner != state.node {
            slot.lease.withLock { $0.epoch = nil }
            throw try elsewhere(run, held)
        }
        switch try shared({ try state.acquire(run: run) }) {
        case .owned(let lease):
            let had = slot.lease.withLock { $0.epoch }
            // Another server may have written since this one last held it (or this one never knew the run).
            if had != lease.epoch || progress.dirty || progress.appliedSeq < 0 {
                try catchUp(run, slot, &progress)
                // Another server's records not sealed yet are this server's to seal now.
                if progress.appliedSeq > progress.sealedThrough { slot.unsealed.withLock { $0.add(0) } }
            }
            slot.lease.withLock { $0 = LeaseView(epoch: lease.epoch, confirmed: asked, used: asked) }
            return lease.epoch
        case .heldElsewhere(let lease):
            slot.lease.withLock { $0.epoch = nil }
            throw try elsewhere(run, lease)
        }
    }

    /// Where a write of a run held by another server goes: ``OwnedElsewhere`` naming it while it beats, else 503.
    func elsewhere(_ run: String, _ lease: ClusterState.Lease) throws -> any Error {
        if let owner = try shared({ try state.nodes() }).first(where: { $0.id == lease.owner }) {
            return OwnedElsewhere(run: run, node: owner.id, url: owner.url)
        }
        return TrackingError(.temporarilyUnavailable, "The writes of run \(run) belong to server \(lease.owner), which is not answering; "
                             + "another server takes them over when its lease lapses: send the request again")
    }

    /// Whether this server has a copy of the run in hand (a read of a run it never saw first checks that it exists).
    public func knows(run: String) -> Bool { slots.withLock { $0[run] != nil } }

    // MARK: Reads

    /// Brings the local copy of the run up to date with the shared log before a read: nothing to do on its owner,
    /// one query elsewhere (the records after the last one applied), a rebuild when the copy is dirty or unknown.
    public func readable(run: String) throws {
        let slot = slot(run)
        slot.lastRead.withLock { $0 = .now }
        try slot.work.withLock { progress in
            if settledEpoch(slot, progress) != nil { return }
            try catchUp(run, slot, &progress)
        }
    }

    /// Applies the run's records after the last one applied (dropping the local copy first when it is dirty or its
    /// place in the log unknown). Call with the run's `work` held.
    func catchUp(_ run: String, _ slot: RunSlot, _ progress: inout Progress) throws {
        do {
            if progress.dirty || progress.appliedSeq < 0 { try rebuild(run, slot, &progress) }
            while true {
                // A failed query leaves the copy as it was (a prefix of the log): only a failed apply makes it dirty.
                let (through, records) = try shared { try state.recordsPage(run: run, after: progress.appliedSeq, limit: Self.catchUpPage) }
                if through > progress.appliedSeq {
                    // Records after this copy's place were sealed and trimmed meanwhile: start from the sealed set.
                    try rebuild(run, slot, &progress)
                    continue
                }
                if through > progress.sealedThrough {
                    // Sealed elsewhere since this copy's set: objects it knew may be gone (not to be reused by a seal here).
                    progress.objects = [:]
                    progress.sealedThrough = through
                }
                guard let last = records.last else { return }
                do {
                    try metrics.apply(run: run, records: records.map(\.payload))
                    slot.bytes.add(records.reduce(0) { $0 + Int64($1.payload.count) }, ordering: .relaxed)
                } catch {
                    progress.dirty = true
                    throw error
                }
                progress.appliedSeq = last.seq
            }
        } catch let e as StorageError where e.code == .overloaded {
            throw RequestRules.metricsOverloaded(e.message)
        } catch let e as StorageError {
            throw TrackingError(.internalError, "bringing run \(run) up to date from the shared log failed: \(e)")
        }
    }

    /// Records fetched per query while catching up (a record holds at most one request's points).
    static let catchUpPage = 100

    // MARK: Heartbeat

    /// Starts the heartbeat: every third of a lease, this server's record and leases are renewed, and the runs
    /// whose leases lapsed are no longer written here.
    public func start() {
        repeatUntilStopped(name: "tally-cluster-heartbeat", every: leaseDuration / 3) { [self] in beat() }
        startSealing()
    }

    /// Runs `body` on a thread of its own every `interval` until ``stop()`` (which waits for it, counted in ``threads``).
    func repeatUntilStopped(name: String, every interval: Duration, _ body: @escaping @Sendable () -> Void) {
        threads.add(1, ordering: .releasing)
        let t = Thread { [self] in
            defer { threads.subtract(1, ordering: .releasing) }
            while !stopping.load(ordering: .acquiring) {
                body()
                let until = ContinuousClock.now + interval
                while !stopping.load(ordering: .acquiring), ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.02) }
            }
        }
        t.name = name
        t.start()
    }

    /// One heartbeat (also called by tests).
    func beat() {
        let asked = ContinuousClock.now
        do {
            let held = try heartbeatState.renew()
            renewed.withLock { $0 = asked }
            if heartbeatError.withLock({ e in defer { e = nil }; return e != nil }) {
                report("cluster heartbeat succeeds again (node \(state.node)): leases this server still held are renewed, lapsed ones are taken again on the next write")
            }
            var idle: [(String, RunSlot)] = []
            let known = slots.withLock { $0 }
            // Held in the database but not written here any more (a write refused by a transient error forgot its
            // epoch): released, so this server or another takes it again (and seals what it holds).
            for (run, epoch) in held {
                guard let slot = known[run] else {
                    try heartbeatState.release(run: run, epoch: epoch)
                    continue
                }
                try slot.work.withLockIfAvailable { _ in
                    if slot.lease.withLock({ $0.epoch == nil }) { try heartbeatState.release(run: run, epoch: epoch) }
                }
            }
            for (run, slot) in known {
                slot.lease.withLock { v in
                    guard let e = v.epoch else { return }
                    if held[run] != e {
                        v.epoch = nil
                    } else if asked - v.used > leaseDuration * Self.idleLeases, !waitsForSeal(slot) {
                        idle.append((run, slot))
                    } else {
                        v.confirmed = asked
                    }
                }
            }
            // An idle lease is given up only while no write of its run is running here (one that starts afterwards
            // takes the lease again), and only if still idle then.
            for (run, slot) in idle {
                try slot.work.withLockIfAvailable { _ in
                    let epoch: Int64? = slot.lease.withLock { v in
                        guard let e = v.epoch, ContinuousClock.now - v.used > leaseDuration * Self.idleLeases, !waitsForSeal(slot) else { return nil }
                        v.epoch = nil
                        return e
                    }
                    if let epoch { try heartbeatState.release(run: run, epoch: epoch) }
                }
            }
        } catch {
            if heartbeatError.withLock({ e in defer { e = "\(error)" }; return e == nil }) {
                report("cluster heartbeat failing (node \(state.node)): \(error); this server's leases lapse after \(state.leaseMillis) ms without one")
            }
        }
    }

    /// Stops the heartbeat and gives up this server's leases, so the others take its runs at once.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        while threads.load(ordering: .acquiring) > 0 { Thread.sleep(forTimeInterval: 0.01) }
        for (run, slot) in slots.withLock({ Array($0) }) {
            if let e = slot.lease.withLock({ $0.epoch }) { try? heartbeatState.release(run: run, epoch: e) }
        }
        try? heartbeatState.leave()
    }

    /// Why the heartbeat fails, while it does: its last attempt failed, or none has renewed the leases for a lease's
    /// length (one that hangs on the database fails nothing until it times out). `nil`: the leases are renewed.
    public var heartbeatFailure: String? {
        if let e = heartbeatError.withLock({ $0 }) { return e }
        let since = ContinuousClock.now - renewed.withLock { $0 }
        return since > leaseDuration ? "no heartbeat has renewed this server's leases for \(since.components.seconds) s (lease \(state.leaseMillis) ms)" : nil
    }

    /// The runs this server believes it owns, with their epochs (for status pages and tests).
    public var ownedRuns: [String: Int64] {
        Dictionary(uniqueKeysWithValues: slots.withLock { Array($0) }.compactMap { run, slot in slot.lease.withLock { $0.epoch }.map { (run, $0) } })
    }
}
