import ArgumentParser
import Hummingbird
import Logging
import TallyServer
import TallyStore
import TallyTracking

/// `tally server`: the MLflow-compatible tracking server.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the MLflow-compatible tracking server (point MLFLOW_TRACKING_URI at it)."
    )

    @Option(help: "Interface to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 5000
    @Option(help: "Directory of the embedded stores.") var dataDir = "./tally-data"
    @Option(help: "Metadata store URI (default: SQLite in the data directory; sqlite:///path).") var backendStoreURI: String?
    @Option(help: "Artifact root of new experiments.") var defaultArtifactRoot = "mlflow-artifacts:"
    @Option(help: "Where proxied artifacts are stored (default: <data-dir>/artifacts).") var artifactsDestination: String?
    @Option(help: "Metric durability: sync, batch:N (ms) or none.") var durability = "sync"
    @Option(help: "Memory (MB) the metric engine may hold for unsealed points, open segment indexes and read caches (default 1216).")
    var metricMemoryMb: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Option(help: "Largest body of runs/log-batch and runs/log-inputs, bytes.") var maxBodyBytes = ServerConfiguration().maxBodyBytes
    @Option(help: "Largest body of the native ingest endpoint, bytes.") var maxNativeBodyBytes = ServerConfiguration().maxNativeBodyBytes
    @Option(help: "Largest body of the other MLflow endpoints, bytes.") var maxSmallBodyBytes = ServerConfiguration().maxSmallBodyBytes
    @Option(help: "Seconds a silent connection is kept open.") var idleTimeout = ServerConfiguration().idleTimeoutSeconds
    @Option(help: .hidden) var injectFaults: String?

    func run() async throws {
        Allocator.tuneForServer()
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.dataDirectory = dataDir
        config.backendStoreURI = backendStoreURI
        config.defaultArtifactRoot = defaultArtifactRoot
        config.artifactsDestination = artifactsDestination
        config.maxBodyBytes = maxBodyBytes
        config.maxSmallBodyBytes = maxSmallBodyBytes
        config.maxNativeBodyBytes = maxNativeBodyBytes
        config.idleTimeoutSeconds = idleTimeout
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
        let service = try TallyApplication.openService(config)
        let recovery = service.metrics.recovery
        let logger = { var l = Logger(label: "tally"); l.logLevel = level; return l }()
        if let cut = recovery.truncatedTail {
            logger.warning("WAL tail truncated", metadata: ["file": "\(cut.path)", "offset": "\(cut.offset)", "bytes": "\(cut.bytes)", "reason": "\(cut.reason)"])
        }
        logger.info("store opened", metadata: ["dir": "\(dataDir)", "replayed_points": "\(recovery.replayedPoints)"])
        let app = try TallyApplication.application(service: service, config: config) { port in
            logger.info("listening", metadata: ["url": "http://\(host):\(port)"])
        }
        try await app.runService()  // SIGINT/SIGTERM: graceful shutdown, the stores closed last
        logger.info("stopped")
    }
}
