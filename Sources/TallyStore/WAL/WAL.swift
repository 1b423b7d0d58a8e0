import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import SystemPackage

/// The store's write-ahead log: one sequence of segment files shared by all runs, so concurrent writers share
/// group commits.
///
/// Each append writes a `points` record (preceded by `series` records for series new to the current segment) with
/// one `writev` under the log's lock, which assigns the record's LSN. Durability is then awaited outside the lock:
/// in `sync` mode the first waiter becomes the leader and fsyncs everything written so far while later writers
/// queue for the next round.
final class WAL: Sendable {
    let directory: String
    let config: WALConfiguration

    struct SegmentInfo {
        var seq: UInt64
        var path: String
        var lastLSN: UInt64
    }

    /// The log's mutable state, a class on purpose: threads wait on the condition variable inside `withLock` and
    /// must see each other's changes after waking. Through an `inout` struct the optimiser may (and in release builds
    /// did) keep a field like `syncing` in a register across the wait: a waiter then never saw the leader clear it.
    final class State {
        var fd: FileDescriptor?
        var seq: UInt64 = 0
        var path = ""
        var size: Int64 = 0
        /// The current segment's length on disk: ``size`` plus the zeros written ahead (``WALConfiguration/preallocateBytes``).
        var allocated: Int64 = 0
        var nextLSN: UInt64 = 1
        var writtenLSN: UInt64 = 0
        var durableLSN: UInt64 = 0
        var syncing = false
        /// Moving average of recent fsync durations, nanoseconds (sizes the group-commit wait).
        var fsyncNanos = 0
        /// Appends announced with ``WAL/willAppend()`` that have not written yet (the group-commit window waits for them).
        var announced = 0
        /// A leader is waiting for the announced appends: the last of them wakes it. Otherwise an append wakes
        /// nobody (waking every thread that waits for an fsync on every append was 9 % of all CPU with 4 writers).
        var leaderWaiting = false
        /// Segment-local series ids of the current segment, by run and then key (an append hashes its run once and
        /// then only keys).
        var seriesIDs: [String: [String: UInt32]] = [:]
        /// Series ids handed out in the current segment (the next id).
        var seriesCount: UInt32 = 0
        /// Closed segments, oldest first (the current one is not listed).
        var closed: [SegmentInfo] = []
        var isClosed = false
    }

    let state: ConditionLock<State>
    /// Set once the log refuses appends for good: closed by ``close()``, after a failed fsync (what the page cache
    /// held is unknown then), or left without a segment by a failed switch. Read without the lock, which fsyncs and
    /// segment switches hold.
    let refusing = Atomic<Bool>(false)
    /// The store's activity counters (bytes written, fsyncs).
    let counters: StoreCounters

    /// Creates a log that is not yet writable; recovery reads the old segments, then calls
    /// ``start(lastLSN:existing:)``.
    init(directory: String, config: WALConfiguration, counters: StoreCounters = StoreCounters()) {
        self.directory = directory
        self.config = config
        self.counters = counters
        state = ConditionLock(State())
    }

    /// Opens a new segment numbered after `existing`, continuing after `lastLSN`.
    func start(lastLSN: UInt64, existing: [SegmentInfo]) throws {
        try state.withLock { s in
            s.nextLSN = lastLSN + 1
            s.writtenLSN = lastLSN
            s.durableLSN = lastLSN
            s.closed = existing
            s.seq = existing.last?.seq ?? 0
            try openSegment(s)
        }
        if case .batch(let ms) = config.durability {
            // Batch mode: a background loop fsyncs every `ms` until the log is closed or released.
            DispatchQueue(label: "tally.wal.sync").async { [weak self] in
                while let wal = self {
                    let open = wal.state.withLock { s -> Bool in
                        if !s.isClosed { wal.state.wait(nanoseconds: ms * 1_000_000) }
                        return !s.isClosed
                    }
                    guard open else { return }
                    try? wal.syncOnce()
                }
            }
        }
    }

    /// Writes a record with no columns (run deletion) and returns its LSN.
    func appendControl(_ type: WALRecordType, payload: [UInt8]) throws -> UInt64 {
        try state.withLock { s in
            guard !s.isClosed, s.fd != nil else { throw StorageError(.closed, "the write-ahead log is closed") }
            let lsn = s.nextLSN
            try writeRecords(s, WALFormat.header(type: type, lsn: lsn, length: payload.count, payloadCRC: CRC32C.checksum(payload)) + payload,
                             lastLSN: lsn)
            return lsn
        }
    }

