import Foundation
import Synchronization
import TallyWorkloads

/// `tally bench http --writers`: many writers and arrival orders through MLflow's log-batch (1,000 points of one key
/// per request), as distributed training, async loggers and backfills send them.
extension HTTPBench {
    /// One many-writers workload: who sends which batch, into which run.
    struct WritersWorkload {
        /// Name in the JSON output.
        var name: String
        /// Client threads.
        var clients: Int
        /// Whether each client writes into its own run (else all into one).
        var ownRuns: Bool
        /// Per client, the batches it sends in order: (run slot, first step, value offset).
        var plan: [[(run: Int, step: Int, rank: Int)]]
    }

    /// The workloads: one client in step order, reversed and shuffled; `connections` clients writing interleaved step
    /// ranges into one run, the same into runs of their own, and as ranks (every client the same steps, its own values).
    func writersWorkloads() -> [WritersWorkload] {
        let n = writerBatches
        var rng = SplitMix64(seed: 42)
        let inOrder = Array(0..<n)
        var shuffled = inOrder
        for i in stride(from: n - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let c = connections
        func interleaved(ownRuns: Bool) -> [[(run: Int, step: Int, rank: Int)]] {
            (0..<c).map { k in stride(from: k, to: n, by: c).map { (ownRuns ? k : 0, $0 * Self.writerBatchPoints, 0) } }
        }
        return [
            WritersWorkload(name: "one_client_in_order", clients: 1, ownRuns: false, plan: [inOrder.map { (0, $0 * Self.writerBatchPoints, 0) }]),
            WritersWorkload(name: "one_client_reversed", clients: 1, ownRuns: false, plan: [inOrder.reversed().map { (0, $0 * Self.writerBatchPoints, 0) }]),
            WritersWorkload(name: "one_client_shuffled", clients: 1, ownRuns: false, plan: [shuffled.map { (0, $0 * Self.writerBatchPoints, 0) }]),
            WritersWorkload(name: "\(c)_clients_one_run_interleaved", clients: c, ownRuns: false, plan: interleaved(ownRuns: false)),
            WritersWorkload(name: "\(c)_clients_own_runs", clients: c, ownRuns: true, plan: interleaved(ownRuns: true)),
            WritersWorkload(name: "\(c)_ranks_one_run", clients: c, ownRuns: false,
                            plan: (0..<c).map { k in (0..<max(1, n / c)).map { (0, $0 * Self.writerBatchPoints, k) } }),
        ]
    }

    /// Points per log-batch request of the writers mode (MLflow's limit per request).
    static let writerBatchPoints = 1000

    /// Runs every workload against one child server (a fresh run or runs each), reporting points/s, request latency
    /// percentiles and the server's RSS after each.
    func runWriters() throws {
        let root = output.scratch("http-writers")
        defer { system_rm(root) }
        let server = try ChildServer(dataDirectory: root + "/data", durability: durability, metricMemoryMB: metricMemoryMb, executable: serverExe)
        defer { server.stop() }
        var out = JSONObject()
        out.add("connections", connections)
        out.add("batches", writerBatches)
        out.add("points_per_batch", Self.writerBatchPoints)
        out.add("durability", durability)
        for w in writersWorkloads() {
            if let only = writerWorkload, !w.name.contains(only) { continue }
            let runs = try (0..<(w.ownRuns ? w.clients : 1)).map { _ in try Self.createRun(port: server.port) }
            let bodies = w.plan.map { batches in
                batches.map { b in Array(Self.writerBody(run: runs[b.run], step: b.step, rank: b.rank).utf8) }
            }
            let latencies = Latencies()
            let refusals = Atomic<Int>(0)
            let t = try seconds {
                try drive(w.clients, port: server.port) { c, conn in
                    for body in bodies[c] {
                        // A 429 (memory short) is retried after its Retry-After, as the MLflow client does; the
                        // latency is what the caller sees, retries included.
                        let start = ContinuousClock.now
                        var answer = try conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body: body)
                        while answer.0 == 429 {
                            refusals.wrappingAdd(1, ordering: .relaxed)
                            Thread.sleep(forTimeInterval: 1)
                            answer = try conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body: body)
                        }
                        try Self.check(answer)
                        latencies.add(ContinuousClock.now - start)
                    }
                }
            }
            let points = bodies.reduce(0) { $0 + $1.count } * Self.writerBatchPoints
            var o = JSONObject()
            o.add("clients", w.clients)
            o.add("points", points)
            o.add("points_per_s", Double(points) / t, digits: 0)
            o.add("p50_ms", latencies.percentile(0.5))
            o.add("p99_ms", latencies.percentile(0.99))
            o.add("max_ms", latencies.percentile(1))
            o.add("refused_429", refusals.load(ordering: .relaxed))
            o.add("server_rss_mb", Double(residentBytes(of: "\(server.pid)")) / 1e6, digits: 1)
            // Every point is stored exactly once (ranks: one per rank and step).
            let stored = try Self.storedPoints(port: server.port, runs: runs)
            o.add("points_stored", stored)
            guard stored == points else {
                throw BlockingHTTP.Failure(description: "\(w.name): \(points) points sent, \(stored) stored")
            }
            out.add(w.name, object: o)
        }
        output.emit(out)
    }

    /// A log-batch body of `writerBatchPoints` points of "loss" from `step` on; `rank` shifts the values.
    static func writerBody(run: String, step: Int, rank: Int) -> String {
        var s = "{\"run_id\": \"\(run)\", \"metrics\": ["
        for i in step..<(step + writerBatchPoints) {
            s += (i == step ? "" : ", ") + "{\"key\": \"loss\", \"value\": \(value(rank, i)), \"timestamp\": \(t0 + Int64(i)), \"step\": \(i)}"
        }
        return s + "]}"
    }

    /// Points of "loss" stored in `runs`, counted by the compare API's summaries (every point, NaN or not).
    static func storedPoints(port: Int, runs: [String]) throws -> Int {
        let conn = try BlockingHTTP(port: port)
        let query = "{\"run_ids\": [" + runs.map { "\"\($0)\"" }.joined(separator: ", ") + "], \"metric_keys\": [\"loss\"], \"buckets\": 1}"
        let text = String(decoding: try check(conn.request("POST", "/api/tally/v1/compare", body: Array(query.utf8))), as: UTF8.self)
        var total = 0
        var rest = text[...]
        while let r = rest.range(of: "\"count\": ") {
            total += Int(rest[r.upperBound...].prefix { $0.isNumber }) ?? 0
            rest = rest[r.upperBound...]
        }
        return total
    }
}
