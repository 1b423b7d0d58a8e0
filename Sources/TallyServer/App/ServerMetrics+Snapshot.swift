import Prometheus
import TallyStore
import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The metrics ``ServerMetrics`` reads at each scrape: made once, set from snapshots (a counter is set by resetting
/// it and adding the snapshot's total; scrapes are serialised, and nothing else renders the registry).
struct SnapshotInstruments: Sendable {
    private var counters: [(Counter, @Sendable (Figures) -> Double)]
    private var gauges: [(Gauge, @Sendable (Figures) -> Double)]

    /// What one scrape reads.
    struct Figures {
        let store: StoreActivity
        let pool: BlockingPool.Activity
        let inFlight: Int
        let process: ProcessFigures?
        /// The PostgreSQL backend store's pool and lane (`nil` on SQLite).
        let postgres: PostgresActivity?
    }

    /// The instruments in `r`; those of a PostgreSQL backend store only when `postgres`.
    init(_ r: PrometheusCollectorRegistry, version: String, postgres: Bool) {
        r.makeGauge(descriptor: .named("tally_build_info", "The server's version and metadata backend (always 1)"),
                    labels: [("version", version), ("metadata_backend", postgres ? "postgresql" : "sqlite")]).set(to: 1)
        func counter(_ name: String, _ help: String, _ read: @escaping @Sendable (Figures) -> Double) -> (Counter, @Sendable (Figures) -> Double) {
            (r.makeCounter(descriptor: .named(name, help)), read)
        }
        func gauge(_ name: String, _ help: String, _ read: @escaping @Sendable (Figures) -> Double) -> (Gauge, @Sendable (Figures) -> Double) {
            (r.makeGauge(descriptor: .named(name, help)), read)
        }
        counters = [
            counter("tally_store_points_appended_total", "Metric points the store made visible") { Double($0.store.pointsAppended) },
            counter("tally_wal_written_bytes_total", "Bytes of records written to the write-ahead log") { Double($0.store.walBytesWritten) },
            counter("tally_wal_fsyncs_total", "Fsyncs of the write-ahead log (one per group commit)") { Double($0.store.walSyncs) },
            counter("tally_wal_fsync_seconds_total", "Seconds spent in fsyncs of the write-ahead log") { $0.store.walSyncSeconds },
            counter("tally_store_segments_sealed_total", "Segments written by seals") { Double($0.store.segmentsSealed) },
            counter("tally_store_points_sealed_total", "Points moved from memory into segments") { Double($0.store.pointsSealed) },
            counter("tally_store_sealed_bytes_total", "Bytes of segments written by seals") { Double($0.store.sealedBytes) },
            counter("tally_store_compactions_total", "Segments written by compactions") { Double($0.store.compactions) },
            counter("tally_store_segments_compacted_total", "Segments replaced by compactions") { Double($0.store.segmentsCompacted) },
            counter("tally_store_compacted_bytes_total", "Bytes of segments written by compactions") { Double($0.store.compactedBytes) },
            counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds") { $0.process?.cpuSeconds ?? 0 },
        ]
        gauges = [
            gauge("tally_store_runs", "Runs the metric store holds") { Double($0.store.runs) },
            gauge("tally_store_head_bytes", "Memory held by unsealed points") { Double($0.store.headBytes) },
            gauge("tally_store_head_budget_bytes", "Memory unsealed points may take before appends seal them (--metric-memory-mb's share)") {
                Double($0.store.headBudgetBytes)
            },
            gauge("tally_store_index_bytes", "Memory held by open segment indexes") { Double($0.store.indexBytes) },
            gauge("tally_blocking_threads", "Threads for blocking store work") { Double($0.pool.threads) },
            gauge("tally_blocking_tasks", "Blocking store work queued or running") { Double($0.pool.tasks) },
            gauge("tally_http_requests_in_flight", "Requests being answered") { Double($0.inFlight) },
            gauge("process_resident_memory_bytes", "Resident memory size in bytes") { $0.process?.residentBytes ?? 0 },
            gauge("process_virtual_memory_bytes", "Virtual memory size in bytes") { $0.process?.virtualBytes ?? 0 },
            gauge("process_open_fds", "Number of open file descriptors") { $0.process?.openFDs ?? 0 },
            gauge("process_max_fds", "Maximum number of open file descriptors") { $0.process?.maxFDs ?? 0 },
            gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds") { $0.process?.startTime ?? 0 },
            gauge("process_threads", "Number of OS threads in the process") { $0.process?.threads ?? 0 },
        ]
        guard postgres else { return }
        counters += [
            counter("tally_postgres_pool_timeouts_total", "Calls that failed because no pooled connection came free in time") {
                Double($0.postgres?.poolTimeouts ?? 0)
            },
            counter("tally_postgres_lane_batches_total", "Batches of concurrent writes sent as one statement") { Double($0.postgres?.laneBatches ?? 0) },
            counter("tally_postgres_lane_writes_total", "Writes sent in those batches") { Double($0.postgres?.laneWrites ?? 0) },
            counter("tally_postgres_lane_writes_alone_total", "Writes of the lane sent alone on the pool (a batch refused, or the lane down)") {
                Double($0.postgres?.laneWritesAlone ?? 0)
            },
        ]
        gauges += [
            gauge("tally_postgres_pool_size", "The most connections the pool may hold (--backend-store-pool-size)") { Double($0.postgres?.poolSize ?? 0) },
            gauge("tally_postgres_pool_in_use", "Pooled connections held by a call") { Double($0.postgres?.poolInUse ?? 0) },
            gauge("tally_postgres_pool_idle", "Open pooled connections waiting for a call") { Double($0.postgres?.poolIdle ?? 0) },
        ]
    }

    /// Sets every instrument from one scrape's figures.
    func update(_ f: Figures) {
        for (c, read) in counters {
            let v = read(f)
            c.reset()
            // Whole numbers as integers (rendered `12`, not `12.0`).
            if v == v.rounded(), v < 0x1p53 { c.increment(by: Int64(v)) } else { c.increment(by: v) }
        }
        for (g, read) in gauges { g.set(read(f)) }
    }
}

/// The process's figures as the Prometheus client libraries report them, from `/proc` (`nil` where there is none).
struct ProcessFigures {
    var cpuSeconds = 0.0, residentBytes = 0.0, virtualBytes = 0.0, startTime = 0.0, threads = 0.0
    var openFDs = 0.0, maxFDs = 0.0

    /// Reads `/proc/self` now.
    static func read() -> ProcessFigures? {
        #if os(Linux)
        guard let stat = text("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // The fields after the command's closing parenthesis, from field 3 (state) on.
        let f = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double { n - 3 < f.count ? Double(f[n - 3]) ?? 0 : 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK))), page = Double(sysconf(Int32(_SC_PAGESIZE)))
        var p = ProcessFigures()
        p.cpuSeconds = (field(14) + field(15)) / ticks
        p.threads = field(20)
        p.virtualBytes = field(23)
        p.residentBytes = field(24) * page
        if let boot = text("/proc/stat")?.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }), let b = Double(boot.dropFirst(6)) {
            p.startTime = b + field(22) / ticks
        }
        if let dir = opendir("/proc/self/fd") {
            var n = 0
            while let e = readdir(dir) { if e.pointee.d_name.0 != 0x2E { n += 1 } }  // not "." or ".."
            closedir(dir)
            p.openFDs = Double(n - 1)  // less the descriptor listing them
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { p.maxFDs = Double(limit.rlim_cur) }
        return p
        #else
        return nil
        #endif
    }

    #if os(Linux)
    /// A small file's text (`/proc` files report no size: read until the end).
    private static func text(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    #endif
}

extension MetricNameDescriptor {
    /// A metric's whole name and its help line (the name is not put together from parts here).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
