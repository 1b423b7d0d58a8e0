import Dispatch
import Synchronization

/// The store's maintenance queues, off the appending threads: seals of runs whose heads filled up (with the log
/// checkpoints they make due), in ``sealLanes`` lanes so several runs' seals overlap their writes and fsyncs, and
/// compactions, one at a time, so a long compaction of one run never holds back another run's seal. A run is queued
/// on each at most once however many appends find it due, always in the same lane.
final class BackgroundMaintenance: Sendable {
    /// Seals that may run at once (each of another run): a seal waits mostly for its fsyncs.
    static let sealLanes = 4
    let seals = RunQueue(label: "tally.store.seals", lanes: BackgroundMaintenance.sealLanes)
    let compactions = RunQueue(label: "tally.store.compactions", lanes: 1)
    /// Set when the store is closed or abandoned: queued work then does nothing.
    let stopped = Atomic<Bool>(false)
}

/// Serial lanes of work per run, each run at most once in them and always in the same lane.
final class RunQueue: Sendable {
    let lanes: [DispatchQueue]
    /// Runs queued and not started yet.
    let queued = Mutex<Set<ObjectIdentifier>>([])

    init(label: String, lanes: Int) { self.lanes = (0..<max(1, lanes)).map { DispatchQueue(label: "\(label).\($0)") } }

    /// The lane of a run.
    func lane(_ id: ObjectIdentifier) -> DispatchQueue { lanes[Int(UInt(bitPattern: id.hashValue) % UInt(lanes.count))] }

    /// Waits for everything queued so far.
    func drain() { for lane in lanes { lane.sync {} } }
}

extension MetricStore {
    /// Queues a seal of `run` (a head reached ``StoreConfiguration/sealPoints``, or the heads their memory budget);
    /// the appending request returns without waiting for it. The seal takes the due series, or every series of the
    /// run when the heads are over 90 % of their budget then. A failure is kept for ``maintenanceError`` like an
    /// inline seal's.
    func sealLater(_ run: RunStore) {
        later(run, on: maintenance.seals, failed: { s, e in s.recordMaintenanceFailure(e) }) { store in
            let pressed = store.headBytes > store.headSealTarget
            try store.sealAndMaintain(run, pressed ? .all : store.dueSeal)
        }
    }

    /// Queues a compaction of `run`'s newest segments when it still has too many when its turn comes (see
    /// ``compactTail(_:)``): a compaction running when this one was queued may have merged them already.
    func compactLater(_ run: RunStore) {
        later(run, on: maintenance.compactions, failed: { s, e in s.lastCompactionError.withLock { $0 = e } }) { store in
            try store.compactTail(run)
            store.lastCompactionError.withLock { $0 = nil }
        }
    }

    /// Queues `work` for `run` unless that run (this very store of it: a run deleted and created again is another)
    /// is queued already; a failure is handed to `failed`.
    private func later(_ run: RunStore, on queue: RunQueue, failed: @escaping @Sendable (MetricStore, StorageError) -> Void,
                       _ work: @escaping @Sendable (MetricStore) throws -> Void) {
        let id = ObjectIdentifier(run)
        guard queue.queued.withLock({ $0.insert(id).inserted }) else { return }
        queue.lane(id).async { [weak self] in
            guard let self else { return }
            _ = queue.queued.withLock { $0.remove(id) }
            guard !self.maintenance.stopped.load(ordering: .acquiring) else { return }
            let failure: StorageError
            do {
                try work(self)
                return
            } catch let e as StorageError {
                failure = e
            } catch {
                failure = StorageError(.io, "maintenance failed: \(error)")
            }
            failed(self, failure)
        }
    }

    /// Waits for the queued maintenance to finish and stops the queues (``close()`` then seals everything itself).
    func stopMaintenance(drain: Bool) {
        if !drain { maintenance.stopped.store(true, ordering: .releasing) }
        maintenance.seals.drain()  // a queued seal may queue a compaction
        maintenance.compactions.drain()
        maintenance.stopped.store(true, ordering: .releasing)
    }
}
