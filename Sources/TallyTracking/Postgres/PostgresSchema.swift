/// The metadata schema in PostgreSQL's dialect, versioned: `tally_schema` records each version applied. Version 1
/// is SQLite's schema 5 (experiments, runs, params, tags, inputs, interned metric keys and compact latest rows,
/// logged models, the Model Registry, users, grants and tokens) in one step — no PostgreSQL deployment predates it.
/// Where SQLite orders by `rowid` (tags in the order first set, grants in the order made), PostgreSQL tables carry an
/// identity column `seq`; ids SQLite assigns as the next integer come from sequences, which several servers share
/// without racing.
public enum PostgresSchema {
    /// The statements of each version, in order.
    static let versions: [String] = [version1]

    /// The version this build writes.
    public static var current: Int { versions.count }

    /// Brings the database to ``current``, one transaction under an advisory lock, so servers starting together
    /// apply each version once. With `migrate` false it only checks (`--no-migrate`): a database behind this build
    /// is an error saying so. A database ahead of this build is always one.
    /// - Parameters:
    ///   - defaultArtifactLocation: where experiment `0` (`Default`) keeps artifacts, when version 1 creates it.
    public static func migrate(_ db: PostgresDatabase, migrate: Bool = true, defaultArtifactLocation: String, now: Int64) throws {
        try db.transaction { c in
            try c.run("SELECT pg_advisory_xact_lock(?)", [.integer(lockKey)])
            try c.execute("CREATE TABLE IF NOT EXISTS tally_schema (version BIGINT PRIMARY KEY, applied_time BIGINT NOT NULL)")
            let have = Int(try c.rows("SELECT COALESCE(MAX(version), 0) FROM tally_schema")[0][0].int ?? 0)
            guard have <= current else {
                throw TrackingError(.internalError, "The PostgreSQL metadata schema is at version \(have), newer than this build's \(current): "
                    + "upgrade tally")
            }
            guard have == current || migrate else {
                throw TrackingError(.internalError, "The PostgreSQL metadata schema is at version \(have) and this build needs \(current): "
                    + "start without --no-migrate to apply the migrations")
            }
            for v in have..<current {
                try c.execute(versions[v])
                if v == 0 {
                    try c.run("INSERT INTO experiments VALUES (0, 'Default', ?, 'active', ?, ?)",
                              [.text(defaultArtifactLocation), .integer(now), .integer(now)])
                }
                try c.run("INSERT INTO tally_schema VALUES (?, ?)", [.integer(Int64(v + 1)), .integer(now)])
            }
        }
    }

    /// The advisory lock migrations hold (any constant both servers agree on: "tally" in ASCII).
    static let lockKey: Int64 = 0x7461_6C6C_79

    /// Version 1: everything SQLite's schema 5 holds.
    static let version1 = """
        CREATE SEQUENCE experiment_ids START 1;
        CREATE TABLE experiments (
            experiment_id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, artifact_location TEXT NOT NULL,
            lifecycle_stage TEXT NOT NULL, creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL);
        CREATE TABLE experiment_tags (
            experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id), key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (experiment_id, key));
        CREATE TABLE runs (
            run_uuid TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
            name TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL, start_time BIGINT NOT NULL, end_time BIGINT,
            artifact_uri TEXT NOT NULL, lifecycle_stage TEXT NOT NULL, deleted_time BIGINT);
        CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage);
        CREATE TABLE params (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE tags (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE inputs (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), name TEXT NOT NULL, digest TEXT NOT NULL, source_type TEXT NOT NULL,
            source TEXT NOT NULL, schema TEXT, profile TEXT, tags TEXT NOT NULL, position BIGINT NOT NULL,
            PRIMARY KEY (run_uuid, name, digest));
        CREATE TABLE metric_keys (key_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key TEXT NOT NULL UNIQUE);
        CREATE TABLE run_latest (run_uuid TEXT PRIMARY KEY REFERENCES runs(run_uuid), data BYTEA NOT NULL);
        CREATE TABLE logged_models (
            model_id TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id), name TEXT NOT NULL,
            creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL, artifact_uri TEXT NOT NULL, status BIGINT NOT NULL,
            model_type TEXT NOT NULL, source_run_id TEXT NOT NULL, lifecycle_stage TEXT NOT NULL);
        CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, lifecycle_stage);
        CREATE TABLE logged_model_tags (
            model_id TEXT NOT NULL REFERENCES logged_models(model_id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (model_id, key));
        CREATE TABLE logged_model_params (
            model_id TEXT NOT NULL REFERENCES logged_models(model_id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (model_id, key));
        CREATE TABLE logged_model_metrics (
            model_id TEXT NOT NULL REFERENCES logged_models(model_id), position BIGINT NOT NULL, key TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL, is_nan BOOLEAN NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL, run_id TEXT NOT NULL,
            dataset_name TEXT NOT NULL, dataset_digest TEXT NOT NULL, PRIMARY KEY (model_id, position),
            UNIQUE (model_id, key, timestamp, step, value, is_nan, run_id, dataset_name, dataset_digest));
        CREATE TABLE run_outputs (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), model_id TEXT NOT NULL, step BIGINT NOT NULL, position BIGINT NOT NULL,
            PRIMARY KEY (run_uuid, model_id));
        CREATE TABLE registered_models (
            name TEXT PRIMARY KEY, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL, description TEXT);
        CREATE TABLE registered_model_tags (
            seq BIGINT GENERATED ALWAYS AS IDENTITY, name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, key));
        CREATE TABLE registered_model_aliases (name TEXT NOT NULL, alias TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (name, alias));
        CREATE TABLE model_versions (
            name TEXT NOT NULL, version BIGINT NOT NULL, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL,
            current_stage TEXT NOT NULL, description TEXT, source TEXT NOT NULL, run_id TEXT NOT NULL, run_link TEXT NOT NULL,
            model_id TEXT, storage_location TEXT NOT NULL, PRIMARY KEY (name, version));
        CREATE TABLE model_version_tags (
            seq BIGINT GENERATED ALWAYS AS IDENTITY, name TEXT NOT NULL, version BIGINT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (name, version, key));
        CREATE TABLE users (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
            is_admin BOOLEAN NOT NULL, creation_time BIGINT NOT NULL);
        CREATE TABLE user_grants (
            seq BIGINT GENERATED ALWAYS AS IDENTITY, user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, permission TEXT NOT NULL, PRIMARY KEY (user_id, resource_type, resource_id));
        CREATE INDEX user_grants_resource ON user_grants (resource_type, resource_id);
        CREATE TABLE access_tokens (
            id TEXT PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE, name TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE, creation_time BIGINT NOT NULL, expiry_time BIGINT, kind TEXT NOT NULL)
        """
}
