import CTallyShims
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A store as it was at one instant, taken while writers go on (``MetricStore/snapshot(before:)``): hard links, in a
/// staging directory inside the store's own directory, to every segment file and every write-ahead-log segment, with
/// the length of the log's current segment at that instant. The files are listed in memory at the instant
/// (``MetricStore/listSnapshot(before:)``) and linked afterwards (``MetricStore/stage(_:)``), their removal held off
/// meanwhile; the bytes are copied last (``write(to:reusing:durable:)``), with no lock held, from files no writer
/// changes: segments are never modified, and the log's segments only grow past the lengths recorded (a checkpoint
/// that deletes one leaves the link). The copy is a store directory a ``MetricStore`` opens as it opens one after a
/// crash at that instant, with its log cut at a record boundary.
public final class StoreSnapshot: Sendable {
    /// The staging directory (removed by ``discard()``, and by the store's next open if the process dies first).
    public let staging: String
    /// The files to copy: where each goes in the copy, its link's name in ``staging``, and the bytes to copy (`nil`:
    /// the whole file).
    let files: [(path: String, link: String, length: Int64?)]
    /// The manifest the copy gets: each run's newest segment among those linked.
    let manifest: [String: UInt64]
    /// Runs with segment files in the snapshot.
    public let runs: Int
    /// Segment files linked.
    public let segments: Int
    /// Write-ahead-log segments linked.
    public let logSegments: Int

    init(staging: String, files: [(path: String, link: String, length: Int64?)], manifest: [String: UInt64], logSegments: Int) {
        self.staging = staging
        self.files = files
        self.manifest = manifest
        runs = manifest.count
        segments = files.count - logSegments
        self.logSegments = logSegments
    }

    /// What ``write(to:reusing:)`` wrote.
    public struct Written: Sendable, Equatable {
        /// Bytes copied.
        public var copiedBytes: Int64 = 0
        /// Files hard-linked from the earlier copy instead, and their bytes.
        public var reusedFiles = 0, reusedBytes: Int64 = 0
    }

    /// Copies the snapshot into `directory` (created; it must not hold a store already), fsyncing every file and
    /// directory when `durable` (else the caller syncs the file system: ``syncFileSystem(containing:)``), with the
    /// manifest last. With `previous` (an earlier copy of this store), a whole file it holds under
    /// the same name, with the same size and the same last bytes (a segment's trailer: its footer's checksum), is
    /// hard-linked from it instead of copied: segments never change once written, so an incremental copy costs what
    /// changed. Log segments are always copied.
    @discardableResult
    public func write(to directory: String, reusing previous: String? = nil, durable: Bool = true) throws -> Written {
        if FileIO.isDirectory(directory + "/runs") || FileIO.isDirectory(directory + "/wal") {
            throw StorageError(.invalidArgument, "\(directory) already holds a metric store: back up into a new directory", path: directory)
        }
        var written = Written()
        var directories: Set<String> = [directory, directory + "/runs", directory + "/wal"]
        for d in directories.sorted() { try FileIO.makeDirectories(d) }
        for (path, staged, length) in files {
            let target = directory + "/" + path
            let parent = String(target[..<target.lastIndex(of: "/")!])
            if directories.insert(parent).inserted { try FileIO.makeDirectories(parent) }
            // Segments only: a log segment's name and tail say too little of its records (after a restore or a lost
            // segment, numbers are given again), and the log is small.
            if length == nil, path.hasPrefix("runs/"), let previous,
               (try? FileIO.sameFile(staging + "/" + staged, previous + "/" + path)) == true,
               link(previous + "/" + path, target) == 0 {
                written.reusedFiles += 1
                written.reusedBytes += FileIO.size(target) ?? 0
                continue
            }
            written.copiedBytes += try FileIO.copy(staging + "/" + staged, to: target, length: length, durable: durable)
        }
        try FileIO.writeAtomically(path: StoreManifest.path(directory), bytes: StoreManifest.encode(manifest), durable: durable)
        if durable { for d in directories.sorted(by: >) { try FileIO.syncDirectory(d) } }
        return written
    }

    /// Removes the staging directory.
    public func discard() {
        try? FileIO.removeTree(staging)
    }
}

