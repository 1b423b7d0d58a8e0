import Foundation
import TallyStore

#if canImport(Glibc)
import Glibc
#endif

/// What ``TrackingService/backup(into:artifacts:)`` copied.
public struct BackupSummary: Sendable {
    /// The backup's directory: a data directory a server starts on (`tally server --data-dir`).
    public var directory: String
    /// The metadata copy's bytes (SQLite's file, or `pg_dump`'s dump of a PostgreSQL database); `nil` when it was not
    /// copied (``metadataNote`` says why).
    public var metadataBytes: Int64?
    /// The metadata copy's file name in the backup (``DataDirectory/metadataName`` or ``DataDirectory/metadataDumpName``).
    public var metadataFile: String?
    /// Why the metadata was not copied.
    public var metadataNote: String?
    /// Runs with sealed metric points, segment files and write-ahead-log segments copied, and their bytes.
    public var runs = 0, segments = 0, logSegments = 0
    /// Bytes of the metric store copied.
    public var metricBytes: Int64 = 0
    /// Artifacts copied (files and bytes, and files deleted before they could be copied); `nil` when they were not
    /// (``artifactsNote`` says why).
    public var artifacts: ArtifactStore.CopySummary?
    /// Files hard-linked from the earlier backup instead of copied (``TrackingService/backup(into:dataDirectory:artifacts:reusing:)``),
    /// and their bytes: metric segments and artifacts that did not change.
    public var reusedFiles = 0, reusedBytes: Int64 = 0
    /// Why artifacts were not copied.
    public var artifactsNote: String?
    /// How long writes waited while the metadata was copied and the metric store's files linked, in milliseconds.
    public var pauseMillis = 0.0
    /// The whole backup, in seconds.
    public var seconds = 0.0

    /// An empty summary of a backup in `directory`.
    public init(directory: String) { self.directory = directory }
}

/// What ``TrackingService/verifyBackup(_:)`` read of a backup.
public struct BackupCheck: Sendable {
    /// The metric store's check: every log record and every block of every segment read and checksummed.
    public var metrics: CheckReport
    /// SQLite's `integrity_check` of the metadata copy, or `pg_restore`'s reading of a PostgreSQL dump whole:
    /// `["ok"]`, or what is wrong; empty without either.
    public var metadata: [String]
    /// Whether nothing is wrong.
    public var ok: Bool { metrics.problems.isEmpty && (metadata.isEmpty || metadata == ["ok"]) }
}

extension TrackingService {
    /// Reads a backup whole, as a restore would need it, without opening it as a store: the metric store's every log
    /// record and segment block (``StoreCheck``), SQLite's `integrity_check` of the metadata copy (opened read-only),
    /// or a PostgreSQL dump's table of contents and every block of its data (`pg_restore`, beside `pgDump` when given).
    public static func verifyBackup(_ directory: String, pgDump: String? = nil) throws -> BackupCheck {
        let data = DataDirectory(directory)
        guard FileManager.default.fileExists(atPath: data.metrics + "/MANIFEST") else {
            throw TrackingError(.invalidParameterValue, "'\(directory)' is not a backup (no \(DataDirectory.metricsName)/MANIFEST)")
        }
        var metadata: [String] = []
        if FileManager.default.fileExists(atPath: data.metadata) {
            let db = try SQLiteDatabase(path: data.metadata, readOnly: true)
            defer { db.close() }
            metadata = try db.rows("PRAGMA integrity_check").map { $0.first?.string ?? "?" }
        } else if FileManager.default.fileExists(atPath: data.metadataDump) {
            metadata = try PostgresMetadataStore.verifyDump(data.metadataDump, pgDump: pgDump)
        }
        return BackupCheck(metrics: try StoreCheck.check(directory: data.metrics), metadata: metadata)
    }

