import ArgumentParser
import Foundation
import TallyStore
import TallyTracking

/// `tally bench tracking`: run creation and search over many runs.
struct TrackingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracking",
        abstract: "Measure run creation and search (prints JSON with --json)."
    )

    @Option(help: "Runs created for the creation rate (create + 5 params + 3 metrics + finish each).")
    var createRuns = 2_000
    @Option(help: "Runs searched (20 params and 10 metrics each).")
    var searchRuns = 10_000
    @Option(help: "Metric durability: sync, batch:N or none.")
    var durability = "sync"
    @Option(help: "Concurrent clients creating runs (each in its own thread).")
    var clients = 1
    @Option(help: "Metadata store (default: SQLite in the scratch directory; postgresql://… to measure PostgreSQL).")
    var backendStoreURI: String?
    @Option(help: "Log-batch requests per client for the latest-value update rate (10 keys at one step each).")
    var latestBatches = 500
    @Option(help: "Measure running servers over MLflow's REST API instead (repeat for servers sharing a database).")
    var url: [String] = []
    @OptionGroup var output: BenchOutput

    func service(_ path: String) throws -> TrackingService {
        try benchService(path, durability: durability, backendStoreURI: backendStoreURI, poolSize: clients + 2)
    }

    func run() throws {
        if !url.isEmpty { return try runHTTP() }
        let root = output.scratch("tracking")
        defer { system_rm(root) }
        var out = JSONObject()

        // Creation rate, as a training script does it through the API calls.
        let s = try service(root + "/create")
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)  // a shared database may hold earlier rounds
        let exp = try s.createExperiment(name: "bench-\(tag)")
        let perClient = max(1, createRuns / clients)
        let t = try seconds {
            try onThreads(clients) { c in
                for i in 0..<perClient {
                    let id = try s.createRun(experimentID: exp, userID: "bench").info.runID
                    for p in 0..<5 { try s.logParam(runID: id, key: "p\(p)", value: "\((i + c) % 7)") }
                    for m in 0..<3 {
                        try s.logMetric(runID: id, Metric(key: "m\(m)", value: Double(i) / 10, timestamp: 1_700_000_000_000, step: 0))
                    }
                    _ = try s.updateRun(id: id, status: .finished, endTime: 1_700_000_001_000)
                }
            }
        }
        out.add("create_runs_per_s", Double(perClient * clients) / t, digits: 0)
        out.add("clients", clients)
        out.add("durability", durability)
        out.add("metadata", s.metadata is PostgresMetadataStore ? "postgresql" : "sqlite")
        if let pg = s.metadata as? PostgresMetadataStore {  // how many writes the lane sent per statement
            let a = pg.activity
            out.add("lane_writes_per_batch", a.laneBatches == 0 ? 0 : Double(a.laneWrites) / Double(a.laneBatches), digits: 2)
        }
        out.add("rss_after_create_mb", Double(residentBytes()) / 1e6, digits: 1)

        // Latest-value updates: each client logs batches of 10 keys at one step each into a run of its own.
        let runs = try (0..<clients).map { _ in try s.createRun(experimentID: exp).info.runID }
        let bt = try seconds {
            try onThreads(clients) { c in
                for step in 0..<latestBatches {
                    try s.logBatch(runID: runs[c], metrics: (0..<10).map {
                        Metric(key: "k\($0)", value: Double(step * 10 + $0) / 1000, timestamp: 1_700_000_000_000 + Int64(step), step: Int64(step))
                    })
                }
            }
        }
        out.add("log_batches_per_s", Double(latestBatches * clients) / bt, digits: 0)

        // Search over many runs, each with 20 params and 10 metrics.
        let q = try service(root + "/search")
        let sexp = try q.createExperiment(name: "search-\(tag)")
        var rng = SystemRandomNumberGenerator()
        for i in 0..<searchRuns {
            let id = try q.createRun(experimentID: sexp, startTime: Int64(i)).info.runID
            let params = (0..<20).map { KeyValue(key: "param\($0)", value: $0 == 0 ? ["0.01", "0.001", "0.1"][i % 3] : "\(i % 11)") }
            let metrics = (0..<10).map { Metric(key: $0 == 0 ? "loss" : "metric\($0)", value: Double.random(in: 0...1, using: &rng),
                                                     timestamp: 1_700_000_000_000, step: 1) }
            try q.logBatch(runID: id, metrics: metrics, params: params.map { $0.key == "param0" ? KeyValue(key: "lr", value: $0.value) : $0 })
        }
        let filter = Self.searchFilter
        var matched = 0
        var filtered: [Double] = []
        var all: [Double] = []
        for _ in 0..<21 {
            filtered.append(try seconds { matched = try q.searchRuns(experimentIDs: [sexp], filter: filter, maxResults: 1000, orderBy: ["metrics.loss"]).items.count })
            all.append(try seconds { _ = try q.searchRuns(experimentIDs: [sexp], maxResults: 1000, orderBy: ["metrics.loss DESC"]) })
        }
        reportSearch(&out, matched: matched, filtered: filtered, all: all)
        out.add("rss_after_search_mb", Double(residentBytes()) / 1e6, digits: 1)
        out.add("peak_rss_mb", Double(peakResidentBytes()) / 1e6, digits: 1)
        output.emit(out)
    }

    /// The filter of the filtered search.
    static let searchFilter = "metrics.loss < 0.5 and params.lr = '0.01'"

    /// Adds the search figures (medians of the timed rounds, in ms) and the sizes.
    func reportSearch(_ out: inout JSONObject, matched: Int, filtered: [Double], all: [Double]) {
        out.add("search_runs", searchRuns)
        out.add("search_filter", Self.searchFilter)
        out.add("search_matched_first_page", matched)
        out.add("search_ms_p50", median(filtered) * 1000)
        out.add("search_all_ordered_ms_p50", median(all) * 1000)
        out.add("create_runs", createRuns)
    }
}

/// A tracking service over fresh stores in `path` (SQLite metadata, or the database `backendStoreURI` names, + metric
/// store) with the named durability.
func benchService(_ path: String, durability: String, backendStoreURI: String? = nil, poolSize: Int = 8) throws -> TrackingService {
    guard let d = Durability(parsing: durability) else { throw ValidationError("unknown durability '\(durability)'") }
    var config = StoreConfiguration()
    config.wal!.durability = d
    let metrics = try MetricStore(directory: path + "/metrics", configuration: config)
    let meta = try BackendStore.open(uri: backendStoreURI, defaultPath: path + "/metadata.sqlite", defaultArtifactLocation: "mlflow-artifacts:/0",
                                     poolSize: poolSize, now: TrackingService.nowMillis())
    return TrackingService(metadata: meta, metrics: metrics)
}