/// A store's files as they were at one instant (``MetricStore/listSnapshot(before:)``), held: none of them is removed
/// until ``MetricStore/stage(_:)`` has linked them or the listing is released (or dropped).
public final class SnapshotListing: Sendable {
    /// The runs' segments listed: each run's directory (shared, not copied) and segment numbers; their paths are
    /// made when they are linked, after the pause.
    let segments: [(directory: String, seqs: [UInt64])]
    /// The log's segments: each one's path and the bytes to copy (`nil`: the whole file).
    let log: [(path: String, length: Int64?)]
    let manifest: [String: UInt64]
    private let removals: FileRemovals
    private let held = Atomic<Bool>(true)

    /// Files listed.
    public var count: Int { segments.reduce(log.count) { $0 + $1.seqs.count } }

    init(segments: [(directory: String, seqs: [UInt64])], log: [(path: String, length: Int64?)], manifest: [String: UInt64], removals: FileRemovals) {
        self.segments = segments
        self.log = log
        self.manifest = manifest
        self.removals = removals
    }

    /// Where each listed file is, and where it goes in the copy (`runs/<run's directory>/<segment>`, `wal/<segment>`),
    /// segments first.
    var files: [(source: String, path: String, length: Int64?)] {
        var files: [(source: String, path: String, length: Int64?)] = []
        files.reserveCapacity(count)
        for (directory, seqs) in segments {
            let name = directory[directory.index(after: directory.lastIndex(of: "/")!)...]
            for seq in seqs {
                let file = SegmentFormat.fileName(seq: seq)
                files.append((directory + "/" + file, "runs/" + name + "/" + file, nil))
            }
        }
        for (path, length) in log { files.append((path, "wal/" + path[path.index(after: path.lastIndex(of: "/")!)...], length)) }
        return files
    }

    /// Lets the store remove files again (the removals asked for meanwhile are done now). Idempotent.
    public func release() {
        if held.exchange(false, ordering: .acquiringAndReleasing) { removals.release() }
    }

    deinit { release() }
}

/// Copies the file `from` to a new file `to`, without syncing it (see ``syncFileSystem(containing:)``): what a
/// backup copies beside the store's own files. Returns the bytes copied.
@discardableResult
public func copyFile(from: String, to: String) throws -> Int64 {
    try FileIO.copy(from, to: to)
}

/// Makes everything written to the file system holding `path` durable, at once (`syncfs`; `sync` where there is
/// none): one flush for a copy of thousands of small files, instead of an `fsync` each.
public func syncFileSystem(containing path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw StorageError(.io, "open failed", path: path, errno: errno) }
    defer { close(fd) }
    guard tally_syncfs(fd) == 0 else { throw StorageError(.io, "syncfs failed", path: path, errno: errno) }
}

/// `fsync` of the directory at `path`, so the names made in it last.
public func syncDirectory(_ path: String) throws {
    try FileIO.syncDirectory(path)
}

extension MetricStore {
    /// The name prefix of snapshot staging directories in the store's directory.
    static let snapshotPrefix = ".snapshot-"

    /// Lists the segment files of the runs not loaded whose files are not known yet, so that a
    /// ``listSnapshot(before:)`` taken next does no directory listing while its caller holds writers off (an
    /// unloaded run's files change only once it is loaded, which forgets the list). Runs no lock but each run's state
    /// lock, briefly.
    public func prepareSnapshot() throws {
        for run in runs.withLock({ Array($0.values) }) {
            // Listed under the run's lock, so no load (which may delete stale files) runs meanwhile.
            try run.state.withLock { s in
                if !s.loaded && !s.deleted && s.unloadedSeqs == nil { s.unloadedSeqs = try Self.segmentSeqs(run.directory) }
            }
        }
    }

    /// Takes a ``StoreSnapshot``: ``listSnapshot(before:)``, then ``stage(_:)``.
    public func snapshot(before: () throws -> Void = {}) throws -> StoreSnapshot {
        try stage(listSnapshot(before: before))
    }