    private func openSegment(_ s: State) throws {
        s.seq += 1
        s.path = directory + "/" + WALFormat.fileName(seq: s.seq)
        let header = WALFormat.fileHeader(firstLSN: s.nextLSN)
        var ahead = 0
        let fd = try FileIO.io("create WAL segment", path: s.path) {
            let fd = try FileDescriptor.open(FilePath(s.path), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                             permissions: [.ownerReadWrite, .groupRead, .otherRead])
            do {
                _ = try header.withUnsafeBytes { try fd.writeAll($0) }
                if preallocation > 0 {
                    if (try? FileIO.writeZeros(fd, at: Int64(header.count), count: preallocation)) != nil {
                        ahead = preallocation
                    } else {
                        _ = ftruncate(fd.rawValue, off_t(header.count))  // no room to write ahead: appends go on without it
                    }
                }
                if config.durability != .none { try counters.timedSync { try FileIO.syncData(fd) } }
            } catch {
                try? fd.close()
                throw error
            }
            return fd
        }
        if config.durability != .none {
            do {
                try counters.timedSync { try FileIO.syncDirectory(directory) }
            } catch {
                try? fd.close()
                throw error
            }
        }
        s.fd = fd
        s.size = Int64(header.count)
        s.allocated = s.size + Int64(ahead)
        s.seriesIDs.removeAll()
        s.seriesCount = 0
    }

    /// Announces an append that is about to be encoded, so a group commit in progress may wait for it.
    func willAppend() { state.withLock { $0.announced += 1 } }

    /// Withdraws an announcement that will not be followed by ``append(run:columns:keys:batchID:)``.
    func cancelAppend() {
        state.withLock { s in
            s.announced -= 1
            wakeLeader(s)
        }
    }

    /// Wakes a leader waiting for the announced appends once none is left (call with the lock held).
    private func wakeLeader(_ s: State) {
        if s.leaderWaiting && s.announced == 0 { state.broadcast() }
    }

    /// Writes a points record (and the series records it needs) and returns its LSN. Must follow ``willAppend()``.
    /// On a write error the partial record is cut off again and the error is thrown: the log stays valid.
    func append(run: String, columns: WALPoints.Columns, keys: [String], batchID: String?) throws -> UInt64 {
        try state.withLock { s in
            s.announced -= 1
            defer { wakeLeader(s) }
            guard !s.isClosed, s.fd != nil else { throw StorageError(.closed, "the write-ahead log is closed") }
            let estimate = Int64(columns.stored.count + 64 + keys.count * (64 + run.utf8.count))
            if s.size + estimate > Int64(config.segmentBytes) && s.size > Int64(WALFormat.fileHeaderSize) {
                try rotate(s)
            }
            let lsnBefore = s.nextLSN
            // The run's ids are taken out while this append adds to them (no copy of the table per key).
            var known = s.seriesIDs.removeValue(forKey: run) ?? Dictionary(minimumCapacity: keys.count)
            defer { s.seriesIDs[run] = known }
            var newKeys: [String] = []
            var ids: [UInt32] = []
            ids.reserveCapacity(keys.count)
            // The series records of new keys, then the points record, in one buffer written with one system call.
            var records = ByteWriter(capacity: columns.stored.count + 64 + keys.count * 8)
            for key in keys {
                if let id = known[key] {
                    ids.append(id)
                    continue
                }
                let id = s.seriesCount
                s.seriesCount += 1
                known[key] = id
                newKeys.append(key)
                ids.append(id)
                WALFormat.appendRecord(type: .series, lsn: s.nextLSN, into: &records) { WALSeries(id: id, run: run, key: key).write(into: &$0) }
                s.nextLSN += 1
            }
            let trailer = WALPoints.trailer(columns, seriesIDs: ids, batchID: batchID)
            let lsn = s.nextLSN
            let crc = CRC32C.checksum(trailer, seed: columns.crc)
            records.write(bytes: WALFormat.header(type: .points, lsn: lsn, length: columns.stored.count + trailer.count, payloadCRC: crc))
            records.write(bytes: columns.stored)
            records.write(bytes: trailer)
            do {
                try writeRecords(s, records.bytes, lastLSN: lsn)
            } catch {
                // Their series records were cut off too; the ids handed out here were the newest.
                for k in newKeys { known[k] = nil }
                s.seriesCount -= UInt32(newKeys.count)
                s.nextLSN = lsnBefore
                throw error
            }
            return lsn
        }
    }

