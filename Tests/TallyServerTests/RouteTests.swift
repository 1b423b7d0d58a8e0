import Foundation
import Testing
import TallyStore
import TallyTracking
@testable import TallyServer

/// Every route of the application, in process over real sockets: success shapes under both MLflow prefixes, and
/// every class of error mapped to MLflow's error JSON (404, 405, 400, 413), and broken HTTP never a 5xx.
@Suite(.serialized) struct RouteTests {
    static let prefixes = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"]

    /// Creates an experiment and a run through the API; returns (experiment id, run id).
    static func run(_ s: LiveServer, _ p: String, name: String) async throws -> (String, String) {
        let exp = try await s.post(p + "/experiments/create", #"{"name": "\#(name)"}"#)
        #expect(exp.status == 200, "\(exp.text)")
        let eid = try #require(exp.json["experiment_id"] as? String)
        let run = try await s.post(p + "/runs/create", #"{"experiment_id": "\#(eid)", "run_name": "r", "start_time": 5}"#)
        let info = try #require((run.json["run"] as? [String: Any])?["info"] as? [String: Any])
        return (eid, try #require(info["run_id"] as? String))
    }

    @Test func experimentRoutes() async throws {
        try await LiveServer.with { s in
            for (k, p) in Self.prefixes.enumerated() {
                let created = try await s.post(p + "/experiments/create", #"{"name": "e\#(k)", "tags": [{"key": "a", "value": "1"}]}"#)
                let id = try #require(created.json["experiment_id"] as? String)
                let got = try await s.get(p + "/experiments/get?experiment_id=\(id)")
                #expect(got.status == 200 && (got.json["experiment"] as? [String: Any])?["name"] as? String == "e\(k)")
                #expect(got.headers["content-type"] == "application/json")
                let byName = try await s.get(p + "/experiments/get-by-name?experiment_name=e\(k)")
                #expect((byName.json["experiment"] as? [String: Any])?["experiment_id"] as? String == id)
                let search = try await s.post(p + "/experiments/search", #"{"filter": "name = 'e\#(k)'", "max_results": 10}"#)
                #expect((search.json["experiments"] as? [[String: Any]])?.count == 1, "\(search.text)")
                let searchGet = try await s.get(p + "/experiments/search?max_results=10")
                #expect(searchGet.status == 200)
                for (path, body) in [("update", #"{"experiment_id": "\#(id)", "new_name": "f\#(k)"}"#),
                                     ("set-experiment-tag", #"{"experiment_id": "\#(id)", "key": "b", "value": "2"}"#),
                                     ("delete-experiment-tag", #"{"experiment_id": "\#(id)", "key": "b"}"#),
                                     ("delete", #"{"experiment_id": "\#(id)"}"#), ("restore", #"{"experiment_id": "\#(id)"}"#)] {
                    let r = try await s.post(p + "/experiments/" + path, body)
                    #expect(r.status == 200 && r.text == "{}", "\(path): \(r.text)")
                }
                // The UI's search-datasets: ajax prefix only, as MLflow serves it.
                let datasets = try await s.post("/ajax-api/2.0/mlflow/experiments/search-datasets", #"{"experiment_ids": ["\#(id)"]}"#)
                #expect(datasets.status == 200 && datasets.text == "{}")
                #expect(try await s.post("/api/2.0/mlflow/experiments/search-datasets", #"{"experiment_ids": ["\#(id)"]}"#).status == 404)
            }
        }
    }

    @Test func runAndMetricRoutes() async throws {
        try await LiveServer.with { s in
            for (k, p) in Self.prefixes.enumerated() {
                let (eid, id) = try await Self.run(s, p, name: "runs\(k)")
                let batch = #"{"run_id": "\#(id)", "metrics": [{"key": "loss", "value": 0.5, "timestamp": 10, "step": 1}, {"key": "loss", "value": 0.25, "timestamp": 11, "step": 2}, {"key": "acc", "value": 1, "timestamp": 12}], "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "t", "value": "v"}]}"#
                for (path, body) in [("log-batch", batch),
                                     ("log-metric", #"{"run_id": "\#(id)", "key": "m", "value": 2.5, "timestamp": 3, "step": 4}"#),
                                     ("log-parameter", #"{"run_id": "\#(id)", "key": "p", "value": "x"}"#),
                                     ("set-tag", #"{"run_id": "\#(id)", "key": "s", "value": "y"}"#),
                                     ("delete-tag", #"{"run_id": "\#(id)", "key": "s"}"#),
                                     ("log-inputs", #"{"run_id": "\#(id)", "datasets": [{"dataset": {"name": "d", "digest": "x1", "source_type": "local", "source": "{}"}, "tags": [{"key": "mlflow.data.context", "value": "train"}]}]}"#)] {
                    let r = try await s.post(p + "/runs/" + path, body)
                    #expect(r.status == 200 && r.text == "{}", "\(path): \(r.text)")
                }
                let run = try await s.get(p + "/runs/get?run_id=\(id)")
                let data = try #require((run.json["run"] as? [String: Any])?["data"] as? [String: Any])
                let metrics = try #require(data["metrics"] as? [[String: Any]])
                #expect(Set(metrics.compactMap { $0["key"] as? String }) == ["loss", "acc", "m"])
                #expect(metrics.first { $0["key"] as? String == "loss" }?["value"] as? Double == 0.25)
                let updated = try await s.post(p + "/runs/update", #"{"run_id": "\#(id)", "status": "FINISHED", "end_time": 99}"#)
                #expect((updated.json["run_info"] as? [String: Any])?["status"] as? String == "FINISHED")
                let search = try await s.post(p + "/runs/search", #"{"experiment_ids": ["\#(eid)"], "filter": "metrics.loss < 1"}"#)
                #expect((search.json["runs"] as? [[String: Any]])?.count == 1)
                let history = try await s.get(p + "/metrics/get-history?run_id=\(id)&metric_key=loss&max_results=1")
                #expect((history.json["metrics"] as? [[String: Any]])?.count == 1 && history.json["next_page_token"] is String)
                let interval = try await s.get(p + "/metrics/get-history-bulk-interval?run_ids=\(id)&metric_key=loss&max_results=5")
                #expect((interval.json["metrics"] as? [[String: Any]])?.first?["run_id"] as? String == id)
                let datasets = try await s.post("/ajax-api/2.0/mlflow/experiments/search-datasets", #"{"experiment_ids": ["\#(eid)"]}"#)
                let summary = try #require((datasets.json["dataset_summaries"] as? [[String: Any]])?.first)
                #expect(summary["name"] as? String == "d" && summary["context"] as? String == "train" && summary["experiment_id"] as? String == eid)
                for path in ["delete", "restore"] {
                    let r = try await s.post(p + "/runs/" + path, #"{"run_id": "\#(id)"}"#)
                    #expect(r.status == 200)
                }
                let models = try await s.post(p + "/logged-models/search", #"{"experiment_ids": ["\#(eid)"]}"#)
                #expect(models.status == 200 && models.text == "{}")
                let model = try await s.post(p + "/logged-models", #"{"experiment_id": "\#(eid)", "name": "m"}"#)
                let modelID = try #require(((model.json["model"] as? [String: Any])?["info"] as? [String: Any])?["model_id"] as? String)
                #expect(try await s.get(p + "/logged-models/" + modelID).status == 200)
                #expect(try await s.request("POST", p + "/logged-models/" + modelID, body: Array("{}".utf8)).status == 405)
            }
            // The UI's bulk history is served under the ajax prefix only.
            let (_, id) = try await Self.run(s, Self.prefixes[0], name: "bulk")
            _ = try await s.post(Self.prefixes[0] + "/runs/log-metric", #"{"run_id": "\#(id)", "key": "m", "value": 1, "timestamp": 1}"#)
            let bulk = try await s.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=\(id)&metric_key=m")
            #expect(bulk.text == #"{"metrics":[{"key":"m","run_id":"\#(id)","step":0,"timestamp":1,"value":1.0}]}"#)
            #expect(try await s.get("/api/2.0/mlflow/metrics/get-history-bulk?run_id=\(id)&metric_key=m").status == 404)
        }
    }

    /// A query parameter given twice counts once, by its first value, as MLflow (Flask's `args.get`) reads it.
    @Test func repeatedQueryParametersTakeTheFirst() async throws {
        try await LiveServer.with { s in
            let (_, a) = try await Self.run(s, Self.prefixes[0], name: "first")
            let (_, b) = try await Self.run(s, Self.prefixes[0], name: "second")
            let run = try await s.get("/api/2.0/mlflow/runs/get?run_id=\(a)&run_id=\(b)")
            #expect(((run.json["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String == a, "\(run.text)")
        }
    }

    /// Numbers as MLflow's server takes them: whole numbers written with a fraction or exponent for int64 fields,
    /// numeric strings for doubles (Python's `float`); a fraction in an int64 is refused (MLflow stores it as 0).
    @Test func numbersInTheFormsMLflowTakes() async throws {
        try await LiveServer.with { s in
            let (_, id) = try await Self.run(s, Self.prefixes[0], name: "numbers")
            for (i, fields) in [#""value": "1.5", "timestamp": 1700000000000.0, "step": 2.0"#, #""value": " 1e3 ", "timestamp": 1e3, "step": "3""#,
                                #""value": "-inf", "timestamp": 5, "step": 1.0e1"#, #""value": "nan", "timestamp": 6, "step": "5.0""#,
                                // Python's float also takes digit groups, any script's digits and any Unicode space around.
                                #""value": "1_000.5", "timestamp": 7"#, #""value": "\u0661\u0662", "timestamp": 8"#,
                                #""value": "\u00a0\u30002e1_0\u2003", "timestamp": 9"#].enumerated() {
                let r = try await s.post("/api/2.0/mlflow/runs/log-metric", #"{"run_id": "\#(id)", "key": "k\#(i)", \#(fields)}"#)
                #expect(r.status == 200, "\(fields): \(r.text)")
            }
            let history = { (key: String) in try await s.get("/api/2.0/mlflow/metrics/get-history?run_id=\(id)&metric_key=\(key)").text }
            #expect(try await history("k0").contains(#""value": 1.5, "timestamp": 1700000000000, "step": 2"#))
            #expect(try await history("k1").contains(#""value": 1000.0, "timestamp": 1000, "step": 3"#))
            let k2 = try await history("k2")
            #expect(k2.contains(#""value": -1.7976931348623157e+308, "timestamp": 5, "step": 10"#), "\(k2)")  // as MLflow stores -inf
            #expect(try await history("k3").contains(#""value": "NaN""#))
            #expect(try await history("k4").contains(#""value": 1000.5, "timestamp": 7"#))
            #expect(try await history("k5").contains(#""value": 12.0, "timestamp": 8"#))
            let k6 = try await history("k6")
            #expect(k6.contains(#""value": 20000000000.0, "timestamp": 9"#), "\(k6)")
            for fields in [#""value": 1, "timestamp": 1.5"#, #""value": 1, "timestamp": 1, "step": 2.5"#, #""value": "abc", "timestamp": 1"#,
                           #""value": "0x10", "timestamp": 1"#, #""value": 1, "timestamp": 1e300"#, #""value": 1, "timestamp": "1.5""#, #""value": 1, "timestamp": "0x10""#,
                           #""value": "1__0", "timestamp": 1"#, #""value": "_1", "timestamp": 1"#, #""value": "1_", "timestamp": 1"#,
                           #""value": "1e_1", "timestamp": 1"#, #""value": "1\u200b", "timestamp": 1"#, #""value": "\u00b2", "timestamp": 1"#,
                           #""value": "1 0", "timestamp": 1"#] {
                let r = try await s.post("/api/2.0/mlflow/runs/log-metric", #"{"run_id": "\#(id)", "key": "bad", \#(fields)}"#)
                #expect(r.status == 400 && r.text.contains("INVALID_PARAMETER_VALUE"), "\(fields): \(r.text)")
            }
        }
    }

    /// Answers to writes as MLflow's server gives them (`Tests/Interop/test_writes_vs_mlflow.py` compares many more).
    @Test func writesAnsweredAsMLflowAnswersThem() async throws {
        try await LiveServer.with { s in
            let p = Self.prefixes[0]
            let (eid, id) = try await Self.run(s, p, name: "writes")
            let info = { () async throws -> [String: Any] in
                try #require((try await s.get(p + "/runs/get?run_id=\(id)").json["run"] as? [String: Any])?["info"] as? [String: Any])
            }
            // A status number the enum lacks is refused; an empty run name set as a tag changes nothing.
            let bogus = try await s.post(p + "/runs/update", #"{"run_id": "\#(id)", "status": 123}"#)
            #expect(bogus.status == 400 && bogus.errorCode == "INVALID_PARAMETER_VALUE", "\(bogus.text)")
            #expect(try await s.post(p + "/runs/set-tag", #"{"run_id": "\#(id)", "key": "mlflow.runName", "value": ""}"#).status == 200)
            #expect(try await info()["run_name"] as? String == "r")
            // An end time of 0 is no end time in the answer.
            #expect(try await s.post(p + "/runs/update", #"{"run_id": "\#(id)", "end_time": 0}"#).status == 200)
            #expect(try await info()["end_time"] == nil)
            // A search's runs carry the models they logged.
            let search = try await s.post(p + "/runs/search", #"{"experiment_ids": ["\#(eid)"]}"#)
            #expect(search.text.contains(#""outputs": {}"#), "\(search.text)")
            // A tag key twice at creation is refused, as MLflow's database refuses it.
            let twice = try await s.post(p + "/runs/create", #"{"experiment_id": "\#(eid)", "tags": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}"#)
            #expect(twice.status == 400 && twice.errorCode == "BAD_REQUEST", "\(twice.text)")
        }
    }

    @Test func artifactRoutes() async throws {
        try await LiveServer.with { s in
            let (_, id) = try await Self.run(s, Self.prefixes[0], name: "art")
            let run = try await s.get("/api/2.0/mlflow/runs/get?run_id=\(id)")
            let uri = try #require(((run.json["run"] as? [String: Any])?["info"] as? [String: Any])?["artifact_uri"] as? String)
            let root = String(uri.dropFirst("mlflow-artifacts:/".count))
            // Proxied upload without a JSON content type, listing, download, delete.
            let put = try await s.request("PUT", "/api/2.0/mlflow-artifacts/artifacts/\(root)/dir/a.txt", body: Array("hello".utf8), contentType: nil)
            #expect(put.status == 200)
            let list = try await s.get("/api/2.0/mlflow-artifacts/artifacts?path=\(root)/dir")
            #expect(list.text == #"{"files": [{"path": "a.txt", "is_dir": false, "file_size": 5}]}"#)
            let down = try await s.get("/api/2.0/mlflow-artifacts/artifacts/\(root)/dir/a.txt")
            #expect(down.status == 200 && down.text == "hello" && down.headers["content-type"] == "text/plain")
            for p in Self.prefixes {
                let tracking = try await s.get(p + "/artifacts/list?run_id=\(id)&path=dir")
                #expect(tracking.json["root_uri"] as? String == uri)
                #expect((tracking.json["files"] as? [[String: Any]])?.first?["path"] as? String == "dir/a.txt")
            }
            // The UI's upload and download.
            let up = try await s.request("POST", "/ajax-api/2.0/mlflow/upload-artifact?run_uuid=\(id)&path=ui/b.bin", body: [1, 2, 3],
                                         contentType: "application/octet-stream")
            #expect(up.status == 200, "\(up.text)")
            let got = try await s.get("/get-artifact?run_id=\(id)&path=ui/b.bin")
            #expect(got.status == 200 && got.body == [1, 2, 3] && got.headers["content-disposition"] == "attachment; filename=b.bin")
            let noData = try await s.request("POST", "/ajax-api/2.0/mlflow/upload-artifact?run_uuid=\(id)&path=ui/c", contentType: nil)
            #expect(noData.status == 400 && noData.json["message"] as? String == "Request must specify data.")
            let noRun = try await s.request("POST", "/ajax-api/2.0/mlflow/upload-artifact?path=x", body: [1], contentType: nil)
            #expect(noRun.json["message"] as? String == "Request must specify run_uuid.")
            let del = try await s.request("DELETE", "/api/2.0/mlflow-artifacts/artifacts/\(root)/dir", contentType: nil)
            #expect(del.status == 200)
            #expect(try await s.get("/api/2.0/mlflow-artifacts/artifacts/\(root)/dir/a.txt").status == 404)
            // Traversal and absolute paths: 400 "Invalid path", never a 2xx.
            for bad in ["/api/2.0/mlflow/artifacts/list?run_id=\(id)&path=/etc/passwd", "/api/2.0/mlflow/artifacts/list?run_id=\(id)&path=%2Fetc",
                        "/api/2.0/mlflow/artifacts/list?run_id=\(id)&path=//etc", "/api/2.0/mlflow/artifacts/list?run_id=\(id)&path=../x",
                        "/api/2.0/mlflow/artifacts/list?run_id=\(id)&path=%252e%252e/x", "/api/2.0/mlflow-artifacts/artifacts?path=/etc",
                        "/api/2.0/mlflow-artifacts/artifacts?path=a/../../b", "/get-artifact?run_id=\(id)&path=../../etc/passwd",
                        "/get-artifact?run_id=\(id)&path=/etc/passwd", "/get-artifact?run_id=\(id)&path=%2e%2e/x",
                        "/api/2.0/mlflow-artifacts/artifacts/%2e%2e/%2e%2e/etc/passwd"] {
                let r = try await s.get(bad)
                #expect(r.status == 400 && r.errorCode == "INVALID_PARAMETER_VALUE" && r.json["message"] as? String == "Invalid path", "\(bad): \(r.status) \(r.text)")
            }
            let upBad = try await s.request("POST", "/ajax-api/2.0/mlflow/upload-artifact?run_uuid=\(id)&path=../x", body: [1], contentType: nil)
            #expect(upBad.status == 400 && upBad.json["message"] as? String == "Invalid path")
        }
    }

    @Test func nativeAndServiceRoutes() async throws {
        try await LiveServer.with { s in
            let (_, id) = try await Self.run(s, Self.prefixes[0], name: "native")
            // Columnar JSON without a content type (the body decides), then compare.
            let ingest = try await s.request("POST", "/api/tally/v1/runs/\(id)/metrics", body: Array(#"{"metrics": [{"key": "x", "steps": [1, 2, 3], "values": [3, 2, 1]}]}"#.utf8), contentType: nil)
            #expect(ingest.text == #"{"points": 3, "stored": true}"#)
            let cmp = try await s.post("/api/tally/v1/compare", #"{"run_ids": ["\#(id)"], "metric_keys": ["x"], "buckets": 2}"#)
            #expect(cmp.status == 200 && (cmp.json["series"] as? [[String: Any]])?.count == 1)
            let window = try await s.post("/api/tally/v1/compare", #"{"run_ids": ["\#(id)"], "metric_keys": ["x"], "start_step": 5, "end_step": 1}"#)
            #expect(window.status == 400 && window.json["message"] as? String == "end_step must be greater than start_step. Found start_step=5 and end_step=1.")
            let board = try await s.post("/api/tally/v1/scoreboard", #"{"run_ids": ["\#(id)"], "value": "best"}"#)
            let row = try #require((board.json["rows"] as? [[String: Any]])?.first)
            #expect(row["key"] as? String == "x" && row["values"] as? [Double] == [3] && row["ranks"] as? [Int] == [1])
            let badBoard = try await s.post("/api/tally/v1/scoreboard", #"{"run_ids": ["\#(id)"], "value": "step"}"#)
            #expect(badBoard.status == 400 && (badBoard.json["message"] as? String)?.contains("'step'") == true)
            let health = try await s.get("/health")
            #expect(health.text == "OK" && health.headers["content-type"] == "text/plain; charset=utf-8")
            #expect(try await s.get("/version").status == 200)
            #expect(try await s.get("/api/3.0/mlflow/server-info").json["store_type"] as? String == "SqlStore")
            let ui = try await s.get("/")
            #expect(ui.status == 200 && ui.headers["etag"] != nil)
            #expect(try await s.request("HEAD", "/health", contentType: nil).status == 200)
        }
    }

    @Test func errorClasses() async throws {
        try await LiveServer.with({ $0.maxSmallBodyBytes = 4096 }) { s in
            for p in Self.prefixes {
                // 404: unknown endpoint and unknown run, as MLflow JSON.
                let unknown = try await s.get(p + "/nope")
                #expect(unknown.status == 404 && unknown.errorCode == "ENDPOINT_NOT_FOUND" && unknown.headers["content-type"] == "application/json")
                let noRun = try await s.get(p + "/runs/get?run_id=0123456789abcdef0123456789abcdef")
                #expect(noRun.status == 404 && noRun.errorCode == "RESOURCE_DOES_NOT_EXIST")
                // 405: a known path, another method; the Allow header names the served ones.
                for (m, path) in [("GET", "/runs/create"), ("POST", "/runs/get"), ("DELETE", "/experiments/search"), ("PUT", "/runs/log-batch")] {
                    let r = try await s.request(m, p + path, contentType: nil)
                    #expect(r.status == 405 && r.errorCode == "BAD_REQUEST", "\(m) \(path): \(r.status)")
                    #expect((r.json["message"] as? String)?.contains(m) == true && r.headers["allow"] != nil)
                }
                // OPTIONS: the methods the path serves, as MLflow answers it (204, no body).
                for (path, methods) in [("/runs/create", "POST, OPTIONS"), ("/runs/get", "GET, HEAD, OPTIONS"),
                                        ("/experiments/search", "GET, POST, HEAD, OPTIONS")] {
                    let r = try await s.request("OPTIONS", p + path, contentType: nil)
                    #expect(r.status == 204 && r.body.isEmpty, "OPTIONS \(path): \(r.status) \(r.text)")
                    #expect(Set((r.headers["allow"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                        == Set(methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }), "\(path): \(r.headers["allow"] ?? "none")")
                }
                #expect(try await s.request("OPTIONS", p + "/nope", contentType: nil).status == 404)
                // At the root, Flask's 200 (MLflow answers 204 on its API only).
                let health = try await s.request("OPTIONS", "/health", contentType: nil)
                #expect(health.status == 200 && health.body.isEmpty && health.headers["allow"] == "GET, HEAD, OPTIONS")
                // 400: content type, malformed JSON, non-object, missing and mistyped fields.
                let noType = try await s.request("POST", p + "/runs/create", body: Array("{}".utf8), contentType: nil)
                #expect(noType.status == 400 && noType.json["message"] as? String == "Bad Request. Content-Type header is missing.")
                let form = try await s.request("POST", p + "/experiments/create", body: Array("name=x".utf8), contentType: "application/x-www-form-urlencoded")
                #expect(form.status == 400 && form.json["message"] as? String == "Bad Request. Content-Type must be one of ['application/json'].")
                let charset = try await s.request("POST", p + "/experiments/create", body: Array(#"{"name": "cs\#(p.count)"}"#.utf8),
                                                  contentType: "application/json; charset=utf-8")
                #expect(charset.status == 200)
                for body in ["{", "[1, 2]", "\"x\"", "nul", "{\"a\": }"] {
                    for path in ["/runs/create", "/runs/log-batch", "/runs/search"] {
                        let r = try await s.post(p + path, body)
                        #expect(r.status == 400 && r.errorCode == "INVALID_PARAMETER_VALUE", "\(path) \(body): \(r.status) \(r.text)")
                    }
                }
                let missing = try await s.post(p + "/experiments/create", "{}")
                #expect(missing.status == 400 && (missing.json["message"] as? String)?.contains("'name'") == true)
                let wrongType = try await s.post(p + "/experiments/create", #"{"name": 5}"#)
                #expect(wrongType.status == 400 && wrongType.errorCode == "INVALID_PARAMETER_VALUE")
                // 413 over the small-body limit, 400 for the history limits.
                let big = try await s.post(p + "/experiments/create", #"{"name": "\#(String(repeating: "x", count: 5000))"}"#)
                #expect(big.status == 413 && big.errorCode == "BAD_REQUEST")
                let limit = try await s.get(p + "/metrics/get-history-bulk-interval?run_ids=a&metric_key=m&max_results=0")
                #expect(limit.status == 400 && limit.json["message"] as? String == "max_results must be between 1 and 2500.")
                let maxResults = try await s.get(p + "/metrics/get-history?run_id=a&metric_key=m&max_results=-1")
                #expect(maxResults.status == 400)
            }
        }
    }

    /// A request naming a workspace is refused everywhere but `server-info`, as MLflow without workspaces refuses it
    /// (`FEATURE_DISABLED`; 400 here, where MLflow's 500 is retried by its client); a blank header is no workspace.
    @Test func workspacesAreRefused() async throws {
        try await LiveServer.with { s in
            let refused = "Workspace APIs are not available: workspaces are not enabled on this server"
            for (method, path, body) in [("POST", "/api/2.0/mlflow/experiments/create", #"{"name": "ws"}"#),
                                         ("GET", "/ajax-api/2.0/mlflow/experiments/search?max_results=5", ""),
                                         ("GET", "/api/3.0/mlflow/traces/tr-1", ""), ("GET", "/health", ""),
                                         ("GET", "/api/2.0/mlflow-artifacts/artifacts", ""), ("GET", "/api/2.0/mlflow/nope", "")] {
                for workspace in ["team-a", "default", " x\t"] {
                    let r = try await s.request(method, path, body: Array(body.utf8), contentType: body.isEmpty ? nil : "application/json",
                                                headers: ["X-MLflow-Workspace": workspace])
                    #expect(r.status == 400 && r.errorCode == "FEATURE_DISABLED" && r.json["message"] as? String == refused,
                            "\(method) \(path) [\(workspace)]: \(r.status) \(r.text)")
                }
            }
            // Nothing was created by the refused requests.
            let search = try await s.get("/api/2.0/mlflow/experiments/search?max_results=50")
            #expect((search.json["experiments"] as? [[String: Any]])?.map { $0["name"] as? String } == ["Default"])
            for path in ["/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info/"] {
                let info = try await s.request("GET", path, contentType: nil, headers: ["x-mlflow-workspace": "team-a"])
                #expect(info.status == 200 && info.json["workspaces_enabled"] as? Bool == false, "\(path): \(info.status)")
            }
            for blank in ["", "  "] {
                let r = try await s.request("POST", "/api/2.0/mlflow/experiments/create", body: Array(#"{"name": "ws\#(blank.count)"}"#.utf8),
                                            headers: ["X-MLflow-Workspace": blank])
                #expect(r.status == 200, "[\(blank)]: \(r.status) \(r.text)")
            }
        }
    }

    @Test func bodyLimitsPerEndpoint() async throws {
        try await LiveServer.with({ $0.maxBodyBytes = 16_384; $0.maxSmallBodyBytes = 4096; $0.maxNativeBodyBytes = 8192 }) { s in
            let (_, id) = try await Self.run(s, Self.prefixes[0], name: "limits")
            let metrics = (0..<150).map { #"{"key": "m", "value": \#($0), "timestamp": 1, "step": \#($0)}"# }.joined(separator: ", ")
            let batch = #"{"run_id": "\#(id)", "metrics": [\#(metrics)]}"#  // ~8 KB: over the small limit, under the large one
            #expect(batch.utf8.count > 4096 && batch.utf8.count < 16_384)
            #expect(try await s.post("/api/2.0/mlflow/runs/log-batch", batch).status == 200)
            let huge = #"{"run_id": "\#(id)", "metrics": [\#(metrics), \#(metrics), \#(metrics)]}"#
            let refused = try await s.post("/ajax-api/2.0/mlflow/runs/log-batch", huge)
            #expect(refused.status == 413 && refused.errorCode == "BAD_REQUEST")
            #expect((refused.json["message"] as? String)?.contains("16384 bytes") == true)
            let inputs = try await s.post("/api/2.0/mlflow/runs/log-inputs", #"{"run_id": "\#(id)", "pad": "\#(String(repeating: "x", count: 20_000))"}"#)
            #expect(inputs.status == 413)
            let native = try await s.request("POST", "/api/tally/v1/runs/\(id)/metrics", body: [UInt8](repeating: 0x20, count: 9000), contentType: nil)
            #expect(native.status == 413)
            // Nothing of the refused batch was stored.
            let history = try await s.get("/api/2.0/mlflow/metrics/get-history?run_id=\(id)&metric_key=m")
            #expect((history.json["metrics"] as? [[String: Any]])?.count == 150)
        }
    }

    @Test func shutdownClosesWhatTheAppStarted() async throws {
        let service = try await LiveServer.with { s in
            _ = try await s.post("/api/2.0/mlflow/runs/create", #"{"experiment_id": "0"}"#)
            return s.service
        }
        // The application's StoreCloser closed the metric store after the server stopped.
        #expect(throws: (any Error).self) { try service.metrics.append(run: "r", key: "k", step: 0, timestamp: 0, value: 1) }
    }

    @Test func brokenHTTPIsNeverA5xx() async throws {
        try await LiveServer.with { s in
            let cases: [[UInt8]] = [
                // Body shorter than its Content-Length, then the client half-closes.
                Array("POST /api/2.0/mlflow/runs/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\"".utf8),
                // Broken chunking.
                Array("POST /api/2.0/mlflow/runs/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".utf8),
                Array("POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":1}\r\n".utf8),
                // Garbage request line, bad header, invalid method.
                Array("GARBAGE\r\n\r\n".utf8), Array("GET / HTTP/1.1\r\nBad Header\r\n\r\n".utf8), Array("FOO@ / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8),
                Array("PUT /api/2.0/mlflow-artifacts/artifacts/a/b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\nshort".utf8),
            ]
            for bytes in cases {
                let r = try await s.raw(bytes)
                #expect(r.status < 500, "\(String(decoding: bytes.prefix(60), as: UTF8.self)): \(r.status) \(r.text)")
            }
            #expect(try await s.get("/health").status == 200)  // still serving
        }
    }

    /// A request posing as forwarded by a server of a cluster, sent to a server that is in none: refused (401,
    /// MLflow's error JSON) before any route runs, and nothing is written.
    @Test func forwardedRequestsNeedACluster() async throws {
        try await LiveServer.with { s in
            let (_, id) = try await Self.run(s, "/api/2.0/mlflow", name: "fwd")
            let body = Array(#"{"run_id": "\#(id)", "key": "m", "value": 1, "timestamp": 1, "step": 1}"#.utf8)
            let r = try await s.request("POST", "/api/2.0/mlflow/runs/log-metric", body: body,
                                        headers: ["X-Tally-Forwarded-By": "n1", "X-Tally-Forwarded-User": "admin",
                                                  "X-Tally-Forwarded-Time": "1", "X-Tally-Forwarded-Signature": "00"])
            #expect(r.status == 401 && r.json["error_code"] as? String == "UNAUTHENTICATED", "\(r.text)")
            let history = try await s.get("/api/2.0/mlflow/metrics/get-history?run_id=\(id)&metric_key=m")
            #expect(history.status == 200 && history.text == "{}", "\(history.text)")
        }
    }
}
