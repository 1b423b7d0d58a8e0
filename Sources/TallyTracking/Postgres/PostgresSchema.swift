/// The metadata schema in PostgreSQL's dialect, versioned: `tally_schema` records each version applied. Version 1
/// is SQLite's schema 5 (experiments, runs, params, tags, inputs, interned metric keys and compact latest rows,
/// logged models, the Model Registry, users, grants and tokens) in one step — no PostgreSQL deployment predates it.
/// Where SQLite orders by `rowid` (tags in the order first set, grants in the order made), PostgreSQL tables carry an
/// identity column `seq`; ids SQLite assigns as the next integer come from sequences, which several servers share
/// without racing. Text is compared and ordered by its bytes (`COLLATE "C"`), as SQLite does and as Tally orders keys,
/// whatever locale the cluster was created with.
public enum PostgresSchema {
    /// The statements of each version, in order.
    static let versions: [String] = [version1, version2, version3, version4, version5, version6, version7,
                                      PostgresMetadataStore.schemaVersion8, PostgresMetadataStore.schemaVersion9,
                                      PostgresMetadataStore.schemaVersion10, PostgresMetadataStore.schemaVersion11,
                                      PostgresMetadataStore.schemaVersion12, PostgresMetadataStore.schemaVersion13,
                                      PostgresMetadataStore.schemaVersion14, PostgresMetadataStore.schemaVersion15,
                                      PostgresMetadataStore.schemaVersion16, PostgresMetadataStore.schemaVersion17, version18]

    /// The steps a version takes after its statements, by version: rows filled from what is stored, which SQL alone
    /// cannot compute.
    static let fills: [Int: @Sendable (PostgresDatabase.Connection) throws -> Void] = [14: { try TraceAnalyticsSQL.fill($0) }]

    /// The version this build writes.
    public static var current: Int { versions.count }

