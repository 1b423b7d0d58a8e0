import Foundation
import TallyStore

/// What ``TrackingService/backup(into:artifacts:)`` copied.
public struct BackupSummary: Sendable {
    /// The backup's directory: a data directory a server starts on (`tally server --data-dir`).
    public var directory: String
    /// The metadata database's bytes copied; `nil` when it is PostgreSQL's (not copied: `pg_dump` backs it up).
    public var metadataBytes: Int64?
    /// Runs with sealed metric points, segment files and write-ahead-log segments copied, and their bytes.
    public var runs = 0, segments = 0, logSegments = 0
    /// Bytes of the metric store copied.
    public var metricBytes: Int64 = 0
    /// Artifacts copied; `nil` when they were not (``artifactsNote`` says why).
    public var artifacts: ArtifactStore.CopySummary?
    /// Why artifacts were not copied.
    public var artifactsNote: String?
    /// How long writes waited while the metadata was copied and the metric store's files linked, in milliseconds.
    public var pauseMillis = 0.0
    /// The whole backup, in seconds.
    public var seconds = 0.0

    /// An empty summary of a backup in `directory`.
    public init(directory: String) { self.directory = directory }
}

extension TrackingService {
    /// Copies this server's data into `directory` (new, or empty) while it keeps serving: a data directory laid out
    /// as `dataDirectory` is (``DataDirectory``), which `tally server --data-dir` starts on as it would after a crash
    /// at one instant.
    ///
    /// - The embedded metadata database is copied with SQLite's online backup while every metadata write waits, and in
    ///   the same pause the metric store is snapshotted (``MetricStore/snapshot(before:)``: hard links, milliseconds).
    ///   Points logged while the metadata was copied are in the copy's write-ahead log, so the copy's first start
    ///   brings their runs' latest values up to date (``reconcileLatest()``), as after a crash. Then the metric files
    ///   are copied with nothing held.
    /// - A PostgreSQL metadata database is shared with other servers and not copied (`pg_dump` does it); the metric
    ///   store is this server's own and is.
    /// - Artifacts in a directory are copied last when `artifacts` is true (files being uploaded are not) into the
    ///   backup's `artifacts`; in object storage they are not (the bucket's versioning or replication keeps them).
    /// - The webhook secrets' key and the import journals are copied too.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a directory that holds files or lies inside the data directory, or for
    ///   a cluster server (its points are in object storage).
    public func backup(into directory: String, dataDirectory: DataDirectory, artifacts: Bool = true) throws -> BackupSummary {
        let started = ContinuousClock.now
        func real(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path
        let (inside, data) = (real(target), real(dataDirectory.path))
        guard !directory.isEmpty, inside != data, !inside.hasPrefix(data + "/"), !data.hasPrefix(inside + "/") else {
            throw TrackingError(.invalidParameterValue, "Backup directory '\(directory)' must lie outside the data directory \(dataDirectory.path)")
        }
        if let present = try? FileManager.default.contentsOfDirectory(atPath: target), !present.isEmpty {
            throw TrackingError(.invalidParameterValue, "Backup directory '\(directory)' is not empty: back up into a new directory")
        }
        guard cluster == nil else {
            throw TrackingError(.invalidParameterValue, "A cluster server's metric points are in object storage: back up its bucket and PostgreSQL instead")
        }
        do {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        } catch {
            throw TrackingError(.invalidParameterValue, "Backup directory '\(directory)' cannot be created: \(error.localizedDescription)")
        }
        do {
            return try backup(to: DataDirectory(target), from: dataDirectory, artifacts: artifacts, started: started)
        } catch {
            try? FileManager.default.removeItem(atPath: target)  // no half backup is left to be mistaken for one
            throw error
        }
    }

    private func backup(to target: DataDirectory, from source: DataDirectory, artifacts: Bool, started: ContinuousClock.Instant) throws -> BackupSummary {
        var summary = BackupSummary(directory: target.path)
        let partial = target.metadata + ".partial"
        var pause = ContinuousClock.now
        let snapshot: StoreSnapshot
        do {
            snapshot = try metadata.pausingWrites { copy in
                pause = ContinuousClock.now
                return try metrics.snapshot(before: { try copy?(partial) })
            }
        } catch let e as StorageError where e.code == .invalidArgument {
            throw TrackingError(.invalidParameterValue, e.message)
        }
        summary.pauseMillis = Double((ContinuousClock.now - pause).totalNanoseconds) / 1e6
        defer { snapshot.discard() }
        summary.metricBytes = try snapshot.write(to: target.metrics)
        (summary.runs, summary.segments, summary.logSegments) = (snapshot.runs, snapshot.segments, snapshot.logSegments)
        let files = FileManager.default
        if files.fileExists(atPath: partial) {
            summary.metadataBytes = ((try? files.attributesOfItem(atPath: partial))?[.size] as? NSNumber)?.int64Value ?? 0
            guard rename(partial, target.metadata) == 0 else {
                throw TrackingError(.internalError, "Backup: cannot rename \(partial) (errno \(errno))")
            }
        }
        if files.fileExists(atPath: source.webhookKey) { try files.copyItem(atPath: source.webhookKey, toPath: target.webhookKey) }
        if files.fileExists(atPath: source.imports) { try files.copyItem(atPath: source.imports, toPath: target.imports) }
        if !artifacts {
            summary.artifactsNote = "not asked for"
        } else if let store = self.artifacts, !store.root.hasPrefix("s3://") {
            summary.artifacts = try store.copyAll(to: try ArtifactStore(root: target.artifacts))
        } else {
            summary.artifactsNote = self.artifacts.map { "in object storage (\($0.root)): not copied" } ?? "no artifact store"
        }
        summary.seconds = Double((ContinuousClock.now - started).totalNanoseconds) / 1e9
        return summary
    }
}
