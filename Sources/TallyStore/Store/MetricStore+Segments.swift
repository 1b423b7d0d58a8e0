import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One segment file of a run, as handed out by ``MetricStore/linkSegments(run:into:)`` and taken in by
/// ``MetricStore/installRun(_:segments:)``.
public struct SegmentFile: Sendable, Equatable {
    /// The segment's sequence number in its run (its file name: ``fileName``).
    public var seq: UInt64
    /// Where the file is.
    public var path: String
    /// Its size in bytes.
    public var bytes: Int64

    /// A segment file.
    public init(seq: UInt64, path: String, bytes: Int64) {
        self.seq = seq
        self.path = path
        self.bytes = bytes
    }

    /// The name segment `seq` has in a run's directory.
    public var fileName: String { SegmentFormat.fileName(seq: seq) }
}

extension MetricStore {
    /// Seals every head of the run, then hard-links its live segment files into `directory` (created when missing;
    /// the files keep their names): a consistent set that holds every point appended before the call, safe to read
    /// while compactions replace the run's files. Call with the run's appends stopped (a cluster server holds the
    /// run's lock); an empty list when the run holds nothing. With `sealingHeads` false, only the segments are
    /// linked (the heads are left as they are).
    /// - Throws: ``StorageError`` when sealing or linking fails, or when points arrived during the call.
    public func linkSegments(run id: String, into directory: String, sealingHeads: Bool = true) throws -> [SegmentFile] {
        guard let run = try run(id, create: false) else { return [] }
        if sealingHeads { try sealAndMaintain(run, .all) }
        try FileIO.makeDirectories(directory)
        return try run.compactLock.withLock { _ in
            try run.sealLock.withLock { _ in
                let segments = try run.state.withLock { s -> [SegmentReader] in
                    try run.load(&s)
                    guard !sealingHeads || (s.heads.isEmpty && s.frozen.isEmpty) else {
                        throw StorageError(.invalidArgument, "run \(id) received points while its segments were being linked")
                    }
                    return s.deleted ? [] : s.segments
                }
                return try segments.map { seg in
                    let target = directory + "/" + SegmentFormat.fileName(seq: seg.seq)
                    if link(seg.path, target) != 0 && errno != EEXIST {
                        throw StorageError(.io, "link to \(target) failed", path: seg.path, errno: errno)
                    }
                    return SegmentFile(seq: seg.seq, path: target, bytes: seg.size)
                }
            }
        }
    }

    /// Makes `segments` (another store's consistent set: ``linkSegments(run:into:)``) the whole content of a run:
    /// the files are linked (or copied) into a new run directory under a temporary name, opened and checked — magic,
    /// checksums of header, footer and trailer, the chain of predecessors — and only then put in place. Appends and
    /// records applied afterwards go on from the installed segments.
    ///
    /// With `replacing`, a run the store holds is replaced in one step: a read that already holds the old run's
    /// segments finishes on them, later ones see the new run, none sees an empty run. Without it such a run is refused.
    /// Call with the run's appends stopped (a cluster server holds the run's lock). Only a store without a
    /// write-ahead log installs (a cluster server's copy, rebuilt from the shared log after a restart): the log's
    /// earlier records of the run (a deletion, points) would be replayed over the installed segments after a crash,
    /// and its manifest could name a segment of the replaced copy.
    /// - Throws: ``StorageError/Code/invalidArgument`` when the store has a write-ahead log, or holds the run and
    ///   `replacing` is false; the opening error of a damaged or incomplete set (naming the file and offset; nothing
    ///   changed), or an I/O error.
    public func installRun(_ id: String, segments: [SegmentFile], replacing: Bool = false) throws {
        try checkOpen()
        guard wal == nil else {
            throw StorageError(.invalidArgument, "run \(id): segments install only into a store without a write-ahead log (a cluster copy); "
                               + "this store's log would replay the run's earlier records over them after a crash")
        }
        if !replacing, try run(id, create: false) != nil {
            throw StorageError(.invalidArgument, "run \(id) is in the store: delete it before installing segments")
        }
        let name = RunDirectoryName.encode(id)
        let staging = runsDirectory + "/.installing-" + name + "-\(UInt64.random(in: 0...UInt64.max))"
        var placed = false
        defer { if !placed { try? FileIO.removeTree(staging) } }
        try FileIO.makeDirectories(staging)
        for f in segments {
            let target = staging + "/" + f.fileName
            try FileIO.linkOrCopy(f.path, to: target)
        }
        var check = RunState()
        try RunStore.loadIfNeeded(&check, directory: staging)
        check.segments.removeAll()
        let directory = runsDirectory + "/" + name
        let hidden = runsDirectory + "/.deleted-" + name + "-\(UInt64.random(in: 0...UInt64.max))"
        func swap(_ runs: inout [String: RunStore]) throws {
            // The old directory moves aside (its open segment files stay readable by reads holding them).
            if rename(directory, hidden) != 0 && errno != ENOENT { throw StorageError(.io, "rename failed", path: directory, errno: errno) }
            guard rename(staging, directory) == 0 else {
                let e = StorageError(.io, "rename failed", path: staging, errno: errno)
                _ = rename(hidden, directory)  // the old copy back where it was (a store opening removes `.deleted-*`)
                throw e
            }
            placed = true
            runs[id] = RunStore(id: id, directory: directory, account: account, packCache: packCache, removals: removals)
        }
        // Until the copy looked up is the one swapped out (another install or a deletion may come between).
        while true {
            guard let old = runs.withLock({ $0[id] }) else {
                let done = try runs.withLock { runs -> Bool in
                    guard runs[id] == nil else { return false }
                    try swap(&runs)
                    return true
                }
                if done { break } else { continue }
            }
            guard replacing else { throw StorageError(.invalidArgument, "run \(id) was created while its segments were being installed") }
            // No seal or compaction of the old copy is under way or can start (both write into the directory by its
            // path, which becomes the new copy's). A read that looked the old copy up before the swap loads it
            // after: its segments are opened here, before its directory moves, under its state lock, so no load
            // lists a directory mid-swap or finds the new copy's (or none) and the retired copy keeps what it held.
            // An old copy that cannot be opened (damaged) is replaced all the same; a read holding it finds it empty.
            // Lock order, as deletion's: compaction, seal, the run's state, then the store's map.
            let done = try old.compactLock.withLock { _ in
                try old.sealLock.withLock { _ in
                    try old.state.withLock { s -> Bool in
                        try? old.load(&s)
                        guard try runs.withLock({ runs -> Bool in
                            guard runs[id] === old else { return false }
                            try swap(&runs)
                            return true
                        }) else { return false }
                        old.retire(&s)
                        return true
                    }
                }
            }
            if done { break }
        }
        try? FileIO.removeTree(hidden)
        if configuration.durableSegments { try FileIO.syncDirectory(runsDirectory) }
    }
}
