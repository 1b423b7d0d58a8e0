import TallyStore

extension SQLiteMetadataStore {
    /// Version 4: the Model Registry (tags listed in the order they were first set, as MLflow lists them). Names are keys (renames update them, deletes cascade by hand); a deleted version
    /// keeps its row (stage `Deleted_Internal`, source and run cleared) so its number is never given again.
    static let schemaVersion4 = """
        CREATE TABLE registered_models (
            name TEXT PRIMARY KEY, creation_time INTEGER NOT NULL, last_updated_time INTEGER NOT NULL, description TEXT);
        CREATE TABLE registered_model_tags (name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, key));
        CREATE TABLE registered_model_aliases (name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, alias));
        CREATE TABLE model_versions (
            name TEXT NOT NULL, version INTEGER NOT NULL, creation_time INTEGER NOT NULL, last_updated_time INTEGER NOT NULL,
            current_stage TEXT NOT NULL, description TEXT, source TEXT NOT NULL, run_id TEXT NOT NULL, run_link TEXT NOT NULL,
            model_id TEXT, storage_location TEXT NOT NULL, PRIMARY KEY (name, version));
        CREATE TABLE model_version_tags (
            name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, version, key));
        """

    /// The stage a deleted version keeps (never shown).
    static let deletedStage = ModelVersion.deletedStage

    public func insertRegisteredModel(_ m: RegisteredModel) throws -> Bool {
        try transaction {
            try registryWrite { db in
                do {
                    try db.run("INSERT INTO registered_models VALUES (?, ?, ?, ?)",
                               [.text(m.name), .integer(m.creationTime), .integer(m.lastUpdatedTime), m.description.map(SQLValue.text) ?? .null])
                } catch let e as SQLiteError where e.isConstraint {
                    return false
                }
                try Self.dropLeftovers(db, under: m.name)
                for t in m.tags { try db.run("INSERT INTO registered_model_tags VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value", [.text(m.name), .text(t.key), .text(t.value)]) }
                return true
            }
        }
    }

    public func registeredModel(named name: String) throws -> RegisteredModel? {
        // One model: from the snapshot when there is one, else its own rows (a run of writes, each reading its model
        // first, must not reload the whole registry every time).
        try locked { st in try st.registry.map { $0.models[ExactKey(name)] } ?? Self.registeredModels(st.db, name: name).first }
    }

    public func registeredModels() throws -> [RegisteredModel] {
        try registry { $0.models.values.sorted { KeyOrder.less($0.name, $1.name) } }
    }

    // Writes under a model or a version, in the SQL both stores run: each inserts only while what it belongs to is
    // there, kept so (``SQLConnection/locking(_:)``) until it commits. A model deleted or
    // renamed, or a version deleted, through another server (or thread) after the service looked is MLflow's 404,
    // never a row left under a name that is gone (which a later model of that name would inherit).

    static func setRegisteredModelTag(_ db: some SQLConnection, _ name: String, _ tag: KeyValue) throws {
        guard try db.run("INSERT INTO registered_model_tags (name, key, value) SELECT name, ?, ? FROM registered_models WHERE name = ?\(db.locking(.keep)) "
                         + "ON CONFLICT (name, key) DO UPDATE SET value = excluded.value", [.text(tag.key), .text(tag.value), .text(name)]) > 0 else {
            throw TrackingService.modelNotFound(name)
        }
    }

    static func setModelAlias(_ db: some SQLConnection, _ name: String, alias: String, version: Int64) throws {
        guard try db.run("INSERT INTO registered_model_aliases (name, alias, version) SELECT name, ?, version FROM model_versions "
                         + "WHERE name = ? AND version = ? AND current_stage <> ?\(db.locking(.freeze)) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
                         [.text(alias), .text(name), .integer(version), .text(deletedStage)]) > 0 else {
            throw TrackingService.versionNotFound(name, String(version))
        }
    }

    static func setModelVersionTag(_ db: some SQLConnection, _ name: String, version: Int64, _ tag: KeyValue) throws {
        guard try db.run("INSERT INTO model_version_tags (name, version, key, value) SELECT name, version, ?, ? FROM model_versions "
                         + "WHERE name = ? AND version = ? AND current_stage <> ?\(db.locking(.freeze)) ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                         [.text(tag.key), .text(tag.value), .text(name), .integer(version), .text(deletedStage)]) > 0 else {
            throw TrackingService.versionNotFound(name, String(version))
        }
    }

    /// Drops what a name's earlier models left behind (tags, aliases, versions and their tags), once `name` is a new
    /// model's, created or renamed to, in the same transaction: rows left under a name nobody held (by a write that
    /// raced a delete or rename before those writes were checked in their own statement) are not inherited.
    static func dropLeftovers(_ db: some SQLConnection, under name: String) throws {
        for table in ["model_version_tags", "registered_model_aliases", "registered_model_tags", "model_versions"] {
            try db.run("DELETE FROM \(table) WHERE name = ?", [.text(name)])
        }
    }

