import ArgumentParser
import Foundation
import TallyServer
import TallyStore
import TallyTracking

/// `tally gc`: MLflow's `mlflow gc` for a Tally data directory, through the running server's admin socket or, with
/// no server running, on the directory itself.
struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Permanently delete runs, logged models and experiments in the `deleted` lifecycle stage, with their points and artifacts.",
        discussion: """
            MLflow's mlflow gc: the same options, checks, order and lines. Without ids, every deleted run, logged \
            model and experiment (older than --older-than) is purged; each id list restricts only its own kind. \
            Named experiments are checked first, all of them; their deleted runs are purged with them. A run's \
            artifacts (this server's proxied store, or a local directory), its metric points and its rows go; an \
            experiment takes with it whatever it still holds. A gc that stops half-way is finished by the next one. \
            While a server runs on --data-dir, it does the work (its admin socket); otherwise the directory is \
            opened here. Not in a cluster yet. docs/gc.md.
            """
    )

    @Option(name: .customLong("older-than"), help: "Only what was deleted longer ago than this: #d#h#m#s, floats allowed (1d2h3m4s, 1.5d).")
    var olderThan: String?
    @Option(name: .customLong("run-ids"), help: "Comma-separated runs to purge (each must be deleted).") var runIDs: String?
    @Option(name: .customLong("experiment-ids"), help: "Comma-separated experiments to purge with everything in them (each must be deleted).")
    var experimentIDs: String?
    @Option(name: .customLong("logged-model-ids"), help: "Comma-separated logged models to purge (each must be deleted).") var loggedModelIDs: String?
    @Option(help: "Data directory of the server.") var dataDir = "./tally-data"
    @Option(name: .customLong("backend-store-uri"), help: "Metadata store URI, when no server runs and it was given one (env MLFLOW_BACKEND_STORE_URI).")
    var backendStoreOption: String?
    @Option(name: .customLong("artifacts-destination"), help: "Artifact destination, when no server runs and it was given one (env MLFLOW_ARTIFACTS_DESTINATION).")
    var artifactsOption: String?

    func run() throws {
        let gc = try GarbageCollection(olderThan: olderThan, runIDs: runIDs, experimentIDs: experimentIDs, loggedModelIDs: loggedModelIDs)
        let socket = AdminSocket.path(dataDirectory: dataDir)
        if try AdminSocket.isListening(socket) {
            let answer = try AdminSocket.Client(path: socket, readSeconds: 7 * 24 * 3600)
                .collectGarbage(olderThan: olderThan, runIDs: runIDs, experimentIDs: experimentIDs, loggedModelIDs: loggedModelIDs)
            for line in answer.lines { Self.say(line) }
            if let error = answer.error { throw error }
            return
        }
        guard FileManager.default.fileExists(atPath: DataDirectory(dataDir).metrics) else {
            throw ValidationError("no data directory at \(dataDir) (\(DataDirectory.metricsName)/ is missing)")
        }
        var config = ServerConfiguration()
        config.dataDirectory = dataDir
        config.backendStoreURI = ServerCommand.mlflow(backendStoreOption, "MLFLOW_BACKEND_STORE_URI")
        // A server on PostgreSQL leaves no embedded database: one made here would hold nothing, and a journal left by a
        // gc there would read as purged.
        guard config.backendStoreURI != nil || FileManager.default.fileExists(atPath: DataDirectory(dataDir).metadata) else {
            throw ValidationError("no metadata database at \(DataDirectory(dataDir).metadata): give the server's --backend-store-uri")
        }
        config.artifactsDestination = ServerCommand.mlflow(artifactsOption, "MLFLOW_ARTIFACTS_DESTINATION")
        let service = try openLocked(config, inUse: ", and no server answers on its admin socket \(socket)")
        defer { try? service.close() }
        try service.collectGarbage(gc, dataDirectory: DataDirectory(dataDir)) { Self.say($0) }
    }

    /// A line to standard output at once (no buffer): into a pipe or a log as soon as it is said, so a gc killed
    /// half-way has printed what it purged.
    static func say(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            done += n
        }
    }
}
