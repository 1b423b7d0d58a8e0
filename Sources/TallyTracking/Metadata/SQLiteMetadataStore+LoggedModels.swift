extension SQLiteMetadataStore {
    /// Version 3: MLflow 3's logged models (tags, params, the metric points logged against them) and the models a
    /// run logged. Plain tables keyed like MLflow's, so the PostgreSQL backend can share the design.
    static let schemaVersion3 = """
        CREATE TABLE logged_models (
            model_id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id), name TEXT NOT NULL,
            creation_time INTEGER NOT NULL, last_updated_time INTEGER NOT NULL, artifact_uri TEXT NOT NULL, status INTEGER NOT NULL,
            model_type TEXT NOT NULL, source_run_id TEXT NOT NULL, lifecycle_stage TEXT NOT NULL);
        CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, lifecycle_stage);
        CREATE TABLE logged_model_tags (
            model_id TEXT NOT NULL REFERENCES logged_models(model_id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (model_id, key));
        CREATE TABLE logged_model_params (
            model_id TEXT NOT NULL REFERENCES logged_models(model_id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (model_id, key));
        CREATE TABLE logged_model_metrics (
            model_id TEXT NOT NULL REFERENCES logged_models(model_id), position INTEGER NOT NULL, key TEXT NOT NULL, value REAL NOT NULL,
            is_nan INTEGER NOT NULL, timestamp INTEGER NOT NULL, step INTEGER NOT NULL, run_id TEXT NOT NULL, dataset_name TEXT NOT NULL,
            dataset_digest TEXT NOT NULL, PRIMARY KEY (model_id, position),
            UNIQUE (model_id, key, timestamp, step, value, is_nan, run_id, dataset_name, dataset_digest));
        CREATE TABLE run_outputs (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), model_id TEXT NOT NULL, step INTEGER NOT NULL, position INTEGER NOT NULL,
            PRIMARY KEY (run_uuid, model_id));
        """

    static let loggedModelColumns = "model_id, experiment_id, name, creation_time, last_updated_time, artifact_uri, status, model_type, "
        + "source_run_id, lifecycle_stage"

    public func insertRunOutputs(runID: String, _ outputs: [ModelOutput]) throws {
        try with { db in
            var position = try db.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM run_outputs WHERE run_uuid = ?", [.text(runID)]).first?.first?.int ?? 0
            for o in outputs {
                let added = try db.run("INSERT OR IGNORE INTO run_outputs VALUES (?, ?, ?, ?)", [.text(runID), .text(o.modelID), .integer(o.step), .integer(position)])
                position += Int64(added)
            }
        }
    }

    public func insertRunModelInputs(runID: String, _ inputs: [ModelInput]) throws {
        try with { db in
            var position = try db.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM run_model_inputs WHERE run_uuid = ?", [.text(runID)]).first?.first?.int ?? 0
            for i in inputs {
                position += Int64(try db.run("INSERT OR IGNORE INTO run_model_inputs VALUES (?, ?, ?)", [.text(runID), .text(i.modelID), .integer(position)]))
            }
        }
    }

    public func runModelInputs(runID: String) throws -> [ModelInput] {
        try with { db in
            try db.rows("SELECT model_id FROM run_model_inputs WHERE run_uuid = ? ORDER BY position", [.text(runID)]).map { ModelInput(modelID: $0[0].string ?? "") }
        }
    }

    public func runOutputs(runID: String) throws -> [ModelOutput] {
        try with { db in
            try db.rows("SELECT model_id, step FROM run_outputs WHERE run_uuid = ? ORDER BY position", [.text(runID)]).map {
                ModelOutput(modelID: $0[0].string ?? "", step: $0[1].int ?? 0)
            }
        }
    }

    public func runOutputs(runIDs: [String]) throws -> [String: [ModelOutput]] {
        try with { db in try Self.runOutputs(db, runIDs) }
    }

    /// The models each of `runIDs` logged, asked 500 runs at a time.
    static func runOutputs(_ db: some SQLConnection, _ runIDs: [String]) throws -> [String: [ModelOutput]] {
        var out: [String: [ModelOutput]] = [:]
        for start in stride(from: 0, to: runIDs.count, by: 500) {
            let chunk = runIDs[start..<min(runIDs.count, start + 500)]
            try db.query("SELECT run_uuid, model_id, step FROM run_outputs WHERE run_uuid IN (\(chunk.map { _ in "?" }.joined(separator: ", "))) "
                         + "ORDER BY run_uuid, position", chunk.map(SQLValue.text)) { r in
                out[r[0].string ?? "", default: []].append(ModelOutput(modelID: r[1].string ?? "", step: r[2].int ?? 0))
            }
        }
        return out
    }

    public func insertLoggedModel(_ m: LoggedModel) throws {
        try transaction {
            try with { db in
                try db.run("INSERT INTO logged_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [.text(m.modelID), .integer(Int64(m.experimentID) ?? 0), .text(m.name), .integer(m.creationTime), .integer(m.lastUpdatedTime),
                            .text(m.artifactURI), .integer(m.status.number), .text(m.modelType), .text(m.sourceRunID), .text(m.lifecycleStage.rawValue)])
                for t in m.tags { try db.run("INSERT OR REPLACE INTO logged_model_tags VALUES (?, ?, ?)", [.text(m.modelID), .text(t.key), .text(t.value)]) }
                for p in m.params { try db.run("INSERT OR REPLACE INTO logged_model_params VALUES (?, ?, ?)", [.text(m.modelID), .text(p.key), .text(p.value)]) }
            }
        }
    }

    public func loggedModel(id: String) throws -> LoggedModel? {
        try with { db in
            try Self.loggedModels(db, where: "model_id = ?", [.text(id)]).first
        }
    }

    public func activeLoggedModelIDs(_ ids: [String]) throws -> [String] {
        try with { db in try Self.activeLoggedModelIDs(db, ids) }
    }

    /// Which of `ids` are active logged models, asked 500 at a time.
    static func activeLoggedModelIDs(_ db: some SQLConnection, _ ids: [String]) throws -> [String] {
        var found: [String] = []
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = ids[start..<min(ids.count, start + 500)]
            found += try db.rows("SELECT model_id FROM logged_models WHERE model_id IN (\(chunk.map { _ in "?" }.joined(separator: ", "))) "
                                 + "AND lifecycle_stage = 'active'", chunk.map(SQLValue.text)).compactMap { $0[0].string }
        }
        return found
    }

    public func loggedModels(experimentIDs: [Int64]) throws -> [LoggedModel] {
        guard !experimentIDs.isEmpty else { return [] }
        return try with { db in
            try Self.loggedModels(db, where: "experiment_id IN (\(experimentIDs.map { _ in "?" }.joined(separator: ", "))) AND lifecycle_stage = 'active'",
                                  experimentIDs.map(SQLValue.integer))
        }
    }

    /// Models matching a condition, with their tags, params and metrics.
    static func loggedModels(_ db: some SQLConnection, where condition: String, _ values: [SQLValue]) throws -> [LoggedModel] {
        var models = try db.rows("SELECT \(loggedModelColumns) FROM logged_models WHERE \(condition)", values).map { r in
            LoggedModel(modelID: r[0].string ?? "", experimentID: String(r[1].int ?? 0), name: r[2].string ?? "", creationTime: r[3].int ?? 0,
                        lastUpdatedTime: r[4].int ?? 0, artifactURI: r[5].string ?? "", status: LoggedModelStatus(number: r[6].int ?? 0) ?? .unspecified,
                        modelType: r[7].string ?? "", sourceRunID: r[8].string ?? "", lifecycleStage: LifecycleStage(rawValue: r[9].string ?? "") ?? .active)
        }
        guard !models.isEmpty else { return [] }
        var index: [String: Int] = [:]
        for (i, m) in models.enumerated() { index[m.modelID] = i }
        let children = { (table: String) in
            "SELECT model_id, key, value FROM \(table) WHERE model_id IN (SELECT model_id FROM logged_models WHERE \(condition)) ORDER BY model_id, key"
        }
        try db.query(children("logged_model_tags"), values) { r in
            if let i = index[r[0].string ?? ""] { models[i].tags.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? "")) }
        }
        try db.query(children("logged_model_params"), values) { r in
            if let i = index[r[0].string ?? ""] { models[i].params.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? "")) }
        }
        try db.query("SELECT model_id, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest FROM logged_model_metrics "
                     + "WHERE model_id IN (SELECT model_id FROM logged_models WHERE \(condition)) ORDER BY model_id, position", values) { r in
            guard let i = index[r[0].string ?? ""] else { return }
            let value = (r[3].int ?? 0) != 0 ? Double.nan : (r[2].double ?? 0)
            let dataset = { (v: SQLValue) in v.string.flatMap { $0.isEmpty ? nil : $0 } }
            models[i].metrics.append(ModelMetric(metric: Metric(key: r[1].string ?? "", value: value, timestamp: r[4].int ?? 0, step: r[5].int ?? 0),
                                                 modelID: models[i].modelID, runID: r[6].string ?? "", datasetName: dataset(r[7]),
                                                 datasetDigest: dataset(r[8])))
        }
        for i in models.indices {
            models[i].tags.sort { binaryLess($0.key, $1.key) }
            models[i].params.sort { binaryLess($0.key, $1.key) }
        }
        return models
    }

    public func setLoggedModelStatus(id: String, _ status: LoggedModelStatus, now: Int64) throws {
        try with { db in
            _ = try db.run("UPDATE logged_models SET status = ?, last_updated_time = ? WHERE model_id = ?", [.integer(status.number), .integer(now), .text(id)])
        }
    }

    public func deleteLoggedModel(id: String, now: Int64) throws {
        try with { db in
            _ = try db.run("UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)])
        }
    }

    public func setLoggedModelTags(id: String, _ tags: [KeyValue], now: Int64) throws {
        try transaction {
            try with { db in
                for t in tags { try db.run("INSERT OR REPLACE INTO logged_model_tags VALUES (?, ?, ?)", [.text(id), .text(t.key), .text(t.value)]) }
                _ = try db.run("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)])
            }
        }
    }

    public func deleteLoggedModelTag(id: String, key: String, now: Int64) throws -> Bool {
        try transaction {
            try with { db in
                let n = try db.run("DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", [.text(id), .text(key)])
                if n > 0 { _ = try db.run("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)]) }
                return n > 0
            }
        }
    }

    public func setLoggedModelParams(id: String, _ params: [KeyValue], now: Int64) throws {
        try transaction {
            try with { db in
                for p in params { try db.run("INSERT OR REPLACE INTO logged_model_params VALUES (?, ?, ?)", [.text(id), .text(p.key), .text(p.value)]) }
                _ = try db.run("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)])
            }
        }
    }

    public func insertModelMetrics(_ metrics: [ModelMetric]) throws {
        guard !metrics.isEmpty else { return }
        try transaction {
            try with { db in
                var next: [String: Int64] = [:]
                for m in metrics {
                    let position: Int64
                    if let p = next[m.modelID] {
                        position = p
                    } else {
                        position = try db.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM logged_model_metrics WHERE model_id = ?",
                                               [.text(m.modelID)]).first?.first?.int ?? 0
                    }
                    let v = m.metric.value
                    // An exact repeat (a retried request) is stored once, as MLflow's metric tables do.
                    let added = try db.run("INSERT OR IGNORE INTO logged_model_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                           [.text(m.modelID), .integer(position), .text(m.metric.key), .real(v.isNaN ? 0 : v), .integer(v.isNaN ? 1 : 0),
                                            .integer(m.metric.timestamp), .integer(m.metric.step), .text(m.runID),
                                            .text(m.datasetName ?? ""), .text(m.datasetDigest ?? "")])
                    next[m.modelID] = position + Int64(added)
                }
            }
        }
    }
}
