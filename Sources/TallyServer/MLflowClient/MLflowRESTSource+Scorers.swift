import NIOHTTP1
import TallyTracking

/// Registered scorers through MLflow's API (3.x; none from an older server, which answers 404, nor from a deleted
/// experiment, which MLflow's API refuses with 400).
extension MLflowRESTSource {
    /// Every version of each of the experiment's scorers (ids, numbers and times kept), and their online-scoring settings.
    public func scorers(experimentID: String) throws -> (versions: [ScorerVersion], configs: [OnlineScoringConfig]) {
        let path = "/api/3.0/mlflow/scorers/"
        guard let listed = try http.json(.GET, path + "list", query: [("experiment_id", experimentID)], allowing: [400, 404]) else { return ([], []) }
        var versions: [ScorerVersion] = []
        for s in listed["scorers"].items {
            let name = s["scorer_name"]?.text ?? ""
            let all = try http.json(.GET, path + "versions", query: [("experiment_id", experimentID), ("name", name)], allowing: [404])
            versions += (all?["scorers"]).items.map { v in
                ScorerVersion(scorerID: v["scorer_id"]?.text ?? "", experimentID: experimentID, name: name, version: v["scorer_version"]?.int64 ?? 0,
                              serialized: v["serialized_scorer"]?.text ?? "", creationTime: v["creation_time"]?.int64 ?? 0)
            }
        }
        var configs: [OnlineScoringConfig] = []
        let ids = Array(Set(versions.map(\.scorerID))).sorted()
        for start in stride(from: 0, to: ids.count, by: 50) {
            let chunk = ids[start..<min(start + 50, ids.count)]
            let found = try http.json(.GET, path + "online-configs", query: chunk.map { ("scorer_ids", $0) }, allowing: [404])
            configs += (found?["configs"]).items.map { c in
                OnlineScoringConfig(id: c["online_scoring_config_id"]?.text ?? "", scorerID: c["scorer_id"]?.text ?? "", experimentID: experimentID,
                                    sampleRate: c["sample_rate"]?.double ?? 0, filterString: c["filter_string"]?.text)
            }
        }
        return (versions, configs)
    }
}

/// Registered scorers sent to MLflow (`tally export mlflow`).
extension MLflowRESTDestination {
    public func scorerExists(experimentID: String, name: String) throws -> Bool {
        try http.json(.GET, "/api/3.0/mlflow/scorers/get", query: [("experiment_id", experimentID), ("name", name)], allowing: [404]) != nil
    }

    public func registerScorer(experimentID: String, name: String, serialized: String) throws {
        let body = "{\"experiment_id\":" + JSONText.quote(experimentID) + ",\"name\":" + JSONText.quote(name) + ",\"serialized_scorer\":"
            + JSONText.quote(serialized) + "}"
        _ = try http.json(.POST, "/api/3.0/mlflow/scorers/register", body: body, idempotent: false)
    }

    public func deleteScorer(experimentID: String, name: String) throws {
        _ = try http.json(.DELETE, "/api/3.0/mlflow/scorers/delete",
                          body: "{\"experiment_id\":" + JSONText.quote(experimentID) + ",\"name\":" + JSONText.quote(name) + "}", allowing: [404])
    }

    public func setOnlineScoringConfig(experimentID: String, name: String, _ config: OnlineScoringConfig) throws {
        var body = "{\"experiment_id\":" + JSONText.quote(experimentID) + ",\"name\":" + JSONText.quote(name) + ",\"sample_rate\":" + config.sampleRateText
        if let f = config.filterString { body += ",\"filter_string\":" + JSONText.quote(f) }
        _ = try http.json(.PUT, "/api/3.0/mlflow/scorers/online-config", body: body + "}")
    }
}