    /// Writes records (the last one with LSN `lsn`) at the end of the current segment. On a write error the partial
    /// bytes are cut off again, so later appends continue a valid log (if even that fails, the tail is unknown and
    /// the log refuses further writes), and the error is thrown. Call with the lock held.
    private func writeRecords(_ s: State, _ bytes: [UInt8], lastLSN lsn: UInt64) throws {
        let sizeBefore = s.size
        if preallocation > 0 && s.size + Int64(bytes.count) > s.allocated {
            // Zeros ahead again (the sync after this append also carries the size change, once per extension). On a
            // full disk this fails first: the zeros written are cut off again and the append itself says what fails.
            let count = Int(s.size - s.allocated) + bytes.count + preallocation
            if (try? FileIO.writeZeros(s.fd!, at: s.allocated, count: count)) != nil {
                s.allocated += Int64(count)
            } else if ftruncate(s.fd!.rawValue, off_t(s.size)) == 0 {
                s.allocated = s.size
            }
        }
        do {
            // At the records' end, whatever the descriptor's position (a failed write may have moved it).
            try FileIO.io("write WAL", path: s.path) { try bytes.withUnsafeBytes { _ = try s.fd!.writeAll(toAbsoluteOffset: s.size, $0) } }
            s.size += Int64(bytes.count)
            counters.walBytes.add(bytes.count, ordering: .relaxed)
        } catch {
            if ftruncate(s.fd!.rawValue, off_t(sizeBefore)) != 0 { refuse(s) }  // the tail is unknown: no later append
            s.allocated = sizeBefore
            throw error
        }
        s.nextLSN = lsn + 1
        s.writtenLSN = lsn
    }

    /// Closes the current segment (fsynced) and opens the next. Called with the lock held.
    private func rotate(_ s: State) throws {
        while s.syncing { state.wait() }
        if let fd = s.fd {
            do {
                try cutZeros(s, fd)
                if config.durability != .none { try counters.timedSync { try FileIO.io("fsync WAL", path: s.path) { try FileIO.syncData(fd) } } }
            } catch {
                refuse(s)  // as after a group commit's failed fsync: a retry could succeed over lost pages
                throw error
            }
            try? fd.close()
            s.durableLSN = max(s.durableLSN, s.writtenLSN)
        }
        s.closed.append(SegmentInfo(seq: s.seq, path: s.path, lastLSN: s.writtenLSN))
        s.fd = nil
        do {
            try openSegment(s)
        } catch {
            refuse(s)  // no segment to append to: every later append is refused
            throw error
        }
    }

    /// Closes the log for good (with the lock held): at ``close()``, or after an I/O error that leaves it unknown.
    /// Later appends are refused.
    private func refuse(_ s: State) {
        s.isClosed = true
        refusing.store(true, ordering: .releasing)
        state.broadcast()
    }

    /// Returns once the record `lsn` is on disk as the durability mode requires.
    func waitDurable(_ lsn: UInt64) throws {
        guard config.durability == .sync else { return }
        try state.withLock { s in
            // Waiting for others to join is worth at most what an fsync costs: on a disk that syncs in 0.3 ms, a
            // 2 ms wait only delays every writer (measured: wide log-batch ingest through 4 connections).
            let window = min(config.groupCommitWindowMicroseconds * 1_000, s.fsyncNanos)
            var waited = false
            while s.durableLSN < lsn {
                guard !s.isClosed, let fd = s.fd else { throw StorageError(.closed, "the write-ahead log was closed") }
                if s.syncing {
                    state.wait()
                    continue
                }
                // Lead: let announced appends write (bounded by the window), then fsync all that is written. The
                // lock is released while waiting, so look at everything again afterwards: a rotation may have
                // closed `fd` (and made this record durable), another waiter may have become the leader.
                if window > 0 && s.announced > 0 && !waited {
                    waited = true
                    let deadline = ContinuousClock.now + .nanoseconds(window)
                    s.leaderWaiting = true
                    while s.announced > 0 && ContinuousClock.now < deadline { state.wait(nanoseconds: window / 4) }
                    s.leaderWaiting = false
                    continue
                }
                try fsyncWritten(s, fd)
            }
        }
    }

