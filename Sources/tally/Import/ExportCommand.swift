import ArgumentParser
import Foundation
import TallyServer
import TallyTracking

/// `tally export`: hand a data directory's history to another tracker.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a data directory's history to another tracker (offline: no server may be using it).",
        subcommands: [MLflow.self]
    )

    /// `tally export mlflow --to http://mlflow-server --data-dir DIR`.
    struct MLflow: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mlflow",
            abstract: "Write experiments, runs, params, tags, inputs, every metric point and run artifacts to an MLflow server.",
            discussion: """
                Through MLflow's REST API (log-batch in 1,000-metric batches, artifacts through its proxy), with the \
                credentials MLflow's client takes (MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, or the URL's). \
                MLflow gives experiments and runs new ids: experiments are matched by name, parent tags follow the new ids. \
                Resumable: rerun the same command after an interruption, or later to send what Tally gained since.
                """
        )

        @Option(help: "The MLflow server's URL (http(s)://host:port).") var to: String
        @Option(help: "The Tally data directory to export (a stopped server's).") var dataDir: String
        @Option(help: "Tally's metadata store, when it is not the data directory's SQLite file (postgresql://…).") var backendStoreURI: String?
        @Option(help: "Where Tally keeps proxied artifacts, as tally server takes it: a directory or s3://bucket/prefix (default: <data-dir>/artifacts).")
        var artifactsDestination: String?
        @Option(help: "Only these experiments: names or ids, comma-separated.") var experiments: String?
        @Option(help: "The MLflow workspace to write into, on a server run with --enable-workspaces (it must exist there; default: MLFLOW_WORKSPACE, as MLflow's client takes it, else default).")
        var workspace: String?
        @Option(help: "A cluster's --cluster-secret, when exporting its database: webhook secrets are opened with the key the members derive from it (env TALLY_CLUSTER_SECRET).")
        var clusterSecret: String?

        func run() throws {
            let workspace = MLflowWorkspace.chosen(self.workspace)
            var options = MLflowExport.Options()
            options.experiments = experiments?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard FileManager.default.fileExists(atPath: dataDir) else { throw ValidationError("No data directory at \(dataDir)") }
            var config = ServerConfiguration()
            config.dataDirectory = dataDir
            config.backendStoreURI = backendStoreURI
            config.artifactsDestination = artifactsDestination
            config.webhookClusterSecret = ServerCommand.clusterSecret(clusterSecret)
            let service = try openOffline(config, for: "export")
            let display = ProgressDisplay(terminal: isatty(STDERR_FILENO) != 0, label: "export")
            let started = Date()
            let summary: MLflowExport.Summary
            do {
                let destination = try MLflowRESTDestination(url: to, workspace: workspace)
                defer { destination.close() }
                summary = try MLflowExport(options).run(from: service, to: destination, journalDirectory: dataDir + "/exports") { display.update($0) }
                display.finish()
                try service.close()
            } catch {
                display.finish()
                try? service.close()
                throw error
            }
            for w in summary.warnings { FileHandle.standardError.write(Data(("warning: " + w + "\n").utf8)) }
            print("exported \(dataDir) to:")
            print("  " + MLflowWorkspace.described(MLflowImport.withoutCredentials(to), workspace))
            let rows: [(String, String)] = [
                ("experiments created", "\(summary.experiments)"), ("runs", "\(summary.runs)"),
                ("runs already exported", "\(summary.runsAlreadyExported)"), ("runs updated", "\(summary.runsUpdated)"),
                ("params", "\(summary.params)"), ("tags", "\(summary.tags)"), ("inputs", "\(summary.inputs)"),
                ("metric points", "\(summary.points)"), ("logged models", "\(summary.loggedModels)"), ("traces", "\(summary.traces)"), ("evaluation datasets", "\(summary.datasets)"), ("dataset records", "\(summary.datasetRecords)"), ("scorers", "\(summary.scorers)"), ("scorer versions", "\(summary.scorerVersions)"),
                ("label schemas", "\(summary.labelSchemas)"), ("review queues", "\(summary.reviewQueues)"), ("review items", "\(summary.reviewItems)"), ("issues", "\(summary.issues)"),
                ("registered models", "\(summary.registeredModels)"), ("model versions", "\(summary.modelVersions)"),
                ("webhooks", "\(summary.webhooks)"), ("artifact files", "\(summary.artifactFiles)"),
                ("artifact bytes", "\(summary.artifactBytes)"), ("warnings", "\(summary.warnings.count)"),
                ("seconds", String(format: "%.1f", Date().timeIntervalSince(started))),
            ]
            printSummary(rows)
        }
    }
}