    /// Runs a registry write under the lock and drops the snapshot.
    func registryWrite<R>(_ body: (SQLiteDatabase) throws -> R) throws -> R {
        try locked { st in
            st.registry = nil
            return try body(st.db)
        }
    }

    /// Reads the registry snapshot (loading it when there is none): what searches over every model or version use.
    func registry<R>(_ body: (RegistrySnapshot) throws -> R) throws -> R {
        try locked { st in
            if st.registry == nil {
                let models = try Self.registeredModels(st.db, name: nil)
                let versions = try Self.modelVersions(st.db, name: nil)
                st.registry = RegistrySnapshot(models: Dictionary(models.map { (ExactKey($0.name), $0) }, uniquingKeysWith: { a, _ in a }),
                                               versions: Dictionary(grouping: versions, by: { ExactKey($0.name) }), all: versions)
            }
            return try body(st.registry!)
        }
    }

    /// Models (one, or all with `nil`) with their tags and aliases.
    static func registeredModels(_ db: some SQLConnection, name: String?) throws -> [RegisteredModel] {
        let (cond, values): (String, [SQLValue]) = name.map { ("WHERE name = ?", [.text($0)]) } ?? ("", [])
        var models = try db.rows("SELECT name, creation_time, last_updated_time, description FROM registered_models \(cond) ORDER BY name", values).map {
            RegisteredModel(name: $0[0].string ?? "", creationTime: $0[1].int ?? 0, lastUpdatedTime: $0[2].int ?? 0, description: $0[3].string)
        }
        var index: [ExactKey: Int] = [:]
        for (i, m) in models.enumerated() { index[ExactKey(m.name)] = i }
        try db.query("SELECT name, key, value FROM registered_model_tags \(cond) ORDER BY \(db.insertionOrder)", values) { r in
            if let i = index[ExactKey(r[0].string ?? "")] { models[i].tags.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? "")) }
        }
        try db.query("SELECT name, alias, version FROM registered_model_aliases \(cond) ORDER BY name, alias", values) { r in
            if let i = index[ExactKey(r[0].string ?? "")] { models[i].aliases.append(ModelAlias(alias: r[1].string ?? "", version: r[2].int ?? 0)) }
        }
        return models
    }

    public func renameRegisteredModel(_ name: String, to newName: String, now: Int64) throws -> Bool {
        try transaction {
            try registryWrite { db in
                do {
                    _ = try db.run("UPDATE registered_models SET name = ?, last_updated_time = ? WHERE name = ?", [.text(newName), .integer(now), .text(name)])
                } catch let e as SQLiteError where e.isConstraint {
                    return false
                }
                try Self.dropLeftovers(db, under: newName)
                for table in ["registered_model_tags", "registered_model_aliases", "model_versions", "model_version_tags"] {
                    _ = try db.run("UPDATE \(table) SET name = ? WHERE name = ?", [.text(newName), .text(name)])
                }
                return true
            }
        }
    }

    public func updateRegisteredModel(_ name: String, description: String?, now: Int64) throws {
        try registryWrite { db in
            _ = try db.run("UPDATE registered_models SET description = ?, last_updated_time = ? WHERE name = ?",
                           [description.map(SQLValue.text) ?? .null, .integer(now), .text(name)])
        }
    }

    public func deleteRegisteredModel(_ name: String) throws {
        try transaction {
            try registryWrite { db in
                for table in ["registered_models", "registered_model_tags", "registered_model_aliases", "model_versions", "model_version_tags"] {
                    _ = try db.run("DELETE FROM \(table) WHERE name = ?", [.text(name)])
                }
            }
        }
    }

    public func setRegisteredModelTag(_ name: String, _ tag: KeyValue) throws {
        try registryWrite { try Self.setRegisteredModelTag($0, name, tag) }
    }

    public func deleteRegisteredModelTag(_ name: String, key: String) throws {
        try registryWrite { db in _ = try db.run("DELETE FROM registered_model_tags WHERE name = ? AND key = ?", [.text(name), .text(key)]) }
    }

    public func setModelAlias(_ name: String, alias: String, version: Int64) throws {
        try registryWrite { try Self.setModelAlias($0, name, alias: alias, version: version) }
    }

    public func deleteModelAlias(_ name: String, alias: String) throws {
        try registryWrite { db in _ = try db.run("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(name), .text(alias)]) }
    }

    public func insertModelVersion(_ v: ModelVersion) throws -> ModelVersion? {
        try transaction {
            try registryWrite { db in
                guard try !db.rows("SELECT 1 FROM registered_models WHERE name = ?", [.text(v.name)]).isEmpty else { return nil }
                var v = v
                v.version = try db.rows("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?", [.text(v.name)]).first?.first?.int ?? 1
                try db.run("INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [.text(v.name), .integer(v.version), .integer(v.creationTime), .integer(v.lastUpdatedTime), .text(v.currentStage),
                            v.description.map(SQLValue.text) ?? .null, .text(v.source), .text(v.runID), .text(v.runLink),
                            v.modelID.map(SQLValue.text) ?? .null, .text(v.storageLocation)])
                for t in v.tags {
                    try db.run("INSERT INTO model_version_tags VALUES (?, ?, ?, ?) ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value", [.text(v.name), .integer(v.version), .text(t.key), .text(t.value)])
                }
                _ = try db.run("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", [.integer(v.creationTime), .text(v.name)])
                return v
            }
        }
    }

    public func modelVersions(named name: String?) throws -> [ModelVersion] {
        guard let name else { return try registry { $0.all } }
        return try locked { st in try st.registry.map { $0.versions[ExactKey(name)] ?? [] } ?? Self.modelVersions(st.db, name: name) }
    }

    /// Live versions (of one model, or all) with tags and aliases, from the database.
    static func modelVersions(_ db: some SQLConnection, name: String?) throws -> [ModelVersion] {
        let (cond, values): (String, [SQLValue]) = name.map { ("AND name = ?", [.text($0)]) } ?? ("", [])
        var versions = try db.rows("SELECT name, version, creation_time, last_updated_time, current_stage, description, source, run_id, run_link, "
                                   + "model_id, storage_location FROM model_versions WHERE current_stage != ? \(cond) ORDER BY name, version",
                                   [.text(Self.deletedStage)] + values).map { r in
            ModelVersion(name: r[0].string ?? "", version: r[1].int ?? 0, creationTime: r[2].int ?? 0, lastUpdatedTime: r[3].int ?? 0,
                         currentStage: r[4].string ?? "None", description: r[5].string, source: r[6].string ?? "", runID: r[7].string ?? "",
                         runLink: r[8].string ?? "", modelID: r[9].string, storageLocation: r[10].string ?? "")
        }
        var index: [VersionKey: Int] = [:]
        for (i, v) in versions.enumerated() { index[VersionKey(name: ExactKey(v.name), version: v.version)] = i }
        let where_ = name == nil ? "" : "WHERE name = ?"
        try db.query("SELECT name, version, key, value FROM model_version_tags \(where_) ORDER BY \(db.insertionOrder)", values) { r in
            if let i = index[VersionKey(name: ExactKey(r[0].string ?? ""), version: r[1].int ?? 0)] {
                versions[i].tags.append(KeyValue(key: r[2].string ?? "", value: r[3].string ?? ""))
            }
        }
        try db.query("SELECT name, version, alias FROM registered_model_aliases \(where_) ORDER BY name, alias", values) { r in
            if let i = index[VersionKey(name: ExactKey(r[0].string ?? ""), version: r[1].int ?? 0)] { versions[i].aliases.append(r[2].string ?? "") }
        }
        return versions
    }

    public func updateModelVersion(_ name: String, version: Int64, description: String??, stage: String?, now: Int64) throws {
        try transaction {
            try registryWrite { db in
                if let description {
                    _ = try db.run("UPDATE model_versions SET description = ? WHERE name = ? AND version = ?",
                                   [description.map(SQLValue.text) ?? .null, .text(name), .integer(version)])
                }
                if let stage {
                    _ = try db.run("UPDATE model_versions SET current_stage = ? WHERE name = ? AND version = ?", [.text(stage), .text(name), .integer(version)])
                }
                _ = try db.run("UPDATE model_versions SET last_updated_time = ? WHERE name = ? AND version = ?", [.integer(now), .text(name), .integer(version)])
            }
        }
    }

    public func deleteModelVersion(_ name: String, version: Int64, now: Int64) throws {
        try transaction {
            try registryWrite { db in
                _ = try db.run("UPDATE model_versions SET current_stage = ?, source = 'REDACTED-SOURCE-PATH', run_id = '', run_link = '', "
                               + "storage_location = '', last_updated_time = ? WHERE name = ? AND version = ?",
                               [.text(Self.deletedStage), .integer(now), .text(name), .integer(version)])
                _ = try db.run("DELETE FROM model_version_tags WHERE name = ? AND version = ?", [.text(name), .integer(version)])
                _ = try db.run("DELETE FROM registered_model_aliases WHERE name = ? AND version = ?", [.text(name), .integer(version)])
                _ = try db.run("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", [.integer(now), .text(name)])
            }
        }
    }

    public func setModelVersionTag(_ name: String, version: Int64, _ tag: KeyValue) throws {
        try registryWrite { try Self.setModelVersionTag($0, name, version: version, tag) }
    }

    public func deleteModelVersionTag(_ name: String, version: Int64, key: String) throws {
        try registryWrite { db in
            _ = try db.run("DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?", [.text(name), .integer(version), .text(key)])
        }
    }
}

/// A model version's identity.
struct VersionKey: Hashable {
    var name: ExactKey
    var version: Int64
}

/// The Model Registry read whole: models by name, live versions by model (by version) and all of them (by name,
/// then version).
struct RegistrySnapshot {
    var models: [ExactKey: RegisteredModel]
    var versions: [ExactKey: [ModelVersion]]
    var all: [ModelVersion]
}
