import Dispatch
import Synchronization

/// The store's maintenance queue: seals (and the compactions and log checkpoints they make due) of runs whose heads
/// filled up, one at a time, off the appending threads. A run is queued once however many appends find it full.
final class BackgroundMaintenance: Sendable {
    let queue = DispatchQueue(label: "tally.store.maintenance")
    /// Runs queued and not started yet, by id.
    let queued = Mutex<Set<String>>([])
    /// Set when the store is closed or abandoned: queued work then does nothing.
    let stopped = Atomic<Bool>(false)
}

extension MetricStore {
    /// Queues a seal of `run` (a head reached ``StoreConfiguration/sealPoints``); the appending request returns
    /// without waiting for it. A failure is kept for ``maintenanceError`` like an inline seal's.
    func sealLater(_ run: RunStore) {
        guard maintenance.queued.withLock({ $0.insert(run.id).inserted }) else { return }
        maintenance.queue.async { [weak self] in
            guard let self else { return }
            self.maintenance.queued.withLock { _ = $0.remove(run.id) }
            guard !self.maintenance.stopped.load(ordering: .acquiring) else { return }
            do {
                try self.sealAndMaintain(run, self.dueSeal)
            } catch let e as StorageError {
                self.lastMaintenanceError.withLock { $0 = e }
            } catch {
                self.lastMaintenanceError.withLock { $0 = StorageError(.io, "maintenance failed: \(error)") }
            }
        }
    }

    /// Waits for the queued maintenance to finish and stops the queue (``close()`` then seals everything itself).
    func stopMaintenance(drain: Bool) {
        if !drain { maintenance.stopped.store(true, ordering: .releasing) }
        maintenance.queue.sync {}
        maintenance.stopped.store(true, ordering: .releasing)
    }
}
