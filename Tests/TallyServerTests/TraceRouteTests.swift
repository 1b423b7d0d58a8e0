import Foundation
import Testing
import TallyTracking
@testable import TallyServer

/// The trace routes in process: protobuf's time forms read and written as Foundation reads and writes RFC 3339, a
/// trace rendered as MLflow's client parses it, assessments merged by their update mask, and bad bodies answered 4xx
/// in MLflow's error JSON, never a 5xx.
@Suite struct TraceRouteTests {
    /// Differential: random instants from 1970 to 2400 written by ProtoTime and read by Foundation's ISO 8601
    /// parser, and the reverse, to the millisecond; offsets and fraction lengths protobuf allows.
    @Test func timestampsAgreeWithFoundation() throws {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let ms = Int64.random(in: 0...13_569_465_600_000, using: &rng)
            let text = ProtoTime.timestamp(ms)
            let parsed = iso.date(from: text) ?? ISO8601DateFormatter().date(from: text)
            #expect(parsed.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == ms, "\(text)")
            #expect(ProtoTime.timestamp(text) == ms)
            #expect(ProtoTime.timestamp(iso.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))) == ms)
        }
        #expect(ProtoTime.timestamp(0) == "1970-01-01T00:00:00Z" && ProtoTime.timestamp(1_700_000_000_125) == "2023-11-14T22:13:20.125Z")
        #expect(ProtoTime.timestamp("2023-11-14T23:13:20.125456789+01:00") == 1_700_000_000_125)
        #expect(ProtoTime.timestamp("2023-11-14T22:13:20.1Z") == 1_700_000_000_100)
        #expect(ProtoTime.timestamp(Int64.min) == "0001-01-01T00:00:00Z" && ProtoTime.timestamp(Int64.max) == "9999-12-31T23:59:59.999Z" && ProtoTime.timestamp(-1) == "1969-12-31T23:59:59.999Z")
        #expect(ProtoTime.timestamp("0001-01-01T00:00:00Z") == TraceInfo.minTime && ProtoTime.timestamp("9999-12-31T23:59:59.999Z") == TraceInfo.maxTime)
        for bad in ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20.1234567891Z",
                    "2023-11-14T22:13:20+0100", "2023-11-14 22:13:20Z", "x023-11-14T22:13:20Z", "2023-11-14T22:13:20Zjunk"] {
            #expect(ProtoTime.timestamp(bad) == nil, "\(bad)")
        }
        #expect([0, 30, 1500, 12_000, -250].map(ProtoTime.duration) == ["0s", "0.030s", "1.500s", "12s", "-0.250s"])
        #expect(["0s", "0.030s", "1.5s", "1.000000001s", "-0.25s", "12s"].map(ProtoTime.duration) == [0, 30, 1500, 1000, -250, 12_000])
        for bad in ["", "s", "1", "1.s", ".5s", "1.5 s", "1e3s", "0x10s", "1.0000000001s"] { #expect(ProtoTime.duration(bad) == nil, "\(bad)") }
    }

    static let trace = #"""
        {"trace": {"trace_info": {"trace_id": "tr-00000000000000000000000000000001", "trace_location": {"type": "MLFLOW_EXPERIMENT",
         "mlflow_experiment": {"experiment_id": "0"}}, "request_time": "2026-12-05T03:17:40.125Z", "execution_duration": "0.030s",
         "state": "OK", "trace_metadata": {"m": "1"}, "tags": {"mlflow.traceName": "chat"}, "request_preview": "hi"}}}
        """#

    @Test func renderedMergedAndRefusedAsMLflowDoes() async throws {
        try await LiveServer.with { s in
            let v3 = "/api/3.0/mlflow"
            let made = try await s.post(v3 + "/traces", Self.trace)
            let info = try #require((made.json["trace"] as? [String: Any])?["trace_info"] as? [String: Any], "\(made.text)")
            #expect(info["request_time"] as? String == "2026-12-05T03:17:40.125Z" && info["execution_duration"] as? String == "0.030s")
            #expect((info["tags"] as? [String: String])?["mlflow.artifactLocation"] == "mlflow-artifacts:/0/traces/tr-00000000000000000000000000000001/artifacts")
            #expect((info["trace_location"] as? [String: Any])?["type"] as? String == "MLFLOW_EXPERIMENT" && info["state"] as? String == "OK")
            // lowerCamelCase, as protobuf's parser takes it too.
            let camel = try await s.post(v3 + "/traces", #"{"trace": {"traceInfo": {"traceId": "tr-2", "traceLocation": {"mlflowExperiment": {"experimentId": "0"}}, "requestTime": "2026-12-05T03:17:40Z"}}}"#)
            #expect(camel.status == 200 && camel.text.contains(#""state": "STATE_UNSPECIFIED""#), "\(camel.text)")

            let tid = "tr-00000000000000000000000000000001"
            let created = try await s.post(v3 + "/traces/\(tid)/assessments", #"""
                {"assessment": {"assessment_name": "quality", "source": {"source_type": "HUMAN", "source_id": "bob"},
                 "feedback": {"value": 0.8}, "rationale": "ok", "metadata": {"m": "1"}}}
                """#)
            let a = try #require(created.json["assessment"] as? [String: Any], "\(created.text)")
            let aid = try #require(a["assessment_id"] as? String)
            #expect((a["source"] as? [String: String])?["source_id"] == "bob" && a["valid"] as? Bool == true && a["trace_id"] as? String == tid)
            let patched = try await s.request("PATCH", v3 + "/traces/\(tid)/assessments/\(aid)", body: Array(#"""
                {"assessment": {"feedback": {"value": 0.9}, "metadata": {"n": "2"}, "rationale": "ignored: not in the mask"},
                 "update_mask": "feedback,metadata"}
                """#.utf8))
            let p = try #require(patched.json["assessment"] as? [String: Any], "\(patched.text)")
            #expect((p["feedback"] as? [String: Double]) == ["value": 0.9] && (p["metadata"] as? [String: String]) == ["m": "1", "n": "2"])
            #expect(p["rationale"] as? String == "ok" && (p["source"] as? [String: String])?["source_id"] == "bob")
            let got = try await s.get(v3 + "/traces/\(tid)")
            #expect(((got.json["trace"] as? [String: Any])?["trace_info"] as? [String: Any])?["assessments"] as? [[String: Any]] != nil)

            for (method, path, body, status, fragment) in [
                ("POST", "/traces", #"{}"#, 400, "Missing value for required parameter 'trace'"),
                ("POST", "/traces", #"{"trace": {"trace_info": {"trace_id": "tr-3"}}}"#, 400, "trace_location.mlflow_experiment.experiment_id"),
                ("POST", "/traces", #"{"trace": {"trace_info": {"trace_id": "tr-3", "trace_location": {"mlflow_experiment": {"experiment_id": "0"}}, "request_time": 17}}}"#, 400, "RFC 3339"),
                ("POST", "/traces", #"{"trace": {"trace_info": {"trace_id": "tr-3", "trace_location": {"mlflow_experiment": {"experiment_id": "0"}}, "execution_duration": "1h"}}}"#, 400, "duration"),
                ("POST", "/traces", #"{"trace": {"trace_info": {"trace_id": "tr-3", "trace_location": {"mlflow_experiment": {"experiment_id": "0"}}, "tags": [{"key": "a"}]}}}"#, 400, "Invalid value"),
                ("POST", "/traces", #"{"trace": {"trace_info": {"trace_id": "tr-3", "trace_location": {"mlflow_experiment": {"experiment_id": "999"}}}}}"#, 404, "No Experiment with id=999 exists"),
                ("POST", "/traces/search", #"{"locations": [5]}"#, 400, "Invalid value"),
                ("POST", "/traces/search", #"{"locations": [], "max_results": "x"}"#, 400, "max_results"),
                ("POST", "/traces/\(tid)/assessments", #"{"assessment": {"assessment_name": "q"}}"#, 400, "Unknown assessment type: None"),
                ("POST", "/traces/\(tid)/assessments", #"{"assessment": {"assessment_name": "q", "feedback": {"value": 1}, "valid": "yes"}}"#, 400, "valid"),
                ("POST", "/traces/\(tid)/assessments", #"{"assessment": {"assessment_name": "q", "feedback": {"value": 1}, "expectation": {"value": 1}}}"#, 400, "not several"),
                ("POST", "/traces/\(tid)/assessments", #"{"assessment": {"assessment_name": "q", "feedback": {"value": 1}, "source": "me"}}"#, 400, "source"),
                ("POST", "/traces/\(tid)/assessments", #"{"assessment": {"assessment_name": "q", "feedback": {"value": 1}, "metadata": {"a": 1}}}"#, 400, "metadata"),
                ("POST", "/traces/search", #"{"locations": {"type": "MLFLOW_EXPERIMENT"}}"#, 400, "locations"),
                ("PATCH", "/traces/\(tid)/tags", #"{"key": "mlflow.artifactLocation", "value": "mlflow-artifacts:/"}"#, 400, "immutable"),
                ("PATCH", "/traces/\(tid)/assessments/\(aid)", #"{"assessment": {"feedback": {"value": 1}}}"#, 400, "update_mask"),
                ("PATCH", "/traces/\(tid)/assessments/\(aid)", #"{"assessment": {"expectation": {"value": 1}}, "update_mask": "expectation"}"#, 400, "on a Feedback assessment"),
                ("GET", "/traces/tr-nope", "", 404, "Trace with ID 'tr-nope' not found."),
                ("PATCH", "/traces/tr-nope/tags", #"{"key": "k", "value": "v"}"#, 404, "not found"),
            ] {
                let r = try await s.request(method, v3 + path, body: Array(body.utf8))
                #expect(r.status == status && (r.json["message"] as? String)?.contains(fragment) == true, "\(method) \(path) \(body): \(r.status) \(r.text)")
            }
            // Prompt links, under 2.0 (where MLflow's client sends them) and the UI's prefix; MLflow's messages.
            let linked = try await s.post("/api/2.0/mlflow/traces/link-prompts", #"{"trace_id": "\#(tid)", "prompt_versions": [{"name": "qa", "version": "1"}]}"#)
            #expect(linked.status == 200 && linked.text == "{}", "\(linked.text)")
            _ = try await s.post("/ajax-api/2.0/mlflow/traces/link-prompts", #"{"trace_id": "\#(tid)", "prompt_versions": [{"name": "qa", "version": "2"}]}"#)
            let found = try await s.post(v3 + "/traces/search", #"{"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}], "filter": "prompt = 'qa/2'"}"#)
            #expect((found.json["traces"] as? [[String: Any]])?.compactMap { $0["trace_id"] as? String } == [tid], "\(found.text)")
            for (body, status, fragment) in [
                (#"{"prompt_versions": []}"#, 400, "Missing value for required parameter 'trace_id'"),
                (#"{"trace_id": "\#(tid)"}"#, 400, "Missing value for required parameter 'prompt_versions'"),
                (#"{"trace_id": "\#(tid)", "prompt_versions": [{"name": "qa", "version": 2}]}"#, 400, "prompt_versions[0].version"),
                (#"{"trace_id": "\#(tid)", "prompt_versions": [{"name": "qa", "version": "two"}]}"#, 400, "expected a positive integer"),
                (#"{"trace_id": "\#(tid)", "prompt_versions": {"name": "qa"}}"#, 400, "prompt_versions"),
                (#"{"trace_id": "tr-nope", "prompt_versions": [{"name": "qa", "version": "1"}]}"#, 404, "Trace with ID 'tr-nope' not found."),
            ] {
                let r = try await s.post("/api/2.0/mlflow/traces/link-prompts", body)
                #expect(r.status == status && (r.json["message"] as? String)?.contains(fragment) == true, "\(body): \(r.status) \(r.text)")
            }
            // The v2 paths MLflow 3's client uses for tags and deletes.
            let tagged = try await s.request("PATCH", "/api/2.0/mlflow/traces/\(tid)/tags", body: Array(#"{"key": "k", "value": "v"}"#.utf8))
            #expect(tagged.status == 200 && tagged.text == "{}")
            let deleted = try await s.post("/api/2.0/mlflow/traces/delete-traces", #"{"experiment_id": "0", "request_ids": ["\#(tid)"]}"#)
            #expect(deleted.json["traces_deleted"] as? Int == 1)
        }
    }

    /// MLflow 2's trace API (MLflow 2.14–2.22 clients): a trace started, ended, read and searched under 2.0, in MLflow
    /// 2's message; the same trace read by MLflow 3's API; MLflow's errors, and 400 where MLflow answers 500.
    @Test func mlflow2TraceAPI() async throws {
        try await LiveServer.with { s in
            let v2 = "/api/2.0/mlflow"
            let started = try await s.post(v2 + "/traces", #"""
                {"experiment_id": "0", "timestamp_ms": 1700000000000, "request_metadata": [{"key": "mlflow.trace_schema.version", "value": "2"}],
                 "tags": [{"key": "mlflow.traceName", "value": "chat"}]}
                """#)
            let info = try #require(started.json["trace_info"] as? [String: Any], "\(started.text)")
            let id = try #require(info["request_id"] as? String)
            #expect(id.count == 32 && id.allSatisfy(\.isHexDigit) && info["status"] as? String == "IN_PROGRESS" && info["execution_time_ms"] as? Int == 0)
            #expect(info["timestamp_ms"] as? Int == 1_700_000_000_000 && info["experiment_id"] as? String == "0")
            let tags = Dictionary(uniqueKeysWithValues: (info["tags"] as? [[String: String]] ?? []).map { ($0["key"]!, $0["value"]!) })
            #expect(tags["mlflow.artifactLocation"] == "mlflow-artifacts:/0/traces/\(id)/artifacts" && tags["mlflow.traceName"] == "chat")
            // Ended: the duration from its start, the status, metadata and tags merged; the server's location kept.
            let ended = try await s.request("PATCH", v2 + "/traces/\(id)", body: Array(#"""
                {"request_id": "\#(id)", "timestamp_ms": 1700000000250, "status": "ERROR", "request_metadata": [{"key": "m", "value": "1"}],
                 "tags": [{"key": "mlflow.artifactLocation", "value": "s3://elsewhere"}, {"key": "t", "value": "2"}]}
                """#.utf8))
            let e = try #require(ended.json["trace_info"] as? [String: Any], "\(ended.text)")
            #expect(e["execution_time_ms"] as? Int == 250 && e["status"] as? String == "ERROR")
            let kept = Dictionary(uniqueKeysWithValues: (e["tags"] as? [[String: String]] ?? []).map { ($0["key"]!, $0["value"]!) })
            #expect(kept["mlflow.artifactLocation"] == tags["mlflow.artifactLocation"] && kept["t"] == "2" && kept["mlflow.traceName"] == "chat")
            #expect((e["request_metadata"] as? [[String: String]])?.contains(["key": "m", "value": "1"]) == true)
            let read = try await s.get(v2 + "/traces/\(id)/info?request_id=\(id)")
            #expect(read.json["trace_info"] as? [String: Any] != nil && read.text == ended.text, "\(read.text)")
            let v3 = try await s.get("/api/3.0/mlflow/traces/\(id)")
            let v3info = (v3.json["trace"] as? [String: Any])?["trace_info"] as? [String: Any]
            #expect(v3info?["state"] as? String == "ERROR" && v3info?["execution_duration"] as? String == "0.250s")
            // Searched with MLflow 2's GET and its query parameters.
            let found = try await s.get(v2 + "/traces?experiment_ids=0&filter=" + "tags.t = '2'".addingPercentEncoding(withAllowedCharacters: .alphanumerics)! + "&max_results=5")
            #expect((found.json["traces"] as? [[String: Any]])?.compactMap { $0["request_id"] as? String } == [id], "\(found.text)")
            // A status by its number; an unspecified one.
            let numbered = try await s.request("PATCH", v2 + "/traces/\(id)", body: Array(#"{"timestamp_ms": 1700000000100, "status": 1}"#.utf8))
            #expect((numbered.json["trace_info"] as? [String: Any])?["status"] as? String == "OK")
            let unspecified = try await s.request("PATCH", v2 + "/traces/\(id)", body: Array(#"{"timestamp_ms": 1700000000100, "status": "TRACE_STATUS_UNSPECIFIED"}"#.utf8))
            #expect((unspecified.json["trace_info"] as? [String: Any])?["status"] as? String == "TRACE_STATUS_UNSPECIFIED")
            for (method, path, body, status, fragment) in [
                ("POST", "/traces", #"{"timestamp_ms": 1}"#, 400, "Missing value for required parameter 'experiment_id'"),
                ("POST", "/traces", #"{"experiment_id": "999", "timestamp_ms": 1}"#, 404, "No Experiment with id=999 exists"),
                ("POST", "/traces", #"{"experiment_id": "0", "tags": [{"value": "x"}]}"#, 400, "tags[0].key"),
                ("PATCH", "/traces/nope", #"{"timestamp_ms": 1}"#, 404, "Trace with ID 'nope' not found."),
                ("PATCH", "/traces/\(id)", #"{"timestamp_ms": 1, "status": 7}"#, 400, "status"),
                ("GET", "/traces/nope/info", "", 404, "Trace with ID 'nope' not found."),
                ("GET", "/traces", "", 400, "Missing value for required parameter 'experiment_ids'"),
                ("GET", "/traces?experiment_ids=0&max_results=501", "", 400, "max_results"),
            ] {
                let r = try await s.request(method, v2 + path, body: Array(body.utf8))
                #expect(r.status == status && (r.json["message"] as? String)?.contains(fragment) == true, "\(method) \(path) \(body): \(r.status) \(r.text)")
            }
        }
    }

    /// The UI's `get-trace-artifact`: the spans the client wrote under the trace's artifacts, and an attachment, read
    /// back under both ajax prefixes; MLflow's errors for a missing id, an unknown trace, a path that is not a UUID
    /// and a trace with no spans written.
    @Test func traceArtifactsReadBackForTheUI() async throws {
        try await LiveServer.with { s in
            let tid = "tr-00000000000000000000000000000001", uuid = "0f8e4c52-6a3b-4f0e-9d7a-2b1c3d4e5f60"
            _ = try await s.post("/api/3.0/mlflow/traces", Self.trace)
            let spans = #"{"spans": [{"name": "root", "span_id": "AAAAAAAAAAE=", "parent_span_id": null}]}"#
            let base = "/api/2.0/mlflow-artifacts/artifacts/0/traces/\(tid)/artifacts/"
            #expect(try await s.request("PUT", base + "traces.json", body: Array(spans.utf8), contentType: "application/octet-stream").status == 200)
            #expect(try await s.request("PUT", base + "attachments/\(uuid)", body: [0, 1, 2], contentType: "application/octet-stream").status == 200)
            for prefix in ["/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"] {
                let got = try await s.get(prefix + "/get-trace-artifact?request_id=\(tid)")
                #expect(got.status == 200 && got.text == spans && got.headers["content-disposition"]?.contains("traces.json") == true, "\(got.status) \(got.text)")
            }
            #expect(try await s.get("/ajax-api/2.0/mlflow/get-trace-artifact?request_id=\(tid)&path=\(uuid)").body == [0, 1, 2])
            for (query, status, fragment) in [
                ("", 400, #"Request must include the "request_id" query parameter."#),
                ("?request_id=tr-nope", 404, "Trace with ID 'tr-nope' not found."),
                ("?request_id=\(tid)&path=../../0/x", 400, "Attachment path must be a valid UUID."),
                ("?request_id=\(tid)&path=\(uuid.uppercased())", 400, "Attachment path must be a valid UUID."),
                ("?request_id=\(tid)&path=0f8e4c52-6a3b-4f0e-9d7a-2b1c3d4e5f61", 404, "Attachment '0f8e4c52-6a3b-4f0e-9d7a-2b1c3d4e5f61' not found"),
            ] {
                let r = try await s.get("/ajax-api/2.0/mlflow/get-trace-artifact" + query)
                #expect(r.status == status && (r.json["message"] as? String)?.contains(fragment) == true, "\(query): \(r.status) \(r.text)")
            }
            _ = try await s.post("/api/3.0/mlflow/traces", Self.trace.replacingOccurrences(of: "0000001", with: "0000002"))
            let none = try await s.get("/ajax-api/2.0/mlflow/get-trace-artifact?request_id=tr-00000000000000000000000000000002")
            #expect(none.status == 404 && none.errorCode == "NOT_FOUND" && none.text.contains("Trace data not found for path=traces.json"), "\(none.text)")
            // An empty `path` is none, as MLflow's `if path:` reads it; a repeated parameter's first counts, as Flask reads it.
            #expect(try await s.get("/ajax-api/2.0/mlflow/get-trace-artifact?request_id=\(tid)&path=").text == spans)
            #expect(try await s.get("/ajax-api/2.0/mlflow/get-trace-artifact?request_id=\(tid)&request_id=tr-nope").text == spans)
        }
    }
}