    /// Lists the store's files as they are now, in memory, and holds off the removal of any of them until the
    /// listing is staged (``stage(_:)``) or released. `before` runs first, while no WAL segment can be removed:
    /// whatever the caller copies there (its metadata) is older than everything the snapshot's log holds, so points
    /// logged after it are in the copy's log and are replayed — and reported in ``RecoveryReport/replayedSeries`` —
    /// when the copy opens. Call ``prepareSnapshot()`` first when `before` holds writers off: the listing then makes
    /// no system call.
    ///
    /// Each run's published segments are listed under its state lock (the lock a seal or compaction publishes under:
    /// no half-finished compaction is seen, and none is waited for), then the log's segments under the log's lock. A
    /// segment sealed meanwhile holds points the log still has (no checkpoint runs during the listing), so nothing
    /// logged before the log's cut is missing, whatever seals and compactions ran.
    /// - Throws: ``StorageError/Code/invalidArgument`` for a store without a write-ahead log (a cluster copy, whose
    ///   points live in object storage).
    public func listSnapshot(before: () throws -> Void = {}) throws -> SnapshotListing {
        try checkOpen()
        guard let wal else {
            throw StorageError(.invalidArgument, "a store without a write-ahead log (a cluster copy) is backed up by its object storage",
                               path: directory)
        }
        removals.hold()  // before anything is listed: every file listed stays until it is linked
        var segments: [(directory: String, seqs: [UInt64])] = []
        var log: [(path: String, length: Int64?)] = []
        var manifest: [String: UInt64] = [:]
        do {
            try manifestLock.withLock { _ in
                try before()
                for run in runs.withLock({ Array($0.values) }) {
                    try run.state.withLock { s in
                        guard !s.deleted else { return }
                        // A loaded run's published segments (a compaction or seal publishes under this lock, and
                        // removes replaced files only after); an unloaded one has no seal or compaction under way.
                        let seqs = try s.loaded ? s.segments.map(\.seq) : (s.unloadedSeqs ?? Self.segmentSeqs(run.directory))
                        guard let newest = seqs.max() else { return }
                        segments.append((run.directory, seqs))
                        manifest[run.id] = newest
                    }
                }
                try wal.eachSegment { path, length in log.append((path, length)) }
            }
        } catch {
            removals.release()
            throw error
        }
        return SnapshotListing(segments: segments, log: log, manifest: manifest, removals: removals)
    }

    /// Hard-links the listed files into a staging directory inside the store's directory (flat names; the copy gets
    /// the tree), ~20 µs a file, with writers going on, and releases the listing's hold on removals (also when it
    /// throws). A log segment grows past its listed length meanwhile, never changes below it.
    public func stage(_ listing: SnapshotListing) throws -> StoreSnapshot {
        defer { listing.release() }
        let staging = directory + "/" + Self.snapshotPrefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        do {
            try FileIO.makeDirectories(staging)
            let files = listing.files
            var staged: [(path: String, link: String, length: Int64?)] = []
            staged.reserveCapacity(files.count)
            for file in files {
                let link = String(staged.count)
                try FileIO.linkOrCopy(file.source, to: staging + "/" + link)
                staged.append((file.path, link, file.length))
            }
            return StoreSnapshot(staging: staging, files: staged, manifest: listing.manifest, logSegments: listing.log.count)
        } catch {
            try? FileIO.removeTree(staging)
            throw error
        }
    }

    /// The segment files in a run's directory (none when the directory is gone); any other failure to list it is an
    /// error, not an empty run.
    static func segmentSeqs(_ directory: String) throws -> [UInt64] {
        guard FileIO.isDirectory(directory) else { return [] }
        return try FileIO.list(directory).compactMap(SegmentFormat.seq(fromFileName:)).sorted()
    }

    /// Removes snapshot staging directories a process that died while copying left behind (at open).
    func removeStaleSnapshots() throws {
        for name in try FileIO.list(directory) where name.hasPrefix(Self.snapshotPrefix) {
            try FileIO.removeTree(directory + "/" + name)
        }
    }
}

extension WAL {
    /// Calls `body` with every segment's path, as of now, under the log's lock (no append, rotation or removal
    /// meanwhile): closed segments whole (`nil`), then the current one with the length of its records (its zeros
    /// written ahead left out).
    func eachSegment(_ body: (String, Int64?) throws -> Void) throws {
        try state.withLock { s in
            // A log that refuses appends (closed, or after a failed fsync) has no current segment to cut: a copy
            // without it could restart its numbering below what its segments have sealed.
            guard !s.isClosed, s.fd != nil else { throw StorageError(.closed, "the write-ahead log is closed", path: directory) }
            for seg in s.closed { try body(seg.path, nil) }
            try body(s.path, s.size)
        }
    }
}
