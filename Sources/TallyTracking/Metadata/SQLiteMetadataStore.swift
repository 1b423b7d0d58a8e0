import Foundation
import Synchronization
import TallyStore

/// The embedded default ``MetadataStore``: one SQLite file in WAL journal mode, schema versioned with
/// `PRAGMA user_version`. One connection, serialised by a mutex (SQLite writes are serial anyway).
public final class SQLiteMetadataStore: MetadataStore {
    /// The connection and a write-through cache of runs per experiment (this store is the database's only writer, so
    /// the cache stays exact; any rolled-back transaction clears it). A cached run keeps its latest values as its
    /// compact `run_latest` row (a few bytes per key), not as decoded metrics: 10,000 runs of 2,000 keys cost tens of
    /// megabytes, not gigabytes. Searches read single keys across runs from `columns`, built on demand.
    struct State: @unchecked Sendable {
        let db: SQLiteDatabase
        var loaded: Set<Int64> = []
        var runs: [String: CachedRun] = [:]
        var byExperiment: [Int64: Set<String>] = [:]
        /// Cached run ids by ordinal (their position in every metric column).
        var ordinals: [String] = []
        /// Latest values of single keys across the cached runs, by ordinal, for the keys searches name (least
        /// recently used dropped beyond ``maxColumns``). A column shorter than `ordinals` is completed on use.
        var columns: [String: MetricColumn] = [:]
        /// Use counter for `columns`.
        var uses = 0
        /// The decoded latest values of the runs written or read last (a run's batches usually come in a row), with
        /// their key ids.
        var recent: [(runID: String, metrics: [Metric], ids: [Int64])] = []
        /// Interned metric keys (`nil` until first needed, and again after a rollback).
        var keys: MetricKeyTable?
        /// The Model Registry as last read (`nil` after any registry write or rollback): searches filter it in
        /// memory instead of reading every version's rows again.
        var registry: RegistrySnapshot?
        /// Experiments read by id (each with its tags), dropped whole on any experiment write: run creation
        /// checks its experiment every time.
        var experiments: [Int64: Experiment] = [:]
        /// Encodes and decodes `run_latest` rows (holds compression contexts; used under the lock only).
        let codec = ColumnCodec()
    }

    /// A cached run: everything but its latest values, which stay in their row (empty: none).
    struct CachedRun {
        var run: Run
        var latest: [UInt8]
        let ordinal: Int
    }

    /// One key's latest value in every cached run, by ordinal.
    struct MetricColumn {
        var values: [Double?]
        var lastUse: Int
    }

    /// Most metric columns kept (each costs 16 bytes per cached run).
    static let maxColumns = 64
    /// Runs whose decoded latest values are kept between writes.
    static let recentRuns = 8

    let state: Mutex<State>
    public let location: String
    /// Never: the file belongs to one process (it holds the file's lock).
    public var shared: Bool { false }
    /// Serialises whole operations: a transaction holds it from BEGIN to COMMIT, so no other thread's statements
    /// run inside it; the store's own methods re-enter it on the transaction's thread.
    let operation = RecursiveLock()
    /// The last backup copy's report (``Copy``; tests, benchmarks).
    let lastCopy = Mutex<CopyReport?>(nil)
    /// Nesting depth of `transaction` calls of the thread holding `operation`.
    private let depth = Mutex(0)

    /// Opens (creating and migrating) the database at `path`; `":memory:"` gives a private in-memory one.
    ///
    /// The file stays locked by this store until it is released: its cache of runs is only right while it is the
    /// database's one writer, so a second server (or any other program) opening the file is refused, not served
    /// stale rows.
    /// - Parameter defaultArtifactLocation: where experiment `0` (`Default`) keeps artifacts.
    public init(path: String, defaultArtifactLocation: String = "mlflow-artifacts:/0", now: Int64) throws {
        let conn: SQLiteDatabase
        do {
            conn = try SQLiteDatabase(path: path, exclusive: true)
            location = path
            try Self.migrate(conn, defaultArtifactLocation: defaultArtifactLocation, now: now)
        } catch let e as SQLiteError where e.isBusy {
            throw TrackingError(.internalError, "the metadata database \(path) is in use by another process (a server holds it "
                + "exclusively while it runs); stop that process, or give each server its own database")
        }
        state = Mutex(State(db: conn))
    }

    /// Versioned migrations; each runs once, in a transaction.
    static let migrations: [@Sendable (SQLiteDatabase) throws -> Void] = [
        { try $0.execute(schemaVersion1) }, migrateToLatestRows, { try $0.execute(schemaVersion3) }, { try $0.execute(schemaVersion4) },
        { try $0.execute(schemaVersion5) }, { try $0.execute(schemaVersion6) }, { try $0.execute(schemaVersion7) },
        { try $0.execute(schemaVersion8) }, { try $0.execute(schemaVersion9) }, { try $0.execute(schemaVersion10) },
        { try $0.execute(schemaVersion11) }, { try $0.execute(schemaVersion12) }, { try $0.execute(schemaVersion13) },
        { try $0.execute(schemaVersion14) }, {
            try $0.execute(schemaVersion15)
            try TraceAnalyticsSQL.fill($0)
            try $0.execute(TraceAnalyticsSQL.spanIndex)
        }, { try $0.execute(schemaVersion16) }, { try $0.execute(schemaVersion17) },
        { try $0.execute(schemaVersion18) },
    ]

