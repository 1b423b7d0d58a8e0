import Foundation
import NIOHTTP1
import TallyTracking

/// `tally export mlflow --to http(s)://…`: an MLflow server written through its REST API, with the same client (and
/// credentials, retries) as the import's REST source. Requests are MLflow's own: `experiments/create`,
/// `runs/create`, `runs/log-batch` (values written so they read back bit-exact: NaN and ±Infinity as MLflow's
/// strings), `runs/log-inputs`, `runs/update`, `runs/delete`, and a `PUT` per artifact through its proxy.
public final class MLflowRESTDestination: MLflowDestination {
    let http: MLflowHTTPClient
    /// The MLflow workspace written: every request names it when the server has workspaces.
    public let workspace: String

    /// Connects to the MLflow server at `url` and checks that it answers MLflow's API and has `workspace` (an error
    /// names those it has; a workspace is created in MLflow, by its admins, before anything is exported into it).
    public init(url: String, workspace: String = MLflowWorkspace.defaultName) throws {
        http = try MLflowHTTPClient.connect(url: url, workspace: workspace).client
        self.workspace = workspace
        _ = try http.json(.POST, "/api/2.0/mlflow/experiments/search", body: #"{"max_results":1}"#)
    }

    public var location: String { http.base }

    public func close() { http.close() }

    /// A POST of `body` (JSON) to `/api/2.0/mlflow/<path>`.
    /// `idempotent: false` for creates (see ``MLflowHTTPClient/json(_:_:query:body:allowing:idempotent:)``).
    @discardableResult
    func post(_ path: String, _ body: String, idempotent: Bool = true) throws -> JSONValue {
        try http.json(.POST, "/api/2.0/mlflow/" + path, body: body, idempotent: idempotent) ?? .object([])
    }

    public func experiment(named name: String) throws -> (id: String, stage: LifecycleStage)? {
        guard let e = try http.json(.GET, "/api/2.0/mlflow/experiments/get-by-name", query: [("experiment_name", name)], allowing: [404])?["experiment"]
        else { return nil }
        return (e["experiment_id"]?.text ?? "", LifecycleStage(rawValue: e["lifecycle_stage"]?.text ?? "") ?? .active)
    }

    public func experimentStage(id: String) throws -> LifecycleStage? {
        guard let e = try http.json(.GET, "/api/2.0/mlflow/experiments/get", query: [("experiment_id", id)], allowing: [404])?["experiment"]
        else { return nil }
        return LifecycleStage(rawValue: e["lifecycle_stage"]?.text ?? "") ?? .active
    }

    public func createExperiment(name: String, tags: [KeyValue]) throws -> String {
        let answer = try post("experiments/create", "{\"name\":\(JSONText.quote(name)),\"tags\":\(Self.keyValues(tags))}", idempotent: false)
        guard let id = answer["experiment_id"]?.text else { throw TrackingError(.internalError, "\(location): experiments/create answered no experiment_id") }
        return id
    }

    public func setExperimentTag(id: String, _ tag: KeyValue) throws {
        try post("experiments/set-experiment-tag", "{\"experiment_id\":\(JSONText.quote(id)),\"key\":\(JSONText.quote(tag.key)),\"value\":\(JSONText.quote(tag.value))}")
    }

    public func setExperimentDeleted(id: String, _ deleted: Bool) throws {
        try post(deleted ? "experiments/delete" : "experiments/restore", "{\"experiment_id\":\(JSONText.quote(id))}")
    }

    public func createRun(experimentID: String, userID: String, startTime: Int64, runName: String, marker: KeyValue) throws -> (id: String, artifactURI: String) {
        let info = try post("runs/create", "{\"experiment_id\":\(JSONText.quote(experimentID)),\"user_id\":\(JSONText.quote(userID)),"
                                + "\"start_time\":\(startTime),\"run_name\":\(JSONText.quote(runName)),\"tags\":\(Self.keyValues([marker]))}",
                            idempotent: false)["run"]?["info"]
        guard let id = info?["run_id"]?.text else { throw TrackingError(.internalError, "\(location): runs/create answered no run_id") }
        return (id, info?["artifact_uri"]?.text ?? "")
    }

    public func deleteRunTag(id: String, key: String) throws {
        _ = try http.json(.POST, "/api/2.0/mlflow/runs/delete-tag", body: "{\"run_id\":\(JSONText.quote(id)),\"key\":\(JSONText.quote(key))}",
                          allowing: [404])
    }

    public func findRuns(experimentID: String, marker: KeyValue) throws -> [(id: String, artifactURI: String)] {
        let filter = "tags.`" + marker.key + "` = " + MLflowRESTSource.quoted(marker.value)
        return try post("runs/search", "{\"experiment_ids\":[\(JSONText.quote(experimentID))],\"run_view_type\":\"ALL\",\"max_results\":1000,"
                            + "\"filter\":\(JSONText.quote(filter))}")["runs"].items.compactMap { r in
            r["info"]?["run_id"]?.text.map { ($0, r["info"]?["artifact_uri"]?.text ?? "") }
        }
    }

    public func findLoggedModels(experimentID: String, name: String) throws -> [(id: String, sourceRunID: String, artifactURI: String)] {
        try post("logged-models/search", "{\"experiment_ids\":[\(JSONText.quote(experimentID))],\"max_results\":100,"
                     + "\"filter\":\(JSONText.quote("name = " + MLflowRESTSource.quoted(name)))}")["models"].items.compactMap { m in
            let i = m["info"]
            return i?["model_id"]?.text.map { ($0, i?["source_run_id"]?.text ?? "", i?["artifact_uri"]?.text ?? "") }
        }
    }

    public func runArtifactURI(id: String) throws -> String {
        try http.json(.GET, "/api/2.0/mlflow/runs/get", query: [("run_id", id)])?["run"]?["info"]?["artifact_uri"]?.text ?? ""
    }

    public func logBatch(runID: String, metrics: [Metric], params: [KeyValue], tags: [KeyValue]) throws {
        var body = "{\"run_id\":" + JSONText.quote(runID) + ",\"metrics\":["
        body.reserveCapacity(64 + metrics.count * 96)
        for (i, m) in metrics.enumerated() {
            if i > 0 { body += "," }
            body += "{\"key\":" + JSONText.quote(m.key) + ",\"value\":" + Self.value(m.value) + ",\"timestamp\":\(m.timestamp),\"step\":\(m.step)}"
        }
        body += "],\"params\":" + Self.keyValues(params) + ",\"tags\":" + Self.keyValues(tags) + "}"
        try post("runs/log-batch", body)
    }

    public func logInputs(runID: String, _ inputs: [DatasetInput]) throws {
        let datasets = inputs.map { i in
            let d = i.dataset
            var fields = ["\"name\":" + JSONText.quote(d.name), "\"digest\":" + JSONText.quote(d.digest), "\"source_type\":" + JSONText.quote(d.sourceType),
                          "\"source\":" + JSONText.quote(d.source)]
            if let schema = d.schema { fields.append("\"schema\":" + JSONText.quote(schema)) }
            if let profile = d.profile { fields.append("\"profile\":" + JSONText.quote(profile)) }
            return "{\"tags\":" + Self.keyValues(i.tags) + ",\"dataset\":{" + fields.joined(separator: ",") + "}}"
        }
        try post("runs/log-inputs", "{\"run_id\":" + JSONText.quote(runID) + ",\"datasets\":[" + datasets.joined(separator: ",") + "]}")
    }

    public func updateRun(id: String, status: RunStatus, endTime: Int64?) throws {
        try post("runs/update", "{\"run_id\":\(JSONText.quote(id)),\"status\":\(JSONText.quote(status.rawValue))" + (endTime.map { ",\"end_time\":\($0)" } ?? "") + "}")
    }

    public func setRunDeleted(id: String, _ deleted: Bool) throws {
        try post(deleted ? "runs/delete" : "runs/restore", "{\"run_id\":\(JSONText.quote(id))}")
    }

    public func uploadArtifact(artifactURI: String, path: String, file: String, size: Int) throws -> Bool {
        guard let root = TrackingService.proxiedRoot(of: artifactURI) else { return false }
        try http.upload(.PUT, http.url("/api/2.0/mlflow-artifacts/artifacts/" + MLflowHTTPClient.encodePath(root + "/" + path)), file: file, size: size)
        return true
    }

    /// A metric value as MLflow's client writes it: NaN and ±Infinity as its strings (a SQL store clamps an
    /// infinity itself; a file store keeps it), other values in the shortest text that reads back the same.
    static func value(_ v: Double) -> String {
        if v.isNaN { return "\"NaN\"" }
        if v.isInfinite { return v > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return JSONWriter.double(v)
    }

    /// `[{"key": …, "value": …}]`.
    static func keyValues(_ kv: [KeyValue]) -> String {
        "[" + kv.map { "{\"key\":" + JSONText.quote($0.key) + ",\"value\":" + JSONText.quote($0.value) + "}" }.joined(separator: ",") + "]"
    }
}
