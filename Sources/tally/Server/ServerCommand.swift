import ArgumentParser
import Foundation
import Hummingbird
import Logging
import TallyServer
import TallyStore
import TallyTracking

/// `tally server`: the MLflow-compatible tracking server.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the MLflow-compatible tracking server (point MLFLOW_TRACKING_URI at it).",
        helpNames: [.long]  // -h is --host, as in `mlflow server -h 0.0.0.0`
    )

    @Option(name: [.customShort("h"), .customLong("host")], help: "Interface to listen on (env MLFLOW_HOST; default 127.0.0.1).") var hostOption: String?
    @Option(name: [.customShort("p"), .customLong("port")], help: "Port to listen on (env MLFLOW_PORT; default 5000).") var portOption: Int?
    @Option(help: "Directory of the embedded stores.") var dataDir = "./tally-data"
    @Option(name: .customLong("static-prefix"),
            help: "Serve every path under this prefix, such as /mlflow (env MLFLOW_STATIC_PREFIX): the API at /mlflow/api/2.0/…, the UI at /mlflow/; clients use http://host:port/mlflow.")
    var staticPrefixOption: String?
    @Option(name: .customLong("backend-store-uri"),
            help: "Metadata store URI (env MLFLOW_BACKEND_STORE_URI): SQLite in the data directory by default, sqlite:///path, or postgresql://user:password@host:port/database (shared by several servers).")
    var backendStoreOption: String?
    @Option(help: "Most connections to a PostgreSQL backend store.") var backendStorePoolSize = ServerConfiguration().backendStorePoolSize
    @Flag(help: "Refuse to start on a PostgreSQL schema behind this build instead of migrating it.") var noMigrate = false
    @Option(name: .customLong("default-artifact-root"), help: "Artifact root of new experiments (env MLFLOW_DEFAULT_ARTIFACT_ROOT; default mlflow-artifacts:).")
    var defaultArtifactRootOption: String?
    @Option(name: .customLong("artifacts-destination"),
            help: "Where proxied artifacts are stored (env MLFLOW_ARTIFACTS_DESTINATION): a directory, or s3://bucket/prefix (endpoint and credentials from MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) (default: <data-dir>/artifacts).")
    var artifactsDestinationOption: String?
    @Flag(help: "With an s3:// --artifacts-destination, keep every artifact byte on this server: no presigned URLs for uploads in parts or direct downloads (for buckets clients cannot reach).")
    var noPresignedArtifactUrls = false
    @Option(help: "Metric durability: sync, batch:N (ms) or none.") var durability = "sync"
    @Option(help: "Memory (MB) the metric engine may hold for unsealed points, open segment indexes and read caches (default 1216).")
    var metricMemoryMb: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Flag(help: "Log every request at info level (client, method, target, status, bytes, milliseconds), as MLflow's uvicorn does by default.")
    var accessLog = false
    @Option(help: "Largest body of runs/log-batch and runs/log-inputs, bytes.") var maxBodyBytes = ServerConfiguration().maxBodyBytes
    @Option(help: "Largest body of the native ingest endpoint, bytes.") var maxNativeBodyBytes = ServerConfiguration().maxNativeBodyBytes
    @Option(help: "Largest body of the other MLflow endpoints, bytes.") var maxSmallBodyBytes = ServerConfiguration().maxSmallBodyBytes
    @Option(help: "Seconds a silent connection is kept open.") var idleTimeout = ServerConfiguration().idleTimeoutSeconds
    @Option(help: "Seconds SIGTERM/SIGINT waits for running requests before exiting anyway (0: no limit).")
    var shutdownTimeout = ServerConfiguration().shutdownTimeoutSeconds
    @Option(help: .hidden) var injectFaults: String?
    @Option(help: "Access control: basic (users, passwords, access tokens and per-experiment and per-model permissions).") var auth: String?
    @Option(help: "MLflow's spelling of --auth basic: basic-auth.") var appName: String?
    @Option(help: "The admin created on first start with access control (env MLFLOW_AUTH_ADMIN_USERNAME; its password: env MLFLOW_AUTH_ADMIN_PASSWORD).")
    var adminUsername: String?
    @Option(help: "Permission of authenticated users on what they hold no grant on: READ, USE, EDIT, MANAGE or NO_PERMISSIONS.")
    var defaultPermission = "READ"
    @Option(help: "Failed logins per user and per address within a minute before answering 429.") var authMaxFailures = 10
    @Option(help: "PEM certificate chain to serve HTTPS with (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "Cluster mode (with a PostgreSQL --backend-store-uri): where sealed metric segments go, s3://bucket/prefix. The servers sharing the database find each other through it.")
    var metricsDestination: String?
    @Option(help: "This server's id in the cluster (default host:port).") var nodeId: String?
    @Option(help: "The URL the other servers reach this one at (default http://host:port).") var advertiseUrl: String?
    @Option(help: "The secret every server of the cluster signs forwarded requests with, at least 16 bytes (env TALLY_CLUSTER_SECRET).")
    var clusterSecret: String?
    @Option(help: "Seconds a run's lease lasts without renewal: a dead server's runs are taken over after it.") var leaseSeconds: Double = 15
    @Option(help: "Cluster mode: the longest, in seconds, a run's records wait in the shared log before they are sealed into --metrics-destination.")
    var maxUnsealedSeconds: Double = 21_600
    @Option(help: "Cluster mode: MB this server's copies of runs it reads but does not own may take on disk (least recently read dropped first; 0: unbounded).")
    var metricsCacheMb: Int = 20_480
    @Flag(help: "Let clients register scorers with code (@scorer): every client that loads one runs it, so only where every writer is trusted (env MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS).")
    var enableCustomScorers = false
    @Option(help: "A directory of model prices in MLflow's model catalog format (<provider>.json files; MLflow bundles one in mlflow/utils/model_catalog): spans sent over OTLP with a model and token usage get a cost from it, and their traces the sum.")
    var modelPrices: String?
    @OptionGroup(title: "Browser defences (mlflow server's security options)") var securityOptions: BrowserSecurityOptions
    @OptionGroup(title: "mlflow server's options") var mlflowOptions: MLflowServerOptions
    @OptionGroup(title: "Registry webhooks (MLflow's MLFLOW_WEBHOOK_* variables)") var webhookOptions: WebhookOptions

    func run() async throws {
        Allocator.tuneForServer()
        try mlflowOptions.check(backendStoreURI: backendStoreURI)
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.dataDirectory = dataDir
        config.backendStoreURI = backendStoreURI
        guard backendStorePoolSize >= 1 else { throw ValidationError("--backend-store-pool-size must be at least 1 (got \(backendStorePoolSize))") }
        config.backendStorePoolSize = backendStorePoolSize
        config.migrateSchema = !noMigrate
        config.defaultArtifactRoot = defaultArtifactRoot
        config.artifactsDestination = artifactsDestination
        config.presignedArtifactURLs = !noPresignedArtifactUrls
        config.presignedDownloadSeconds = presignedDownloadSeconds
        config.maxBodyBytes = maxBodyBytes
        config.maxSmallBodyBytes = maxSmallBodyBytes
        config.maxNativeBodyBytes = maxNativeBodyBytes
        config.idleTimeoutSeconds = idleTimeout
        guard shutdownTimeout >= 0 else { throw ValidationError("--shutdown-timeout is a number of seconds, or 0 for no limit (got \(shutdownTimeout))") }
        config.shutdownTimeoutSeconds = shutdownTimeout
        if let m = metricMemoryMb {
            guard m >= 64 else { throw ValidationError("--metric-memory-mb must be at least 64 (got \(m))") }
            config.metricMemoryBytes = m << 20
        }
        if let injectFaults {
            guard let f = Faults(parsing: injectFaults) else { throw ValidationError("unknown fault in '\(injectFaults)'") }
            config.faults = f
        }
        guard let d = Durability(parsing: durability) else { throw ValidationError("unknown durability '\(durability)': use sync, batch:N or none") }
        config.durability = d
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level '\(logLevel)'") }
        config.logLevel = level
        config.accessLog = accessLog
        config.access = try accessConfiguration()
        switch (tlsCert, tlsKey) {
        case let (cert?, key?): config.tls = (cert, key)
        case (nil, nil): break
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        config.cluster = try clusterConfiguration()
        config.browserSecurity = try securityOptions.security()
        config.webhooks = try webhookOptions.policy()
        guard let customScorers = Self.flagValue("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS") else {
            throw ValidationError("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS is '\(Self.environment["MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS"] ?? "")': true or false")
        }
        config.customScorers = enableCustomScorers || customScorers
        if let dir = modelPrices {
            do { config.modelPrices = try ModelPrices(directory: URL(fileURLWithPath: dir)) } catch {
                throw ValidationError("--model-prices \(dir): \(error)")
            }
        }
        if let prefix = staticPrefix {
            if let problem = RequestRules.staticPrefixError(prefix) { throw ValidationError(problem) }
            config.staticPrefix = prefix
        }
        config.prometheusDirectory = mlflowOptions.prometheusDirectory
        let service = try TallyApplication.openService(config)
        let recovery = service.metrics.recovery
        let logger = { var l = Logger(label: "tally"); l.logLevel = level; return l }()
        if !mlflowOptions.unused.isEmpty {
            logger.notice("mlflow server options accepted and unused", metadata: ["options": "\(mlflowOptions.unused.joined(separator: " "))"])
        }
        if let security = TallyApplication.browserSecurity(config) {
            logger.info("browser defences on", metadata: ["rules": "\(security.summary)"])
        } else {
            logger.warning("browser defences off (--disable-security-middleware): any web page this server's users open can read and write it")
        }
        if let caution = (service.metadata as? PostgresMetadataStore)?.uri.hostListCaution { logger.warning("\(caution)") }
        if let cut = recovery.truncatedTail {
            logger.warning("WAL tail truncated", metadata: ["file": "\(cut.path)", "offset": "\(cut.offset)", "bytes": "\(cut.bytes)", "reason": "\(cut.reason)"])
        }
        logger.info("store opened", metadata: ["dir": "\(dataDir)", "replayed_points": "\(recovery.replayedPoints)",
                                               "metadata": "\(service.metadata.location)"])
        let scheme = config.tls == nil ? "http" : "https", prefix = config.staticPrefix
        let deadline = ShutdownDeadline(seconds: config.shutdownTimeoutSeconds, logger: logger)
        let app = try Self.closing(service) {
            try TallyApplication.application(service: service, config: config, deadline: deadline) { port in
                logger.info("listening", metadata: ["url": "\(scheme)://\(host):\(port)\(prefix)"])
            }
        }
        try await TallyApplication.run(app, deadline: deadline, logger: logger)  // SIGINT/SIGTERM: graceful shutdown, the stores closed last
        logger.info("stopped")
    }

    /// `body`'s result; the service closed when it throws (the stores are left clean after a refused start).
    static func closing<T>(_ service: TrackingService, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            try? service.close()
            throw error
        }
    }

    /// Cluster mode from `--metrics-destination` and the flags that go with it (`nil`: a single server).
    func clusterConfiguration() throws -> ClusterConfiguration? {
        guard let metricsDestination else {
            if nodeId != nil || advertiseUrl != nil || clusterSecret != nil {
                throw ValidationError("--node-id, --advertise-url and --cluster-secret belong to cluster mode, which --metrics-destination s3://… turns on")
            }
            return nil
        }
        if port == 0 && advertiseUrl == nil { throw ValidationError("cluster mode on --port 0 needs --advertise-url (the others must know the port)") }
        if ["0.0.0.0", "::", "[::]"].contains(host) && (advertiseUrl == nil || nodeId == nil) {
            throw ValidationError("cluster mode listening on every interface (--host \(host)) needs --advertise-url and --node-id: the address the other servers reach this one at, and a name of its own")
        }
        guard let secret = Self.clusterSecret(clusterSecret) else {
            throw ValidationError("cluster mode needs --cluster-secret (or env TALLY_CLUSTER_SECRET), the same on every server")
        }
        var cluster = ClusterConfiguration(metricsDestination: metricsDestination, nodeID: nodeId ?? "\(host):\(port)",
                                           advertiseURL: advertiseUrl ?? "http://\(host):\(port)", secret: secret, leaseSeconds: leaseSeconds)
        cluster.maxUnsealedSeconds = maxUnsealedSeconds
        guard metricsCacheMb >= 0 else { throw ValidationError("--metrics-cache-mb must be 0 (unbounded) or more") }
        cluster.cacheMegabytes = metricsCacheMb == 0 ? nil : metricsCacheMb
        return cluster
    }

    /// Access control from `--auth`/`--app-name` and the admin settings (`nil`: off).
    func accessConfiguration() throws -> AccessConfiguration? {
        switch (auth, appName) {
        case (nil, nil): return nil
        case ("basic"?, nil), (nil, "basic-auth"?), ("basic"?, "basic-auth"?): break
        default: throw ValidationError("unknown access control '\(auth ?? appName ?? "")': use --auth basic (or --app-name basic-auth)")
        }
        let env = ProcessInfo.processInfo.environment
        var a = AccessConfiguration()
        a.adminUsername = adminUsername ?? env["MLFLOW_AUTH_ADMIN_USERNAME"] ?? a.adminUsername
        a.adminPassword = env["MLFLOW_AUTH_ADMIN_PASSWORD"]
        guard let p = Permission(rawValue: defaultPermission.uppercased()), p != .deny else {
            throw ValidationError("unknown --default-permission '\(defaultPermission)': use READ, USE, EDIT, MANAGE or NO_PERMISSIONS")
        }
        a.defaultPermission = p
        guard authMaxFailures >= 1 else { throw ValidationError("--auth-max-failures must be at least 1") }
        a.maxFailures = authMaxFailures
        return a
    }
}
