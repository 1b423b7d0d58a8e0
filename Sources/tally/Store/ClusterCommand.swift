import ArgumentParser
import Foundation
import TallyTracking

/// `tally cluster`: a cluster's maintenance.
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Maintain a cluster of servers (docs/scale-out.md).",
        subcommands: [Migrate.self]
    )

    /// `tally cluster migrate --data-dir DIR --backend-store-uri postgresql://… --metrics-destination s3://… [--artifacts-destination s3://…]`.
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a single server's data into a cluster: its metadata, artifacts and metric points (idempotent: rerun to finish).",
            discussion: """
                Runs tally metadata migrate (DIR/metadata.sqlite into the cluster's PostgreSQL), tally artifacts migrate \
                (DIR/artifacts into --artifacts-destination, when given: runs' mlflow-artifacts: URIs stay valid) and \
                tally metrics migrate (each run's segments into --metrics-destination), in that order. Stop the single \
                server and the cluster's servers first, then start the cluster's servers on empty data directories \
                with the same --backend-store-uri, --metrics-destination and --artifacts-destination. S3 endpoint and \
                credentials come from MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.
                """
        )

        @Option(help: "The single server's data directory (metadata.sqlite, artifacts/, metrics/).") var dataDir: String
        @Option(help: "The cluster's PostgreSQL database: postgresql://user:password@host:port/database.") var backendStoreUri: String
        @Option(help: "The cluster's --metrics-destination: s3://bucket/prefix.") var metricsDestination: String
        @Option(help: "The cluster's --artifacts-destination (s3://bucket/prefix): the artifacts are copied there.") var artifactsDestination: String?
        @Option(help: "The cluster's --cluster-secret (env TALLY_CLUSTER_SECRET): webhook secrets are sealed again under the key its members derive from it.")
        var clusterSecret: String?

        func run() throws {
            let location = try ClusterConfiguration.metricsLocation(metricsDestination)
            guard FileManager.default.fileExists(atPath: dataDir + "/metadata.sqlite") else { throw ValidationError("No metadata at \(dataDir)/metadata.sqlite") }
            let metadata = try PostgresMetadataStore(uri: try PostgresURI(parsing: backendStoreUri), poolSize: 1, now: TrackingService.nowMillis())
            defer { metadata.close() }
            try ClusterMigration.checkStopped(metadata)
            print("== metadata")
            try MetadataCommand.Migrate.copy(from: dataDir + "/metadata.sqlite", to: metadata)
            // The single server sealed webhook secrets under its own key; the members derive theirs from the cluster
            // secret (unless TALLY_WEBHOOK_SECRET_KEY gives every process the same one, when nothing changes).
            let single = try WebhookSecrets.load(dataDirectory: dataDir)
            if let secret = ServerCommand.clusterSecret(clusterSecret) {
                let n = try single.reseal(in: metadata, under: try WebhookSecrets.load(dataDirectory: dataDir, clusterSecret: secret))
                if n > 0 { print("webhook secrets sealed for the cluster: \(n)") }
            } else if try metadata.webhooks(id: nil).contains(where: { $0.sealedSecret.flatMap(WebhookSecrets.fingerprint(of:)) == single.fingerprint }) {
                print("warning: webhook secrets are sealed under this server's key; rerun with --cluster-secret to seal them for the cluster")
            }
            if let artifactsDestination, FileManager.default.fileExists(atPath: dataDir + "/artifacts") {
                print("== artifacts")
                try ArtifactsCommand.Migrate.copy(from: dataDir + "/artifacts", to: artifactsDestination, scratch: nil)
            }
            print("== metric points")
            try MetricsCommand.Migrate.move(dataDirectory: dataDir, metadata: metadata, location: location)
        }
    }
}
