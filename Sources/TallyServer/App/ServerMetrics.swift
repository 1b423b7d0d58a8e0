import Hummingbird
import NIOCore
import Prometheus
import Synchronization
import TallyStore
import TallyTracking

/// The Prometheus metrics `tally server --expose-prometheus` serves at `/metrics`: MLflow's request metrics under
/// MLflow's names (`mlflow_http_request_total`, `mlflow_http_request_duration_seconds`, as `mlflow server
/// --expose-prometheus` names them, so its dashboards and alerts keep working), then Tally's own: the metric store's
/// activity and memory (`tally_store_*`, `tally_wal_*`), the blocking pool, requests in flight, and the process
/// (`process_*`, the names every Prometheus client library uses). docs/monitoring.md lists them all.
///
/// Requests are counted as they finish (their instruments looked up under a lock, a counter's atomic increment, two
/// histogram observations, each under its histogram's lock); everything else is read when Prometheus scrapes. What
/// is counted, and under which names, is MLflow's rule: ``RequestMetricsRules``.
final class ServerMetrics: Sendable {
    /// The registry rendered at each scrape (by ``render()`` only: the counters set from snapshots rely on it).
    private let registry = PrometheusCollectorRegistry()
    private let service: TrackingService
    private let pool: BlockingPool
    /// The version the request histogram is labelled with: what `/version` answers, as MLflow's label is its own.
    private let version = TallyVersion.mlflow
    /// MLflow's metrics of OTLP trace ingest.
    let otlp: OTLPInstruments
    /// Each (route, method, status)'s instruments, made on first use.
    private let requests = Mutex<[RequestKey: RequestInstruments]>([:])
    /// Requests being answered now.
    let inFlight = Atomic<Int>(0)
    /// Serialises scrapes: the counters read from snapshots are set, then rendered, by one scrape at a time.
    private let scrapes = Mutex(())
    private let snapshot: SnapshotInstruments

    /// The buckets of MLflow's request histogram.
    private static let requestBuckets = RequestMetricsRules.durationBucketsMillis.map { Duration.milliseconds($0) }
    /// The buckets of the histogram by route, from 0.5 ms: most of Tally's answers take less than MLflow's first 5 ms.
    private static let routeBuckets: [Duration] = [.microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
                                                   .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                                   .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)]

    /// Metrics of `service`'s server, whose blocking work runs on `pool` (`version`: Tally's, for `tally_build_info`).
    init(service: TrackingService, pool: BlockingPool, version: String = TallyVersion.string) {
        self.service = service
        self.pool = pool
        otlp = OTLPInstruments(registry, durationBuckets: Self.requestBuckets)
        snapshot = SnapshotInstruments(registry, version: version, postgres: service.metadata is PostgresMetadataStore, cluster: service.cluster != nil)
    }

    /// A request's route, method and status.
    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    /// The instruments of one (route, method, status).
    private struct RequestInstruments {
        /// MLflow's, by method and status: the count, and the durations.
        let total: Counter
        /// MLflow's durations, by method and status (and version).
        let duration: DurationHistogram
        /// Only for the statuses ``RequestMetricsRules/isException(status:)`` counts.
        let exceptions: Counter?
        /// Tally's, by route and method.
        let route: DurationHistogram
    }

    /// Counts one answered request, which the router matched to `route` (its path template, as mounted; `NotFound`
    /// when none matched).
    func record(route: String, method: HTTPRequest.Method, status: Int, nanos: Int64) {
        let key = RequestKey(route: route, method: RequestMetricsRules.methodLabel(method.rawValue), status: status)
        let instruments = requests.withLock { made in
            if let i = made[key] { return i }
            typealias R = RequestMetricsRules
            // The registry hands back the instrument it holds for a name and labels: pairs share MLflow's.
            let labels = [("method", key.method), ("status", String(status))]
            let i = RequestInstruments(
                total: registry.makeCounter(descriptor: .named(R.requestsTotal, "Total number of HTTP requests"), labels: labels),
                duration: registry.makeDurationHistogram(descriptor: .named(R.duration, "HTTP request duration in seconds"),
                                                         labels: labels + [(R.versionLabel, version)], buckets: Self.requestBuckets),
                exceptions: R.isException(status: status)
                    ? registry.makeCounter(descriptor: .named(R.exceptionsTotal, "Total number of HTTP requests which resulted in an exception"),
                                           labels: labels) : nil,
                route: registry.makeDurationHistogram(descriptor: .named("tally_http_request_duration_seconds",
                                                                         "Request duration in seconds, by route (as mounted) and method"),
                                                      labels: [("route", route), ("method", key.method)], buckets: Self.routeBuckets))
            made[key] = i
            return i
        }
        instruments.total.increment()
        instruments.duration.recordNanoseconds(nanos)
        instruments.exceptions?.increment()
        instruments.route.recordNanoseconds(nanos)
    }

    /// The text format of every metric, read now.
    func render() -> ByteBuffer {
        scrapes.withLock { _ in
            snapshot.update(.init(store: service.metrics.activity, pool: pool.activity, inFlight: inFlight.load(ordering: .relaxed),
                                  process: .read(), postgres: (service.metadata as? PostgresMetadataStore)?.activity,
                                  cluster: service.cluster?.activity, webhooks: service.webhooks.activity))
            return ByteBuffer(bytes: registry.emitToBuffer())
        }
    }
}

/// Counts and times every request ``ServerMetrics`` counts, with the status it was answered with: outside every
/// middleware but the access log, so the answers the error middleware renders and the browser defences' refusals
/// are counted as sent.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let metrics: ServerMetrics
    /// The static prefix (`--static-prefix`), empty for none.
    let prefix: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard RequestMetricsRules.counts(method: request.method.rawValue, path: request.uri.path[...], prefix: prefix) else {
            return try await next(request, context)
        }
        let start = ContinuousClock.now
        metrics.inFlight.add(1, ordering: .relaxed)
        defer { metrics.inFlight.subtract(1, ordering: .relaxed) }
        do {
            let response = try await next(request, context)
            metrics.record(route: context.endpointPath ?? "NotFound", method: request.method, status: response.status.code,
                           nanos: Self.nanos(since: start))
            return response
        } catch {
            // Nothing inside lets an error through (the error middleware renders every one); should one pass, it is
            // counted with the status Hummingbird will answer.
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.record(route: context.endpointPath ?? "NotFound", method: request.method, status: status, nanos: Self.nanos(since: start))
            throw error
        }
    }

    /// Nanoseconds from `start` to now.
    static func nanos(since start: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - start).totalNanoseconds
    }
}
