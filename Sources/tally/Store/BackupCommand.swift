import ArgumentParser
import Foundation
import TallyServer
import TallyStore
import TallyTracking

/// `tally backup DIR`: a copy of a server's data while it runs (through its admin socket), or of a data directory no
/// server holds (opened here, as a server would open it).
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy a server's data into a new directory while it serves: a data directory a server starts on.",
        discussion: """
            The metadata and the metric store are copied at one instant (writes wait a millisecond or two; the embedded \
            database is copied in steps beforehand, a PostgreSQL database is dumped by pg_dump from a snapshot taken in \
            that instant, once the server's requests in progress ended: a backup gives up after 10 s of them; the \
            metric files are listed in it, then linked and copied), then the artifacts in the data \
            directory, the webhook secrets' key and the import journals. \
            With --incremental-from, segments and artifacts an earlier backup holds unchanged are hard-linked from it: \
            each backup is whole, and costs what changed. \
            Restore by starting a server on the copy: tally server --data-dir DIR; with PostgreSQL, first pg_restore \
            DIR/metadata.pgdump into an empty database and give the server its URI (docs/postgresql.md, "Backups"). \
            Artifacts in object storage are not copied. docs/architecture.md, "Backups".
            """
    )

    @Argument(help: "The backup directory: new or empty, outside the data directory.") var directory: String
    @Option(help: "Data directory of the server.") var dataDir = "./tally-data"
    @Flag(name: .customLong("no-artifacts"), help: "Leave the artifacts out.") var noArtifacts = false
    @Option(name: .customLong("incremental-from"), help: "An earlier backup on the same file system: what it holds unchanged is hard-linked, not copied.")
    var previous: String?
    @Flag(help: "Then read the copy whole (every log record and segment block; SQLite's integrity check, or pg_restore reading the dump); exit 1 if anything is wrong.")
    var verify = false
    @Option(name: .customLong("pg-dump"), help: "PostgreSQL: the pg_dump to run (pg_restore for --verify beside it); default the newest in /usr/lib/postgresql/*/bin, else on PATH.")
    var pgDump: String?
    @Flag(name: .customLong("no-metadata"), help: "PostgreSQL: leave the database out (backed up by other means); the points are copied.")
    var noMetadata = false
    @Option(name: .customLong("backend-store-uri"), help: "Metadata store URI, when no server runs and it was given one (env MLFLOW_BACKEND_STORE_URI).")
    var backendStoreOption: String?
    @Option(name: .customLong("artifacts-destination"), help: "Artifact destination, when no server runs and it was given one (env MLFLOW_ARTIFACTS_DESTINATION).")
    var artifactsOption: String?

    func run() throws {
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path  // the server's working directory is not ours
        let socket = AdminSocket.path(dataDirectory: dataDir)
        // The server runs pg_dump: a path relative to this directory is made absolute.
        let copying = noMetadata ? nil : MetadataCopyOptions(pgDump: pgDump.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        let summary: BackupSummary
        if try AdminSocket.isListening(socket) {
            let earlier = previous.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            summary = try AdminSocket.Client(path: socket, readSeconds: 7 * 24 * 3600).backup(into: target, artifacts: !noArtifacts, reusing: earlier,
                                                                                               metadata: copying)
        } else {
            guard FileManager.default.fileExists(atPath: DataDirectory(dataDir).metrics) else {
                throw ValidationError("no data directory at \(dataDir) (\(DataDirectory.metricsName)/ is missing)")
            }
            var config = ServerConfiguration()
            config.dataDirectory = dataDir
            config.backendStoreURI = ServerCommand.mlflow(backendStoreOption, "MLFLOW_BACKEND_STORE_URI")
            config.artifactsDestination = ServerCommand.mlflow(artifactsOption, "MLFLOW_ARTIFACTS_DESTINATION")
            let service = try TallyApplication.openService(config)
            defer { try? service.close() }
            summary = try service.backup(into: target, dataDirectory: DataDirectory(dataDir), artifacts: !noArtifacts, reusing: previous, metadata: copying)
        }
        print(Self.describe(summary))
        guard verify else { return }
        let check = try TrackingService.verifyBackup(summary.directory, pgDump: copying?.pgDump)
        let m = check.metrics
        print("  verified: \(m.walRecords) log records, \(m.segments) segments, \(m.blocks) blocks, \(m.points) points; metadata "
              + (check.metadata.isEmpty ? "not in the backup" : check.metadata.joined(separator: "; ")))
        guard check.ok else {
            for p in m.problems { print("  problem: \(p)") }
            throw ExitCode(1)
        }
    }

    /// One line per part of the backup.
    static func describe(_ s: BackupSummary) -> String {
        func mb(_ b: Int64) -> String { String(format: "%.1f MB", Double(b) / 1e6) }
        var lines = ["backup in \(s.directory) (\(String(format: "%.1f", s.seconds)) s; writes waited \(String(format: "%.1f", s.pauseMillis)) ms)"]
        lines.append("  metadata: " + (s.metadataBytes.map { "\(mb($0)) (\(s.metadataFile ?? "?"))" } ?? (s.metadataNote ?? "not copied")))
        lines.append("  metrics: \(mb(s.metricBytes)), \(s.runs) runs with sealed points, \(s.segments) segments, \(s.logSegments) log segments")
        lines.append("  artifacts: " + (s.artifacts.map { "\($0.copied) files, \(mb($0.bytes))" + ($0.vanished > 0 ? " (\($0.vanished) deleted meanwhile)" : "") }
            ?? (s.artifactsNote ?? "none")))
        if s.reusedFiles > 0 { lines.append("  linked from the earlier backup: \(s.reusedFiles) files, \(mb(s.reusedBytes))") }
        return lines.joined(separator: "\n")
    }
}
