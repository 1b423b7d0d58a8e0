/// The store's removals of files it no longer needs — a compaction's inputs, stale segments found by a run's load,
/// write-ahead-log segments a checkpoint frees — held off while a snapshot links the files it listed
/// (``MetricStore/listSnapshot(before:)``, then ``MetricStore/stage(_:)``): the listing is taken in memory while the
/// caller's writers wait, and the links are made after they go on, from files that must still be there.
///
/// A removal asked for during a hold is done when the last hold ends. A run's deletion, which moves the run's whole
/// directory, waits for the holds to end instead (only to mark the run deleted and move its directory aside), and no
/// hold starts while one is under way. A process that dies with removals held leaves the files behind, as it would
/// have died between a publish and its removal: the next open removes stale segments and log segments below the
/// checkpoint, as after any crash.
final class FileRemovals: Sendable {
    private final class State {
        var holds = 0
        var deletions = 0
        var waitingDeletions = 0
        var deferred: [String] = []
    }

    private let lock = ConditionLock(State())

    /// Removes the file at `path` now, or when the last hold ends (a missing file is not an error).
    func remove(_ path: String) throws {
        let now = lock.withLock { s -> Bool in
            guard s.holds > 0 else { return true }
            s.deferred.append(path)
            return false
        }
        // Outside the lock: a file removed here is in no list a hold could take (a compaction unpublishes its inputs,
        // and a checkpoint drops its log segments from the log's list, before removing them; a load removes stale
        // files under the run's lock, which listing takes).
        if now { try FileIO.remove(path) }
    }

    /// Starts a hold, after any run deletion under way finishes.
    func hold() {
        lock.withLock { s in
            while s.deletions > 0 { lock.wait() }
            s.holds += 1
        }
    }

    /// Ends a hold; the last one removes the files asked for meanwhile (failures are left for the next open, which
    /// removes what a crash leaves), still holding while it does, and then lets run deletions go on: a deletion let
    /// through earlier could have a new run of the same id seal a segment under a name about to be removed.
    func release() {
        while true {
            let doomed = lock.withLock { s -> [String]? in
                precondition(s.holds > 0, "FileRemovals.release without a hold")
                if s.holds == 1 && !s.deferred.isEmpty {
                    defer { s.deferred.removeAll() }
                    return s.deferred
                }
                s.holds -= 1
                if s.holds == 0 { lock.broadcast() }
                return nil
            }
            guard let doomed else { return }
            for path in doomed { try? FileIO.remove(path) }
        }
    }

    /// Runs `body` (a run's deletion) once no hold is taken, keeping new holds off until it returns.
    func excludingHolds<R>(_ body: () throws -> R) rethrows -> R {
        lock.withLock { s in
            s.waitingDeletions += 1
            while s.holds > 0 { lock.wait() }
            s.waitingDeletions -= 1
            s.deletions += 1
        }
        defer {
            lock.withLock { s in
                s.deletions -= 1
                if s.deletions == 0 { lock.broadcast() }
            }
        }
        return try body()
    }

    /// Files whose removal waits for a hold to end (tests).
    var deferredCount: Int { lock.withLock { $0.deferred.count } }
    /// Run deletions waiting for holds to end (tests).
    var waitingDeletions: Int { lock.withLock { $0.waitingDeletions } }
}
