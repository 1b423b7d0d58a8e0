import Foundation
import TallyStore

/// How a server joins a cluster (docs/scale-out.md): cluster mode is on when the backend store is PostgreSQL and
/// `--metrics-destination` is an `s3://` URI; the servers find each other through PostgreSQL.
public struct ClusterConfiguration: Sendable {
    /// `--metrics-destination`: where sealed segments go, `s3://bucket/prefix`.
    public var metricsDestination: String
    /// `--node-id` (default `host:port`).
    public var nodeID: String
    /// `--advertise-url`: where the other servers reach this one (default `http://host:port`).
    public var advertiseURL: String
    /// `--cluster-secret`: what the servers sign forwarded requests with (the same on every server, ≥ 16 bytes).
    public var secret: String
    /// `--lease-seconds`: how long a run's lease lasts without renewal (a dead server's runs are taken over after it).
    public var leaseSeconds: Double = 15
    /// `--max-unsealed-seconds`: the longest a run's records wait in the shared log before its owner seals them into
    /// the metrics destination (a run is also sealed once 8 MB of its records wait, or when it is no longer written).
    public var maxUnsealedSeconds: Double = 6 * 3600
    /// `--metrics-cache-mb`: what this server's copies of runs it reads but does not own may take on disk; past it the
    /// least recently read are dropped (installed again from the bucket when read). `nil`: unbounded.
    public var cacheMegabytes: Int? = 20_480

    /// The bucket and prefix of a `--metrics-destination`; the error names the flag.
    public static func metricsLocation(_ uri: String) throws -> S3Location {
        guard let location = S3Location(uri: uri) else {
            throw TrackingError(.invalidParameterValue, "--metrics-destination must be s3://bucket/prefix, got '\(uri)'")
        }
        return location
    }

    /// The settings of one server.
    public init(metricsDestination: String, nodeID: String, advertiseURL: String, secret: String, leaseSeconds: Double = 15) {
        self.metricsDestination = metricsDestination
        self.nodeID = nodeID
        self.advertiseURL = advertiseURL
        self.secret = secret
        self.leaseSeconds = leaseSeconds
    }
}

extension ClusterState {
    /// Whether `metadata`'s database has served a cluster: a server joined it, or runs have leases, log records or
    /// sealed sets there. Such points are in no one data directory (`tally gc` refuses the database).
    public static func servedACluster(_ metadata: any MetadataStore) throws -> Bool {
        guard let pg = metadata as? PostgresMetadataStore else { return false }
        return try pg.conn { c in
            try !c.rows("SELECT 1 WHERE EXISTS (SELECT 1 FROM tally_nodes) OR EXISTS (SELECT 1 FROM tally_leases) OR EXISTS (SELECT 1 FROM tally_log) "
                        + "OR EXISTS (SELECT 1 FROM tally_sealed)").isEmpty
        }
    }

    /// The servers of a cluster running on `metadata`'s database (a heartbeat within the last minute): offline
    /// commands (`tally import`, `export`) write and read one server's metric store, so they refuse to run beside them.
    public static func liveNodes(of metadata: any MetadataStore) throws -> [String] {
        guard let pg = metadata as? PostgresMetadataStore else { return [] }
        return try pg.conn { c in
            try c.rows("SELECT node_id FROM tally_nodes WHERE heartbeat_ms >= \(Self.now) - 60000 ORDER BY node_id").map { $0[0].string ?? "" }
        }
    }
}

extension ClusterNode {
    /// The file marking a metric store as a cluster server's copy of the shared log.
    static let marker = "CLUSTER"

    /// `base` as a cluster server's metric store runs: without its own log or fsyncs. A point is durable once its
    /// record commits in PostgreSQL's shared log, and the local store is a copy rebuilt from the metrics destination
    /// and that log after a restart: its own log would only add latency, and a replayed deletion could remove a copy
    /// installed after it (``MetricStore/installRun(_:segments:replacing:)`` refuses a store with a log).
    public static func storeConfiguration(_ base: StoreConfiguration) -> StoreConfiguration {
        var c = base
        c.wal = nil
        c.durableSegments = false
        return c
    }

