import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MetricStore {
    /// Seals every head of one run into a segment.
    public func flush(run id: String) throws {
        guard let run = try run(id, create: false) else { return }
        try sealAndMaintain(run, .all)
    }

    /// Seals every head of every run.
    public func flush() throws {
        for run in runs.withLock({ Array($0.values) }) where run.headBytes.load(ordering: .relaxed) > 0 || run.hasFrozen {
            try sealAndMaintain(run, .all)
        }
    }

    /// Refuses new appends, waits for those in flight, seals all heads and closes the log so that a restart replays
    /// nothing, then releases the directory (another store may open it). Later calls throw
    /// ``StorageError/Code/closed``.
    public func close() throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        defer { directoryLock.release() }
        while activeAppends.load(ordering: .acquiring) > 0 { usleep(500) }
        stopMaintenance(drain: true)
        try flush()
        if let wal {
            try writeManifest()
            try wal.closeClean()
        }
    }

    /// Lets go of the directory without closing anything, as a killed process's exit does: for tests that simulate
    /// a crash in process and then reopen the directory. The store must not be used afterwards.
    func abandon() {
        stopMaintenance(drain: false)
        directoryLock.release()
    }

    /// Deletes all data of a run (heads and segment files). With a WAL, the deletion is logged first so replay does
    /// not bring the points back.
    public func deleteRun(_ id: String) throws {
        // Until the copy looked up is the one deleted: a copy no longer the store's once its locks are held was
        // replaced (installRun) or deleted, and its directory may be another copy's by now. (A copy still the store's
        // but marked deleted is one whose deletion failed half-way: it is deleted again.)
        while let run = try run(id, create: false) {
            if try deleteRun(id, run) { break }
        }
        try maintainWAL()
    }

    /// Deletes `run`, the store's copy of run `id`; `false` when it was replaced or deleted before its locks were taken.
    func deleteRun(_ id: String, _ run: RunStore) throws -> Bool {
        try run.compactLock.withLock { _ in try run.sealLock.withLock { _ in
            guard runs.withLock({ $0[id] === run }) else { return false }
            if let wal {
                var w = ByteWriter()
                w.writeString16(id)
                try wal.waitDurable(try wal.appendControl(.deleteRun, payload: w.bytes))
            }
            // Move the directory out of the way before the id can be reused, then remove it. Marked and moved while
            // no snapshot links files it listed there (FileRemovals); a listing skips a run marked deleted.
            let hidden = runsDirectory + "/.deleted-" + RunDirectoryName.encode(id) + "-\(UInt64.random(in: 0...UInt64.max))"
            try removals.excludingHolds {
                run.state.withLock { run.markDeleted(&$0) }
                try runs.withLock { runs in
                    if rename(run.directory, hidden) != 0 && errno != ENOENT {
                        throw StorageError(.io, "rename failed", path: run.directory, errno: errno)
                    }
                    if runs[id] === run { runs[id] = nil }
                }
            }
            try FileIO.removeTree(hidden)
            if configuration.durableSegments { try FileIO.syncDirectory(runsDirectory) }
            return true
        } }
    }
}

extension RunStore {
    var hasFrozen: Bool { state.withLock { !$0.frozen.isEmpty } }
}
