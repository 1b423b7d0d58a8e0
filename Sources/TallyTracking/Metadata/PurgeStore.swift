/// What `tally gc` asks of a metadata store (MLflow's `mlflow gc`): the deleted runs, logged models and experiments
/// old enough, and their permanent deletion. Nothing in the schema cascades from `runs`, `experiments` or
/// `logged_models`: each purge deletes every row keyed by what it removes, children first, in one transaction
/// (``PurgeSQL``, the same SQL for both stores). docs/gc.md lists the tables.
public protocol PurgeStore {
    /// The runs in the `deleted` stage deleted at or before `time` (ms): MLflow's `_get_deleted_runs` (a run deleted
    /// without a deletion time is never listed).
    func deletedRunIDs(deletedBy time: Int64) throws -> [String]
    /// The logged models in the `deleted` stage last updated at or before `time` (ms; `nil`: all of them).
    func deletedLoggedModelIDs(updatedBy time: Int64?) throws -> [String]
    /// The experiments in the `deleted` stage last updated before `time` (ms; `nil`: all of them), by id.
    func deletedExperimentIDs(updatedBefore time: Int64?) throws -> [Int64]
    /// The runs of an experiment (any stage; with `deletedOnly`, those in the `deleted` stage), by id, with their
    /// artifact URIs.
    func purgeableRuns(experimentID: Int64, deletedOnly: Bool) throws -> [(id: String, artifactURI: String)]
    /// Deletes a run in the `deleted` stage (deleted at or before `deletedBy`, when given) and every row keyed by it
    /// (an issue it was the source of stays, without it), and records it purged at `now` (``purgedRunIDs(among:)``).
    /// `false` when there is no such run (restored meanwhile, and maybe deleted again since; or gone).
    func purgeRun(id: String, deletedBy: Int64?, now: Int64) throws -> Bool
    /// Deletes a logged model in the `deleted` stage (last updated at or before `updatedBy`, when given) with its tags,
    /// params and metrics; `false` when there is none.
    func purgeLoggedModel(id: String, updatedBy: Int64?) throws -> Bool
    /// Deletes an experiment in the `deleted` stage (last updated before `updatedBefore`, when given) and everything
    /// in it: its runs (any stage) and logged models, traces, datasets, tags, issues, scorers, label schemas, review
    /// queues, dataset links and the grants on it and its scorers; records it and its runs purged at `now` (its id is
    /// never given again). What it deleted (the runs' points are the caller's); `nil` when there is no such experiment.
    func purgeExperiment(id: Int64, updatedBefore: Int64?, now: Int64) throws -> PurgedExperiment?
    /// Which of `ids` were purged and are not there again (an import brings a run back with its id): their points on
    /// any server sharing the database are garbage (a server's own gc deletes its own; the others', at their next
    /// start or gc).
    func purgedRunIDs(among ids: [String]) throws -> Set<String>
}

/// What an experiment's purge deleted beside the experiment.
public struct PurgedExperiment: Sendable, Equatable {
    /// The runs, by id.
    public var runs: [String] = []
    /// How many logged models.
    public var loggedModels = 0
}

/// The purge statements, in the SQL both dialects read alike.
enum PurgeSQL {
    /// SQLite's version 18 and PostgreSQL's version 17: the runs purged, by id, with when (servers sharing a
    /// PostgreSQL database each hold their own points of a run; each drops them once it sees the run here), and the
    /// experiments purged (SQLite numbers experiments past them too: an id is never another experiment's, for the
    /// grants, links and import journals that name it).
    ///
    /// Deleted runs without a deletion time (what `tally import` wrote before it kept MLflow's) get the time of this
    /// migration, `nowMillis` (the dialect's expression): by MLflow's rule an aged gc would never select them, and
    /// their age now counts from the upgrade.
    static func schema(text: String, integer: String, nowMillis: String) -> String {
        """
        CREATE TABLE purged_runs (run_uuid \(text) PRIMARY KEY, purged_time \(integer) NOT NULL);
        CREATE TABLE purged_experiments (experiment_id \(integer) PRIMARY KEY, purged_time \(integer) NOT NULL);
        UPDATE runs SET deleted_time = \(nowMillis) WHERE lifecycle_stage = 'deleted' AND deleted_time IS NULL;
        """
    }