    /// Version 8: an experiment's datasets, each (name, digest) once with the fields it was first logged with, as
    /// MLflow keeps them; every run's input copies them. Filled from the inputs already stored, the earliest run's
    /// version first (a run's own fields stay as they were logged).
    static let schemaVersion8 = """
        CREATE TABLE datasets (
            experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id), name TEXT NOT NULL, digest TEXT NOT NULL,
            source_type TEXT NOT NULL, source TEXT NOT NULL, schema TEXT, profile TEXT, PRIMARY KEY (experiment_id, name, digest));
        INSERT INTO datasets SELECT r.experiment_id, i.name, i.digest, i.source_type, i.source, i.schema, i.profile
            FROM inputs i JOIN runs r USING (run_uuid) WHERE true ORDER BY r.start_time, r.run_uuid, i.position ON CONFLICT DO NOTHING;
        """

    /// Version 7: the models a run used (`runs/log-inputs` with `models`, MLflow 3), in the order recorded.
    static let schemaVersion7 = """
        CREATE TABLE run_model_inputs (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), model_id TEXT NOT NULL, position INTEGER NOT NULL,
            PRIMARY KEY (run_uuid, model_id)) WITHOUT ROWID;
        """

    /// Version 6: the tables every logging request writes (`params`, `tags`, `run_latest`) keyed by their primary key
    /// alone (`WITHOUT ROWID`): one b-tree per table instead of a table and its key's index, so an insert dirties
    /// one page fewer (measured: a param insert's commit 31 µs → 21 µs).
    static let schemaVersion6 = ["params": "run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key)",
                                 "tags": "run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key)",
                                 "run_latest": "run_uuid TEXT PRIMARY KEY REFERENCES runs(run_uuid), data BLOB NOT NULL"]
        .sorted { $0.key < $1.key }
        .map { table, columns in
            "CREATE TABLE \(table)_v6 (\(columns)) WITHOUT ROWID; INSERT INTO \(table)_v6 SELECT * FROM \(table); DROP TABLE \(table); "
                + "ALTER TABLE \(table)_v6 RENAME TO \(table);"
        }
        .joined(separator: "\n")

    /// The first schema: latest metric values as one row per run and key (`latest_metrics`).
    static let schemaVersion1 = """
        CREATE TABLE experiments (
            experiment_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, artifact_location TEXT NOT NULL,
            lifecycle_stage TEXT NOT NULL, creation_time INTEGER NOT NULL, last_update_time INTEGER NOT NULL);
        CREATE TABLE experiment_tags (
            experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id), key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (experiment_id, key));
        CREATE TABLE runs (
            run_uuid TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
            name TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL, start_time INTEGER NOT NULL, end_time INTEGER,
            artifact_uri TEXT NOT NULL, lifecycle_stage TEXT NOT NULL, deleted_time INTEGER);
        CREATE INDEX runs_by_experiment ON runs (experiment_id, lifecycle_stage);
        CREATE TABLE params (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE tags (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE latest_metrics (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), key TEXT NOT NULL, value REAL NOT NULL, is_nan INTEGER NOT NULL,
            timestamp INTEGER NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (run_uuid, key));
        CREATE TABLE inputs (
            run_uuid TEXT NOT NULL REFERENCES runs(run_uuid), name TEXT NOT NULL, digest TEXT NOT NULL, source_type TEXT NOT NULL,
            source TEXT NOT NULL, schema TEXT, profile TEXT, tags TEXT NOT NULL, position INTEGER NOT NULL,
            PRIMARY KEY (run_uuid, name, digest));
        """

    /// Version 2: interned metric keys and one compact row of latest values per run (``LatestRows``) instead of
    /// one row per run and key.
    static func migrateToLatestRows(_ db: SQLiteDatabase) throws {
        try db.execute("""
            CREATE TABLE metric_keys (key_id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
            CREATE TABLE run_latest (run_uuid TEXT PRIMARY KEY REFERENCES runs(run_uuid), data BLOB NOT NULL);
            INSERT INTO metric_keys (key) SELECT DISTINCT key FROM latest_metrics ORDER BY key;
            """)
        var ids: [String: Int64] = [:]
        try db.query("SELECT key_id, key FROM metric_keys") { r in ids[r[1].string ?? ""] = r[0].int ?? 0 }
        var byRun: [String: [Metric]] = [:]
        try db.query("SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics ORDER BY run_uuid, key") { r in
            let v = (r[3].int ?? 0) != 0 ? Double.nan : (r[2].double ?? 0)
            byRun[r[0].string ?? "", default: []].append(Metric(key: r[1].string ?? "", value: v, timestamp: r[4].int ?? 0, step: r[5].int ?? 0))
        }
        let codec = ColumnCodec()
        for (run, metrics) in byRun {
            let row = try LatestRows.encode(metrics, codec: codec) { ids[$0]! }
            try db.run("INSERT INTO run_latest VALUES (?, ?)", [.text(run), .blob(row)])
        }
        try db.execute("DROP TABLE latest_metrics")
    }

