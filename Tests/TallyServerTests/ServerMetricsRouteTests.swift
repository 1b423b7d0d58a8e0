import Foundation
import Testing
import TallyServer
import TallyTracking

/// `--expose-prometheus`: `/metrics` on the real application, its counts checked against the requests sent.
@Suite struct ServerMetricsRouteTests {
    /// One sample of the text format: name, labels, value.
    struct Sample: Hashable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    /// Every sample of a scrape, and the TYPE of every family.
    static func parse(_ text: String) -> (samples: [Sample], types: [String: String]) {
        var samples: [Sample] = [], types: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let f = line.split(separator: " ")
                types[String(f[2])] = String(f[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let valueStart = line.lastIndex(of: " ")!
            let series = line[..<valueStart], value = Double(line[line.index(after: valueStart)...])!
            guard let brace = series.firstIndex(of: "{") else {
                samples.append(Sample(name: String(series), labels: [:], value: value))
                continue
            }
            var labels: [String: String] = [:]
            // Label values here hold no quotes, commas or escapes.
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                labels[String(kv[0])] = String(kv[1].dropFirst().dropLast())
            }
            samples.append(Sample(name: String(series[..<brace]), labels: labels, value: value))
        }
        return (samples, types)
    }

    /// The value of the one sample of `name` with `labels` among its labels (`nil`: none).
    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        let found = samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }
        #expect(found.count <= 1, "\(name) \(labels): \(found.count) samples")
        return found.first?.value
    }

    static func scrape(_ s: LiveServer, _ path: String = "/metrics") async throws -> [Sample] {
        let r = try await s.get(path)
        #expect(r.status == 200, "\(r.status) \(r.text.prefix(200))")
        #expect(r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        return parse(r.text).samples
    }

    static func on(_ c: inout ServerConfiguration) { c.prometheusDirectory = c.dataDirectory + "/prometheus/multiproc" }

    @Test func offByDefault() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/metrics")
            #expect(r.status == 404)
        }
    }

    @Test func countsRequestsByMethodAndStatusAsMLflowDoes() async throws {
        try await LiveServer.with(Self.on) { s in
            #expect(FileManager.default.fileExists(atPath: s.directory + "/prometheus/multiproc"))
            let first = try await Self.scrape(s)
            // Nothing counted yet: the scrape itself is left out, like the health and version checks.
            #expect(first.filter { $0.name.hasPrefix("mlflow_http") }.isEmpty)
            // The probes and the scrapes, however spelt (the router ignores empty segments): never counted.
            for path in ["/health", "/version", "//health/", "/version/", "/metrics/", "//metrics"] {
                #expect(try await s.get(path).status == 200, "\(path)")
            }
            #expect(try await s.request("HEAD", "/metrics", contentType: nil).status == 200)
            #expect(try await s.post("/api/2.0/mlflow/experiments/create", #"{"name": "m"}"#).status == 200)
            #expect(try await s.post("/api/2.0/mlflow/experiments/create", #"{"name": "m"}"#).status == 400)
            #expect(try await s.post("/api/2.0/mlflow/runs/create", "{bad").status == 400)
            #expect(try await s.get("/nope").status == 404)
            let run = try #require(((try await s.post("/api/2.0/mlflow/runs/create", #"{"experiment_id": "0"}"#).json["run"] as? [String: Any])?["info"]
                as? [String: Any])?["run_id"] as? String)
            let batch = #"{"run_id": "\#(run)", "metrics": [{"key": "a", "value": 1, "timestamp": 1, "step": 1}, "#
                + #"{"key": "a", "value": 2, "timestamp": 1, "step": 2}, {"key": "b", "value": 3, "timestamp": 1, "step": 1}]}"#
            #expect(try await s.post("/api/2.0/mlflow/runs/log-batch", batch).status == 200)
            // A method no client of this API sends (one the HTTP parser knows: others never reach the router).
            #expect(try await s.request("PROPFIND", "/api/2.0/mlflow/experiments/search").status == 404)

            let page = try await s.get("/metrics")
            let (samples, types) = Self.parse(page.text)
            let total = "mlflow_http_request_total", duration = "mlflow_http_request_duration_seconds"
            #expect(types[total] == "counter" && types[duration] == "histogram")
            #expect(Self.value(samples, total, ["method": "POST", "status": "200"]) == 3)
            #expect(Self.value(samples, total, ["method": "POST", "status": "400"]) == 2)
            #expect(Self.value(samples, total, ["method": "GET", "status": "404"]) == 1)
            // The health and version checks and the two scrapes: none counted.
            #expect(Self.value(samples, total, ["method": "GET", "status": "200"]) == nil)
            // A method no client sends is one label value, whatever it is.
            #expect(samples.contains { $0.name == total && $0.labels["method"] == "other" })
            #expect(!samples.contains { $0.labels["method"] == "PROPFIND" })
            for key in [["method": "POST", "status": "200"], ["method": "POST", "status": "400"], ["method": "GET", "status": "404"]] {
                // The histogram counts what the counter counts, in MLflow's buckets, cumulative, labelled with the
                // version `/version` answers.
                let count = Self.value(samples, duration + "_count", key)
                #expect(count == Self.value(samples, total, key))
                let buckets = samples.filter { b in b.name == duration + "_bucket" && key.allSatisfy { b.labels[$0.key] == $0.value } }
                #expect(buckets.map { $0.labels["le"]! } == ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0",
                                                            "2.5", "5.0", "7.5", "10.0", "+Inf"])
                #expect(buckets.map(\.value) == buckets.map(\.value).sorted() && buckets.last?.value == count)
                #expect(buckets.allSatisfy { $0.labels["mlflow_version"] == TallyVersion.mlflow })
                #expect((Self.value(samples, duration + "_sum", key) ?? -1) >= 0)
            }
            // By route, as mounted (a path the router did not match is `NotFound`), with buckets from 0.5 ms; every
            // request counted once, as in MLflow's counter.
            let byRoute = "tally_http_request_duration_seconds"
            #expect(types[byRoute] == "histogram")
            #expect(Self.value(samples, byRoute + "_count", ["route": "/api/2.0/mlflow/runs/log-batch", "method": "POST"]) == 1)
            #expect(Self.value(samples, byRoute + "_count", ["route": "/api/2.0/mlflow/experiments/create", "method": "POST"]) == 2)
            #expect(Self.value(samples, byRoute + "_count", ["route": "NotFound", "method": "GET"]) == 1)
            // A method a path does not serve is one route label, whatever the path: the series stay the routes'.
            #expect(Self.value(samples, byRoute + "_count", ["route": "MethodNotAllowed", "method": "other"]) == nil)
            #expect(samples.filter { $0.name == byRoute + "_bucket" }.first?.labels["le"] == "0.0005")
            let routeCounts = samples.filter { $0.name == byRoute + "_count" }.map(\.value).reduce(0, +)
            #expect(routeCounts == samples.filter { $0.name == total }.map(\.value).reduce(0, +) && routeCounts >= 7)
            #expect(!samples.contains { $0.name == byRoute + "_count" && ($0.labels["route"]?.contains("metrics") == true || $0.labels["route"]?.contains("health") == true) })

            // Tally's own: the three points stored, logged and fsynced; the process's figures.
            #expect(Self.value(samples, "tally_store_points_appended_total") == 3)
            #expect(types["tally_store_points_appended_total"] == "counter" && types["tally_store_head_bytes"] == "gauge")
            #expect((Self.value(samples, "tally_wal_fsyncs_total") ?? 0) >= 1 && (Self.value(samples, "tally_wal_written_bytes_total") ?? 0) > 0)
            #expect((Self.value(samples, "tally_store_head_bytes") ?? 0) > 0 && Self.value(samples, "tally_store_runs") == 1)
            #expect(Self.value(samples, "tally_build_info", ["version": TallyVersion.string, "metadata_backend": "sqlite"]) == 1)
            #expect((Self.value(samples, "process_resident_memory_bytes") ?? 0) > 1_048_576)
            #expect((Self.value(samples, "process_open_fds") ?? 0) > 3 && (Self.value(samples, "process_max_fds") ?? 0) > 0)
            let start = Self.value(samples, "process_start_time_seconds") ?? 0
            #expect(abs(start - Date().timeIntervalSince1970) < 3_600, "\(start)")
            #expect((Self.value(samples, "process_cpu_seconds_total") ?? 0) > 0)
            #expect(Self.value(samples, "tally_blocking_threads") == 4)
            // The scrape's own work on the pool, and no request being answered but the scrape, which is not counted.
            #expect((Self.value(samples, "tally_blocking_tasks") ?? 0) >= 1 && Self.value(samples, "tally_http_requests_in_flight") == 0)
            #expect(Self.value(samples, "mlflow_http_request_exceptions_total", ["method": "POST", "status": "500"]) == nil)

            // A refusal of the browser defences is counted as sent.
            let refused = try await s.raw(Array("GET /api/2.0/mlflow/experiments/search HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".utf8))
            #expect(refused.status == 403)
            #expect(Self.value(try await Self.scrape(s), total, ["method": "GET", "status": "403"]) == 1)
            // Another method's 405 is counted, as MLflow counts it, under one route label for every such answer.
            #expect(try await s.request("POST", "/metrics").status == 405)
            #expect(try await s.request("DELETE", "/api/2.0/mlflow/runs/create", contentType: nil).status == 405)
            #expect(try await s.request("DELETE", "/api/2.0/mlflow/experiments/get", contentType: nil).status == 405)
            let after = try await Self.scrape(s)
            #expect(Self.value(after, total, ["method": "POST", "status": "405"]) == 1)
            #expect(Self.value(after, byRoute + "_count", ["route": "MethodNotAllowed", "method": "DELETE"]) == 2)
            #expect(!after.contains { $0.name == byRoute + "_count" && $0.labels["method"] == "DELETE" && $0.labels["route"] != "MethodNotAllowed" })
        }
    }

    /// MLflow's OTLP ingest metrics: every export timed and sized (a refused one too), stored spans counted.
    @Test func otlpExportsAsMLflowCountsThem() async throws {
        try await LiveServer.with(Self.on) { s in
            let sent = try await s.request("POST", "/v1/traces", body: OTLPTests.proto, contentType: "application/x-protobuf",
                                           headers: ["x-mlflow-experiment-id": "0"])
            #expect(sent.status == 200)
            #expect(try await s.request("POST", "/v1/traces", body: [0xFF], contentType: "application/x-protobuf",
                                        headers: ["x-mlflow-experiment-id": "0"]).status == 400)
            let samples = try await Self.scrape(s)
            #expect(Self.value(samples, "mlflow_spans_ingested_total", ["protocol": "otlp"]) == 1)
            #expect(Self.value(samples, "mlflow_trace_ingestion_server_errors_total", ["protocol": "otlp"]) == nil)  // none yet: not shown
            #expect(Self.value(samples, "mlflow_otlp_request_duration_seconds_count") == 2)
            #expect(Self.value(samples, "mlflow_otlp_request_payload_bytes_count") == 2)
            #expect(Self.value(samples, "mlflow_otlp_request_payload_bytes_sum") == Double(OTLPTests.proto.count + 1))
            #expect(Self.value(samples, "mlflow_otlp_spans_per_request_bucket", ["le": "1.0"]) == 1)
        }
    }

    @Test func failuresInsideTheServerAreExceptions() async throws {
        try await LiveServer.with({ Self.on(&$0); $0.faults = .failAppend }) { s in
            let run = try #require(((try await s.post("/api/2.0/mlflow/runs/create", #"{"experiment_id": "0"}"#).json["run"] as? [String: Any])?["info"]
                as? [String: Any])?["run_id"] as? String)
            let r = try await s.post("/api/2.0/mlflow/runs/log-metric", #"{"run_id": "\#(run)", "key": "k", "value": 1, "timestamp": 1}"#)
            #expect(r.status == 500 && r.errorCode == "INTERNAL_ERROR", "\(r.status) \(r.text)")
            #expect(try await s.post("/api/2.0/mlflow/runs/get", "{}").status == 405)
            let samples = try await Self.scrape(s)
            #expect(Self.value(samples, "mlflow_http_request_exceptions_total", ["method": "POST", "status": "500"]) == 1)
            #expect(Self.value(samples, "mlflow_http_request_total", ["method": "POST", "status": "500"]) == 1)
            // Other errors are the client's: not exceptions.
            #expect(!samples.contains { $0.name == "mlflow_http_request_exceptions_total" && $0.labels["status"] != "500" })
        }
    }

    @Test func underTheStaticPrefixAndWithout() async throws {
        try await LiveServer.with({ Self.on(&$0); $0.staticPrefix = "/mlflow" }) { s in
            for path in ["/mlflow/health", "/mlflow/version", "/mlflow//health", "/mlflow/metrics/"] { _ = try await s.get(path) }
            #expect(try await s.post("/mlflow/api/2.0/mlflow/experiments/search", #"{"max_results": 10}"#).status == 200)
            let bare = try await Self.scrape(s), prefixed = try await Self.scrape(s, "/mlflow/metrics")
            for samples in [bare, prefixed] {
                #expect(Self.value(samples, "mlflow_http_request_total", ["method": "POST", "status": "200"]) == 1)
                #expect(Self.value(samples, "mlflow_http_request_total", ["method": "GET", "status": "200"]) == nil)
            }
        }
    }

    @Test func scrapersAuthenticateWhenAccessControlIsOn() async throws {
        try await LiveServer.with({ AccessRouteTests.configure(&$0); Self.on(&$0) }) { s in
            let anonymous = try await s.get("/metrics")
            #expect(anonymous.status == 401 && anonymous.errorCode == "UNAUTHENTICATED")
            #expect(try await s.get("/api/2.0/mlflow/experiments/search").status == 401)
            // Any user may scrape, not only admins.
            let admin = AccessRouteTests.basic("admin", AccessRouteTests.adminPassword)
            let made = try await s.request("POST", "/api/2.0/mlflow/users/create", body: Array(#"{"username": "prometheus", "password": "scraper-password-1"}"#.utf8),
                                           headers: admin)
            #expect(made.status == 200, "\(made.text)")
            let r = try await s.request("GET", "/metrics", contentType: nil, headers: AccessRouteTests.basic("prometheus", "scraper-password-1"))
            #expect(r.status == 200 && r.text.contains("mlflow_http_request_total{method=\"GET\",status=\"401\"} 1"), "\(r.status) \(r.text.prefix(300))")
        }
    }
}