    /// The tables `tally metadata migrate` copies.
    static let tables = ["purged_runs", "purged_experiments"]

    static func purgedRunIDs(_ db: some SQLConnection, among ids: [String]) throws -> Set<String> {
        guard !ids.isEmpty, try !db.rows("SELECT 1 FROM purged_runs LIMIT 1", []).isEmpty else { return [] }
        var found = Set<String>()
        for chunk in ids.chunks(of: 500) {
            for r in try db.rows("SELECT p.run_uuid FROM purged_runs p WHERE p.run_uuid IN (\(sqlMarks(chunk.count))) "
                                 + "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_uuid = p.run_uuid)", chunk.map(SQLValue.text)) {
                if let id = r[0].string { found.insert(id) }
            }
        }
        return found
    }

    static func deletedRunIDs(_ db: some SQLConnection, deletedBy time: Int64) throws -> [String] {
        try db.rows("SELECT run_uuid FROM runs WHERE lifecycle_stage = 'deleted' AND deleted_time <= ? ORDER BY deleted_time, run_uuid",
                    [.integer(time)]).compactMap { $0[0].string }
    }

    static func deletedLoggedModelIDs(_ db: some SQLConnection, updatedBy time: Int64?) throws -> [String] {
        try db.rows("SELECT model_id FROM logged_models WHERE lifecycle_stage = 'deleted' AND last_updated_time <= ? ORDER BY last_updated_time, model_id",
                    [.integer(time ?? Int64.max)]).compactMap { $0[0].string }
    }

    static func deletedExperimentIDs(_ db: some SQLConnection, updatedBefore time: Int64?) throws -> [Int64] {
        var sql = "SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'deleted'"
        var values: [SQLValue] = []
        if let time {
            sql += " AND last_update_time < ?"
            values.append(.integer(time))
        }
        return try db.rows(sql + " ORDER BY experiment_id", values).compactMap { $0[0].int }
    }

    static func runs(_ db: some SQLConnection, experimentID: Int64, deletedOnly: Bool) throws -> [(id: String, artifactURI: String)] {
        try db.rows("SELECT run_uuid, artifact_uri FROM runs WHERE experiment_id = ?" + (deletedOnly ? " AND lifecycle_stage = 'deleted'" : "")
                    + " ORDER BY start_time, run_uuid", [.integer(experimentID)]).map { ($0[0].string ?? "", $0[1].string ?? "") }
    }


    /// The tables holding a run's rows, by the column naming it, children before `runs`.
    static let runChildren = [("logged_model_metrics", "run_id"), ("trace_runs", "run_id"), ("params", "run_uuid"), ("tags", "run_uuid"),
                              ("inputs", "run_uuid"), ("run_latest", "run_uuid"), ("run_outputs", "run_uuid"), ("run_model_inputs", "run_uuid")]

    /// `AND lifecycle_stage = 'deleted'`, and `AND column <op> time` with `time` given, with their values: what
    /// makes a thing still the one selected, checked again in the purge's transaction.
    static func stillSelected(_ anyStage: Bool, _ column: String, _ op: String, _ time: Int64?) -> (sql: String, values: [SQLValue]) {
        guard !anyStage else { return ("", []) }
        guard let time else { return (" AND lifecycle_stage = 'deleted'", []) }
        return (" AND lifecycle_stage = 'deleted' AND \(column) \(op) ?", [.integer(time)])
    }

