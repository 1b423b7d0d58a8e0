import Prometheus
import TallyStore
import TallyTracking

/// The metrics ``ServerMetrics`` reads at each scrape: made once, set from snapshots (a counter is set by resetting
/// it and adding the snapshot's total; scrapes are serialised, and nothing else renders the registry).
struct SnapshotInstruments: Sendable {
    private var counters: [(Counter, @Sendable (Figures) -> Double?)]
    private var gauges: [(Gauge, @Sendable (Figures) -> Double?)]

    /// What one scrape reads.
    struct Figures {
        /// The metric store's activity and memory.
        let store: StoreActivity
        /// The blocking pool's size and load.
        let pool: BlockingPool.Activity
        /// Requests being answered.
        let inFlight: Int
        /// The process, as far as it could be read.
        let process: ProcessFigures
        /// The PostgreSQL backend store's pool and lane (`nil` on SQLite).
        let postgres: PostgresActivity?
        /// The cluster member's state and activity (`nil` for a single server).
        let cluster: ClusterActivity?
        /// Registry webhooks' deliveries.
        let webhooks: WebhookDelivery.Activity
    }

    /// The instruments in `r`; those of a PostgreSQL backend store only when `postgres`, a cluster's only when
    /// `cluster`.
    init(_ r: PrometheusCollectorRegistry, version: String, postgres: Bool, cluster: Bool = false) {
        r.makeGauge(descriptor: .named("tally_build_info", "The server's version and metadata backend (always 1)"),
                    labels: [("version", version), ("metadata_backend", postgres ? "postgresql" : "sqlite")]).set(to: 1)
        func counter(_ name: String, _ help: String, _ read: @escaping @Sendable (Figures) -> Double?) -> (Counter, @Sendable (Figures) -> Double?) {
            (r.makeCounter(descriptor: .named(name, help)), read)
        }
        func gauge(_ name: String, _ help: String, _ read: @escaping @Sendable (Figures) -> Double?) -> (Gauge, @Sendable (Figures) -> Double?) {
            (r.makeGauge(descriptor: .named(name, help)), read)
        }
        counters = [
            counter("tally_store_points_appended_total", "Metric points the store made visible") { Double($0.store.pointsAppended) },
            counter("tally_wal_written_bytes_total", "Bytes of records written to the write-ahead log") { Double($0.store.walBytesWritten) },
            counter("tally_wal_fsyncs_total", "Fsyncs of the write-ahead log: group commits, segment rotations, its directory, close") { Double($0.store.walSyncs) },
            counter("tally_wal_fsync_seconds_total", "Seconds spent in fsyncs of the write-ahead log") { $0.store.walSyncSeconds },
            counter("tally_store_segments_sealed_total", "Segments written by seals") { Double($0.store.segmentsSealed) },
            counter("tally_store_points_sealed_total", "Points moved from memory into segments") { Double($0.store.pointsSealed) },
            counter("tally_store_sealed_bytes_total", "Bytes of segments written by seals") { Double($0.store.sealedBytes) },
            counter("tally_store_compactions_total", "Segments written by compactions") { Double($0.store.compactions) },
            counter("tally_store_segments_compacted_total", "Segments replaced by compactions") { Double($0.store.segmentsCompacted) },
            counter("tally_store_compacted_bytes_total", "Bytes of segments written by compactions") { Double($0.store.compactedBytes) },
            counter("tally_store_maintenance_failures_total", "Seals (and the log trimming after them) that failed after their append had succeeded") {
                Double($0.store.maintenanceFailures)
            },
            counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds") { $0.process.cpuSeconds },
        ]
        let deliveries = "Registry webhook deliveries, by outcome: answered 2xx, or failed (another answer after the retries, no answer, refused, dropped)"
        func outcome(_ result: String, _ read: @escaping @Sendable (Figures) -> Double?) -> (Counter, @Sendable (Figures) -> Double?) {
            (r.makeCounter(descriptor: .named("tally_webhook_deliveries_total", deliveries), labels: [("result", result)]), read)
        }
        counters += [outcome("delivered") { Double($0.webhooks.delivered) }, outcome("failed") { Double($0.webhooks.failed) }]
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
            gauge("process_resident_memory_bytes", "Resident memory size in bytes") { $0.process.residentBytes },
            gauge("process_virtual_memory_bytes", "Virtual memory size in bytes") { $0.process.virtualBytes },
            gauge("process_open_fds", "Number of open file descriptors") { $0.process.openFDs },
            gauge("process_max_fds", "Maximum number of open file descriptors") { $0.process.maxFDs },
            gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds") { $0.process.startTime },
            gauge("process_threads", "Number of OS threads in the process") { $0.process.threads },
            gauge("tally_webhook_deliveries_pending", "Registry webhook deliveries waiting or being sent") { Double($0.webhooks.pending) },
        ]
        if cluster { addCluster(r) }
        guard postgres else { return }
        counters += [
            counter("tally_postgres_pool_timeouts_total", "Calls that failed because no pooled connection came free in time") {
                $0.postgres.map { Double($0.poolTimeouts) }
            },
            counter("tally_postgres_lane_batches_total", "Batches of concurrent writes sent as one statement") { $0.postgres.map { Double($0.laneBatches) } },
            counter("tally_postgres_lane_writes_total", "Writes sent in those batches") { $0.postgres.map { Double($0.laneWrites) } },
            counter("tally_postgres_lane_writes_alone_total", "Writes of the lane sent alone on the pool (a batch refused, or the lane down)") {
                $0.postgres.map { Double($0.laneWritesAlone) }
            },
        ]
        gauges += [
            gauge("tally_postgres_pool_size", "The most connections the pool may hold (--backend-store-pool-size)") { $0.postgres.map { Double($0.poolSize) } },
            gauge("tally_postgres_pool_in_use", "Pooled connections held by a call") { $0.postgres.map { Double($0.poolInUse) } },
            gauge("tally_postgres_pool_idle", "Open pooled connections waiting for a call") { $0.postgres.map { Double($0.poolIdle) } },
        ]
    }

    /// A cluster member's instruments (docs/monitoring.md, "Cluster").
    private mutating func addCluster(_ r: PrometheusCollectorRegistry) {
        func counter(_ name: String, _ help: String, _ read: @escaping @Sendable (ClusterActivity) -> Double) {
            counters.append((r.makeCounter(descriptor: .named(name, help)), { $0.cluster.map(read) }))
        }
        func gauge(_ name: String, _ help: String, _ read: @escaping @Sendable (ClusterActivity) -> Double) {
            gauges.append((r.makeGauge(descriptor: .named(name, help)), { $0.cluster.map(read) }))
        }
        counter("tally_cluster_log_records_total", "Records this server appended to the shared log") { Double($0.logRecords) }
        counter("tally_cluster_log_bytes_total", "Bytes of the records this server appended to the shared log") { Double($0.logBytes) }
        counter("tally_cluster_seals_total", "Seals that recorded a run's new sealed set in the metrics destination") { Double($0.seals) }
        counter("tally_cluster_seal_failures_total", "Seals that failed (retried with backoff; the records stay in the shared log)") {
            Double($0.sealFailures)
        }
        gauge("tally_cluster_runs_owned", "Runs whose lease this server holds (it writes them)") { Double($0.runsOwned) }
        gauge("tally_cluster_run_copies", "Runs with a local copy holding points on this server (owned, or read lately)") { Double($0.runCopies) }
        gauge("tally_cluster_run_copy_bytes", "Bytes the local copies of runs take") { Double($0.copyBytes) }
        gauge("tally_cluster_unsealed_bytes", "Bytes this server wrote to the shared log for runs it owns and has not sealed yet") { Double($0.unsealedBytes) }
        gauge("tally_cluster_oldest_unsealed_seconds", "Age of the oldest record this server has not sealed yet (0: none)") {
            $0.oldestUnsealedSeconds
        }
        gauge("tally_cluster_heartbeat_failing", "1 while this server's heartbeat fails (its leases lapse), else 0") { $0.heartbeatFailing ? 1 : 0 }
        gauge("tally_cluster_sealing_failing", "1 while the last seal of a run this server owns failed (until one succeeds), else 0") { $0.sealingFailing ? 1 : 0 }
    }

    /// Sets every instrument from one scrape's figures; one a figure is missing for (`nil`, or not a finite number
    /// a counter may hold) keeps its last value.
    func update(_ f: Figures) {
        for (c, read) in counters {
            guard let v = read(f), v.isFinite, v >= 0 else { continue }
            c.reset()
            // Whole numbers as integers (rendered `12`, not `12.0`).
            if v == v.rounded(), v < 0x1p53 { c.increment(by: Int64(v)) } else { c.increment(by: v) }
        }
        for (g, read) in gauges {
            if let v = read(f), v.isFinite { g.set(v) }
        }
    }
}

extension MetricNameDescriptor {
    /// A metric's whole name and its help line (the name is not put together from parts here).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
