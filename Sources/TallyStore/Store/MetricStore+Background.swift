import Dispatch
import Synchronization

/// The store's maintenance queues, off the appending threads: one for seals of runs whose heads filled up (with the
/// log checkpoints they make due), one for compactions, so a long compaction of one run never holds back another
/// run's seal. Each queue takes one run at a time, and a run is queued on each at most once however many appends
/// find it due.
final class BackgroundMaintenance: Sendable {
    let seals = RunQueue(label: "tally.store.seals")
    let compactions = RunQueue(label: "tally.store.compactions")
    /// Set when the store is closed or abandoned: queued work then does nothing.
    let stopped = Atomic<Bool>(false)
}

/// A serial queue of work per run, each run at most once in it.
final class RunQueue: Sendable {
    let queue: DispatchQueue
    /// Runs queued and not started yet, by id.
    let queued = Mutex<Set<String>>([])

    init(label: String) { queue = DispatchQueue(label: label) }
}

extension MetricStore {
    /// Queues a seal of `run` (a head reached ``StoreConfiguration/sealPoints``, or the heads their memory budget);
    /// the appending request returns without waiting for it. The seal takes the due series, or every series of the
    /// run when the heads are over 90 % of their budget then. A failure is kept for ``maintenanceError`` like an
    /// inline seal's.
    func sealLater(_ run: RunStore) {
        later(run, on: maintenance.seals) { store in
            let pressed = store.headBytes > store.configuration.headMemoryBudget / 10 * 9
            try store.sealAndMaintain(run, pressed ? .all : store.dueSeal)
        }
    }

    /// Queues a compaction of `run`'s newest segments (see ``compactTail(_:)``).
    func compactLater(_ run: RunStore) {
        later(run, on: maintenance.compactions) { try $0.compactTail(run) }
    }

    private func later(_ run: RunStore, on queue: RunQueue, _ work: @escaping @Sendable (MetricStore) throws -> Void) {
        guard queue.queued.withLock({ $0.insert(run.id).inserted }) else { return }
        queue.queue.async { [weak self] in
            guard let self else { return }
            _ = queue.queued.withLock { $0.remove(run.id) }
            guard !self.maintenance.stopped.load(ordering: .acquiring) else { return }
            do {
                try work(self)
            } catch let e as StorageError {
                self.lastMaintenanceError.withLock { $0 = e }
            } catch {
                self.lastMaintenanceError.withLock { $0 = StorageError(.io, "maintenance failed: \(error)") }
            }
        }
    }

    /// Waits for the queued maintenance to finish and stops the queues (``close()`` then seals everything itself).
    func stopMaintenance(drain: Bool) {
        if !drain { maintenance.stopped.store(true, ordering: .releasing) }
        maintenance.seals.queue.sync {}  // a queued seal may queue a compaction
        maintenance.compactions.queue.sync {}
        maintenance.stopped.store(true, ordering: .releasing)
    }
}