    static func purgeRun(_ db: some SQLConnection, _ id: String, anyStage: Bool = false, deletedBy: Int64? = nil, now: Int64) throws -> Bool {
        // Locks the run first (PostgreSQL's child triggers lock it too, always before their own row): a restore
        // waits, then finds no run.
        let still = stillSelected(anyStage, "deleted_time", "<=", deletedBy)
        guard try !db.rows("SELECT run_uuid FROM runs WHERE run_uuid = ?" + still.sql + db.locking(.update), [.text(id)] + still.values).isEmpty else {
            return false
        }
        _ = try db.run("UPDATE issues SET source_run_id = NULL WHERE source_run_id = ?", [.text(id)])  // MLflow's SET NULL
        for (table, column) in runChildren {
            _ = try db.run("DELETE FROM \(table) WHERE \(column) = ?", [.text(id)])
        }
        _ = try db.run("INSERT INTO purged_runs VALUES (?, ?) ON CONFLICT (run_uuid) DO NOTHING", [.text(id), .integer(now)])
        return try db.run("DELETE FROM runs WHERE run_uuid = ?", [.text(id)]) > 0
    }

    static func purgeLoggedModel(_ db: some SQLConnection, _ id: String, anyStage: Bool = false, updatedBy: Int64? = nil) throws -> Bool {
        let still = stillSelected(anyStage, "last_updated_time", "<=", updatedBy)
        guard try !db.rows("SELECT model_id FROM logged_models WHERE model_id = ?" + still.sql + db.locking(.update),
                           [.text(id)] + still.values).isEmpty else { return false }
        for table in ["logged_model_tags", "logged_model_params", "logged_model_metrics"] {
            _ = try db.run("DELETE FROM \(table) WHERE model_id = ?", [.text(id)])
        }
        return try db.run("DELETE FROM logged_models WHERE model_id = ?", [.text(id)]) > 0
    }

    static func purgeExperiment(_ db: some SQLConnection, _ id: Int64, updatedBefore: Int64? = nil, now: Int64) throws -> PurgedExperiment? {
        let still = stillSelected(false, "last_update_time", "<", updatedBefore)
        guard try !db.rows("SELECT experiment_id FROM experiments WHERE experiment_id = ?" + still.sql + db.locking(.update),
                           [.integer(id)] + still.values).isEmpty else {
            return nil
        }
        var purged = PurgedExperiment()
        for run in try runs(db, experimentID: id, deletedOnly: false) {
            if try purgeRun(db, run.id, anyStage: true, now: now) { purged.runs.append(run.id) }
        }
        let models = try db.rows("SELECT model_id FROM logged_models WHERE experiment_id = ?", [.integer(id)]).compactMap { $0[0].string }
        for model in models {
            if try purgeLoggedModel(db, model, anyStage: true) { purged.loggedModels += 1 }
        }
        _ = try TraceSQL.delete(db, experimentID: id, ids: nil, maxTime: nil, limit: nil)
        let key = String(id)
        // Review queues before the traces' and schemas' rows they list (their users, schemas and items cascade).
        for table in ["review_queues", "label_schemas", "issues", "scorers", "online_scoring_configs", "evaluation_dataset_experiments"] {
            _ = try db.run("DELETE FROM \(table) WHERE experiment_id = ?", [.text(key)])
        }
        for table in ["datasets", "experiment_tags"] {
            _ = try db.run("DELETE FROM \(table) WHERE experiment_id = ?", [.integer(id)])
        }
        // Grants on the experiment and its scorers (`<id>/<name>`): with SQLite's ids reused, they would be another
        // experiment's.
        _ = try db.run("DELETE FROM user_grants WHERE (resource_type = 'experiment' AND resource_id = ?) OR (resource_type = 'scorer' AND resource_id LIKE ?)",
                       [.text(key), .text(key + "/%")])
        _ = try db.run("INSERT INTO purged_experiments VALUES (?, ?) ON CONFLICT (experiment_id) DO NOTHING", [.integer(id), .integer(now)])
        _ = try db.run("DELETE FROM experiments WHERE experiment_id = ?", [.integer(id)])
        return purged
    }
}

