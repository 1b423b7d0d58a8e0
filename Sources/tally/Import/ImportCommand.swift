import ArgumentParser
import Foundation
import TallyServer
import TallyStore
import TallyTracking

/// `tally import`: bring a team's history from another tracker.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import another tracker's history into a data directory (offline: no server may be using it).",
        subcommands: [MLflow.self]
    )

    /// `tally import mlflow --from sqlite:///mlflow.db --artifacts-from DIR --data-dir DIR`.
    struct MLflow: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mlflow",
            abstract: "Copy MLflow experiments, runs, params, tags, inputs, metric histories (bit-exact) and artifacts.",
            discussion: """
                Idempotent and resumable: rerun the same command after an interruption to finish it, or later to import \
                the runs MLflow has gained since. Ids are kept (experiments' where free); MLflow's Default experiment \
                merges into Tally's; run artifact URIs become Tally's mlflow-artifacts: form.
                """
        )

        @Option(help: "MLflow's backend store (sqlite:///path/to/mlflow.db, postgresql://user:password@host/db) or a running MLflow server's URL (http(s)://host:port, read through its REST API).")
        var from: String
        @Option(help: "The MLflow server's artifact root on this machine (its --artifacts-destination), for mlflow-artifacts: URIs; from a URL, artifacts are read through the server without it.")
        var artifactsFrom: String?
        @Option(help: "The Tally data directory to import into (new, or a stopped server's: import merges).") var dataDir: String
        @Option(help: "Tally's metadata store, when it is not the data directory's SQLite file (postgresql://…).") var backendStoreURI: String?
        @Option(help: "Where Tally keeps proxied artifacts, as tally server takes it: a directory or s3://bucket/prefix (default: <data-dir>/artifacts).")
        var artifactsDestination: String?
        @Option(help: "Only these experiments: names or ids, comma-separated.") var experiments: String?
        @Option(help: "The MLflow workspace to import, from an MLflow run with --enable-workspaces (default: MLFLOW_WORKSPACE, as MLflow's client takes it, else default; the others are named in warnings, each imported by its own run).")
        var workspace: String?
        @Option(help: "Only runs started at or after this date (YYYY-MM-DD, an ISO 8601 time, or ms since the epoch).") var since: String?
        @Option(help: "A cluster's --cluster-secret, when importing into its database: webhook secrets are sealed under the key the members derive from it (env TALLY_CLUSTER_SECRET).")
        var clusterSecret: String?
        @Flag(help: "Count what would be imported; write nothing.") var dryRun = false
        @Flag(help: "After importing, compare every run with the source (fields, params, tags, inputs, each history's count and checksum); exit 1 on any difference.") var verify = false

        func run() throws {
            var options = MLflowImport.Options()
            options.artifactsFrom = artifactsFrom
            options.experiments = experiments?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let since { options.since = try Self.parseDate(since) }
            options.dryRun = dryRun
            var config = ServerConfiguration()
            config.dataDirectory = dataDir
            // A dry run into a directory that does not exist yet counts against an empty one and leaves none behind.
            var scratch: String?
            if dryRun && !FileManager.default.fileExists(atPath: dataDir) {
                var template = Array((NSTemporaryDirectory() + "/tally-import-dry-XXXXXX").utf8CString)
                scratch = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } }
                config.dataDirectory = scratch ?? dataDir
            }
            defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
            config.backendStoreURI = backendStoreURI
            config.artifactsDestination = artifactsDestination
            config.webhookClusterSecret = ServerCommand.clusterSecret(clusterSecret)
            // The source first: one that cannot be read (or lacks the workspace) leaves no data directory behind.
            let workspace = MLflowWorkspace.chosen(self.workspace)
            let source: any MLflowSource = ["http://", "https://"].contains(where: { from.lowercased().hasPrefix($0) })
                ? try MLflowRESTSource(url: from, workspace: workspace) : try MLflowImport.openSQLSource(from, workspace: workspace)
            defer { source.close() }
            let service = try openOffline(config, for: "import")
            let display = ProgressDisplay(terminal: isatty(STDERR_FILENO) != 0, label: "import")
            let started = Date()
            let summary: MLflowImport.Summary
            let differences: [String]
            do {
                summary = try MLflowImport(options).run(from: source, into: service, journalDirectory: DataDirectory(config.dataDirectory).imports) { display.update($0) }
                display.finish()
                differences = verify && !dryRun ? try MLflowImport(options).verify(source, service) : []
                try service.close()
            } catch {
                display.finish()
                try? service.close()
                throw error
            }
            let seconds = Date().timeIntervalSince(started)
            for w in summary.warnings { FileHandle.standardError.write(Data(("warning: " + w + "\n").utf8)) }
            print(dryRun ? "would import (dry run, nothing written):" : "imported into \(dataDir) from:")
            print("  " + summary.source)
            let rows: [(String, String)] = [
                ("experiments created", "\(summary.experiments)"), ("runs", "\(summary.runs)"),
                ("runs already imported", "\(summary.runsAlreadyImported)"), ("runs updated", "\(summary.runsUpdated)"),
                ("runs skipped (id taken)", "\(summary.runsSkipped)"),
                ("params", "\(summary.params)"), ("tags", "\(summary.tags)"), ("inputs", "\(summary.inputs)"),
                ("metric points", "\(summary.points)"), ("logged models", "\(summary.loggedModels)"),
                ("logged models updated", "\(summary.loggedModelsUpdated)"), ("registered models", "\(summary.registeredModels)"),
                ("registered models updated", "\(summary.registeredModelsUpdated)"), ("model versions", "\(summary.modelVersions)"),
                ("webhooks", "\(summary.webhooks)"), ("traces", "\(summary.traces)"), ("traces updated", "\(summary.tracesUpdated)"),
                ("evaluation datasets", "\(summary.datasets)"), ("dataset records", "\(summary.datasetRecords)"), ("scorers", "\(summary.scorers)"),
                ("scorer versions", "\(summary.scorerVersions)"), ("label schemas", "\(summary.labelSchemas)"), ("review queues", "\(summary.reviewQueues)"),
                ("review items", "\(summary.reviewItems)"), ("issues", "\(summary.issues)"),
                ("artifact files", "\(summary.artifactFiles)"),
                ("artifact bytes", "\(summary.artifactBytes)"), ("warnings", "\(summary.warnings.count)"),
                ("seconds", String(format: "%.1f", seconds)),
            ]
            printSummary(rows)
            guard verify, !dryRun else { return }
            for d in differences { print("verify: " + d) }
            guard differences.isEmpty else { throw ExitCode(1) }
            print("verify: every run matches the source")
        }

        /// Milliseconds since the epoch of `YYYY-MM-DD` (UTC midnight), an ISO 8601 time, or a number of ms.
        static func parseDate(_ s: String) throws -> Int64 {
            if let ms = Int64(s) { return ms }
            let f = ISO8601DateFormatter()
            for options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate]] as [ISO8601DateFormatter.Options] {
                f.formatOptions = options
                if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
            }
            throw ValidationError("--since '\(s)': use YYYY-MM-DD, an ISO 8601 time (2024-05-01T12:00:00Z) or ms since the epoch")
        }
    }
}

