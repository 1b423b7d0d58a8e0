import Foundation
import NIOHTTP1
import TallyTracking

/// MLflow 3's traces, read through the server: infos from `traces/search`, spans from the endpoint its UI reads them
/// by (`get-trace-artifact`, which answers `traces.json` from its tracking store or its artifacts alike).
extension MLflowRESTSource {
    public func traces(experimentID: String) throws -> [TraceInfo] {
        let location = #"[{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "# + JSONText.quote(experimentID) + "}}]"
        // An MLflow without traces (before 3.0) answers 404: none.
        return try Self.pages("traces") {
            try http.json(.POST, "/api/3.0/mlflow/traces/search", body: Self.body([("locations", location), ("max_results", "500")], token: $0),
                          allowing: [404])
        }.map { json in
            var t = try TraceJSON.info(json, importing: true)
            // MLflow's API lists no trace's prompt links; its client names them in a tag whenever it links them.
            t.linkedPrompts = PromptLink.fromTag(t.tag(TraceKeys.linkedPrompts))
            return t
        }.sorted { ($0.requestTime, $0.traceID) < ($1.requestTime, $1.traceID) }
    }

    /// Whichever store MLflow keeps them in: its server reads either for its UI. `nil` when it has none (404).
    public func traceSpans(_ t: TraceInfo) throws -> [UInt8]? {
        let path = "/ajax-api/3.0/mlflow/get-trace-artifact"
        let (status, bytes) = try http.send(.GET, http.url(path, [("request_id", t.traceID)]))
        if status == 404 { return nil }
        guard (200..<300).contains(status) else { throw http.failure(.GET, path, status, bytes) }
        return bytes
    }
}

/// Traces sent to MLflow (`tally export mlflow`).
extension MLflowRESTDestination {
    public func startTrace(_ trace: TraceInfo, experimentID: String) throws -> String {
        var t = trace
        t.experimentID = experimentID
        let answer = try http.json(.POST, "/api/3.0/mlflow/traces", body: Render.wrap("trace", Render.wrap("trace_info", TraceJSON.info(t))))
        let info = answer.flatMap { TraceJSON.member($0, "trace") }.flatMap { TraceJSON.member($0, "trace_info") }
        guard let location = info?["tags"]?[TraceKeys.artifactLocation]?.text else {
            throw TrackingError(.internalError, "MLflow at \(http.base) gave trace \(trace.traceID) no \(TraceKeys.artifactLocation) tag")
        }
        return location
    }

    public func linkTraces(_ ids: [String], toRun runID: String) throws {
        _ = try http.json(.POST, "/api/2.0/mlflow/traces/link-to-run",
                          body: "{\"trace_ids\":[" + ids.map(JSONText.quote).joined(separator: ",") + "],\"run_id\":" + JSONText.quote(runID) + "}")
    }

    public func linkPrompts(_ prompts: [String], toTrace traceID: String) throws {
        let refs = prompts.compactMap(PromptLink.parts).map { "{\"name\":" + JSONText.quote($0.name) + ",\"version\":" + JSONText.quote($0.version) + "}" }
        _ = try http.json(.POST, "/api/2.0/mlflow/traces/link-prompts",
                          body: "{\"trace_id\":" + JSONText.quote(traceID) + ",\"prompt_versions\":[" + refs.joined(separator: ",") + "]}")
    }
}
