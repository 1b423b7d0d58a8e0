import ArgumentParser
import Foundation
import Synchronization
import TallyStore

/// `tally bench tracking --url …`: the same workload over MLflow's REST API against running servers — Tally or a real
/// `mlflow server`, one or several sharing a database (clients are spread over the URLs round-robin) — so both are
/// measured by one load generator.
extension TrackingBench {
    /// One running server: host and port of an `http://host:port` URL.
    struct Endpoint: Sendable {
        var host: String
        var port: Int

        init(_ url: String) throws {
            guard url.hasPrefix("http://"), let authority = url.dropFirst(7).split(separator: "/").first,
                  let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) else {
                throw ValidationError("--url takes http://HOST:PORT, got '\(url)'")
            }
            host = String(authority[..<colon])
            self.port = port
        }

        func connect() throws -> BlockingHTTP { try BlockingHTTP(host: host, port: port) }
    }

    func runHTTP() throws {
        let endpoints = try url.map(Endpoint.init)
        var out = JSONObject()
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        // A connection to the first server per phase (servers close connections left idle for a few seconds).
        var first = try endpoints[0].connect()
        out.add("servers", endpoints.count)
        out.add("clients", clients)

        // Creation rate: create, 5 × log-parameter, 3 × log-metric, update(FINISHED), per run, as in-process.
        let exp = try Self.createExperiment(first, "bench-\(tag)")
        let perClient = max(1, createRuns / clients)
        let createLatency = Latencies()
        let t = try seconds {
            try onThreads(clients) { c in
                let h = try endpoints[c % endpoints.count].connect()
                for i in 0..<perClient {
                    let start = ContinuousClock.now
                    let id = try Self.createRun(h, exp, startTime: 1_700_000_000_000)
                    for p in 0..<5 {
                        try Self.post(h, "runs/log-parameter", #"{"run_id":"\#(id)","key":"p\#(p)","value":"\#((i + c) % 7)"}"#)
                    }
                    for m in 0..<3 {
                        try Self.post(h, "runs/log-metric",
                                      #"{"run_id":"\#(id)","key":"m\#(m)","value":\#(Double(i) / 10),"timestamp":1700000000000,"step":0}"#)
                    }
                    try Self.post(h, "runs/update", #"{"run_id":"\#(id)","status":"FINISHED","end_time":1700000001000}"#)
                    createLatency.add(ContinuousClock.now - start)
                }
            }
        }
        out.add("create_runs_per_s", Double(perClient * clients) / t, digits: 0)
        out.add("create_run_ms_p50", createLatency.percentile(0.5), digits: 2)
        out.add("create_run_ms_p99", createLatency.percentile(0.99), digits: 2)

        // Latest-value updates: each client logs batches of 10 keys at one step each into a run of its own.
        let batchLatency = Latencies()
        first = try endpoints[0].connect()
        let runs = try (0..<clients).map { _ in try Self.createRun(first, exp, startTime: 1_700_000_000_000) }
        let bt = try seconds {
            try onThreads(clients) { c in
                let h = try endpoints[c % endpoints.count].connect()
                for step in 0..<latestBatches {
                    let metrics = (0..<10).map { k in
                        #"{"key":"k\#(k)","value":\#(Double(step * 10 + k) / 1000),"timestamp":\#(1_700_000_000_000 + step),"step":\#(step)}"#
                    }.joined(separator: ",")
                    let start = ContinuousClock.now
                    try Self.post(h, "runs/log-batch", #"{"run_id":"\#(runs[c])","metrics":[\#(metrics)]}"#)
                    batchLatency.add(ContinuousClock.now - start)
                }
            }
        }
        out.add("log_batches_per_s", Double(latestBatches * clients) / bt, digits: 0)
        out.add("log_batch_ms_p50", batchLatency.percentile(0.5), digits: 2)
        out.add("log_batch_ms_p99", batchLatency.percentile(0.99), digits: 2)

        // Search: runs with 20 params and 10 metrics each (create + one log-batch), created by the clients.
        first = try endpoints[0].connect()
        let sexp = try Self.createExperiment(first, "search-\(tag)")
        let populate = try seconds {
            try onThreads(clients) { c in
                let h = try endpoints[c % endpoints.count].connect()
                var rng = SystemRandomNumberGenerator()
                for i in stride(from: c, to: searchRuns, by: clients) {
                    let id = try Self.createRun(h, sexp, startTime: Int64(i))
                    let params = (0..<20).map { p in
                        #"{"key":"\#(p == 0 ? "lr" : "param\(p)")","value":"\#(p == 0 ? ["0.01", "0.001", "0.1"][i % 3] : "\(i % 11)")"}"#
                    }.joined(separator: ",")
                    let metrics = (0..<10).map { m in
                        #"{"key":"\#(m == 0 ? "loss" : "metric\(m)")","value":\#(Double.random(in: 0...1, using: &rng)),"timestamp":1700000000000,"step":1}"#
                    }.joined(separator: ",")
                    try Self.post(h, "runs/log-batch", #"{"run_id":"\#(id)","params":[\#(params)],"metrics":[\#(metrics)]}"#)
                }
            }
        }
        out.add("populate_runs_per_s", Double(searchRuns) / populate, digits: 0)
        first = try endpoints[0].connect()
        let filter = Self.searchFilter
        var filtered: [Double] = [], all: [Double] = []
        var answer: [UInt8] = []
        for _ in 0..<21 {
            filtered.append(try seconds {
                answer = try Self.post(first, "runs/search",
                                       #"{"experiment_ids":["\#(sexp)"],"filter":"\#(filter)","max_results":1000,"order_by":["metrics.loss"]}"#)
            })
            all.append(try seconds {
                try Self.post(first, "runs/search", #"{"experiment_ids":["\#(sexp)"],"max_results":1000,"order_by":["metrics.loss DESC"]}"#)
            })
        }
        reportSearch(&out, matched: Self.count(#""run_id""#, in: answer), filtered: filtered, all: all)
        output.emit(out)
    }

    /// POSTs `body` to `/api/2.0/mlflow/PATH`; the response body, or an error naming the status and the answer.
    @discardableResult
    static func post(_ h: BlockingHTTP, _ path: String, _ body: String) throws -> [UInt8] {
        let (status, answer) = try h.request("POST", "/api/2.0/mlflow/" + path, body: Array(body.utf8))
        guard status == 200 else {
            throw BlockingHTTP.Failure(description: "POST \(path): \(status) \(String(decoding: answer.prefix(300), as: UTF8.self))")
        }
        return answer
    }

    static func createExperiment(_ h: BlockingHTTP, _ name: String) throws -> String {
        try field("experiment_id", in: post(h, "experiments/create", #"{"name":"\#(name)"}"#))
    }

    static func createRun(_ h: BlockingHTTP, _ experiment: String, startTime: Int64) throws -> String {
        try field("run_id", in: post(h, "runs/create", #"{"experiment_id":"\#(experiment)","start_time":\#(startTime),"user_id":"bench"}"#))
    }

    /// The first string value of `"key"` in a JSON answer (ids: no escapes to undo).
    static func field(_ key: String, in body: [UInt8]) throws -> String {
        let text = String(decoding: body, as: UTF8.self)
        guard let k = text.range(of: "\"\(key)\""), let open = text[k.upperBound...].firstIndex(of: "\""),
              let close = text[text.index(after: open)...].firstIndex(of: "\"") else {
            throw BlockingHTTP.Failure(description: "no \(key) in \(text.prefix(300))")
        }
        return String(text[text.index(after: open)..<close])
    }

    /// How many times `needle` occurs in `body`.
    static func count(_ needle: String, in body: [UInt8]) -> Int {
        let n = Array(needle.utf8)
        guard !n.isEmpty, body.count >= n.count else { return 0 }
        var found = 0, i = 0
        while i <= body.count - n.count {
            if body[i] == n[0], body[i..<i + n.count].elementsEqual(n) {
                found += 1
                i += n.count
            } else {
                i += 1
            }
        }
        return found
    }
}

/// Request latencies gathered from several threads.
final class Latencies: Sendable {
    private let values = Mutex<[Double]>([])

    /// Records one duration.
    func add(_ d: Duration) {
        let ms = d.totalSeconds * 1000
        values.withLock { $0.append(ms) }
    }

    /// The `q` quantile in milliseconds (nearest rank).
    func percentile(_ q: Double) -> Double {
        let s = values.withLock { $0 }.sorted()
        guard !s.isEmpty else { return .nan }
        return s[min(s.count - 1, Int((Double(s.count) * q).rounded(.up)) - 1)]
    }
}
