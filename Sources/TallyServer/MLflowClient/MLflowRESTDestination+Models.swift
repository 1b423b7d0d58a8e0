import NIOHTTP1
import TallyTracking

/// Logged models and the registry, written with the requests MLflow's own client sends.
extension MLflowRESTDestination {
    public func createLoggedModel(experimentID: String, name: String, modelType: String, sourceRunID: String, params: [KeyValue],
                                  tags: [KeyValue]) throws -> (id: String, artifactURI: String) {
        var body = "{\"experiment_id\":\(JSONText.quote(experimentID)),\"name\":\(JSONText.quote(name)),\"params\":\(Self.keyValues(params)),"
            + "\"tags\":\(Self.keyValues(tags))"
        if !modelType.isEmpty { body += ",\"model_type\":" + JSONText.quote(modelType) }
        if !sourceRunID.isEmpty { body += ",\"source_run_id\":" + JSONText.quote(sourceRunID) }
        let info = try post("logged-models", body + "}", idempotent: false)["model"]?["info"]
        guard let id = info?["model_id"]?.text else { throw TrackingError(.internalError, "\(location): logged-models answered no model_id") }
        return (id, info?["artifact_uri"]?.text ?? "")
    }

    public func loggedModelArtifactURI(id: String) throws -> String {
        try http.json(.GET, "/api/2.0/mlflow/logged-models/" + MLflowHTTPClient.encode(id))?["model"]?["info"]?["artifact_uri"]?.text ?? ""
    }

    public func finalizeLoggedModel(id: String, _ status: LoggedModelStatus) throws {
        _ = try http.json(.PATCH, "/api/2.0/mlflow/logged-models/" + MLflowHTTPClient.encode(id),
                          body: "{\"model_id\":\(JSONText.quote(id)),\"status\":\(JSONText.quote(status.rawValue))}")
    }

    public func logModelMetrics(runID: String, modelID: String, _ metrics: [ModelMetric]) throws {
        let items = metrics.map { m in
            var o = "{\"key\":" + JSONText.quote(m.metric.key) + ",\"value\":" + Self.value(m.metric.value)
                + ",\"timestamp\":\(m.metric.timestamp),\"step\":\(m.metric.step),\"model_id\":" + JSONText.quote(modelID)
            if let d = m.datasetName { o += ",\"dataset_name\":" + JSONText.quote(d) }
            if let d = m.datasetDigest { o += ",\"dataset_digest\":" + JSONText.quote(d) }
            return o + "}"
        }
        try post("runs/log-batch", "{\"run_id\":" + JSONText.quote(runID) + ",\"metrics\":[" + items.joined(separator: ",") + "]}")
    }

    public func logRunOutputs(runID: String, _ outputs: [ModelOutput]) throws {
        let models = outputs.map { "{\"model_id\":" + JSONText.quote($0.modelID) + ",\"step\":\($0.step)}" }
        try post("runs/outputs", "{\"run_id\":" + JSONText.quote(runID) + ",\"models\":[" + models.joined(separator: ",") + "]}")
    }

    public func logRunModelInputs(runID: String, _ inputs: [ModelInput]) throws {
        let models = inputs.map { "{\"model_id\":" + JSONText.quote($0.modelID) + "}" }
        try post("runs/log-inputs", "{\"run_id\":" + JSONText.quote(runID) + ",\"models\":[" + models.joined(separator: ",") + "]}")
    }

    public func hasRegisteredModel(_ name: String) throws -> Bool {
        try http.json(.GET, "/api/2.0/mlflow/registered-models/get", query: [("name", name)], allowing: [404]) != nil
    }

    public func versionExists(name: String, version: Int64) throws -> Bool {
        try http.json(.GET, "/api/2.0/mlflow/model-versions/get", query: [("name", name), ("version", String(version))], allowing: [404]) != nil
    }

    public func runOutputs(runID: String) throws -> [ModelOutput] {
        (try http.json(.GET, "/api/2.0/mlflow/runs/get", query: [("run_id", runID)])?["run"]?["outputs"]?["model_outputs"]).items.map {
            ModelOutput(modelID: $0["model_id"]?.text ?? "", step: $0["step"]?.int64 ?? 0)
        }
    }

    public func createRegisteredModel(_ model: RegisteredModel) throws -> Bool {
        var body = "{\"name\":\(JSONText.quote(model.name)),\"tags\":\(Self.keyValues(model.tags))"
        if let d = model.description { body += ",\"description\":" + JSONText.quote(d) }
        let (status, bytes) = try http.send(.POST, http.url("/api/2.0/mlflow/registered-models/create"), body: Array((body + "}").utf8),
                                            contentType: "application/json", idempotent: false)
        if status == 400, (try? JSONParser.parse(bytes))?["error_code"]?.text == TrackingError.Code.resourceAlreadyExists.rawValue { return false }
        guard (200..<300).contains(status) else { throw http.failure(.POST, "/api/2.0/mlflow/registered-models/create", status, bytes) }
        return true
    }

    public func createModelVersion(_ v: ModelVersion) throws -> Int64 {
        var body = "{\"name\":\(JSONText.quote(v.name)),\"source\":\(JSONText.quote(v.source)),\"tags\":\(Self.keyValues(v.tags))"
        if !v.runID.isEmpty { body += ",\"run_id\":" + JSONText.quote(v.runID) }
        if !v.runLink.isEmpty { body += ",\"run_link\":" + JSONText.quote(v.runLink) }
        if let d = v.description { body += ",\"description\":" + JSONText.quote(d) }
        if let m = v.modelID { body += ",\"model_id\":" + JSONText.quote(m) }
        let answer = try post("model-versions/create", body + "}", idempotent: false)
        guard let n = answer["model_version"]?["version"]?.int64 else {
            throw TrackingError(.internalError, "\(location): model-versions/create answered no version")
        }
        return n
    }

    public func deleteModelVersion(name: String, version: Int64) throws {
        _ = try http.json(.DELETE, "/api/2.0/mlflow/model-versions/delete", body: "{\"name\":\(JSONText.quote(name)),\"version\":\"\(version)\"}",
                          allowing: [404])
    }

    public func transitionStage(name: String, version: Int64, stage: String) throws {
        try post("model-versions/transition-stage", "{\"name\":\(JSONText.quote(name)),\"version\":\"\(version)\",\"stage\":\(JSONText.quote(stage)),"
                     + "\"archive_existing_versions\":false}")
    }

    public func setAlias(name: String, alias: String, version: Int64) throws {
        try post("registered-models/alias", "{\"name\":\(JSONText.quote(name)),\"alias\":\(JSONText.quote(alias)),\"version\":\"\(version)\"}")
    }
}
