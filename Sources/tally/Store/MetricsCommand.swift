import ArgumentParser
import Foundation
import TallyStore
import TallyTracking

/// `tally metrics`: moving metric points between deployments.
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Move metric points between deployments.",
        subcommands: [Migrate.self]
    )

    /// `tally metrics migrate --data-dir DIR --backend-store-uri postgresql://… --metrics-destination s3://…`.
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a single server's metric points into a cluster (idempotent: rerun to finish an interrupted move).",
            discussion: """
                Each run's segments are uploaded to the cluster's --metrics-destination and recorded as the run's sealed \
                points, as a cluster server would seal them. Stop the single server and the cluster's servers first; move \
                the metadata before (tally metadata migrate) and the artifacts with tally artifacts migrate. S3 endpoint \
                and credentials come from MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION. \
                See docs/scale-out.md.
                """
        )

        @Option(help: "The single server's data directory (its metrics/ store is read).") var dataDir: String
        @Option(help: "The cluster's PostgreSQL database: postgresql://user:password@host:port/database.") var backendStoreUri: String
        @Option(help: "The cluster's --metrics-destination: s3://bucket/prefix.") var metricsDestination: String

        func run() throws {
            let location = try ClusterConfiguration.metricsLocation(metricsDestination)
            let metadata = try PostgresMetadataStore(uri: try PostgresURI(parsing: backendStoreUri), poolSize: 1, now: TrackingService.nowMillis())
            defer { metadata.close() }
            try Self.move(dataDirectory: dataDir, metadata: metadata, location: location)
        }

        /// Moves the metric store of `dataDirectory` into the cluster of `metadata` and `location`, printing what it did;
        /// exits with status 1 when runs were left out.
        static func move(dataDirectory dataDir: String, metadata: PostgresMetadataStore, location: S3Location) throws {
            guard FileManager.default.fileExists(atPath: dataDir + "/metrics") else { throw ValidationError("No metric store at \(dataDir)/metrics") }
            if FileManager.default.fileExists(atPath: dataDir + "/metrics/CLUSTER") {
                throw ValidationError("\(dataDir)/metrics is a cluster server's copy of the shared log, not a single server's store")
            }
            let client = try S3Client()
            defer { client.close() }
            try client.checkBucket(location.bucket)
            let metrics = try MetricStore(directory: dataDir + "/metrics")
            defer { try? metrics.close() }
            let destination = try SegmentDestination(client: client, location: location, spool: dataDir + "/metrics-migrate-spool")
            defer { try? FileManager.default.removeItem(atPath: destination.spool) }
            let terminal = isatty(STDERR_FILENO) != 0
            let started = Date()
            let s = try ClusterMigration.run(metrics: metrics, metadata: metadata, destination: destination) { done, total in
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K\(done)/\(total) runs".utf8)) }
            }
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            print("moved \(s.moved) runs (\(s.objects) segment objects, \(s.bytes) bytes), \(s.present) already in the cluster, \(s.total) in \(dataDir)/metrics")
            for (run, why) in s.refused.sorted(by: { $0.key < $1.key }) { print("not moved: run \(run): \(why)") }
            print(String(format: "into %@ in %.1f s", location.description, Date().timeIntervalSince(started)))
            if !s.refused.isEmpty { throw ExitCode(1) }
        }
    }
}
