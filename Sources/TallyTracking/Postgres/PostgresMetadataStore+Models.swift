import TallyStore

extension PostgresMetadataStore {
    // MARK: Logged models

    public func insertLoggedModel(_ m: LoggedModel) throws {
        try write { c in
            try c.run("INSERT INTO logged_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [.text(m.modelID), .integer(Int64(m.experimentID) ?? 0), .text(m.name), .integer(m.creationTime), .integer(m.lastUpdatedTime),
                       .text(m.artifactURI), .integer(m.status.number), .text(m.modelType), .text(m.sourceRunID), .text(m.lifecycleStage.rawValue)])
            try Self.upsert(c, "logged_model_tags", id: m.modelID, m.tags)
            try Self.upsert(c, "logged_model_params", id: m.modelID, m.params)
        }
    }

    /// Upserts `(model_id, key, value)` rows of a logged model (``upsertPairs(_:into:owner:id:_:)``).
    static func upsert(_ c: PostgresDatabase.Connection, _ table: String, id: String, _ pairs: [KeyValue]) throws {
        try upsertPairs(c, into: table, owner: "model_id", id: .text(id), pairs)
    }

    /// Upserts `(owner, key, value)` rows of `table` in one statement over arrays, the last of equal keys winning (a
    /// statement may not update one row twice): in key order (the lock order of concurrent writers), or with
    /// `inOrderGiven` in the order of first appearance, for a table read back in insertion order whose owner row is new.
    static func upsertPairs(_ c: PostgresDatabase.Connection, into table: String, owner: String, id: SQLValue, _ pairs: [KeyValue],
                            inOrderGiven: Bool = false) throws {
        let unique = TrackingService.lastWins(pairs)
        let rows = inOrderGiven ? unique : unique.sorted { binaryLess($0.key, $1.key) }
        guard !rows.isEmpty else { return }
        let ids: PostgresDatabase.Connection.Column = switch id {
        case .integer(let n): .integers(Array(repeating: n, count: rows.count))
        default: .texts(Array(repeating: id.string ?? "", count: rows.count))
        }
        try c.rows("INSERT INTO \(table) (\(owner), key, value) SELECT v.owner, v.key, v.value FROM unnest(?, ?, ?) WITH ORDINALITY AS v(owner, key, value, n) "
                   + "ORDER BY n ON CONFLICT (\(owner), key) DO UPDATE SET value = excluded.value",
                   arrays: [ids, .texts(rows.map(\.key)), .texts(rows.map(\.value))])
    }

    public func loggedModel(id: String) throws -> LoggedModel? {
        try conn { try SQLiteMetadataStore.loggedModels($0, where: "model_id = ?", [.text(id)]).first }
    }

    public func activeLoggedModelIDs(_ ids: [String]) throws -> [String] {
        try conn { try SQLiteMetadataStore.activeLoggedModelIDs($0, ids) }
    }

    public func loggedModels(experimentIDs: [Int64]) throws -> [LoggedModel] {
        guard !experimentIDs.isEmpty else { return [] }
        return try conn {
            try SQLiteMetadataStore.loggedModels($0, where: "experiment_id IN (\(sqlMarks(experimentIDs.count))) AND lifecycle_stage = 'active'",
                                                 experimentIDs.map(SQLValue.integer))
        }
    }

    public func setLoggedModelStatus(id: String, _ status: LoggedModelStatus, now: Int64) throws {
        try conn { try $0.run("UPDATE logged_models SET status = ?, last_updated_time = ? WHERE model_id = ?", [.integer(status.number), .integer(now), .text(id)]) }
    }

    public func deleteLoggedModel(id: String, now: Int64) throws {
        try conn { try $0.run("UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)]) }
    }

    public func setLoggedModelTags(id: String, _ tags: [KeyValue], now: Int64) throws {
        try write { c in
            try Self.upsert(c, "logged_model_tags", id: id, tags)
            try c.run("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)])
        }
    }

    public func deleteLoggedModelTag(id: String, key: String, now: Int64) throws -> Bool {
        try write { c in
            let n = try c.run("DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", [.text(id), .text(key)])
            if n > 0 { try c.run("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)]) }
            return n > 0
        }
    }

    public func setLoggedModelParams(id: String, _ params: [KeyValue], now: Int64) throws {
        try write { c in
            try Self.upsert(c, "logged_model_params", id: id, params)
            try c.run("UPDATE logged_models SET last_updated_time = ? WHERE model_id = ?", [.integer(now), .text(id)])
        }
    }

    public func insertModelMetrics(_ metrics: [ModelMetric]) throws {
        guard !metrics.isEmpty else { return }
        try write { c in
            // Positions are the model's: its row is locked while they are given (models in id order: no deadlock).
            var next: [String: Int64] = [:]
            for id in Set(metrics.map(\.modelID)).sorted() {
                try c.run("SELECT 1 FROM logged_models WHERE model_id = ? FOR UPDATE", [.text(id)])
                next[id] = try c.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM logged_model_metrics WHERE model_id = ?", [.text(id)]).first?.first?.int ?? 0
            }
            for m in metrics {
                let v = m.metric.value
                // An exact repeat (a retried request) is stored once, as MLflow's metric tables do.
                let added = try c.run("INSERT INTO logged_model_metrics VALUES (?, ?, ?, ?, ? <> 0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                      [.text(m.modelID), .integer(next[m.modelID]!), .text(m.metric.key), .real(v.isNaN ? 0 : v), .integer(v.isNaN ? 1 : 0),
                                       .integer(m.metric.timestamp), .integer(m.metric.step), .text(m.runID), .text(m.datasetName ?? ""),
                                       .text(m.datasetDigest ?? "")])
                next[m.modelID]! += Int64(added)
            }
        }
    }

    // MARK: Model Registry

    public func insertRegisteredModel(_ m: RegisteredModel) throws -> Bool {
        try write { c in
            guard try c.run("INSERT INTO registered_models VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            [.text(m.name), .integer(m.creationTime), .integer(m.lastUpdatedTime), m.description.map(SQLValue.text) ?? .null]) == 1 else {
                return false
            }
            try SQLiteMetadataStore.dropLeftovers(c, under: m.name)
            try Self.upsertPairs(c, into: "registered_model_tags", owner: "name", id: .text(m.name), m.tags, inOrderGiven: true)
            return true
        }
    }

    public func registeredModel(named name: String) throws -> RegisteredModel? {
        try conn { try SQLiteMetadataStore.registeredModels($0, name: name).first }
    }

    public func registeredModels() throws -> [RegisteredModel] {
        try conn { try SQLiteMetadataStore.registeredModels($0, name: nil) }
    }

    public func renameRegisteredModel(_ name: String, to newName: String, now: Int64) throws -> Bool {
        try write { c in
            guard try attempt(c, "UPDATE registered_models SET name = ?, last_updated_time = ? WHERE name = ?", [.text(newName), .integer(now), .text(name)]) else {
                return false
            }
            try SQLiteMetadataStore.dropLeftovers(c, under: newName)
            // The versions' rows right after the model's: an alias or version tag being written holds its version's row
            // (FOR SHARE) until it commits, so the tables after are updated once it is there to see.
            for table in ["model_versions", "registered_model_tags", "registered_model_aliases", "model_version_tags"] {
                try c.run("UPDATE \(table) SET name = ? WHERE name = ?", [.text(newName), .text(name)])
            }
            return true
        }
    }

    public func updateRegisteredModel(_ name: String, description: String?, now: Int64) throws {
        try conn {
            try $0.run("UPDATE registered_models SET description = ?, last_updated_time = ? WHERE name = ?",
                       [description.map(SQLValue.text) ?? .null, .integer(now), .text(name)])
        }
    }

    public func deleteRegisteredModel(_ name: String) throws {
        try write { c in
            for table in ["registered_models", "model_versions", "registered_model_tags", "registered_model_aliases", "model_version_tags"] {  // as a rename
                try c.run("DELETE FROM \(table) WHERE name = ?", [.text(name)])
            }
        }
    }

    public func setRegisteredModelTag(_ name: String, _ tag: KeyValue) throws {
        try write { try SQLiteMetadataStore.setRegisteredModelTag($0, name, tag) }
    }

    public func deleteRegisteredModelTag(_ name: String, key: String) throws {
        try conn { try $0.run("DELETE FROM registered_model_tags WHERE name = ? AND key = ?", [.text(name), .text(key)]) }
    }

    public func setModelAlias(_ name: String, alias: String, version: Int64) throws {
        try write { try SQLiteMetadataStore.setModelAlias($0, name, alias: alias, version: version) }
    }

    public func deleteModelAlias(_ name: String, alias: String) throws {
        try conn { try $0.run("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(name), .text(alias)]) }
    }

    public func insertModelVersion(_ v: ModelVersion) throws -> ModelVersion? {
        try write { c in
            // The model's row is locked while its next number is taken: two servers never give one number twice, and
            // a model another server deleted or renamed since the caller read it gets no version.
            guard try !c.rows("SELECT 1 FROM registered_models WHERE name = ? FOR UPDATE", [.text(v.name)]).isEmpty else { return nil }
            var v = v
            v.version = try c.rows("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?", [.text(v.name)]).first?.first?.int ?? 1
            try c.run("INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [.text(v.name), .integer(v.version), .integer(v.creationTime), .integer(v.lastUpdatedTime), .text(v.currentStage),
                       v.description.map(SQLValue.text) ?? .null, .text(v.source), .text(v.runID), .text(v.runLink),
                       v.modelID.map(SQLValue.text) ?? .null, .text(v.storageLocation)])
            let tags = TrackingService.lastWins(v.tags)
            if !tags.isEmpty {
                try c.rows("INSERT INTO model_version_tags (name, version, key, value) SELECT name, version, key, value "
                           + "FROM unnest(?, ?, ?, ?) WITH ORDINALITY AS t(name, version, key, value, n) ORDER BY n "
                           + "ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                           arrays: [.texts(Array(repeating: v.name, count: tags.count)), .integers(Array(repeating: v.version, count: tags.count)),
                                    .texts(tags.map(\.key)), .texts(tags.map(\.value))])
            }
            try c.run("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", [.integer(v.creationTime), .text(v.name)])
            return v
        }
    }

    public func modelVersions(named name: String?) throws -> [ModelVersion] {
        try conn { try SQLiteMetadataStore.modelVersions($0, name: name) }
    }

    public func updateModelVersion(_ name: String, version: Int64, description: String??, stage: String?, now: Int64) throws {
        try write { c in
            if let description {
                try c.run("UPDATE model_versions SET description = ? WHERE name = ? AND version = ?", [description.map(SQLValue.text) ?? .null, .text(name), .integer(version)])
            }
            if let stage { try c.run("UPDATE model_versions SET current_stage = ? WHERE name = ? AND version = ?", [.text(stage), .text(name), .integer(version)]) }
            try c.run("UPDATE model_versions SET last_updated_time = ? WHERE name = ? AND version = ?", [.integer(now), .text(name), .integer(version)])
        }
    }

    public func deleteModelVersion(_ name: String, version: Int64, now: Int64) throws {
        try write { c in
            // The model's row first, then the version's, as a version's insert and the model's rename and delete take
            // them (the other order deadlocked with a rename: 40P01, a 503).
            try c.run("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", [.integer(now), .text(name)])
            try c.run("UPDATE model_versions SET current_stage = ?, source = 'REDACTED-SOURCE-PATH', run_id = '', run_link = '', "
                      + "storage_location = '', last_updated_time = ? WHERE name = ? AND version = ?",
                      [.text(SQLiteMetadataStore.deletedStage), .integer(now), .text(name), .integer(version)])
            try c.run("DELETE FROM model_version_tags WHERE name = ? AND version = ?", [.text(name), .integer(version)])
            try c.run("DELETE FROM registered_model_aliases WHERE name = ? AND version = ?", [.text(name), .integer(version)])
        }
    }

    public func setModelVersionTag(_ name: String, version: Int64, _ tag: KeyValue) throws {
        try write { try SQLiteMetadataStore.setModelVersionTag($0, name, version: version, tag) }
    }

    public func deleteModelVersionTag(_ name: String, version: Int64, key: String) throws {
        try conn { try $0.run("DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?", [.text(name), .integer(version), .text(key)]) }
    }
}