    /// Brings the database to ``current``, one transaction under an advisory lock, so servers starting together
    /// apply each version once. With `migrate` false it only checks (`--no-migrate`): a database behind this build
    /// is an error saying so. A database ahead of this build is always one.
    /// - Parameters:
    ///   - defaultArtifactLocation: where experiment `0` (`Default`) keeps artifacts, when version 1 creates it.
    ///   - target: the version to stop at (tests bring a database to an older version to migrate it from there).
    public static func migrate(_ db: PostgresDatabase, migrate: Bool = true, defaultArtifactLocation: String, now: Int64,
                               through target: Int = current) throws {
        precondition((1...current).contains(target), "no schema version \(target)")
        try db.transaction { c in
            try c.run("SELECT pg_advisory_xact_lock(?)", [.integer(lockKey)])
            // The table is looked up before it is created: a role with data rights only (no CREATE on the schema,
            // PostgreSQL 15's default for `public`) starts on a current database, and only a migration needs CREATE.
            let exists = try c.rows("SELECT (CASE WHEN to_regclass('tally_schema') IS NULL THEN 0 ELSE 1 END)::int8")[0][0].int == 1
            if !exists && migrate {
                try c.execute("CREATE TABLE tally_schema (version BIGINT PRIMARY KEY, applied_time BIGINT NOT NULL)")
            }
            let have = exists || migrate ? Int(try c.rows("SELECT COALESCE(MAX(version), 0) FROM tally_schema")[0][0].int ?? 0) : 0
            guard have <= current else {
                throw TrackingError(.internalError, "The PostgreSQL metadata schema is at version \(have), newer than this build's \(current): "
                    + "upgrade tally")
            }
            guard have >= target || migrate else {
                throw TrackingError(.internalError, "The PostgreSQL metadata schema is at version \(have) and this build needs \(current): "
                    + "start without --no-migrate to apply the migrations")
            }
            if have < target {
                // A server of an older build still connected would go on writing by its version's rules under the new
                // one (one before version 6 writes latest rows without raising `seq`): stop them first.
                let older = try c.rows("SELECT count(*), string_agg(DISTINCT application_name, ', ') FROM pg_stat_activity "
                    + "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    + "AND (CASE WHEN application_name ~ ('^' || ? || '[0-9]{1,9}$') THEN substring(application_name FROM char_length(?) + 1)::int END) < ?",
                    [.text(PostgresDatabase.applicationNamePrefix), .text(PostgresDatabase.applicationNamePrefix), .integer(Int64(target))])[0]
                if let n = older[0].int, n > 0 {
                    throw TrackingError(.internalError, "The PostgreSQL metadata schema is at version \(have) and this build migrates it to \(target), "
                        + "but \(n) connection(s) of servers built for an older schema are open (\(older[1].string ?? "")): stop those servers, "
                        + "start this one, then start the others with this build")
                }
            }
            for v in have..<max(have, target) {
                try c.execute(versions[v])
                try fills[v + 1]?(c)
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
            experiment_id BIGINT PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE, artifact_location TEXT COLLATE "C" NOT NULL,
            lifecycle_stage TEXT COLLATE "C" NOT NULL, creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL);
        CREATE TABLE experiment_tags (
            experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id), key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (experiment_id, key));
        CREATE TABLE runs (
            run_uuid TEXT COLLATE "C" PRIMARY KEY, experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
            name TEXT COLLATE "C" NOT NULL, user_id TEXT COLLATE "C" NOT NULL, status TEXT COLLATE "C" NOT NULL, start_time BIGINT NOT NULL, end_time BIGINT,
            artifact_uri TEXT COLLATE "C" NOT NULL, lifecycle_stage TEXT COLLATE "C" NOT NULL, deleted_time BIGINT);
        CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage);
        CREATE TABLE params (
            run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid), key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE tags (
            run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid), key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE inputs (
            run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid), name TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, source_type TEXT COLLATE "C" NOT NULL,
            source TEXT COLLATE "C" NOT NULL, schema TEXT COLLATE "C", profile TEXT COLLATE "C", tags TEXT COLLATE "C" NOT NULL, position BIGINT NOT NULL,
            PRIMARY KEY (run_uuid, name, digest));
        CREATE TABLE metric_keys (key_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key TEXT COLLATE "C" NOT NULL UNIQUE);
        CREATE TABLE run_latest (run_uuid TEXT COLLATE "C" PRIMARY KEY REFERENCES runs(run_uuid), data BYTEA NOT NULL);
        CREATE TABLE logged_models (
            model_id TEXT COLLATE "C" PRIMARY KEY, experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id), name TEXT COLLATE "C" NOT NULL,
            creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL, artifact_uri TEXT COLLATE "C" NOT NULL, status BIGINT NOT NULL,
            model_type TEXT COLLATE "C" NOT NULL, source_run_id TEXT COLLATE "C" NOT NULL, lifecycle_stage TEXT COLLATE "C" NOT NULL);
        CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, lifecycle_stage);
        CREATE TABLE logged_model_tags (
            model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id), key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (model_id, key));
        CREATE TABLE logged_model_params (
            model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id), key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (model_id, key));
        CREATE TABLE logged_model_metrics (
            model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id), position BIGINT NOT NULL, key TEXT COLLATE "C" NOT NULL,
            value DOUBLE PRECISION NOT NULL, is_nan BOOLEAN NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL, run_id TEXT COLLATE "C" NOT NULL,
            dataset_name TEXT COLLATE "C" NOT NULL, dataset_digest TEXT COLLATE "C" NOT NULL, PRIMARY KEY (model_id, position),
            UNIQUE (model_id, key, timestamp, step, value, is_nan, run_id, dataset_name, dataset_digest));
        CREATE TABLE run_outputs (
            run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid), model_id TEXT COLLATE "C" NOT NULL, step BIGINT NOT NULL, position BIGINT NOT NULL,
            PRIMARY KEY (run_uuid, model_id));
        CREATE TABLE registered_models (
            name TEXT COLLATE "C" PRIMARY KEY, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL, description TEXT COLLATE "C");
        CREATE TABLE registered_model_tags (
            seq BIGINT GENERATED ALWAYS AS IDENTITY, name TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (name, key));
        CREATE TABLE registered_model_aliases (name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (name, alias));
        CREATE TABLE model_versions (
            name TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL,
            current_stage TEXT COLLATE "C" NOT NULL, description TEXT COLLATE "C", source TEXT COLLATE "C" NOT NULL, run_id TEXT COLLATE "C" NOT NULL, run_link TEXT COLLATE "C" NOT NULL,
            model_id TEXT COLLATE "C", storage_location TEXT COLLATE "C" NOT NULL, PRIMARY KEY (name, version));
        CREATE TABLE model_version_tags (
            seq BIGINT GENERATED ALWAYS AS IDENTITY, name TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (name, version, key));
        CREATE TABLE users (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, username TEXT COLLATE "C" NOT NULL UNIQUE, password_hash TEXT COLLATE "C" NOT NULL,
            is_admin BOOLEAN NOT NULL, creation_time BIGINT NOT NULL);
        CREATE TABLE user_grants (
            seq BIGINT GENERATED ALWAYS AS IDENTITY, user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            resource_type TEXT COLLATE "C" NOT NULL, resource_id TEXT COLLATE "C" NOT NULL, permission TEXT COLLATE "C" NOT NULL, PRIMARY KEY (user_id, resource_type, resource_id));
        CREATE INDEX user_grants_resource ON user_grants (resource_type, resource_id);
        CREATE TABLE access_tokens (
            id TEXT COLLATE "C" PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE, name TEXT COLLATE "C" NOT NULL,
            digest TEXT COLLATE "C" NOT NULL UNIQUE, creation_time BIGINT NOT NULL, expiry_time BIGINT, kind TEXT COLLATE "C" NOT NULL)
        """
}

extension PostgresSchema {
    /// Version 2: a run's `version`, the id of the last transaction that changed the run or anything of it (params,
    /// tags, inputs, latest values), set by triggers, so a server can tell which runs changed since it last read
    /// them (the search cache, ``PostgresMetadataStore/searchRuns(experimentIDs:view:metricKeys:)``). The child
    /// tables' triggers run *before* their row is written, so an insert locks the run's row before its child row (an
    /// update or delete has locked the child row by the time its trigger runs). Since version 18 params and latest
    /// rows stamp themselves instead.
    static let version2 = """
        ALTER TABLE runs ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE runs ALTER COLUMN version SET DEFAULT (pg_current_xact_id()::text::bigint);
        CREATE FUNCTION tally_run_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END $$;
        CREATE TRIGGER runs_version BEFORE UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION tally_run_version();
        CREATE FUNCTION tally_touch_run() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            id TEXT := CASE WHEN TG_OP = 'DELETE' THEN OLD.run_uuid ELSE NEW.run_uuid END;
        BEGIN
            UPDATE runs SET version = pg_current_xact_id()::text::bigint
                WHERE run_uuid = id AND version <> pg_current_xact_id()::text::bigint;
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER params_touch_run BEFORE INSERT OR UPDATE OR DELETE ON params FOR EACH ROW EXECUTE FUNCTION tally_touch_run();
        CREATE TRIGGER tags_touch_run BEFORE INSERT OR UPDATE OR DELETE ON tags FOR EACH ROW EXECUTE FUNCTION tally_touch_run();
        CREATE TRIGGER inputs_touch_run BEFORE INSERT OR UPDATE OR DELETE ON inputs FOR EACH ROW EXECUTE FUNCTION tally_touch_run();
        CREATE TRIGGER run_latest_touch_run BEFORE INSERT OR UPDATE OR DELETE ON run_latest FOR EACH ROW EXECUTE FUNCTION tally_touch_run()
        """
}

extension PostgresSchema {
    /// Version 3: the models a run used (`runs/log-inputs` with `models`, MLflow 3), in the order recorded.
    static let version3 = """
        CREATE TABLE run_model_inputs (
            run_uuid TEXT COLLATE "C" NOT NULL REFERENCES runs(run_uuid), model_id TEXT COLLATE "C" NOT NULL, position BIGINT NOT NULL,
            PRIMARY KEY (run_uuid, model_id))
        """
}

extension PostgresSchema {
    /// Version 4: what the servers of a cluster share (``ClusterState``, docs/scale-out.md): the servers
    /// (`tally_nodes`), which server owns each run's writes (`tally_leases`: owner, epoch, expiry on PostgreSQL's
    /// clock) and the acknowledged metric records not yet sealed into object storage (`tally_log`, one row per
    /// group-committed batch, ordered by `seq`). Empty outside cluster mode.
    static let version4 = """
        CREATE TABLE tally_nodes (
            node_id TEXT COLLATE "C" PRIMARY KEY, url TEXT NOT NULL, started_ms BIGINT NOT NULL, heartbeat_ms BIGINT NOT NULL);
        CREATE TABLE tally_leases (
            run_uuid TEXT COLLATE "C" PRIMARY KEY, owner TEXT COLLATE "C" NOT NULL, epoch BIGINT NOT NULL, expires_ms BIGINT NOT NULL);
        CREATE INDEX tally_leases_owner ON tally_leases (owner);
        CREATE TABLE tally_log (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_uuid TEXT COLLATE "C" NOT NULL, epoch BIGINT NOT NULL,
            payload BYTEA NOT NULL);
        CREATE INDEX tally_log_run ON tally_log (run_uuid, seq)
        """
}

extension PostgresSchema {
    /// Version 5: each run's points sealed into the metrics destination (docs/scale-out.md, Sealing): the set of
    /// segment objects that holds every record of the run up to `through_seq` (`tally_sealed`, one row per run;
    /// `tally_sealed_segments`, its objects by segment number). The log's records up to `through_seq` are deleted
    /// in the transaction that records the set.
    static let version5 = """
        CREATE TABLE tally_sealed (
            run_uuid TEXT COLLATE "C" PRIMARY KEY, through_seq BIGINT NOT NULL, epoch BIGINT NOT NULL, sealed_ms BIGINT NOT NULL);
        CREATE TABLE tally_sealed_segments (
            run_uuid TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, object_key TEXT NOT NULL, bytes BIGINT NOT NULL,
            PRIMARY KEY (run_uuid, seq))
        """
}

extension PostgresSchema {
    /// Version 6: each latest row's `seq`, raised by one by every write of the row. A server remembers the rows it
    /// last wrote or read with their `seq` (``PostgresMetadataStore/LatestCache``) and writes a request's new values in
    /// one statement that only takes effect while the row's `seq` is still the one remembered and the run active
    /// (``PostgresMetadataStore/metricsRequest(runID:_:)``); anything else is read again under the row's lock.
    static let version6 = """
        ALTER TABLE run_latest ADD COLUMN seq BIGINT NOT NULL DEFAULT 0
        """

    /// Version 7: an experiment's datasets, each (name, digest) once with the fields it was first logged with, as
    /// MLflow keeps them (SQLite's version 8); every run's input copies them, and the primary key decides between
    /// two servers logging one dataset at once. Filled from the inputs already stored, the earliest run's version
    /// first (a run's own fields stay as they were logged).
    static let version7 = """
        CREATE TABLE datasets (
            experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id), name TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL,
            source_type TEXT COLLATE "C" NOT NULL, source TEXT COLLATE "C" NOT NULL, schema TEXT COLLATE "C", profile TEXT COLLATE "C",
            PRIMARY KEY (experiment_id, name, digest));
        INSERT INTO datasets SELECT DISTINCT ON (r.experiment_id, i.name, i.digest) r.experiment_id, i.name, i.digest, i.source_type, i.source, i.schema, i.profile
            FROM inputs i JOIN runs r USING (run_uuid) ORDER BY r.experiment_id, i.name, i.digest, r.start_time, r.run_uuid, i.position
        """
}

extension PostgresSchema {
    /// Version 18: params and latest rows carry their own `version` (the id of the transaction that inserted or last
    /// wrote the row), indexed, in place of version 2's trigger rewriting the run's row for each param inserted and
    /// each latest row written — the writes requests make most. The search cache finds the runs with params or latest
    /// rows newer than its horizon through `params_by_version` and `run_latest_by_version`. A param is only ever
    /// inserted (MLflow never changes one), so the column's default stamps it; every statement that writes a latest
    /// row sets its version (``stamp``), and a trigger that fires only when one did not (`WHEN` the version is
    /// unchanged, tested without a call) stamps it then. The run-touching trigger stays for a param's update or
    /// delete (a migration's upsert, a purge) and a latest row's delete. Rows from before the version count as old
    /// (0): the caches they could matter to live in servers' memory, and a migration runs with no older server
    /// connected.
    static let version18 = """
        ALTER TABLE params ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE params ALTER COLUMN version SET DEFAULT (pg_current_xact_id()::text::bigint);
        CREATE INDEX params_by_version ON params (version);
        DROP TRIGGER params_touch_run ON params;
        CREATE TRIGGER params_touch_run BEFORE UPDATE OR DELETE ON params FOR EACH ROW EXECUTE FUNCTION tally_touch_run();
        ALTER TABLE run_latest ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE run_latest ALTER COLUMN version SET DEFAULT (pg_current_xact_id()::text::bigint);
        CREATE INDEX run_latest_by_version ON run_latest (version);
        DROP TRIGGER run_latest_touch_run ON run_latest;
        CREATE TRIGGER run_latest_touch_run BEFORE DELETE ON run_latest FOR EACH ROW EXECUTE FUNCTION tally_touch_run();
        CREATE TRIGGER run_latest_version BEFORE UPDATE ON run_latest FOR EACH ROW WHEN (NEW.version IS NOT DISTINCT FROM OLD.version)
            EXECUTE FUNCTION tally_run_version()
        """

    /// What a statement writing a latest row sets, to stamp it (version 18).
    static let stamp = "version = pg_current_xact_id()::text::bigint"
}
