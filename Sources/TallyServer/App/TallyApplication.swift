import Hummingbird
import Logging
import NIOCore
import NIOPosix
import TallyStore
import TallyTracking

/// Settings of `tally server`.
public struct ServerConfiguration: Sendable {
    /// Interface to listen on.
    public var host = "127.0.0.1"
    /// Port (0: any free port).
    public var port = 5000
    /// Root of the embedded stores: `metadata.sqlite` and `metrics/`.
    public var dataDirectory = "./tally-data"
    /// Metadata store URI; `nil` or `sqlite:///path` means SQLite (the default, in the data directory).
    public var backendStoreURI: String?
    /// Where proxied artifacts are stored (default: `<dataDirectory>/artifacts`).
    public var artifactsDestination: String?
    /// Artifact root for new experiments (`mlflow-artifacts:` when artifacts are proxied, the default).
    public var defaultArtifactRoot = "mlflow-artifacts:"
    /// Durability of metric points.
    public var durability: Durability = .sync
    /// Log level.
    public var logLevel: Logger.Level = .info
    /// Largest JSON body accepted by the endpoints that carry data (`runs/log-batch`, `runs/log-inputs`). A full
    /// log-batch from the client (1,000 metrics, 100 params of 6,000 characters, 100 tags of 8,000) stays under 4 MB.
    public var maxBodyBytes = 16 << 20
    /// Largest body of the native ingest endpoint (`/api/tally/v1/runs/{id}/metrics`).
    public var maxNativeBodyBytes = 256 << 20
    /// Largest JSON body accepted by every other MLflow endpoint.
    public var maxSmallBodyBytes = 1 << 20
    /// Seconds a connection may stay silent (idle keep-alive, or a client stalling mid-request) before it is closed.
    public var idleTimeoutSeconds = 120
    /// Threads for blocking store work. More than the cores: durable appends wait on fsync there, and concurrent
    /// ones share one group commit only if they can wait at the same time.
    public var blockingThreads = 32

    /// The defaults.
    public init() {}
}

/// Builds the tracking service and the HTTP application of `tally server`.
public enum TallyApplication {
    /// Opens the stores under `config.dataDirectory`.
    public static func openService(_ config: ServerConfiguration) throws -> TrackingService {
        var storeConfig = StoreConfiguration()
        storeConfig.wal!.durability = config.durability
        let metrics = try MetricStore(directory: config.dataDirectory + "/metrics", configuration: storeConfig)
        let path: String
        switch config.backendStoreURI {
        case nil: path = config.dataDirectory + "/metadata.sqlite"
        // SQLAlchemy form: sqlite:///relative.db, sqlite:////absolute.db, sqlite:// (in memory).
        case let uri? where uri.hasPrefix("sqlite:///"): path = String(uri.dropFirst("sqlite:///".count))
        case "sqlite://"?: path = ":memory:"
        case let uri?: throw TrackingError(.invalidParameterValue, "Unsupported --backend-store-uri '\(uri)': only sqlite:///path is available")
        }
        let meta = try SQLiteMetadataStore(path: path, defaultArtifactLocation: config.defaultArtifactRoot + "/0", now: TrackingService.nowMillis())
        return TrackingService(metadata: meta, metrics: metrics, artifactRoot: config.defaultArtifactRoot)
    }

    /// The router: MLflow's API under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`, `/health` and `/version`.
    public static func router(service: TrackingService, config: ServerConfiguration) throws -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MLflowErrorMiddleware())
        router.get("/health") { _, _ in "OK" }
        router.get("/version") { _, _ in TallyVersion.string }
        UIRoutes().register(on: router)
        let pool = NIOThreadPool(numberOfThreads: max(2, config.blockingThreads))
        pool.start()
        MLflowAPI(service: service, maxBody: config.maxBodyBytes, maxSmallBody: config.maxSmallBodyBytes, pool: pool).register(on: router)
        NativeAPI(service: service, maxBody: config.maxNativeBodyBytes, pool: pool).register(on: router)
        let artifacts = try ArtifactStore(root: config.artifactsDestination ?? config.dataDirectory + "/artifacts")
        ArtifactRoutes(store: artifacts, service: service, pool: pool).register(on: router)
        return router
    }

    /// The application (run it with `runService()`); `onRunning` receives the bound port.
    public static func application(service: TrackingService, config: ServerConfiguration,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        var logger = Logger(label: "tally")
        logger.logLevel = config.logLevel
        return Application(router: try router(service: service, config: config),
                           server: .http1(configuration: .init(idleTimeout: .seconds(Int64(config.idleTimeoutSeconds)))),
                           configuration: .init(address: .hostname(config.host, port: config.port), serverName: "tally"),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
                           logger: logger)
    }
}

/// The server's version string.
public enum TallyVersion {
    /// `tally <version>`.
    public static let string = "0.1.0"
}

/// Turns every error escaping a route, unknown paths included, into MLflow's error JSON.
struct MLflowErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as MLflowError {
            throw e
        } catch {
            if let h = error as? HTTPError, h.status == .notFound {
                throw MLflowError(code: "ENDPOINT_NOT_FOUND", message: "No endpoint \(request.method) \(request.uri.path)", status: .notFound)
            }
            throw MLflowError.from(error)
        }
    }
}
