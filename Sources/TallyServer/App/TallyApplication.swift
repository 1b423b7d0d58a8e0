import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL
import NIOCore
import NIOPosix
import ServiceLifecycle
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
    /// Metadata store URI; `nil` or `sqlite:///path` means SQLite (the default, in the data directory);
    /// `postgresql://user:password@host:port/database` a PostgreSQL database several servers may share.
    public var backendStoreURI: String?
    /// The most connections to a PostgreSQL backend store.
    public var backendStorePoolSize = 8
    /// Whether a PostgreSQL schema behind this build is migrated on start (`false`: `--no-migrate`, start refused).
    public var migrateSchema = true
    /// Where proxied artifacts are stored (default: `<dataDirectory>/artifacts`).
    public var artifactsDestination: String?
    /// Whether clients of an S3 `artifactsDestination` get presigned URLs: large uploads in parts and downloads
    /// straight to and from the bucket (`false`: every byte through this server, for buckets clients cannot reach).
    public var presignedArtifactURLs = true
    /// Seconds a presigned download URL is valid (env `MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS`, as MLflow's server
    /// reads it; 1 to 604,800).
    public var presignedDownloadSeconds = ArtifactStore.defaultDownloadURLSeconds
    /// Artifact root for new experiments (`mlflow-artifacts:` when artifacts are proxied, the default).
    public var defaultArtifactRoot = "mlflow-artifacts:"
    /// Durability of metric points.
    public var durability: Durability = .sync
    /// Memory the metric engine may hold for unsealed points, open segment indexes and read caches (bytes; `nil`:
    /// ``StoreConfiguration/defaultMemoryBudget``).
    public var metricMemoryBytes: Int?
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
    /// Seconds a graceful shutdown waits for running requests before the process exits anyway (0: no limit;
    /// ``ShutdownDeadline``). Kubernetes, for one, sends SIGKILL 30 s after SIGTERM by default.
    public var shutdownTimeoutSeconds = 25
    /// Threads for blocking store work. More than the cores: durable appends wait on fsync there, and concurrent
    /// ones share one group commit only if they can wait at the same time.
    public var blockingThreads = 32
    /// Failures to inject into the write path (crash tests only).
    public var faults: Faults = []
    /// Access control (`--auth basic`); `nil`: off, every caller may do everything.
    public var access: AccessConfiguration?
    /// PEM certificate chain and private key files to serve HTTPS with (`--tls-cert`, `--tls-key`); `nil`: plain HTTP.
    public var tls: (certificate: String, key: String)?
    /// Cluster mode (`--metrics-destination s3://…` with a PostgreSQL backend store); `nil`: a single server.
    public var cluster: ClusterConfiguration?
    /// The path every route is served under (`--static-prefix /mlflow`: `/mlflow/api/2.0/…`, the UI at `/mlflow/`);
    /// empty for none. Checked by ``RequestRules/staticPrefixError(_:)``.
    public var staticPrefix = ""
    /// MLflow 3's defences against cross-site requests and DNS rebinding (MLflow's defaults; `nil`:
    /// `--disable-security-middleware`).
    public var browserSecurity: BrowserSecurity? = try! BrowserSecurity()  // MLflow's defaults: nothing to refuse
    /// Prometheus metrics at `/metrics` (`--expose-prometheus DIR`): the directory MLflow keeps its worker processes'
    /// counters in, created as MLflow creates it (one process holds Tally's in memory); `nil`: no `/metrics`.
    public var prometheusDirectory: String?
    /// Whether every request is logged at `info` (`--access-log`; ``AccessLogMiddleware``).
    public var accessLog = false
    /// Where registry webhooks may deliver (`--webhook-*`, MLflow's `MLFLOW_WEBHOOK_*`).
    public var webhooks = WebhookPolicy()
    /// Whether scorers with code may be registered (`--enable-custom-scorers`, MLflow's `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS`).
    public var customScorers = false
    /// The prices OTLP spans are priced from (`--model-prices`; `nil`: none are).
    public var modelPrices: ModelPrices?
    /// A cluster's secret, for the webhook key only (offline commands on a cluster's database, which join nothing);
    /// a cluster member's comes with ``cluster``.
    public var webhookClusterSecret: String?

    /// The defaults.
    public init() {}
}