extension SQLiteMetadataStore: PurgeStore {
    public func deletedRunIDs(deletedBy time: Int64) throws -> [String] { try with { try PurgeSQL.deletedRunIDs($0, deletedBy: time) } }
    public func deletedLoggedModelIDs(updatedBy time: Int64?) throws -> [String] {
        try with { try PurgeSQL.deletedLoggedModelIDs($0, updatedBy: time) }
    }
    public func deletedExperimentIDs(updatedBefore time: Int64?) throws -> [Int64] {
        try with { try PurgeSQL.deletedExperimentIDs($0, updatedBefore: time) }
    }
    public func purgeableRuns(experimentID: Int64, deletedOnly: Bool) throws -> [(id: String, artifactURI: String)] {
        try with { try PurgeSQL.runs($0, experimentID: experimentID, deletedOnly: deletedOnly) }
    }
    public func purgeRun(id: String, deletedBy: Int64?, now: Int64) throws -> Bool {
        try purging { try PurgeSQL.purgeRun($0, id, deletedBy: deletedBy, now: now) }
    }
    public func purgeLoggedModel(id: String, updatedBy: Int64?) throws -> Bool { try purging { try PurgeSQL.purgeLoggedModel($0, id, updatedBy: updatedBy) } }
    public func purgeExperiment(id: Int64, updatedBefore: Int64?, now: Int64) throws -> PurgedExperiment? {
        try purging { try PurgeSQL.purgeExperiment($0, id, updatedBefore: updatedBefore, now: now) }
    }
    public func purgedRunIDs(among ids: [String]) throws -> Set<String> { try with { try PurgeSQL.purgedRunIDs($0, among: ids) } }

    /// Version 18: the runs and experiments purged (``PurgeSQL``).
    static let schemaVersion18 = PurgeSQL.schema(text: "TEXT", integer: "INTEGER", nowMillis: "CAST(strftime('%s', 'now') AS INTEGER) * 1000")
}

extension PostgresMetadataStore: PurgeStore {
    public func deletedRunIDs(deletedBy time: Int64) throws -> [String] { try conn { try PurgeSQL.deletedRunIDs($0, deletedBy: time) } }
    public func deletedLoggedModelIDs(updatedBy time: Int64?) throws -> [String] {
        try conn { try PurgeSQL.deletedLoggedModelIDs($0, updatedBy: time) }
    }
    public func deletedExperimentIDs(updatedBefore time: Int64?) throws -> [Int64] {
        try conn { try PurgeSQL.deletedExperimentIDs($0, updatedBefore: time) }
    }
    public func purgeableRuns(experimentID: Int64, deletedOnly: Bool) throws -> [(id: String, artifactURI: String)] {
        try conn { try PurgeSQL.runs($0, experimentID: experimentID, deletedOnly: deletedOnly) }
    }
    public func purgeRun(id: String, deletedBy: Int64?, now: Int64) throws -> Bool {
        defer { latestCache.remove(id) }
        return try write { try PurgeSQL.purgeRun($0, id, deletedBy: deletedBy, now: now) }
    }
    public func purgeLoggedModel(id: String, updatedBy: Int64?) throws -> Bool { try write { try PurgeSQL.purgeLoggedModel($0, id, updatedBy: updatedBy) } }
    public func purgeExperiment(id: Int64, updatedBefore: Int64?, now: Int64) throws -> PurgedExperiment? {
        defer { searchCache.drop(id) }
        let purged = try write { try PurgeSQL.purgeExperiment($0, id, updatedBefore: updatedBefore, now: now) }
        for run in purged?.runs ?? [] { latestCache.remove(run) }
        return purged
    }
    public func purgedRunIDs(among ids: [String]) throws -> Set<String> { try conn { try PurgeSQL.purgedRunIDs($0, among: ids) } }

    /// Version 17: the runs and experiments purged (``PurgeSQL``).
    static let schemaVersion17 = PurgeSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT", nowMillis: "CAST(extract(epoch FROM now()) * 1000 AS BIGINT)")
}