    /// Copies this server's data into `directory` (new, or empty) while it keeps serving: a data directory laid out
    /// as `dataDirectory` is (``DataDirectory``), which `tally server --data-dir` starts on as it would after a crash
    /// at one instant.
    ///
    /// - The embedded metadata database is copied with SQLite's online backup, most pages in steps while writes go
    ///   on, the rest while every metadata read and write waits; in the same pause the metric store's files are listed
    ///   (``MetricStore/listSnapshot(before:)``, in memory). A logging request appends its points and commits its
    ///   latest values under the lock the pause holds, so none is half done at that instant. Then the listed files
    ///   are hard-linked (their removal held off until then) and copied, with writers going on.
    /// - A PostgreSQL metadata database is dumped by `pg_dump` from a snapshot exported in the same pause, with this
    ///   server's requests held back (other servers sharing the database are not: the dump has what they committed by
    ///   then); `metadata` `nil` leaves it out (backed up by other means), which only a PostgreSQL database may be.
    /// - Artifacts in a directory are copied last when `artifacts` is true (files being uploaded are not) into the
    ///   backup's `artifacts`; in object storage they are not (the bucket's versioning or replication keeps them).
    /// - The webhook secrets' key and the import journals are copied too.
    /// - Everything is written into a new directory beside `directory` and renamed to it at the end: a backup that
    ///   stopped half-way (an error, a kill) is never found under the name asked for, and two backups into one
    ///   directory cannot mix (the second rename is refused).
    /// - With `previous`, an earlier backup on the same file system, every metric segment and artifact it holds
    ///   unchanged is hard-linked from it rather than copied (segments never change; an artifact is unchanged when its
    ///   size and modification time are, the times being kept in copies): each backup is whole, and costs what
    ///   changed since the last.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a directory that holds files or lies inside the data directory or the
    ///   artifacts (or holds either), for a `previous` that is not a backup, for a cluster server (its points are in
    ///   object storage), for no `pg_dump` found, or for `metadata` `nil` on SQLite.
    public func backup(into directory: String, dataDirectory: DataDirectory, artifacts: Bool = true, reusing previous: String? = nil,
                       metadata copying: MetadataCopyOptions? = MetadataCopyOptions()) throws -> BackupSummary {
        let started = ContinuousClock.now
        func refused(_ why: String) -> TrackingError { TrackingError(.invalidParameterValue, "Backup directory '\(directory)': \(why)") }
        guard cluster == nil else {
            throw TrackingError(.invalidParameterValue, "A cluster server's metric points are in object storage: back up its bucket and PostgreSQL instead")
        }
        guard !directory.isEmpty else { throw refused("a directory is needed") }
        guard copying != nil || metadata.shared else {
            throw TrackingError(.invalidParameterValue, "The embedded metadata database is part of every backup: leaving it out is for a PostgreSQL database backed up by other means")
        }
        // The place the backup will have once created, every symbolic link resolved (its parent is made if needed).
        let asked = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = asked.deletingLastPathComponent().path, name = asked.lastPathComponent
        guard name != "/" && name != "." && name != ".." else { throw refused("name a directory to create or an empty one") }
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw refused("its parent cannot be created: \(error.localizedDescription)")
        }
        guard let realParent = Self.realPath(parent) else { throw refused("its parent cannot be resolved") }
        let target = Self.realPath(realParent + "/" + name) ?? realParent + "/" + name
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw refused("it is a file") }
            guard let present = try? FileManager.default.contentsOfDirectory(atPath: target) else { throw refused("it cannot be read") }
            guard present.isEmpty else { throw refused("it is not empty: back up into a new directory") }
        }
        let data = Self.realPath(dataDirectory.path)
        let guarded = [data, self.artifacts?.localRoot.flatMap(Self.realPath)].compactMap { $0 }
        for g in guarded where target == g || target.hasPrefix(g + "/") || g.hasPrefix(target + "/") {
            throw refused("it must lie outside the data directory \(dataDirectory.path) and the artifacts")
        }
        var earlier: DataDirectory?
        if let previous {
            guard let real = Self.realPath(previous), FileManager.default.fileExists(atPath: DataDirectory(real).metrics + "/MANIFEST") else {
                throw TrackingError(.invalidParameterValue, "Earlier backup '\(previous)' is not a backup (no \(DataDirectory.metricsName)/MANIFEST)")
            }
            if let data, real == data || real.hasPrefix(data + "/") {
                throw TrackingError(.invalidParameterValue, "Earlier backup '\(previous)' is the data directory: name an earlier backup")
            }
            earlier = DataDirectory(real)
        }
        let staging = realParent + "/." + name + ".incomplete-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        guard mkdir(staging, 0o700) == 0 else { throw refused("cannot create \(staging) (errno \(errno))") }
        do {
            var summary = try backup(to: DataDirectory(staging), from: dataDirectory, artifacts: artifacts, reusing: earlier, metadata: copying)
            _ = chmod(staging, 0o755)
            try syncFileSystem(containing: staging)  // every file and directory of the copy, in one flush
            guard rename(staging, target) == 0 else {
                throw errno == ENOTEMPTY || errno == EEXIST ? refused("it was filled while the backup ran") : refused("cannot rename \(staging) (errno \(errno))")
            }
            try TallyStore.syncDirectory(realParent)
            summary.directory = target
            summary.seconds = Double((ContinuousClock.now - started).totalNanoseconds) / 1e9
            return summary
        } catch {
            try? FileManager.default.removeItem(atPath: staging)  // no half backup is left to be mistaken for one
            throw error
        }
    }

    private func backup(to target: DataDirectory, from source: DataDirectory, artifacts: Bool, reusing previous: DataDirectory?,
                        metadata copying: MetadataCopyOptions?) throws -> BackupSummary {
        var summary = BackupSummary(directory: target.path)
        // Begun before the pause (SQLite steps through most pages; PostgreSQL finds pg_dump and connects).
        let copy = try copying.map { try metadata.beginCopy(into: target, options: $0) }
        defer { copy?.abandon() }
        let snapshot: StoreSnapshot
        do {
            try metrics.prepareSnapshot()  // the runs' file lists, read before writers are held off
            let listing: SnapshotListing
            if let copy {
                listing = try copy.pausingWrites { fix in try metrics.listSnapshot(before: fix) }
                summary.pauseMillis = Double(copy.pause.totalNanoseconds) / 1e6
            } else {
                listing = try metrics.listSnapshot(before: {})
            }
            snapshot = try metrics.stage(listing)
        } catch let e as StorageError where e.code == .invalidArgument {
            throw TrackingError(.invalidParameterValue, e.message)
        }
        defer { snapshot.discard() }
        let written = try snapshot.write(to: target.metrics, reusing: previous?.metrics, durable: false)  // synced with the rest
        summary.metricBytes = written.copiedBytes + written.reusedBytes
        (summary.reusedFiles, summary.reusedBytes) = (written.reusedFiles, written.reusedBytes)
        (summary.runs, summary.segments, summary.logSegments) = (snapshot.runs, snapshot.segments, snapshot.logSegments)
        let files = FileManager.default
        if files.fileExists(atPath: source.webhookKey) {
            try copyFile(from: source.webhookKey, to: target.webhookKey)
            _ = chmod(target.webhookKey, 0o600)  // the key seals the webhooks' secrets: its owner's alone, as the server makes it
        }
        if files.fileExists(atPath: source.imports) { try files.copyItem(atPath: source.imports, toPath: target.imports) }
        if !artifacts {
            summary.artifactsNote = "not asked for"
        } else if let root = self.artifacts?.localRoot {
            summary.artifacts = try Self.copyArtifacts(from: root, to: target.artifacts, reusing: previous?.artifacts, into: &summary)
        } else {
            summary.artifactsNote = self.artifacts.map { "in object storage (\($0.root)): not copied" } ?? "no artifact store"
        }
        if let copy {
            summary.metadataBytes = try copy.finish()  // PostgreSQL's dump ran beside the copying above
            summary.metadataFile = (copy.path as NSString).lastPathComponent
        } else {
            summary.metadataNote = "not asked for (PostgreSQL at \(metadata.location))"
        }
        return summary
    }

    /// Copies the artifact files under `root` (not uploads in progress) to `target` with their modification times (not
    /// synced: the backup syncs its file system once at the end), or
    /// hard-links those `previous` holds with the same size and time (counted in `summary`'s reused files). A file
    /// deleted since it was listed is counted as vanished.
    static func copyArtifacts(from root: String, to target: String, reusing previous: String?, into summary: inout BackupSummary) throws -> ArtifactStore.CopySummary {
        var copied = ArtifactStore.CopySummary()
        let files = FileManager.default
        try files.createDirectory(atPath: target, withIntermediateDirectories: true)
        var made: Set<String> = [target]
        _ = try walkFiles(root) { path, _ in
            guard !ArtifactStore.isSpooled((path as NSString).lastPathComponent) else { return }
            var st = stat()
            guard stat(root + "/" + path, &st) == 0 else {
                copied.vanished += 1
                return
            }
            copied.total += 1
            let destination = target + "/" + path
            let parent = (destination as NSString).deletingLastPathComponent
            if made.insert(parent).inserted { try files.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            var old = stat()
            if let previous, stat(previous + "/" + path, &old) == 0, old.st_size == st.st_size, old.st_mtim.tv_sec == st.st_mtim.tv_sec,
               old.st_mtim.tv_nsec == st.st_mtim.tv_nsec, link(previous + "/" + path, destination) == 0 {
                summary.reusedFiles += 1
                summary.reusedBytes += Int64(st.st_size)
                return
            }
            do {
                try copyFile(from: root + "/" + path, to: destination)
            } catch where !files.fileExists(atPath: root + "/" + path) {
                copied.vanished += 1  // deleted while being copied
                try? files.removeItem(atPath: destination)
                return
            }
            // The source's times, for the next backup's comparison; unless they are recent: a file replaced within
            // the file system's clock tick keeps its time, so such a copy gets a time no file has and is copied again.
            var times = [st.st_atim, st.st_mtim]
            if Int(st.st_mtim.tv_sec) >= Int(time(nil)) - 2 { times[1] = timespec(tv_sec: 0, tv_nsec: 0) }
            _ = utimensat(AT_FDCWD, destination, &times, 0)
            copied.copied += 1
            copied.bytes += Int64(st.st_size)
        }
        return copied
    }

    /// `path` with every symbolic link resolved, `nil` when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

}