    /// Fsyncs everything written so far with the lock released, then records it as durable. A failed fsync closes
    /// the log: after one, what the page cache holds is unknown. Call with the lock held and `syncing` false.
    private func fsyncWritten(_ s: State, _ fd: FileDescriptor) throws {
        s.syncing = true
        let target = s.writtenLSN
        let path = s.path
        let start = ContinuousClock.now
        let result: Result<Void, any Error> = Result {
            try unlocked { try FileIO.io("fsync WAL", path: path) { try FileIO.syncData(fd) } }
        }
        let nanos = Int((ContinuousClock.now - start).totalNanoseconds)
        s.fsyncNanos = s.fsyncNanos == 0 ? nanos : (s.fsyncNanos * 7 + nanos) / 8
        if case .success = result { counters.synced(nanos: nanos) }
        s.syncing = false
        state.broadcast()
        if case .failure = result { refuse(s) }
        try result.get()
        s.durableLSN = max(s.durableLSN, target)
    }

    /// Runs `body` with the lock released (only from inside `state.withLock`).
    private func unlocked<R>(_ body: () throws -> R) rethrows -> R {
        state.unlockForCall()
        defer { state.relockAfterCall() }
        return try body()
    }

    /// Fsyncs whatever is written (batch mode's timer, and close).
    func syncOnce() throws {
        try state.withLock { s in
            while s.syncing { state.wait() }
            guard let fd = s.fd, s.writtenLSN > s.durableLSN else { return }
            try fsyncWritten(s, fd)
        }
    }

    /// The LSN of the last record written.
    var lastLSN: UInt64 { state.withLock { $0.writtenLSN } }

    /// Number of closed segments still kept.
    var closedSegments: [SegmentInfo] { state.withLock { $0.closed } }

    /// Deletes closed segments whose records all have LSNs below `lowWater` (their points are sealed).
    /// - Returns: how many were deleted.
    /// The files go through `remove` (the store's, which a snapshot's listing holds off).
    @discardableResult
    func removeSegments(below lowWater: UInt64, remove: (String) throws -> Void = FileIO.remove) throws -> Int {
        let doomed: [SegmentInfo] = state.withLock { s in
            let d = s.closed.prefix { $0.lastLSN < lowWater }
            s.closed.removeFirst(d.count)
            return Array(d)
        }
        for seg in doomed { try remove(seg.path) }
        if !doomed.isEmpty && config.durability != .none { try counters.timedSync { try FileIO.syncDirectory(directory) } }
        return doomed.count
    }

    /// Closes a log whose every record is sealed: starts an empty segment that only carries the next LSN, removes
    /// all older segments and closes, so a restart replays nothing.
    func closeClean() throws {
        try state.withLock { s in
            guard !s.isClosed, s.fd != nil else { return }
            try rotate(s)
        }
        try removeSegments(below: UInt64.max)
        try close()
    }

    /// Syncs and closes the log; later appends throw ``StorageError/Code/closed``.
    func close() throws {
        try state.withLock { s in
            while s.syncing { state.wait() }
            guard let fd = s.fd else { return }
            defer {
                try? fd.close()
                s.fd = nil
                refuse(s)
            }
            try cutZeros(s, fd)
            try counters.timedSync { try FileIO.io("fsync WAL", path: s.path) { try FileIO.syncData(fd) } }
            s.durableLSN = s.writtenLSN
        }
    }

    /// Zeros written ahead of the current segment's records (``WALConfiguration/preallocateBytes``, in `sync` mode,
    /// at most a segment's size).
    var preallocation: Int { config.durability == .sync ? max(0, min(config.preallocateBytes, config.segmentBytes)) : 0 }

    /// Cuts the current segment back to its records before it is closed. Call with the lock held.
    private func cutZeros(_ s: State, _ fd: FileDescriptor) throws {
        guard s.allocated > s.size else { return }
        guard ftruncate(fd.rawValue, off_t(s.size)) == 0 else { throw StorageError(.io, "ftruncate failed", path: s.path, errno: errno) }
        s.allocated = s.size
    }
}