/// Builds the tracking service and the HTTP application of `tally server`.
public enum TallyApplication {
    /// Opens the stores under `config.dataDirectory` (and reconciles latest values after a crash), once the
    /// metrics' directory is made (``ServerConfiguration/prometheusDirectory``).
    public static func openService(_ config: ServerConfiguration) throws -> TrackingService {
        if let d = config.prometheusDirectory { try prepareMetricsDirectory(d) }
        var storeConfig = StoreConfiguration()
        storeConfig.wal!.durability = config.durability
        storeConfig.sealsInBackground = true  // no request waits for a seal or compaction it did not ask for
        if let m = config.metricMemoryBytes { storeConfig.memoryBudget = m }
        if config.cluster != nil { storeConfig = ClusterNode.storeConfiguration(storeConfig) }
        let metrics = try MetricStore(directory: DataDirectory(config.dataDirectory).metrics, configuration: storeConfig)
        do {
            try ClusterNode.checkStore(metrics, cluster: config.cluster != nil)
        } catch {
            try? metrics.close()
            throw error
        }
        let meta = try openMetadata(config)
        var artifacts = try ArtifactStore.open(destination: config.artifactsDestination ?? DataDirectory(config.dataDirectory).artifacts, dataDirectory: config.dataDirectory)
        artifacts.presignedURLs = config.presignedArtifactURLs
        artifacts.downloadURLSeconds = config.presignedDownloadSeconds
        var logger = Logger(label: "tally")
        logger.logLevel = config.logLevel
        let log = logger
        let secrets: WebhookSecrets
        do {
            secrets = try WebhookSecrets.load(dataDirectory: config.dataDirectory, clusterSecret: config.cluster?.secret ?? config.webhookClusterSecret)
        } catch {
            meta.close()
            try? metrics.close()
            throw error
        }
        let cluster = try config.cluster.map { try ClusterNode.join($0, metadata: meta, metrics: metrics, report: { log.warning("\($0)") }) }
        let hooks = WebhookDelivery(policy: config.webhooks, secrets: secrets, report: { log.warning("\($0)") })
        let service = TrackingService(metadata: meta, metrics: metrics, artifactRoot: config.defaultArtifactRoot, artifacts: artifacts,
                                      faults: config.faults, cluster: cluster, webhooks: hooks, customScorers: config.customScorers,
                                      modelPrices: config.modelPrices)
        // A single server's latest values follow its own log after a crash. In a cluster the shared log's records
        // commit with the latest values, and the local store is only a copy: nothing to reconcile from it.
        if cluster == nil {
            try service.reconcileLatest()
            // Points of runs another server sharing the database purged (`tally gc` through it) while this one was down.
            let dropped = try service.dropPointsOfPurgedRuns()
            if dropped > 0 { log.info("deleted the points of \(dropped) run(s) purged through another server") }
        }
        if let foreign = try? service.webhookSecretsUnderOtherKeys(), !foreign.isEmpty {
            log.warning("webhook secrets sealed under another key: their deliveries will fail until this server has that key",
                        metadata: ["webhooks": "\(foreign.joined(separator: ", "))", "this_key": "\(secrets.fingerprint)"])
        }
        return service
    }

    /// The metadata store `config` names (also opened alone by `tally token` when no server runs on the data
    /// directory, or on a PostgreSQL store).
    public static func openMetadata(_ config: ServerConfiguration) throws -> any MetadataStore {
        try BackendStore.open(uri: config.backendStoreURI, defaultPath: DataDirectory(config.dataDirectory).metadata,
                              defaultArtifactLocation: config.defaultArtifactRoot + "/0", poolSize: config.backendStorePoolSize,
                              migrate: config.migrateSchema, now: TrackingService.nowMillis())
    }

    /// MLflow's API prefixes: every MLflow route is served under each.
    static let mlflowPrefixes = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"]

    /// The router: the access log and the request metrics when asked for (outermost: they see every answer as sent),
    /// the browser defences' headers around one error middleware, the request checks, then the route
    /// collections mounted at their prefixes — MLflow's API under
    /// both MLflow prefixes (the UI-only routes under the ajax one), the proxied artifacts, Tally's native API, the
    /// UI, `/health`, `/ready` and `/version` (and `/metrics` with `--expose-prometheus`).
    static func router(_ e: Endpoints) -> Router<TallyRequestContext> {
        router(e, catalog: nil)
    }