/// Opens a data directory for an offline command with the server's lock and `sync` durability (what a command says
/// done is durable); a directory a server is using is refused, the message ending with `inUse`.
func openLocked(_ config: ServerConfiguration, inUse: String) throws -> TrackingService {
    var config = config
    config.durability = .sync
    do {
        return try TallyApplication.openService(config)
    } catch let e as StorageError where e.code == .locked {
        throw ValidationError("\(config.dataDirectory) is in use (\(e.message))" + inUse)
    }
}

/// Opens a data directory for an offline command (`import`, `export`) with ``openLocked(_:inUse:)`` (a run is
/// journaled done only once its points are durable).
func openOffline(_ config: ServerConfiguration, for command: String) throws -> TrackingService {
    let service = try openLocked(config, inUse: ": stop the server using it, then \(command)")
    // A cluster keeps its points in the servers' shared log, which an offline command does not go through.
    let cluster = try ClusterState.liveNodes(of: service.metadata)
    guard cluster.isEmpty else {
        try? service.close()
        throw ValidationError("the database serves a running cluster (\(cluster.joined(separator: ", "))): stop its servers, then \(command)")
    }
    // Webhook secrets this command's key cannot open: the servers' key is another (a cluster's is derived from its
    // secret). New secrets would be sealed where the servers cannot open them, old ones cannot be exported.
    let foreign = try service.webhookSecretsUnderOtherKeys()
    if !foreign.isEmpty {
        try? service.close()
        throw ValidationError("\(foreign.count) webhook secret(s) here are sealed under another key than this command's "
            + "(\(service.webhooks.secrets.fingerprint)): \(foreign.joined(separator: ", ")). Give it the servers' key: "
            + "\(WebhookSecrets.environmentVariable), or --cluster-secret for a cluster's database")
    }
    return service
}

/// An import's or export's summary table: a row per count, names left, figures right.
func printSummary(_ rows: [(String, String)]) {
    for (k, v) in rows { print("  " + k.padding(toLength: 27, withPad: " ", startingAt: 0) + v.leftPadded(12)) }
}

/// A progress line per phase on a terminal (runs with a bar, rate and ETA; points and artifact bytes with a
/// rate), redrawn at most ten times a second; elsewhere a log line every five seconds.
final class ProgressDisplay {
    private let terminal: Bool
    private let label: String
    private let started = Date()
    private var last = Date.distantPast
    private var state: [String: MLflowImport.Progress] = [:]
    private var drawn = false

    /// A display for `label` (the command: `import`, `export`), drawn on a terminal or logged.
    init(terminal: Bool, label: String) {
        self.terminal = terminal
        self.label = label
    }

    func update(_ p: MLflowImport.Progress) {
        state[p.phase] = p
        let now = Date()
        guard now.timeIntervalSince(last) >= (terminal ? 0.1 : 5) else { return }
        last = now
        draw(now)
    }

    func finish() {
        guard !state.isEmpty else { return }
        draw(Date())
        if terminal && drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ now: Date) {
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        var parts: [String] = []
        if let r = state["runs"], let total = r.total, total > 0 {
            let width = 24, filled = width * r.done / total
            let eta = r.done > 0 ? elapsed / Double(r.done) * Double(total - r.done) : 0
            parts.append("runs [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(r.done)/\(total)"
                         + String(format: " %.1f/s ETA %@", Double(r.done) / elapsed, Self.clock(eta)))
        }
        if let p = state["points"] { parts.append(String(format: "points %d (%.2f M/s)", p.done, Double(p.done) / elapsed / 1e6)) }
        if let a = state["artifacts"] { parts.append(String(format: "artifacts %.1f MB (%.1f MB/s)", Double(a.done) / 1e6, Double(a.done) / elapsed / 1e6)) }
        let line = parts.joined(separator: "  ")
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : label + ": " + line + "\n").utf8))
        drawn = true
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }
}

extension String {
    /// The string right-aligned in `width` columns.
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
