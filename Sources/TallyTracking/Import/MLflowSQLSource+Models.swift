/// MLflow 3's logged models and the Model Registry, read from the same database (empty where the schema predates them).
extension MLflowSQLSource {
    /// The logged models of an experiment with tags, params and metrics (metric values NULL in MLflow's table read
    /// as NaN, the only value it stores that way).
    func loggedModels(experimentID: String) throws -> [LoggedModel] {
        guard has("logged_models") else { return [] }
        var out: [LoggedModel] = []
        try query("SELECT model_id, experiment_id, name, creation_timestamp_ms, last_updated_timestamp_ms, artifact_location, status, "
                     + "model_type, source_run_id, lifecycle_stage FROM logged_models WHERE experiment_id = ? ORDER BY creation_timestamp_ms, model_id",
                     [.integer(Int64(experimentID) ?? -1)]) { r in
            let status = LoggedModelStatus.allCases.first { $0.number == r[6].int ?? 0 } ?? .unspecified
            out.append(LoggedModel(modelID: r[0].string ?? "", experimentID: String(r[1].int ?? 0), name: r[2].string ?? "", creationTime: r[3].int ?? 0,
                                   lastUpdatedTime: r[4].int ?? 0, artifactURI: r[5].string ?? "", status: status, modelType: r[7].string ?? "",
                                   sourceRunID: r[8].string ?? "", lifecycleStage: LifecycleStage(rawValue: r[9].string ?? "") ?? .active))
        }
        for i in out.indices {
            let id: [SQLValue] = [.text(out[i].modelID)]
            out[i].tags = try rows("SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ? ORDER BY \(order)", id).map {
                KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
            }
            out[i].params = try rows("SELECT param_key, param_value FROM logged_model_params WHERE model_id = ? ORDER BY \(order)", id).map {
                KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
            }
            out[i].metrics = try rows("SELECT metric_name, metric_value, metric_timestamp_ms, metric_step, run_id, dataset_name, dataset_digest "
                                         + "FROM logged_model_metrics WHERE model_id = ? ORDER BY \(order)", id).map {
                ModelMetric(metric: Metric(key: $0[0].string ?? "", value: $0[1].double ?? .nan, timestamp: $0[2].int ?? 0, step: $0[3].int ?? 0),
                            modelID: out[i].modelID, runID: $0[4].string ?? "", datasetName: $0[5].string, datasetDigest: $0[6].string)
            }
        }
        return out
    }

    /// The models a run logged (`inputs` rows from the run to a model output, MLflow 3), in the order recorded.
    func runOutputs(runID: String) throws -> [ModelOutput] {
        guard has("inputs"), has("inputs", "step") else { return [] }
        return try rows("SELECT destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' AND source_id = ? "
                           + "AND destination_type = 'MODEL_OUTPUT' ORDER BY \(order)", [.text(runID)]).map {
            ModelOutput(modelID: $0[0].string ?? "", step: $0[1].int ?? 0)
        }
    }

    /// The models a run used (`inputs` rows from the run to a model input, MLflow 3), in the order recorded.
    func runModelInputs(runID: String) throws -> [ModelInput] {
        guard has("inputs") else { return [] }
        return try rows("SELECT destination_id FROM inputs WHERE source_type = 'RUN_INPUT' AND source_id = ? "
                           + "AND destination_type = 'MODEL_INPUT' ORDER BY \(order)", [.text(runID)]).map { ModelInput(modelID: $0[0].string ?? "") }
    }

    /// Every registered model with its tags and aliases, and its versions (soft-deleted ones included, as MLflow
    /// keeps them, so numbering continues the same) with their tags, by version.
    func registeredModels() throws -> [(model: RegisteredModel, versions: [ModelVersion])] {
        guard has("registered_models") else { return [] }
        var out: [(model: RegisteredModel, versions: [ModelVersion])] = []
        let scope = ofWorkspace("registered_models")
        try query("SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE \(scope.sql) ORDER BY name", scope.args) { r in
            out.append((RegisteredModel(name: r[0].string ?? "", creationTime: r[1].int ?? 0, lastUpdatedTime: r[2].int ?? 0, description: r[3].string), []))
        }
        let runLink = has("model_versions", "run_link") ? "run_link" : "NULL"
        let storage = has("model_versions", "storage_location") ? "storage_location" : "NULL"
        for i in out.indices {
            // A model is its name within its workspace (the registry's keys lead with the workspace where it has them).
            func named(_ table: String) -> (sql: String, args: [SQLValue]) {
                let w = ofWorkspace(table)
                return ("name = ? AND " + w.sql, [.text(out[i].model.name)] + w.args)
            }
            if has("registered_model_tags") {
                let name = named("registered_model_tags")
                out[i].model.tags = try rows("SELECT key, value FROM registered_model_tags WHERE \(name.sql) ORDER BY \(order)", name.args).map {
                    KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
                }
            }
            if has("registered_model_aliases") {
                let name = named("registered_model_aliases")
                out[i].model.aliases = try rows("SELECT alias, version FROM registered_model_aliases WHERE \(name.sql) ORDER BY alias", name.args).map {
                    ModelAlias(alias: $0[0].string ?? "", version: $0[1].int ?? 0)
                }
            }
            let versions = named("model_versions")
            out[i].versions = try rows("SELECT version, creation_time, last_updated_time, current_stage, description, source, run_id, \(runLink), "
                                          + "\(storage) FROM model_versions WHERE \(versions.sql) ORDER BY version", versions.args).map { r in
                ModelVersion(name: out[i].model.name, version: r[0].int ?? 0, creationTime: r[1].int ?? 0, lastUpdatedTime: r[2].int ?? 0,
                             currentStage: r[3].string ?? "None", description: r[4].string, source: r[5].string ?? "", runID: r[6].string ?? "",
                             runLink: r[7].string ?? "", modelID: nil, storageLocation: r[8].string ?? "")
            }
            if has("model_version_tags") {
                let name = named("model_version_tags")
                for j in out[i].versions.indices {
                    out[i].versions[j].tags = try rows("SELECT key, value FROM model_version_tags WHERE \(name.sql) AND version = ? ORDER BY \(order)",
                                                          name.args + [.integer(out[i].versions[j].version)]).map {
                        KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
                    }
                }
            }
        }
        return out
    }
}
