import ArgumentParser
import Foundation
import TallyTracking

/// `tally bench http`: a load generator against `tally server` over loopback (a child server it starts, or
/// `--port` of a running one): MLflow log-batch, native JSON and binary ingest, compare and bulk-interval queries.
struct HTTPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Measure the server over HTTP: ingest through every API, compare and bulk-interval (prints JSON with --json)."
    )

    @Option(help: "Concurrent connections (one thread and one run each).") var connections = 4
    @Option(help: "Points each connection sends through each ingest API.") var points = 1_000_000
    @Option(help: "Metric durability of the started server: sync, batch:N or none.") var durability = "sync"
    @Option(help: "The started server's --metric-memory-mb (default: the server's).") var metricMemoryMb: Int?
    @Option(help: "Runs in the compare query.") var compareRuns = 100
    @Option(help: "Points per run compared.") var comparePoints = 1_000_000
    @Option(help: "Buckets of the compare query.") var buckets = 1000
    @Option(help: "Port of a running server on 127.0.0.1 (default: start one).") var port: Int?
    @Option(help: "Ports of several running servers of one cluster, comma-separated: connection c talks to the c-th (round robin), so each run is written through one server.")
    var ports: String?
    @Flag(help: "With --ports: each request of a connection goes to the next server in turn (a load balancer without affinity: most writes are forwarded to their run's owner).")
    var spread = false
    @Flag(help: "Measure the three ingest APIs only (no compare or chart queries).") var ingestOnly = false
    @Flag(help: "Measure wide runs instead (benchmark suites: many keys, few points each) through log-batch.") var wide = false
    @Option(help: "Wide mode: runs.") var wideRuns = 200
    @Option(help: "Wide mode: metric keys per run.") var wideKeys = 2_000
    @Option(help: "Wide mode: points per key.") var widePointsPerKey = 1
    @Flag(help: "Measure many writers and arrival orders instead: log-batch requests of 1,000 points of one key, one client in order, reversed and shuffled, --connections clients into one run (interleaved step ranges, and as ranks logging the same steps) and into their own runs.")
    var writers = false
    @Option(help: "Writers mode: log-batch requests per workload.") var writerBatches = 300
    @Option(help: "The tally binary to start as the server (default: this one; an earlier build gives a before/after in one run).")
    var serverExe: String?
    @Option(help: "Writers mode: only the workloads whose name contains this.") var writerWorkload: String?
    @Flag(help: "Start the server with --auth basic and send every request as a user granted EDIT (the access check's cost).")
    var auth = false
    @OptionGroup var output: BenchOutput

    static let keys = (0..<10).map { $0 == 0 ? "loss" : "metric_\($0)" }
    static let t0: Int64 = 1_700_000_000_000

    /// A training-like value, float32-valued as `loss.item()` gives it.
    static func value(_ key: Int, _ step: Int) -> Double {
        let noise = Double((step &* 2_654_435_761 &+ key &* 97) % 1000) / 1000 - 0.5
        return Double(Float(2 * exp(-Double(step) / 50_000) + 0.05 * noise + 0.1 * Double(key)))
    }

    func run() throws {
        if wide { return try runWide() }
        if writers { return try runWriters() }
        let root = output.scratch("http")
        defer { system_rm(root) }
        let cluster = try ports.map { list in
            try list.split(separator: ",").map { p -> Int in
                guard let n = Int(p.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--ports: '\(p)' is not a port") }
                return n
            }
        }
        let given = cluster?.first ?? self.port
        let server = given == nil ? try ChildServer(dataDirectory: root + "/data", durability: durability, metricMemoryMB: metricMemoryMb, auth: auth,
                                                                    executable: serverExe) : nil
        defer { server?.stop() }
        let port = given ?? server!.port
        let servers = cluster ?? [port]
        if auth, server != nil { try Self.signInAsEditor(port: port) }
        var out = JSONObject()
        out.add("connections", connections)
        out.add("auth", auth)
        out.add("durability", server == nil ? "server's" : durability)
        out.add("servers", servers.count)
        out.add("spread", spread)

        // Each ingest API's rate, and with a child server its points per second of server CPU (the client shares the
        // cores: steadier than the rate for comparing two server builds or settings).
        func report(_ name: String, _ r: (rate: Double, cpu: Double?)) {
            out.add("\(name)_points_per_s", r.rate, digits: 0)
            if let cpu = r.cpu { out.add("\(name)_points_per_server_cpu_s", cpu, digits: 0) }
        }
        let pid = server.map { "\($0.pid)" }
        // 1. MLflow log-batch: the client's body, 1,000 metrics (10 keys × 100 steps) per request.
        report("mlflow_log_batch", try ingest(ports: servers, pid: pid, perRequest: 1000, contentType: "application/json",
                                              path: { _ in "/api/2.0/mlflow/runs/log-batch" }) {
            run, step, n in Array(Self.mlflowBody(run: run, step: step, steps: n / Self.keys.count).utf8)
        })

        // 2. Native JSON columns, 10,000 points (10 keys × 1,000 steps) per request.
        report("native_json", try ingest(ports: servers, pid: pid, perRequest: 10_000, contentType: "application/json",
                                         path: { "/api/tally/v1/runs/\($0)/metrics" }) {
            _, step, n in Array(Self.nativeJSON(step: step, steps: n / Self.keys.count).utf8)
        })

        // 3. Native binary columns, 10,000 points per request.
        report("native_binary", try ingest(ports: servers, pid: pid, perRequest: 10_000, contentType: "application/x-tally-columns",
                                           path: { "/api/tally/v1/runs/\($0)/metrics" }) { _, step, n in
            Self.nativeBinary(step: step, steps: n / Self.keys.count, keys: Self.keys)
        })
        if ingestOnly { return output.emit(out) }

        // 4. Compare: `compareRuns` runs of `comparePoints` points of "loss", loaded in 100,000-point batches.
        let runs = try (0..<compareRuns).map { _ in try Self.createRun(port: port) }
        let loadSeconds = try seconds {
            try drive(connections, port: port) { c, conn in
                for (r, id) in runs.enumerated() where r % connections == c {
                    for step in stride(from: 0, to: comparePoints, by: 100_000) {
                        let body = Self.nativeBinary(step: step, steps: min(100_000, comparePoints - step), keys: ["loss"])
                        try Self.check(conn.request("POST", "/api/tally/v1/runs/\(id)/metrics", body: body, contentType: "application/x-tally-columns"))
                    }
                }
            }
        }
        out.add("compare_load_points_per_s", Double(compareRuns * comparePoints) / loadSeconds, digits: 0)
        let conn = try BlockingHTTP(port: port)
        func query(_ format: String) -> [UInt8] {
            Array(("{\"run_ids\": [" + runs.map { "\"\($0)\"" }.joined(separator: ", ") + "], \"metric_keys\": [\"loss\"], "
                + "\"buckets\": \(buckets), \"mode\": \"m4\", \"format\": \"\(format)\"}").utf8)
        }
        out.add("compare_runs", compareRuns)
        out.add("compare_points_per_run", comparePoints)
        out.add("compare_buckets", buckets)
        // The UI's form (binary curves) and the JSON form, 11 queries each; the first binary one is the coldest.
        for format in ["binary", "json"] {
            var times: [Double] = []
            var answer: [UInt8] = []
            let body = query(format)
            for _ in 0..<11 {
                times.append(try seconds { answer = try Self.check(conn.request("POST", "/api/tally/v1/compare", body: body)) })
            }
            let suffix = format == "json" ? "_json" : ""
            if format == "binary" { out.add("compare_first_ms", times[0] * 1000) }
            out.add("compare_100_runs\(suffix)_ms_p50", median(Array(times.dropFirst())) * 1000)
            out.add("compare\(suffix)_response_bytes", answer.count)
        }

        // 5. MLflow's chart query over one of those runs.
        var interval: [Double] = []
        let path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=\(runs[0])&metric_key=loss&max_results=320"
        for _ in 0..<21 { interval.append(try seconds { _ = try Self.check(conn.request("GET", path)) }) }
        out.add("bulk_interval_points", comparePoints)
        out.add("bulk_interval_ms_p50", median(interval) * 1000)
        output.emit(out)
    }

    /// Points/s of one ingest API (and per second of server CPU, given the server's pid): each connection posts bodies
    /// for its own run, built before the clock starts.
    func ingest(ports: [Int], pid: String?, perRequest: Int, contentType: String, path: (String) -> String,
                body: (String, Int, Int) -> [UInt8]) throws -> (rate: Double, cpu: Double?) {
        let runs = try (0..<connections).map { _ in try Self.createRun(port: ports[0]) }
        let requests = max(1, points / perRequest)
        let bodies = runs.map { run in (0..<requests).map { r in body(run, r * perRequest / Self.keys.count, perRequest) } }
        let paths = runs.map(path)
        let cpuBefore = pid.map { cpuSeconds(of: $0) }
        let spread = self.spread
        let t = try seconds {
            try onThreads(connections) { c in
                // Connection c's server, or (spread) one connection per server used in turn.
                let conns = try (spread ? ports.indices.map { (c + $0) % ports.count } : [c % ports.count]).map { try BlockingHTTP(port: ports[$0]) }
                for (i, b) in bodies[c].enumerated() {
                    try Self.check(conns[i % conns.count].request("POST", paths[c], body: b, contentType: contentType))
                }
            }
        }
        let points = Double(connections * requests * perRequest)
        let cpu = pid.map { cpuSeconds(of: $0) - cpuBefore! }
        return (points / t, cpu.map { $0 > 0 ? points / $0 : 0 })
    }

    /// Runs `work(connection index, connection)` on `n` threads at once, each with its own connection.
    func drive(_ n: Int, port: Int, _ work: @escaping @Sendable (Int, BlockingHTTP) throws -> Void) throws {
        try onThreads(n) { i in try work(i, try BlockingHTTP(port: port)) }
    }

    /// On a server started with `--auth basic`: creates a user with EDIT on the Default experiment and makes every
    /// later connection of this process send its credentials (a non-admin, so every request is checked in full).
    static func signInAsEditor(port: Int) throws {
        let admin = try BlockingHTTP(port: port)
        admin.authorization = "Basic " + Data("admin:\(ChildServer.adminPassword)".utf8).base64EncodedString()
        let password = "bench-editor-password"
        try check(admin.request("POST", "/api/2.0/mlflow/users/create", body: Array(#"{"username": "bench", "password": "\#(password)"}"#.utf8)))
        try check(admin.request("POST", "/api/3.0/mlflow/users/permissions/grant",
                                body: Array(#"{"username": "bench", "resource_type": "experiment", "resource_id": "0", "permission": "EDIT"}"#.utf8)))
        setenv("MLFLOW_TRACKING_USERNAME", "bench", 1)
        setenv("MLFLOW_TRACKING_PASSWORD", password, 1)
        unsetenv("MLFLOW_TRACKING_TOKEN")
    }

    @discardableResult
    static func check(_ r: (Int, [UInt8])) throws -> [UInt8] {
        guard r.0 == 200 else { throw BlockingHTTP.Failure(description: "HTTP \(r.0): \(String(decoding: r.1.prefix(300), as: UTF8.self))") }
        return r.1
    }

    static func createRun(port: Int) throws -> String {
        let body = try check(BlockingHTTP(port: port).request("POST", "/api/2.0/mlflow/runs/create", body: Array(#"{"experiment_id": "0"}"#.utf8)))
        let text = String(decoding: body, as: UTF8.self)
        guard let r = text.range(of: "\"run_id\": \"") else { throw BlockingHTTP.Failure(description: "no run id in \(text)") }
        return String(text[r.upperBound...].prefix(32))
    }

    static func mlflowBody(run: String, step: Int, steps: Int) -> String {
        var s = "{\"run_id\": \"\(run)\", \"metrics\": ["
        var first = true
        for k in 0..<keys.count {
            for i in step..<(step + steps) {
                s += (first ? "" : ", ") + "{\"key\": \"\(keys[k])\", \"value\": \(value(k, i)), \"timestamp\": \(t0 + Int64(i)), \"step\": \(i)}"
                first = false
            }
        }
        return s + "]}"
    }

    static func nativeJSON(step: Int, steps: Int) -> String {
        let range = step..<(step + steps)
        let stepText = range.map(String.init).joined(separator: ", ")
        let tsText = range.map { String(t0 + Int64($0)) }.joined(separator: ", ")
        let series = keys.indices.map { k in
            "{\"key\": \"\(keys[k])\", \"steps\": [\(stepText)], \"timestamps\": [\(tsText)], \"values\": ["
                + range.map { "\(value(k, $0))" }.joined(separator: ", ") + "]}"
        }
        return "{\"metrics\": [" + series.joined(separator: ", ") + "]}"
    }

    static func nativeBinary(step: Int, steps: Int, keys: [String]) -> [UInt8] {
        var payload: [UInt8] = [0, 0]  // no batch id
        payload.reserveCapacity(keys.count * (steps * 24 + 64))
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { payload.append(contentsOf: $0) } }
        for (k, key) in keys.enumerated() {
            le(UInt16(key.utf8.count))
            payload += Array(key.utf8)
            payload += [8, 0]
            le(UInt32(steps))
            for i in step..<(step + steps) { le(Int64(i)) }
            for i in step..<(step + steps) { le(t0 + Int64(i)) }
            for i in step..<(step + steps) { le(value(k, i).bitPattern) }
        }
        var body = Array("TLYC".utf8) + [1, 0, 0, 0]
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { body += $0 }
        withUnsafeBytes(of: UInt32(keys.count).littleEndian) { body += $0 }
        return body + payload
    }

    /// The wide workload of `tally bench wide` through MLflow's log-batch against a child server: ingest rate
    /// (bodies serialised beforehand), server RSS, search page and run latency over HTTP, then bytes on disk after a
    /// clean shutdown.
    func runWide() throws {
        let root = output.scratch("http-wide")
        defer { system_rm(root) }
        let server = try ChildServer(dataDirectory: root + "/data", durability: durability, metricMemoryMB: metricMemoryMb, executable: serverExe)
        var stopped = false
        defer { if !stopped { server.stop() } }
        var out = JSONObject()
        out.add("connections", connections)
        out.add("runs", wideRuns)
        out.add("keys", wideKeys)
        out.add("points_per_key", widePointsPerKey)
        let ids = try (0..<wideRuns).map { _ in try Self.createRun(port: server.port) }
        var bodies: [[[UInt8]]] = Array(repeating: [], count: connections)
        var total = 0
        for (n, req) in WideBench.requests(runs: wideRuns, keys: wideKeys, pointsPerKey: widePointsPerKey, batch: 1000).enumerated() {
            let metrics = req.metrics.map { m in
                "{\"key\": \"\(m.key)\", \"value\": \(m.value), \"timestamp\": \(m.timestamp), \"step\": \(m.step)}"
            }
            bodies[n % connections].append(Array(("{\"run_id\": \"\(ids[req.run])\", \"metrics\": [" + metrics.joined(separator: ", ") + "]}").utf8))
            total += req.metrics.count
        }
        let work = bodies
        let cpuBefore = cpuSeconds(of: "\(server.pid)")
        let t = try seconds {
            try drive(connections, port: server.port) { c, conn in
                for b in work[c] { try Self.check(conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body: b)) }
            }
        }
        out.add("points", total)
        out.add("ingest_points_per_s", Double(total) / t, digits: 0)
        // The client shares this machine's cores: the server's own CPU time says what one of its cores ingests.
        let cpu = cpuSeconds(of: "\(server.pid)") - cpuBefore
        out.add("ingest_server_cpu_s", cpu, digits: 2)
        out.add("ingest_points_per_server_cpu_s", cpu > 0 ? Double(total) / cpu : 0, digits: 0)
        out.add("server_rss_after_ingest_mb", Double(residentBytes(of: "\(server.pid)")) / 1e6, digits: 1)
        let conn = try BlockingHTTP(port: server.port)
        let probe = WideBench.key(wideKeys / 2)
        let search = Array(("{\"experiment_ids\": [\"0\"], \"filter\": \"metrics.`\(probe)` > 0.5\", \"max_results\": 100, "
            + "\"order_by\": [\"metrics.`\(probe)` DESC\"]}").utf8)
        var page: [Double] = [], get: [Double] = []
        for _ in 0..<11 { page.append(try seconds { _ = try Self.check(conn.request("POST", "/api/2.0/mlflow/runs/search", body: search)) }) }
        for i in 0..<21 { get.append(try seconds { _ = try Self.check(conn.request("GET", "/api/2.0/mlflow/runs/get?run_id=\(ids[(i * 7) % ids.count])")) }) }
        let board = Array(("{\"run_ids\": [" + ids.prefix(100).map { "\"\($0)\"" }.joined(separator: ", ") + "]}").utf8)
        var scoreboard: [Double] = []
        for _ in 0..<11 { scoreboard.append(try seconds { _ = try Self.check(conn.request("POST", "/api/tally/v1/scoreboard", body: board)) }) }
        out.add("search_page_ms_p50", median(page) * 1000)
        out.add("get_run_ms_p50", median(get) * 1000)
        out.add("scoreboard_runs", min(100, ids.count))
        out.add("scoreboard_ms_p50", median(scoreboard) * 1000)
        out.add("server_rss_after_reads_mb", Double(residentBytes(of: "\(server.pid)")) / 1e6, digits: 1)
        server.stop()
        stopped = true
        let metricBytes = treeBytes(root + "/data/metrics")
        let metaBytes = ["", "-wal", "-shm"].reduce(0) { $0 + treeBytes(root + "/data/metadata.sqlite" + $1) }
        out.add("metric_store_bytes_per_point", Double(metricBytes) / Double(total), digits: 2)
        out.add("metadata_bytes_per_point", Double(metaBytes) / Double(total), digits: 2)
        out.add("bytes_per_point", Double(metricBytes + metaBytes) / Double(total), digits: 2)
        output.emit(out)
    }
}
