import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A store as it was at one instant, taken while writers go on (``MetricStore/snapshot(before:)``): hard links, in a
/// staging directory inside the store's own directory, to every segment file and every write-ahead-log segment, with
/// the length of the log's current segment at that instant. Linking takes milliseconds under the store's locks; the
/// bytes are copied afterwards (``write(to:)``), with no lock held, from files no writer changes: segments are never
/// modified, and the log's segments only grow past the lengths recorded (a checkpoint that deletes one leaves the
/// link). The copy is a store directory a ``MetricStore`` opens as it opens one after a crash at that instant, with
/// its log cut at a record boundary.
public final class StoreSnapshot: Sendable {
    /// The staging directory (removed by ``discard()``, and by the store's next open if the process dies first).
    public let staging: String
    /// The files to copy, relative to ``staging``, each with the bytes to copy (`nil`: the whole file).
    let files: [(path: String, length: Int64?)]
    /// The manifest the copy gets: each run's newest segment among those linked.
    let manifest: [String: UInt64]
    /// Runs with segment files in the snapshot.
    public let runs: Int
    /// Segment files linked.
    public let segments: Int
    /// Write-ahead-log segments linked.
    public let logSegments: Int

    init(staging: String, files: [(path: String, length: Int64?)], manifest: [String: UInt64], logSegments: Int) {
        self.staging = staging
        self.files = files
        self.manifest = manifest
        runs = manifest.count
        segments = files.count - logSegments
        self.logSegments = logSegments
    }

    /// Copies the snapshot into `directory` (created; it must not hold a store already), fsyncing every file and
    /// directory, with the manifest last. Returns the bytes copied.
    @discardableResult
    public func write(to directory: String) throws -> Int64 {
        if FileIO.isDirectory(directory + "/runs") || FileIO.isDirectory(directory + "/wal") {
            throw StorageError(.invalidArgument, "\(directory) already holds a metric store: back up into a new directory", path: directory)
        }
        var bytes: Int64 = 0
        var directories: Set<String> = [directory, directory + "/runs", directory + "/wal"]
        for d in directories.sorted() { try FileIO.makeDirectories(d) }
        for (path, length) in files {
            let target = directory + "/" + path
            let parent = String(target[..<target.lastIndex(of: "/")!])
            if directories.insert(parent).inserted { try FileIO.makeDirectories(parent) }
            bytes += try FileIO.copyDurably(staging + "/" + path, to: target, length: length)
        }
        try FileIO.writeAtomically(path: StoreManifest.path(directory), bytes: StoreManifest.encode(manifest), durable: true)
        for d in directories.sorted(by: >) { try FileIO.syncDirectory(d) }
        return bytes
    }

    /// Removes the staging directory.
    public func discard() {
        try? FileIO.removeTree(staging)
    }
}

extension MetricStore {
    /// The name prefix of snapshot staging directories in the store's directory.
    static let snapshotPrefix = ".snapshot-"

    /// Takes a ``StoreSnapshot``. `before` runs first, while no WAL segment can be removed: whatever the caller
    /// copies there (its metadata) is older than everything the snapshot's log holds, so points logged after it are
    /// in the copy's log and are replayed — and reported in ``RecoveryReport/replayedSeries`` — when the copy opens.
    ///
    /// Each run's published segments are linked under its state lock (the lock a seal or compaction publishes under:
    /// no half-finished compaction is seen, and none is waited for), then the log's segments under the log's lock. A
    /// segment sealed meanwhile holds points the log still has (no checkpoint runs during the snapshot), so nothing
    /// logged before the log's cut is missing, whatever seals and compactions ran.
    /// - Throws: ``StorageError/Code/invalidArgument`` for a store without a write-ahead log (a cluster copy, whose
    ///   points live in object storage).
    public func snapshot(before: () throws -> Void = {}) throws -> StoreSnapshot {
        try checkOpen()
        guard let wal else {
            throw StorageError(.invalidArgument, "a store without a write-ahead log (a cluster copy) is backed up by its object storage",
                               path: directory)
        }
        let staging = directory + "/" + Self.snapshotPrefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        do {
            return try manifestLock.withLock { _ in
                try before()
                try FileIO.makeDirectories(staging + "/runs")
                try FileIO.makeDirectories(staging + "/wal")
                var files: [(path: String, length: Int64?)] = []
                var manifest: [String: UInt64] = [:]
                for run in runs.withLock({ Array($0.values) }).sorted(by: { $0.id < $1.id }) {
                    try run.state.withLock { s in
                        guard !s.deleted else { return }
                        let name = String(run.directory[run.directory.index(after: run.directory.lastIndex(of: "/")!)...])
                        // A loaded run's published segments (a compaction or seal publishes under this lock, and
                        // removes replaced files only after); an unloaded one has no seal or compaction under way.
                        let seqs = s.loaded ? s.segments.map(\.seq)
                            : try Self.segmentSeqs(run.directory)
                        guard let newest = seqs.max() else { return }
                        try FileIO.makeDirectories(staging + "/runs/" + name)
                        for seq in seqs {
                            let path = "runs/" + name + "/" + SegmentFormat.fileName(seq: seq)
                            try FileIO.linkOrCopy(run.directory + "/" + SegmentFormat.fileName(seq: seq), to: staging + "/" + path)
                            files.append((path, nil))
                        }
                        manifest[run.id] = newest
                    }
                }
                let log = try wal.link(into: staging + "/wal")
                files += log.map { ("wal/" + $0.name, $0.length) }
                return StoreSnapshot(staging: staging, files: files, manifest: manifest, logSegments: log.count)
            }
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
    /// Hard links to every segment in `directory`, as of now: closed segments whole, the current one up to its last
    /// record (`length`), its zeros written ahead left out.
    func link(into directory: String) throws -> [(name: String, length: Int64?)] {
        try state.withLock { s in
            // A log that refuses appends (closed, or after a failed fsync) has no current segment to cut: a copy
            // without it could restart its numbering below what its segments have sealed.
            guard !s.isClosed, s.fd != nil else { throw StorageError(.closed, "the write-ahead log is closed", path: directory) }
            var out: [(name: String, length: Int64?)] = []
            for seg in s.closed {
                let name = WALFormat.fileName(seq: seg.seq)
                try FileIO.linkOrCopy(seg.path, to: directory + "/" + name)
                out.append((name, nil))
            }
            let name = WALFormat.fileName(seq: s.seq)
            try FileIO.linkOrCopy(s.path, to: directory + "/" + name)
            out.append((name, s.size))
            return out
        }
    }
}