    static func migrate(_ db: SQLiteDatabase, defaultArtifactLocation: String, now: Int64) throws {
        let version = try db.userVersion
        guard version <= migrations.count else {
            throw TrackingError(.internalError, "metadata schema version \(version) is newer than this build (\(migrations.count))")
        }
        for v in version..<migrations.count {
            try db.transaction {
                try migrations[v](db)
                if v == 0 {
                    try db.run("INSERT INTO experiments VALUES (0, 'Default', ?, 'active', ?, ?)",
                               [.text(defaultArtifactLocation), .integer(now), .integer(now)])
                }
                try db.execute("PRAGMA user_version = \(v + 1)")
            }
        }
    }

    @discardableResult
    func with<R>(_ body: (SQLiteDatabase) throws -> R) throws -> R {
        try locked { try body($0.db) }
    }

    /// The state, under the operation lock (re-entrant) and then the state mutex.
    @discardableResult
    func locked<R>(_ body: (inout State) throws -> R) throws -> R {
        try operation.withLock { try state.withLock { try body(&$0) } }
    }

    /// Runs a write for run `id` and then refreshes its cached copy (when cached) from the database.
    private func writeRun(_ id: String, _ body: (SQLiteDatabase) throws -> Void) throws {
        try locked { st in
            try body(st.db)
            guard st.runs[id] != nil else { return }
            let infos = try st.db.rows("SELECT \(Self.runColumns) FROM runs WHERE run_uuid = ?", [.text(id)]).map(Self.runInfo)
            if let r = try Self.lightRuns(st.db, infos).first { st.runs[id]?.run = r.run }
        }
    }

    /// Applies a change to a cached run, if cached (call with the lock held).
    private static func patch(_ st: inout State, _ id: String, _ change: (inout Run) -> Void) {
        if st.runs[id] != nil { change(&st.runs[id]!.run) }
    }

    /// Caches a run (keeping its ordinal when already cached).
    private static func cache(_ st: inout State, _ run: Run, latest: [UInt8]) {
        let id = run.info.runID
        if st.runs[id] != nil {
            st.runs[id]!.run = run
            st.runs[id]!.latest = latest
            return
        }
        st.runs[id] = CachedRun(run: run, latest: latest, ordinal: st.ordinals.count)
        st.ordinals.append(id)
    }

    /// Forgets everything cached (after a rollback: the cache may hold changes that were rolled back).
    private static func clearCache(_ st: inout State) {
        st.loaded.removeAll()
        st.runs.removeAll()
        st.byExperiment.removeAll()
        st.ordinals.removeAll()
        st.columns.removeAll()
        st.recent.removeAll()
        st.keys = nil  // ids interned inside the transaction are gone
        st.registry = nil
        st.experiments.removeAll()
    }

    /// A purge (``PurgeStore``) in one transaction, everything cached forgotten before the lock is let go (it may hold
    /// what was purged: no request in between may read it).
    func purging<R>(_ body: (SQLiteDatabase) throws -> R) throws -> R {
        try transaction {
            try locked { st in
                defer { Self.clearCache(&st) }
                return try body(st.db)
            }
        }
    }

    /// Closes the connection, which releases the file for another process; later calls fail.
    public func close() {
        _ = try? locked { $0.db.close() }
    }