    /// Checks that the metric store may serve in this mode, before anything reads it. A cluster server's store is a
    /// copy of the shared log, rebuilt from it run by run: a store holding a single server's points (not in the log)
    /// would lose them, and is refused; an empty one is marked as a cluster copy. A marked store is refused to a
    /// single server, which would serve a partial copy as the truth.
    public static func checkStore(_ metrics: MetricStore, cluster: Bool) throws {
        let path = metrics.directory + "/" + marker
        let marked = FileManager.default.fileExists(atPath: path)
        if cluster {
            if marked { return }
            let runs = metrics.runIDs()
            guard runs.isEmpty else {
                throw TrackingError(.invalidParameterValue, "The metric store in \(metrics.directory) holds a single server's points (\(runs.count) runs) "
                                    + "that are not in the cluster's shared log: start cluster servers on an empty --data-dir, and move a single "
                                    + "server's data into the cluster with tally cluster migrate)")
            }
            guard FileManager.default.createFile(atPath: path, contents: Data("a copy of a Tally cluster's shared log\n".utf8)) else {
                throw TrackingError(.internalError, "cannot write \(path)")
            }
        } else if marked {
            throw TrackingError(.invalidParameterValue, "The metric store in \(metrics.directory) is a cluster server's copy of the shared log, not a "
                                + "single server's store: start it with the cluster's --metrics-destination, or use another --data-dir")
        }
    }

    /// Joins the cluster `configuration` describes, with `metadata` as the shared database and `metrics` as this
    /// server's copy of the runs' points: checks the settings (clear errors naming the flag), the metrics bucket,
    /// registers the server and starts its heartbeat.
    public static func join(_ configuration: ClusterConfiguration, metadata: any MetadataStore, metrics: MetricStore,
                            report: @escaping @Sendable (String) -> Void = { _ in }) throws -> ClusterNode {
        guard let pg = metadata as? PostgresMetadataStore else {
            throw TrackingError(.invalidParameterValue, "--metrics-destination makes a cluster, which needs a PostgreSQL --backend-store-uri "
                                + "(the servers share it); the backend store is \(metadata.location)")
        }
        let location = try ClusterConfiguration.metricsLocation(configuration.metricsDestination)
        guard configuration.leaseSeconds >= 0.2, configuration.leaseSeconds <= 300 else {
            throw TrackingError(.invalidParameterValue, "--lease-seconds must be between 0.2 and 300, got \(configuration.leaseSeconds)")
        }
        guard configuration.maxUnsealedSeconds >= 0.1, configuration.maxUnsealedSeconds <= 7 * 86400 else {
            throw TrackingError(.invalidParameterValue, "--max-unsealed-seconds must be between 0.1 and 604800, got \(configuration.maxUnsealedSeconds)")
        }
        guard !configuration.nodeID.isEmpty, configuration.nodeID.utf8.count <= 180, !configuration.nodeID.contains("#") else {
            throw TrackingError(.invalidParameterValue, "--node-id must be 1 to 180 bytes, without '#'")
        }
        guard configuration.advertiseURL.hasPrefix("http://") || configuration.advertiseURL.hasPrefix("https://") else {
            throw TrackingError(.invalidParameterValue, "--advertise-url must be an http:// or https:// URL, got '\(configuration.advertiseURL)'")
        }
        _ = try ClusterAuth(secret: configuration.secret)
        let client = try S3Client()
        try client.checkBucket(location.bucket)
        let destination = try SegmentDestination(client: client, location: location,
                                                 spool: (metrics.directory as NSString).deletingLastPathComponent + "/cluster-spool",
                                                 maxUnsealed: .milliseconds(Int64(configuration.maxUnsealedSeconds * 1000)),
                                                 cacheBytes: configuration.cacheMegabytes.map { Int64($0) << 20 })
        // Leases are held under ID#INSTANCE, one per process: a restarted server's old process, if it still runs
        // somewhere, is fenced off instead of writing under the same name.
        let instance = configuration.nodeID + "#" + Secrets.hex((0..<6).map { _ in UInt8.random(in: 0...255) })
        let lease = Int64(configuration.leaseSeconds * 1000)
        let state = ClusterState(db: try PostgresDatabase(uri: pg.db.uri, poolSize: 4), node: instance, url: configuration.advertiseURL, leaseMillis: lease)
        let heartbeat = ClusterState(db: try PostgresDatabase(uri: pg.db.uri, poolSize: 1), node: instance, url: configuration.advertiseURL, leaseMillis: lease)
        let node = try ClusterNode(state: state, heartbeat: heartbeat, metadata: pg, metrics: metrics, destination: destination, report: report)
        node.start()
        return node
    }
}
