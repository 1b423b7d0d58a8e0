/// MLflow 3's registered scorers, read from the same database (none where the schema predates them).
extension MLflowSQLSource {
    func scorers(experimentID: String) throws -> (versions: [ScorerVersion], configs: [OnlineScoringConfig]) {
        guard has("scorers"), has("scorer_versions"), let e = Int64(experimentID) else { return ([], []) }
        func text(_ v: SQLValue) -> String { v.int.map { String($0) } ?? v.string ?? "" }  // MLflow's experiment ids are integers
        var versions: [ScorerVersion] = []
        try query("SELECT s.scorer_id, s.experiment_id, s.scorer_name, v.scorer_version, v.serialized_scorer, v.creation_time FROM scorers s "
                  + "JOIN scorer_versions v ON v.scorer_id = s.scorer_id WHERE s.experiment_id = ? ORDER BY s.scorer_name, v.scorer_version", [.integer(e)]) { r in
            versions.append(ScorerVersion(scorerID: r[0].string ?? "", experimentID: text(r[1]), name: r[2].string ?? "", version: r[3].int ?? 0,
                                          serialized: r[4].string ?? "", creationTime: r[5].int ?? 0))
        }
        var configs: [OnlineScoringConfig] = []
        if has("online_scoring_configs") {
            try query("SELECT c.online_scoring_config_id, c.scorer_id, c.experiment_id, c.sample_rate, c.filter_string FROM online_scoring_configs c "
                      + "JOIN scorers s ON s.scorer_id = c.scorer_id WHERE s.experiment_id = ? ORDER BY c.online_scoring_config_id", [.integer(e)]) { r in
                configs.append(OnlineScoringConfig(id: r[0].string ?? "", scorerID: r[1].string ?? "", experimentID: text(r[2]), sampleRate: r[3].double ?? 0,
                                                   filterString: r[4].string))
            }
        }
        return (versions, configs)
    }
}