    public func checkpoint() throws {
        try with { try $0.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Without waiting: while another operation holds the database (a long transaction or search), it answers, and
    /// that is the answer.
    public func ping() throws {
        _ = try operation.withLockIfAvailable { try state.withLock { try $0.db.rows("SELECT 1 FROM experiments LIMIT 1") } }
    }

    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try operation.withLock {
            // Only this thread can be here; nested transactions join the outer one.
            let outer = depth.withLock { d -> Bool in
                d += 1
                return d == 1
            }
            defer { depth.withLock { $0 -= 1 } }
            guard outer else { return try body() }
            let changes = try with { db in
                try db.begin()
                return db.totalChanges
            }
            do {
                let r = try body()
                try with { try $0.commit() }
                return r
            } catch {
                state.withLock { st in
                    // A transaction that changed no row (a statement that failed half-way included) is committed:
                    // a rollback that undoes pages would start a backup's copy over.
                    st.db.abandonTransaction(changesAtBegin: changes)
                    Self.clearCache(&st)
                }
                throw error
            }
        }
    }

    // MARK: Experiments

    public func insertExperiment(name: String, artifactLocation: String, tags: [KeyValue], now: Int64) throws -> String {
        try writeExperiments { db in
            // Past the purged ones too: an id is never another experiment's (grants, links and journals name it).
            let next = (try db.rows("SELECT MAX(m) + 1 FROM (SELECT COALESCE(MAX(experiment_id), 0) AS m FROM experiments UNION ALL "
                                    + "SELECT COALESCE(MAX(experiment_id), 0) FROM purged_experiments)").first?.first?.int) ?? 1
            let location = artifactLocation.split(separator: "{id}", omittingEmptySubsequences: false).joined(separator: String(next))
            do {
                try db.run("INSERT INTO experiments VALUES (?, ?, ?, 'active', ?, ?)",
                           [.integer(next), .text(name), .text(location), .integer(now), .integer(now)])
            } catch let e as SQLiteError where e.isConstraint {
                throw TrackingError(.resourceAlreadyExists, "Experiment(name=\(name)) already exists. Error: \(e.message)")
            }
            for t in tags {
                try db.run("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", [.integer(next), .text(t.key), .text(t.value)])
            }
            return String(next)
        }
    }

    public func insertExperiment(_ e: Experiment) throws {
        guard let id = Int64(e.experimentID) else { throw TrackingError.invalid("Invalid experiment id '\(e.experimentID)'") }
        try writeExperiments { db in
            do {
                try db.run("INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?)", [.integer(id), .text(e.name), .text(e.artifactLocation),
                                                                              .text(e.lifecycleStage.rawValue), .integer(e.creationTime), .integer(e.lastUpdateTime)])
            } catch let error as SQLiteError where error.isConstraint {
                throw TrackingError(.resourceAlreadyExists, "Experiment(id=\(id), name=\(e.name)) already exists. Error: \(error.message)")
            }
            for t in e.tags { try db.run("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", [.integer(id), .text(t.key), .text(t.value)]) }
        }
    }

    /// Experiments matching a condition, with their tags (both stores).
    static func experimentRows(_ db: some SQLConnection, _ whereClause: String, _ args: [SQLValue]) throws -> [Experiment] {
        var out: [Experiment] = []
        try db.query("SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments "
            + whereClause, args) { r in
            out.append(Experiment(experimentID: String(r[0].int ?? 0), name: r[1].string ?? "", artifactLocation: r[2].string ?? "",
                                  lifecycleStage: LifecycleStage(rawValue: r[3].string ?? "") ?? .active, creationTime: r[4].int ?? 0,
                                  lastUpdateTime: r[5].int ?? 0, tags: []))
        }
        for i in out.indices {
            try db.query("SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key", [.integer(Int64(out[i].experimentID)!)]) { r in
                out[i].tags.append(KeyValue(key: r[0].string ?? "", value: r[1].string ?? ""))
            }
        }
        return out
    }

    public func experiment(id: Int64) throws -> Experiment? {
        try locked { st in
            if let e = st.experiments[id] { return e }
            let e = try Self.experimentRows(st.db, "WHERE experiment_id = ?", [.integer(id)]).first
            if let e { st.experiments[id] = e }
            return e
        }
    }

    /// Runs an experiment write, dropping the cached experiments.
    @discardableResult
    private func writeExperiments<R>(_ body: (SQLiteDatabase) throws -> R) throws -> R {
        try locked { st in
            st.experiments.removeAll()
            return try body(st.db)
        }
    }

    public func experiment(named name: String) throws -> Experiment? {
        try with { try Self.experimentRows($0, "WHERE name = ?", [.text(name)]).first }
    }

    public func experiments() throws -> [Experiment] {
        try with { try Self.experimentRows($0, "ORDER BY experiment_id", []) }
    }

    public func renameExperiment(id: Int64, to name: String, now: Int64) throws {
        try writeExperiments { db in
            do {
                try db.run("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?", [.text(name), .integer(now), .integer(id)])
            } catch let e as SQLiteError where e.isConstraint {
                throw TrackingError(.resourceAlreadyExists, "Experiment(name=\(name)) already exists. Error: \(e.message)")
            }
        }
    }

    public func setExperimentStage(id: Int64, _ stage: LifecycleStage, now: Int64) throws {
        try locked { st in
            st.experiments.removeAll()
            try st.db.run("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
                          [.text(stage.rawValue), .integer(now), .integer(id)])
            try st.db.run("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
                          [.text(stage.rawValue), stage == .deleted ? .integer(now) : .null, .integer(id)])
            // Every cached run of the experiment, indexed or not (runs are cached individually on creation).
            let key = String(id)
            for (rid, r) in st.runs where r.run.info.experimentID == key { Self.patch(&st, rid) { $0.info.lifecycleStage = stage } }
        }
    }

    public func setExperimentTag(id: Int64, _ tag: KeyValue) throws {
        try writeExperiments { try $0.run("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", [.integer(id), .text(tag.key), .text(tag.value)]) }
    }

    public func deleteExperimentTag(id: Int64, key: String) throws -> Bool {
        try writeExperiments { try $0.run("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", [.integer(id), .text(key)]) > 0 }
    }

    // MARK: Runs

    public func insertRun(_ info: RunInfo, tags: [KeyValue]) throws {
        // One transaction for the run and its tags (one commit instead of one per row).
        try transaction { try locked { st in
            let db = st.db
            try db.run("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                       [.text(info.runID), .integer(Int64(info.experimentID) ?? 0), .text(info.runName), .text(info.userID),
                        .text(info.status.rawValue), .integer(info.startTime), info.endTime.map(SQLValue.integer) ?? .null,
                        .text(info.artifactURI), .text(info.lifecycleStage.rawValue)])
            for t in tags { try db.run("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [.text(info.runID), .text(t.key), .text(t.value)]) }
            // A new run is complete in memory: cache it (indexed by experiment only once the experiment is loaded).
            let exp = Int64(info.experimentID) ?? 0
            Self.cache(&st, Run(info: info, metrics: [], params: [], tags: TrackingService.lastWins(tags).sorted { binaryLess($0.key, $1.key) },
                                inputs: []), latest: [])
            if st.loaded.contains(exp) { st.byExperiment[exp, default: []].insert(info.runID) }
        } }
    }

    static let runColumns = "run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage"

    static func runInfo(_ r: [SQLValue]) -> RunInfo {
        RunInfo(runID: r[0].string ?? "", runName: r[2].string ?? "", experimentID: String(r[1].int ?? 0), userID: r[3].string ?? "",
                status: RunStatus(rawValue: r[4].string ?? "") ?? .running, startTime: r[5].int ?? 0, endTime: r[6].int,
                artifactURI: r[7].string ?? "", lifecycleStage: LifecycleStage(rawValue: r[8].string ?? "") ?? .active)
    }

    public func runInfo(id: String) throws -> RunInfo? {
        try locked { st in
            if let r = st.runs[id] { return r.run.info }
            return try st.db.rows("SELECT \(Self.runColumns) FROM runs WHERE run_uuid = ?", [.text(id)]).first.map(Self.runInfo)
        }
    }


    /// Runs from the database without their latest values, each with its `run_latest` row (empty: none).
    static func lightRuns(_ db: some SQLConnection, _ infos: [RunInfo]) throws -> [(run: Run, latest: [UInt8])] {
        var byID: [String: Int] = [:]
        var out = infos.map { (run: Run(info: $0, metrics: [], params: [], tags: [], inputs: []), latest: [UInt8]()) }
        for (i, r) in out.enumerated() { byID[r.run.info.runID] = i }
        guard !out.isEmpty else { return [] }
        // Batched child lookups, at most 500 ids per statement.
        for start in stride(from: 0, to: out.count, by: 500) {
            let ids = out[start..<min(out.count, start + 500)].map { SQLValue.text($0.run.info.runID) }
            let marks = sqlMarks(ids.count)
            try db.query("SELECT run_uuid, data FROM run_latest WHERE run_uuid IN (\(marks))", ids) { r in
                out[byID[r[0].string!]!].latest = r[1].bytes ?? []
            }
            try db.query("SELECT run_uuid, key, value FROM params WHERE run_uuid IN (\(marks)) ORDER BY key", ids) { r in
                out[byID[r[0].string!]!].run.params.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? ""))
            }
            try db.query("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN (\(marks)) ORDER BY key", ids) { r in
                out[byID[r[0].string!]!].run.tags.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? ""))
            }
            try db.query("SELECT run_uuid, name, digest, source_type, source, schema, profile, tags FROM inputs WHERE run_uuid IN (\(marks)) ORDER BY position", ids) { r in
                let ds = Dataset(name: r[1].string ?? "", digest: r[2].string ?? "", sourceType: r[3].string ?? "", source: r[4].string ?? "",
                                 schema: r[5].string, profile: r[6].string)
                out[byID[r[0].string!]!].run.inputs.append(DatasetInput(dataset: ds, tags: TagCoding.decode(r[7].string ?? "")))
            }
        }
        return out
    }

    public func run(id: String) throws -> Run? {
        try runs(ids: [id]).first
    }

    public func runs(ids: [String]) throws -> [Run] {
        try locked { st in
            // Cached runs as they are; the others from the database in one batch.
            let missing = ids.filter { st.runs[$0] == nil }
            var loaded: [String: (run: Run, latest: [UInt8])] = [:]
            for start in stride(from: 0, to: missing.count, by: 500) {
                let chunk = missing[start..<min(missing.count, start + 500)].map { SQLValue.text($0) }
                let infos = try st.db.rows("SELECT \(Self.runColumns) FROM runs WHERE run_uuid IN (\(sqlMarks(chunk.count)))", chunk).map(Self.runInfo)
                for r in try Self.lightRuns(st.db, infos) { loaded[r.run.info.runID] = r }
            }
            return try ids.compactMap { id -> Run? in
                guard var r = st.runs[id].map({ (run: $0.run, latest: $0.latest) }) ?? loaded[id] else { return nil }
                if !r.latest.isEmpty { r.run.metrics = try Self.decodeLatest(&st, id, r.latest).metrics }
                return r.run
            }
        }
    }

    public func searchRuns(experimentIDs: [Int64], view: ViewType, metricKeys: [String]) throws -> RunCandidates {
        guard !experimentIDs.isEmpty else { return RunCandidates(runs: [], metrics: metricKeys.map { _ in [] }) }
        return try locked { st in
            for exp in experimentIDs where !st.loaded.contains(exp) {
                let infos = try st.db.rows("SELECT \(Self.runColumns) FROM runs WHERE experiment_id = ?", [.integer(exp)]).map(Self.runInfo)
                for r in try Self.lightRuns(st.db, infos) {
                    Self.cache(&st, r.run, latest: r.latest)
                    st.byExperiment[exp, default: []].insert(r.run.info.runID)
                }
                st.loaded.insert(exp)
            }
            var runs: [Run] = [], ordinals: [Int] = []
            for exp in Set(experimentIDs) {
                for id in st.byExperiment[exp] ?? [] {
                    if let r = st.runs[id], view.includes(r.run.info.lifecycleStage) {
                        runs.append(r.run)
                        ordinals.append(r.ordinal)
                    }
                }
            }
            let columns = try Self.columns(&st, metricKeys)
            return RunCandidates(runs: runs, metrics: columns.map { c in ordinals.map { c[$0] } })
        }
    }

    /// The columns of `keys` over every cached run, built or completed as needed: rows needing a decode are decoded
    /// once for all the keys.
    private static func columns(_ st: inout State, _ keys: [String]) throws -> [[Double?]] {
        guard !keys.isEmpty else { return [] }
        let table = try keyTable(&st)
        st.uses += 1
        for k in keys where st.columns[k] == nil { st.columns[k] = MetricColumn(values: [], lastUse: st.uses) }
        let from = keys.map { st.columns[$0]!.values.count }.min() ?? st.ordinals.count
        if from < st.ordinals.count {
            let ids = keys.map { table.id($0) }
            var fill = keys.map { st.columns[$0]!.values }
            for o in from..<st.ordinals.count {
                let id = st.ordinals[o]
                let row = st.runs[id]?.latest ?? []
                let c = row.isEmpty ? nil : try LatestRows.columns(row, runID: id, codec: st.codec)
                for k in keys.indices where fill[k].count == o { fill[k].append(ids[k].flatMap { c?.value(of: $0) }) }
            }
            for k in keys.indices { st.columns[keys[k]]!.values = fill[k] }
        }
        for k in keys { st.columns[k]!.lastUse = st.uses }
        let answer = keys.map { st.columns[$0]!.values }
        // Least recently used columns go, never one this search named (a search may name more than `maxColumns`).
        if st.columns.count > maxColumns {
            let now = st.uses
            let old = st.columns.filter { $0.value.lastUse < now }.sorted { $0.value.lastUse < $1.value.lastUse }
            for (k, _) in old.prefix(st.columns.count - maxColumns) { st.columns[k] = nil }
        }
        return answer
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Int64?, name: String?) throws {
        // One statement (the fields not given keep their values), and the cached run patched rather than read again.
        let update = { (st: inout State) in
            try st.db.run("UPDATE runs SET status = COALESCE(?, status), end_time = COALESCE(?, end_time), name = COALESCE(?, name) WHERE run_uuid = ?",
                          [status.map { .text($0.rawValue) } ?? .null, endTime.map(SQLValue.integer) ?? .null, name.map(SQLValue.text) ?? .null, .text(id)])
            if let name { try st.db.run("INSERT OR REPLACE INTO tags VALUES (?, 'mlflow.runName', ?)", [.text(id), .text(name)]) }
            Self.patch(&st, id) { r in
                if let status { r.info.status = status }
                if let endTime { r.info.endTime = endTime }
                if let name {
                    r.info.runName = name
                    r.tags.removeAll { $0.key == "mlflow.runName" }
                    r.tags.append(KeyValue(key: "mlflow.runName", value: name))
                    r.tags.sort { binaryLess($0.key, $1.key) }
                }
            }
        }
        if name == nil { try locked(update) } else { try transaction { try locked(update) } }
    }

    public func setRunStage(id: String, _ stage: LifecycleStage, now: Int64) throws {
        try writeRun(id) {
            try $0.run("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?",
                       [.text(stage.rawValue), stage == .deleted ? .integer(now) : .null, .text(id)])
        }
    }

    public func setRunTags(id: String, _ tags: [KeyValue]) throws {
        let write = { (st: inout State) in try Self.writeRunTags(&st, id, tags) }
        if tags.count == 1 && tags[0].key != "mlflow.runName" { try locked(write) } else { try transaction { try locked(write) } }
    }

    /// Upserts run tags, in the database and in the cached run.
    private static func writeRunTags(_ st: inout State, _ id: String, _ tags: [KeyValue]) throws {
        for t in tags {
            try st.db.run("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [.text(id), .text(t.key), .text(t.value)])
            if t.key == "mlflow.runName" { try st.db.run("UPDATE runs SET name = ? WHERE run_uuid = ?", [.text(t.value), .text(id)]) }
        }
        // The cached run takes the same upserts (nothing to read back).
        Self.patch(&st, id) { r in
            for t in tags {
                if let i = r.tags.firstIndex(where: { $0.key == t.key }) { r.tags[i].value = t.value } else { r.tags.append(t) }
                if t.key == "mlflow.runName" { r.info.runName = t.value }
            }
            r.tags.sort { binaryLess($0.key, $1.key) }
        }
    }

    public func updateRunTag(activeRunID id: String, key: String, _ update: (String?) throws -> String) throws -> Bool {
        try locked { st in
            guard try st.db.rows("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", [.text(id)]).first?[0].string == LifecycleStage.active.rawValue
            else { return false }
            let current = try st.db.rows("SELECT value FROM tags WHERE run_uuid = ? AND key = ?", [.text(id), .text(key)]).first?[0].string
            try Self.writeRunTags(&st, id, [KeyValue(key: key, value: try update(current))])
            return true
        }
    }

    public func deleteRunTag(id: String, key: String) throws -> Bool {
        try locked { st in
            guard try st.db.run("DELETE FROM tags WHERE run_uuid = ? AND key = ?", [.text(id), .text(key)]) > 0 else { return false }
            Self.patch(&st, id) { $0.tags.removeAll { $0.key == key } }
            return true
        }
    }

    public func params(runID: String, keys: [String]) throws -> [String: String] {
        try locked { st in
            if let r = st.runs[runID]?.run {
                let wanted = Set(keys)
                return Dictionary(r.params.filter { wanted.contains($0.key) }.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            }
            let db = st.db
            var out: [String: String] = [:]
            for k in keys {
                if let v = try db.rows("SELECT value FROM params WHERE run_uuid = ? AND key = ?", [.text(runID), .text(k)]).first?.first?.string {
                    out[k] = v
                }
            }
            return out
        }
    }

    public func insertParams(runID: String, _ params: [KeyValue]) throws -> [String: String] {
        try locked { st in
            var stored: [String: String] = [:]
            for p in params where try st.db.run("INSERT OR IGNORE INTO params VALUES (?, ?, ?)", [.text(runID), .text(p.key), .text(p.value)]) == 0 {
                stored[p.key] = try st.db.rows("SELECT value FROM params WHERE run_uuid = ? AND key = ?", [.text(runID), .text(p.key)]).first?.first?.string
            }
            Self.patch(&st, runID) { r in
                for p in params where !r.params.contains(where: { $0.key == p.key }) { r.params.append(p) }
                r.params.sort { binaryLess($0.key, $1.key) }
            }
            return stored
        }
    }

    public func latestMetrics(runID: String, keys: [String]) throws -> [Metric?] {
        try locked { st in
            LatestRows.lookup(try Self.currentLatest(&st, runID), keys)
        }
    }

    public func setLatestMetrics(runID: String, _ metrics: [Metric]) throws {
        guard !metrics.isEmpty else { return }
        try locked { st in
            // One merge walk of the run's sorted values and the updates in key order (a batch usually arrives sorted:
            // then no sort and no hashing); every key string is the interned one.
            let (all, allIDs) = try Self.currentLatestWithIDs(&st, runID)
            let updates = metrics.isSortedByKey ? metrics : metrics.sorted { binaryLess($0.key, $1.key) }
            let (merged, mergedIDs) = try LatestRows.merge(all, ids: allIDs, sortedUpdates: updates) { key in
                let id = try Self.keyID(&st, key)
                return (id, st.keys!.interned(key))
            }
            // Ids travel with the values: re-encoding the row hashes no key string.
            let row = try LatestRows.encode(merged, ids: mergedIDs, codec: st.codec)
            try st.db.run("INSERT OR REPLACE INTO run_latest VALUES (?, ?)", [.text(runID), .blob(row)])
            Self.remember(&st, runID, merged, mergedIDs)
            guard let cached = st.runs[runID] else { return }
            st.runs[runID]!.latest = row
            // Columns already covering this run take the new values (shorter ones read the row when completed).
            guard !st.columns.isEmpty else { return }
            for u in updates {
                if let c = st.columns[u.key], cached.ordinal < c.values.count { st.columns[u.key]!.values[cached.ordinal] = u.value }
            }
        }
    }

    public func latestTable(runIDs: [String]) throws -> LatestTable {
        // Under the lock only the rows' bytes and the key table; the rows are decoded outside it, on all cores.
        let (bytes, table) = try locked { st in (try runIDs.map { try Self.latestRow(&st, $0) }, try Self.keyTable(&st)) }
        return try LatestRows.table(bytes, runIDs: runIDs) { table.key($0) }
    }

    /// A run's `run_latest` row: the cached run's, or read (empty: none).
    private static func latestRow(_ st: inout State, _ runID: String) throws -> [UInt8] {
        if let r = st.runs[runID] { return r.latest }
        return try st.db.rows("SELECT data FROM run_latest WHERE run_uuid = ?", [.text(runID)]).first?.first?.bytes ?? []
    }

    /// A run's latest values (sorted by key): recently written ones as they are, or its row (cached or read) decoded.
    private static func currentLatest(_ st: inout State, _ runID: String) throws -> [Metric] {
        try currentLatestWithIDs(&st, runID).metrics
    }

    /// ``currentLatest(_:_:)`` with each value's key id.
    private static func currentLatestWithIDs(_ st: inout State, _ runID: String) throws -> (metrics: [Metric], ids: [Int64]) {
        if let r = st.recent.last(where: { $0.runID == runID }) { return (r.metrics, r.ids) }
        let row = try latestRow(&st, runID)
        guard !row.isEmpty else { return ([], []) }
        let d = try decodeLatest(&st, runID, row)
        remember(&st, runID, d.metrics, d.ids)  // a batch reads them up to three times (duplicates, updates, merge)
        return d
    }

    /// Keeps a run's decoded latest values among the recent ones (the newest replaces an older copy).
    private static func remember(_ st: inout State, _ runID: String, _ metrics: [Metric], _ ids: [Int64]) {
        st.recent.removeAll { $0.runID == runID }
        st.recent.append((runID, metrics, ids))
        if st.recent.count > recentRuns { st.recent.removeFirst() }
    }

    /// Decodes a `run_latest` row with the interned keys, keeping each value's key id.
    private static func decodeLatest(_ st: inout State, _ runID: String, _ row: [UInt8]) throws -> (metrics: [Metric], ids: [Int64]) {
        let keys = try keyTable(&st)
        return try LatestRows.decodeWithIDs(row, runID: runID, codec: st.codec) { keys.key($0) }
    }

    /// The interned keys, loaded on first use.
    private static func keyTable(_ st: inout State) throws -> MetricKeyTable {
        if let k = st.keys { return k }
        var table = MetricKeyTable()
        try st.db.query("SELECT key_id, key FROM metric_keys") { r in table.add(id: r[0].int ?? 0, key: r[1].string ?? "") }
        st.keys = table
        return table
    }

    /// The id of `key`, interning it when new.
    private static func keyID(_ st: inout State, _ key: String) throws -> Int64 {
        if let id = try keyTable(&st).id(key) { return id }
        guard let id = try st.db.rows("INSERT INTO metric_keys (key) VALUES (?) RETURNING key_id", [.text(key)]).first?.first?.int else {
            throw TrackingError(.internalError, "metric key \(key) could not be interned")
        }
        st.keys!.add(id: id, key: key)
        return id
    }

    public func insertInputs(runID: String, _ inputs: [DatasetInput]) throws {
        try writeRun(runID) { db in
            guard let experiment = try db.rows("SELECT experiment_id FROM runs WHERE run_uuid = ?", [.text(runID)]).first?.first?.int else { return }
            var position = (try db.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM inputs WHERE run_uuid = ?", [.text(runID)]).first?.first?.int) ?? 0
            for i in inputs {
                let d = i.dataset
                // The experiment's first version of the dataset is the one every run of it gets.
                try db.run("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           [.integer(experiment), .text(d.name), .text(d.digest), .text(d.sourceType), .text(d.source),
                            d.schema.map(SQLValue.text) ?? .null, d.profile.map(SQLValue.text) ?? .null])
                position += Int64(try db.run("INSERT INTO inputs SELECT ?, name, digest, source_type, source, schema, profile, ?, ? FROM datasets "
                                             + "WHERE experiment_id = ? AND name = ? AND digest = ? ON CONFLICT DO NOTHING",
                                             [.text(runID), .text(TagCoding.encode(i.tags)), .integer(position), .integer(experiment), .text(d.name), .text(d.digest)]))
            }
        }
    }
}

/// Input tags stored in one column: `key \u{1F} value \u{1E}` repeated (control characters never appear in keys).
enum TagCoding {
    static func encode(_ tags: [KeyValue]) -> String {
        tags.map { $0.key + "\u{1F}" + $0.value }.joined(separator: "\u{1E}")
    }

    static func decode(_ s: String) -> [KeyValue] {
        guard !s.isEmpty else { return [] }
        return s.split(separator: "\u{1E}", omittingEmptySubsequences: false).map { pair in
            let parts = pair.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
            return KeyValue(key: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
    }
}