    /// The router; `catalog` receives every route (full path, method, access) for the generated access test.
    static func router(_ e: Endpoints, catalog: ((String, RouteTable.Entry) -> Void)?) -> Router<TallyRequestContext> {
        let router = Router(context: TallyRequestContext.self, options: .autoGenerateHeadEndpoints)
        if let logger = e.accessLog { router.add(middleware: AccessLogMiddleware(logger: logger)) }
        if let metrics = e.metrics { router.add(middleware: RequestMetricsMiddleware(metrics: metrics, prefix: e.staticPrefix)) }
        if let security = e.browserSecurity { router.add(middleware: BrowserHeadersMiddleware(security: security)) }
        router.add(middleware: MLflowErrorMiddleware())
        router.add(middleware: RequestChecksMiddleware())
        router.add(middleware: ForwardedRequestMiddleware(auth: e.forwarder?.auth, limit: max(e.largeBody, e.nativeBody)))
        if let security = e.browserSecurity { router.add(middleware: BrowserGuardMiddleware(security: security, under: e.staticPrefix, tls: e.secureCookies)) }
        router.add(middleware: UnknownRouteMiddleware(gate: e.gate))
        /// `table` at each of `prefixes` under the static prefix (and, `bare`, also without it).
        func mount(_ table: RouteTable, at prefixes: [String], bare: Bool = false) {
            let routes = table.build()
            for prefix in prefixes.map({ e.staticPrefix + $0 }) + (bare && !e.staticPrefix.isEmpty ? prefixes : []) {
                router.addRoutes(routes, atPath: RouterPath(prefix))
                for entry in table.entries { catalog?(prefix, entry) }
            }
        }
        let mlflow = RouteTable(gate: e.gate)
        ExperimentRoutes(endpoints: e).add(to: mlflow)
        RunRoutes(endpoints: e).add(to: mlflow)
        LoggedModelRoutes(endpoints: e).add(to: mlflow)
        RegistryRoutes(endpoints: e).add(to: mlflow)
        WebhookRoutes(endpoints: e).add(to: mlflow)
        TraceRoutes(endpoints: e).addV2(to: mlflow)
        TraceRoutes(endpoints: e).addV2Only(to: mlflow)
        MetricRoutes(endpoints: e).add(to: mlflow)
        ArtifactRoutes(endpoints: e).addTracking(to: mlflow)
        UserRoutes(endpoints: e).add(to: mlflow)
        mount(mlflow, at: mlflowPrefixes)

        let ajax = RouteTable(gate: e.gate)
        MetricRoutes(endpoints: e).addBulk(to: ajax)
        ExperimentRoutes(endpoints: e).addUI(to: ajax)
        ArtifactRoutes(endpoints: e).addUIUpload(to: ajax)
        mount(ajax, at: ["/ajax-api/2.0/mlflow"])
        let ajaxBoth = RouteTable(gate: e.gate)
        TraceRoutes(endpoints: e).addUIArtifact(to: ajaxBoth)
        mount(ajaxBoth, at: ["/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"])

        let v3 = RouteTable(gate: e.gate)
        UserRoutes(endpoints: e).addPermissions(to: v3)
        TraceRoutes(endpoints: e).add(to: v3)
        EvaluationDatasetRoutes(endpoints: e).add(to: v3)
        ScorerRoutes(endpoints: e).add(to: v3)
        LabelSchemaRoutes(endpoints: e).add(to: v3)
        ReviewQueueRoutes(endpoints: e).add(to: v3)
        IssueRoutes(endpoints: e).add(to: v3)
        v3.on("server-info", .get, access: .open) { _, _ in
            var o = Obj()
            let info = e.service.serverInfo
            o.add("store_type", info.storeType)
            o.add("workspaces_enabled", bool: info.workspacesEnabled)
            o.add("multipart_uploads_enabled", bool: info.multipartUploadsEnabled)
            o.add("multipart_downloads_enabled", bool: info.multipartDownloadsEnabled)
            o.add("artifact_serving_enabled", bool: info.artifactServingEnabled)
            o.add("artifacts_presigned_only", bool: info.artifactsPresignedOnly)
            return Endpoints.ok(o.json)
        }
        mount(v3, at: ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"])

        let proxied = RouteTable(gate: e.gate)
        ArtifactRoutes(endpoints: e).addProxied(to: proxied)
        ArtifactRoutes(endpoints: e).addParts(to: proxied)
        // Also without the static prefix, as MLflow serves them: its client resolves `mlflow-artifacts:/` (the root) there.
        mount(proxied, at: ["/api/2.0/mlflow-artifacts"], bare: true)

        let native = RouteTable(gate: e.gate)
        NativeRoutes(endpoints: e).add(to: native)
        NativeRoutes(endpoints: e).addScoreboard(to: native)
        UserRoutes(endpoints: e).addTokens(to: native)
        UserRoutes(endpoints: e).addSessions(to: native)
        mount(native, at: ["/api/tally/v1"])

        if let metrics = e.metrics {
            let scrape = RouteTable(gate: e.gate, api: false)
            // Any authenticated caller, as MLflow's basic-auth app asks of a scraper.
            scrape.on(RequestMetricsRules.path, .get, access: .user) { _, _ in
                let body = try await e.pool.run { metrics.render() }
                return Response(status: .ok, headers: [.contentType: RequestMetricsRules.contentType], body: .init(byteBuffer: body))
            }
            // Also without the static prefix, where MLflow serves it.
            mount(scrape, at: [""], bare: true)
        }

        let root = RouteTable(gate: e.gate, api: false)
        root.on("/health", .get, access: .open) { _, _ in Self.text("OK") }
        let readiness = e.readiness ?? ReadinessProbe(service: e.service, logger: Logger(label: "tally"))
        root.on("/ready", .get, access: .open) { _, _ in ReadinessProbe.response(await readiness.readiness()) }
        root.on("/version", .get, access: .open) { _, _ in Self.text(TallyVersion.mlflow) }
        OTLPRoutes(endpoints: e).add(to: root)
        ArtifactRoutes(endpoints: e).addUIDownload(to: root)
        UIRoutes(prefix: e.staticPrefix).add(to: root)
        mount(root, at: [""])
        return router
    }

    /// A server TLS configuration from PEM files, with a clear error naming the file that cannot be read.
    static func tlsConfiguration(_ files: (certificate: String, key: String)) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate], key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw TrackingError(.invalidParameterValue, "--tls-cert \(files.certificate): not a readable PEM certificate chain (\(error))")
        }
        do {
            key = try NIOSSLPrivateKey(file: files.key, format: .pem)
        } catch {
            throw TrackingError(.invalidParameterValue, "--tls-key \(files.key): not a readable PEM private key (\(error))")
        }
        guard !chain.isEmpty else { throw TrackingError(.invalidParameterValue, "--tls-cert \(files.certificate): no certificate in the file") }
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }

    /// Access control as configured (an admin created on first start), `nil` when off.
    static func accessControl(service: TrackingService, config: ServerConfiguration, logger: Logger) throws -> AccessControl? {
        guard let settings = config.access else { return nil }
        let control = AccessControl(store: service.metadata, configuration: auditing(settings, to: logger))
        try control.bootstrap()
        return control
    }

    /// `settings` with their audit lines written to `logger` (`notice` level).
    static func auditing(_ settings: AccessConfiguration, to logger: Logger) -> AccessConfiguration {
        var settings = settings
        settings.audit = { line in logger.notice("\(line)") }
        return settings
    }

    /// The browser defences `config` asks for, with the names the server was given allowed as hosts: the address it
    /// listens on and the URL a cluster advertises it at. `nil` when turned off.
    public static func browserSecurity(_ config: ServerConfiguration) -> BrowserSecurity? {
        config.browserSecurity?.knowing([config.host] + (config.cluster.map { [$0.advertiseURL] } ?? []))
    }

    /// A plain-text answer.
    static func text(_ s: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    /// The application (run it with `runService()`); `onRunning` receives the bound port. The blocking thread pool,
    /// the admin socket (``AdminSocket``) and the stores are services of the application: shut down after the HTTP
    /// server, the stores last.
    public static func application(service: TrackingService, config: ServerConfiguration, deadline: ShutdownDeadline? = nil,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        var logger = Logger(label: "tally")
        logger.logLevel = config.logLevel
        let pool = BlockingPool(threads: config.blockingThreads)
        let endpoints = Endpoints(service: service, pool: pool, largeBody: config.maxBodyBytes, smallBody: config.maxSmallBodyBytes,
                                  nativeBody: config.maxNativeBodyBytes,
                                  gate: AccessGate(control: try accessControl(service: service, config: config, logger: logger), service: service, pool: pool),
                                  secureCookies: config.tls != nil,
                                  forwarder: try config.cluster.map { ClusterForwarder(auth: try ClusterAuth(secret: $0.secret), node: $0.nodeID) },
                                  browserSecurity: browserSecurity(config), staticPrefix: config.staticPrefix,
                                  metrics: serverMetrics(config, service: service, pool: pool), accessLog: accessLogger(config, logger),
                                  readiness: ReadinessProbe(service: service, logger: logger))
        let http = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(Int64(config.idleTimeoutSeconds))))
        // Shut down in reverse: the HTTP server, the admin socket, the pool, the stores last.
        var services: [any Service] = [StoreCloser(service: service, deadline: deadline), pool]
        let adminControl = endpoints.access ?? AccessControl(store: service.metadata, configuration: auditing(AccessConfiguration(), to: logger))
        let admin = AdminSocket.service(endpoints, control: adminControl, dataDirectory: config.dataDirectory, logger: logger)
        if let admin { services.append(admin.service) }
        var app = Application(router: router(endpoints),
                           server: try config.tls.map { try .tls(http, tlsConfiguration: try tlsConfiguration($0)) } ?? http,
                           configuration: .init(address: .hostname(config.host, port: config.port), serverName: "tally"),
                           services: services,
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
                           logger: logger)
        if let admin { app.beforeServerStarts(perform: admin.ready) }
        return app
    }
}

/// The server's version string.
public enum TallyVersion {
    /// `tally <version>`.
    public static let string = "0.1.0"
    /// What `GET /version` answers: the MLflow release whose REST API this build serves. MLflow's client reads it to
    /// decide what a server can do (from 3.4 on, it sends spans to OTLP `/v1/traces` as they end).
    public static let mlflow = "3.17.2"
}

