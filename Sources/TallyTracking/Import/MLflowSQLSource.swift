import Foundation
import TallyStore

/// Reads a team's tracking data out of MLflow's own SQL schema (the database behind `mlflow server
/// --backend-store-uri sqlite:///…` or `postgresql://…`), read-only: a SQLite file is opened without write access,
/// so not even its journal mode changes; PostgreSQL is only queried. Columns are found by introspection, so the
/// schema generations MLflow 2.0–3.x have shipped (see `alembic_version`) read the same way: tables a generation
/// lacks (datasets before 2.4) read as empty.
final class MLflowSQLSource: MLflowSource {
    private enum Database {
        case sqlite(SQLiteDatabase)
        case postgres(PostgresDatabase)
    }

    private let database: Database
    /// Where the data comes from, for messages and the journal's name (a path, or a URI without its password).
    let location: String
    /// The source's alembic revision (`nil` for a database without the table).
    private(set) var revision: String?

    /// `MLflow schema <alembic revision>`.
    var provenance: String { "MLflow schema " + (revision ?? "unknown") }
    /// Columns of each table the importer reads.
    private var columns: [String: Set<String>] = [:]
    /// The column ordering rows as they were stored: SQLite's `rowid`, PostgreSQL's physical `ctid`.
    let order: String

    static let tables = ["experiments", "experiment_tags", "runs", "params", "tags", "metrics", "inputs", "input_tags", "datasets", "alembic_version",
                         "logged_models", "logged_model_tags", "logged_model_params", "logged_model_metrics", "registered_models",
                         "registered_model_tags", "registered_model_aliases", "model_versions", "model_version_tags", "webhooks", "webhook_events",
                         "trace_info", "trace_tags", "trace_request_metadata", "assessments", "spans", "entity_associations", "evaluation_datasets",
                         "evaluation_dataset_tags", "evaluation_dataset_records", "scorers", "scorer_versions", "online_scoring_configs",
                         "label_schemas", "review_queues", "review_queue_users", "review_queue_label_schemas", "review_queue_items", "issues", "workspaces"]

    /// The workspace read (``MLflowSource/workspace``).
    let workspace: String

    /// Opens `path` read-only and checks it is an MLflow tracking database with `workspace`.
    convenience init(sqlitePath path: String, workspace: String = MLflowWorkspace.defaultName) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw TrackingError.invalid("No MLflow database at \(path)") }
        do {
            try self.init(.sqlite(try SQLiteDatabase(path: path, readOnly: true)), location: path, order: "rowid", workspace: workspace)
        } catch let e as SQLiteError {
            throw TrackingError.invalid("Cannot open the MLflow database \(path): \(e.message)")
        }
    }

    /// Connects to MLflow's PostgreSQL database (`postgresql://`, `postgres://` or MLflow's `postgresql+psycopg2://`).
    convenience init(postgres uri: PostgresURI, workspace: String = MLflowWorkspace.defaultName) throws {
        try self.init(.postgres(try PostgresDatabase(uri: uri, poolSize: 1)), location: uri.description, order: "ctid", workspace: workspace)
    }

    /// (`workspace` is checked by ``MLflowImport/openSQLSource(_:workspace:)`` before the database is opened.)
    private init(_ database: Database, location: String, order: String, workspace: String) throws {
        self.database = database
        self.location = location
        self.order = order
        self.workspace = workspace
        let introspect = switch database {
        case .sqlite: "SELECT name FROM pragma_table_info(?)"
        case .postgres: "SELECT column_name::text FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema()"
        }
        for table in Self.tables {
            let names = try rows(introspect, [.text(table)]).compactMap { $0.first?.string }
            if !names.isEmpty { columns[table] = Set(names) }
        }
        for (table, needed) in [("experiments", ["experiment_id", "name", "artifact_location", "lifecycle_stage"]),
                                ("runs", ["run_uuid", "experiment_id", "status", "start_time", "end_time", "lifecycle_stage", "artifact_uri"]),
                                ("metrics", ["key", "value", "timestamp", "step", "is_nan", "run_uuid"]),
                                ("params", ["key", "value", "run_uuid"]), ("tags", ["key", "value", "run_uuid"])] {
            let missing = needed.filter { columns[table]?.contains($0) != true }
            guard missing.isEmpty else {
                throw TrackingError.invalid("\(location) is not an MLflow 2.x/3.x tracking database: table \(table) lacks \(missing.joined(separator: ", "))")
            }
        }
        revision = !has("alembic_version") ? nil : try rows("SELECT version_num FROM alembic_version").first?.first?.string
        let names = try workspaces().map(\.name)
        guard names.contains(workspace) else { throw MLflowWorkspace.unknown(workspace, in: location, has: names) }
    }

    /// Every row of a query (`?` placeholders on both databases), texts made storable (``ImportText``).
    func rows(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
        let rows = switch database {
        case .sqlite(let db): try db.rows(sql, values)
        case .postgres(let db): try db.withConnection { try $0.rows(sql, values) }
        }
        return rows.map { $0.map(storable) }
    }

    private(set) var textsWithNUL = 0

    /// `v` with NULs in its text as U+FFFD, counted.
    private func storable(_ v: SQLValue) -> SQLValue {
        guard case .text(let s) = v else { return v }
        let (text, hadNUL) = ImportText.storable(s)
        if hadNUL { textsWithNUL += 1 }
        return hadNUL ? .text(text) : v
    }

    /// Calls `row` with each result row.
    func query(_ sql: String, _ values: [SQLValue], _ row: ([SQLValue]) throws -> Void) throws {
        for r in try rows(sql, values) { try row(r) }
    }

    /// What names this source in the journal: the SQLite file's absolute path, or the PostgreSQL URI's host, port,
    /// database and user; and the workspace, when it is not the default one.
    var journalName: String {
        let name = switch database {
        case .sqlite: "sqlite:" + URL(fileURLWithPath: location).standardizedFileURL.path
        case .postgres: location
        }
        return name + MLflowWorkspace.journalSuffix(workspace)
    }

    /// Closes the PostgreSQL connection (a SQLite file closes with the source).
    func close() {
        if case .postgres(let db) = database { db.close() }
    }

    func has(_ table: String, _ column: String) -> Bool { columns[table]?.contains(column) == true }

    /// Whether the schema has `table` (logged models since 3.0, aliases since 2.3, datasets since 2.4).
    func has(_ table: String) -> Bool { columns[table] != nil }

    /// `table`'s rows of the workspace read: a condition (`workspace = ?`, or one always true where the schema
    /// predates workspaces) and its argument.
    func ofWorkspace(_ table: String) -> (sql: String, args: [SQLValue]) {
        has(table, "workspace") ? ("workspace = ?", [.text(workspace)]) : ("1 = 1", [])
    }

    /// The catalog's workspaces and those holding experiments or registered models, with their counts (the default
    /// one alone, holding everything, where the schema predates workspaces).
    func workspaces() throws -> [SourceWorkspace] {
        func none(_ name: String) -> SourceWorkspace { SourceWorkspace(name: name, experiments: 0, registeredModels: 0) }
        var out = [MLflowWorkspace.defaultName: none(MLflowWorkspace.defaultName)]
        func count(_ table: String, _ add: (inout SourceWorkspace, Int) -> Void) throws {
            guard has(table) else { return }
            let sql = has(table, "workspace") ? "SELECT workspace, COUNT(*) FROM \(table) GROUP BY workspace"
                : "SELECT '\(MLflowWorkspace.defaultName)', COUNT(*) FROM \(table)"
            for r in try rows(sql) {
                let name = r[0].string ?? MLflowWorkspace.defaultName
                add(&out[name, default: none(name)], Int(r[1].int ?? 0))
            }
        }
        if has("workspaces", "name") {
            for r in try rows("SELECT name FROM workspaces") {
                if let name = r[0].string, out[name] == nil { out[name] = none(name) }
            }
        }
        try count("experiments") { $0.experiments += $1 }
        try count("registered_models") { $0.registeredModels += $1 }
        return out.values.sorted { $0.name < $1.name }
    }

    func otherWorkspaces() throws -> [SourceWorkspace] { try workspaces().filter { $0.name != workspace } }

    /// Every experiment of the workspace with its tags, by id. Times missing in old schemas read as 0.
    func experiments() throws -> [Experiment] {
        let times = has("experiments", "creation_time") ? "creation_time, last_update_time" : "NULL, NULL"
        var out: [Experiment] = []
        var index: [Int64: Int] = [:]
        let scope = ofWorkspace("experiments")
        try query("SELECT experiment_id, name, artifact_location, lifecycle_stage, \(times) FROM experiments WHERE \(scope.sql) ORDER BY experiment_id",
                  scope.args) { r in
            let id = r[0].int ?? 0
            index[id] = out.count
            out.append(Experiment(experimentID: String(id), name: r[1].string ?? "", artifactLocation: r[2].string ?? "",
                                  lifecycleStage: LifecycleStage(rawValue: r[3].string ?? "") ?? .active, creationTime: r[4].int ?? 0,
                                  lastUpdateTime: r[5].int ?? 0, tags: []))
        }
        if has("experiment_tags") {
            try query("SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (SELECT experiment_id FROM experiments "
                      + "WHERE \(scope.sql)) ORDER BY \(order)", scope.args) { r in
                guard let i = index[r[0].int ?? -1] else { return }
                out[i].tags.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? ""))
            }
        }
        return out
    }

    func deletedTime(runID: String) throws -> Int64? {
        guard has("runs", "deleted_time") else { return nil }  // before MLflow 2.0's revision that added it
        var time: Int64?
        try query("SELECT deleted_time FROM runs WHERE run_uuid = ?", [.text(runID)]) { time = $0[0].int }
        return time
    }

    /// The runs of an experiment started at or after `since` (ms), oldest first, with their source artifact URIs.
    /// A run without a name takes its `mlflow.runName` tag, as MLflow shows it.
    func runs(experimentID: String, since: Int64?) throws -> [RunInfo] {
        let name = has("runs", "name") ? "r.name" : "NULL"
        var sql = "SELECT r.run_uuid, \(name), r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage, "
            + "(SELECT t.value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'mlflow.runName') FROM runs r WHERE r.experiment_id = ?"
        var args: [SQLValue] = [.integer(Int64(experimentID) ?? -1)]
        if let since {
            sql += " AND r.start_time >= ?"
            args.append(.integer(since))
        }
        var out: [RunInfo] = []
        try query(sql + " ORDER BY r.start_time, r.run_uuid", args) { r in
            let stored = r[1].string ?? ""
            out.append(RunInfo(runID: r[0].string ?? "", runName: stored.isEmpty ? (r[9].string ?? "") : stored, experimentID: String(r[2].int ?? 0),
                               userID: r[3].string ?? "", status: RunStatus(rawValue: r[4].string ?? "") ?? .running, startTime: r[5].int ?? 0,
                               endTime: r[6].int, artifactURI: r[7].string ?? "", lifecycleStage: LifecycleStage(rawValue: r[8].string ?? "") ?? .active))
        }
        return out
    }

    /// A run's tags, in the order MLflow first stored them.
    func tags(runID: String) throws -> [KeyValue] {
        try rows("SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY \(order)", [.text(runID)]).map {
            KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
        }
    }

    /// A run's params.
    func params(runID: String) throws -> [KeyValue] {
        try rows("SELECT key, value FROM params WHERE run_uuid = ? ORDER BY \(order)", [.text(runID)]).map {
            KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
        }
    }

    /// A run's dataset inputs with their tags (none before MLflow 2.4's schema).
    func inputs(runID: String) throws -> [DatasetInput] {
        guard has("inputs"), has("datasets") else { return [] }
        var out: [DatasetInput] = []
        var byInput: [String: Int] = [:]
        try query("SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile "
                     + "FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' "
                     + "AND i.destination_type = 'RUN' AND i.destination_id = ? ORDER BY i.\(order)", [.text(runID)]) { r in
            byInput[r[0].string ?? ""] = out.count
            out.append(DatasetInput(dataset: Dataset(name: r[1].string ?? "", digest: r[2].string ?? "", sourceType: r[3].string ?? "",
                                                     source: r[4].string ?? "", schema: r[5].string, profile: r[6].string), tags: []))
        }
        if !out.isEmpty, has("input_tags") {
            for (input, i) in byInput {
                out[i].tags = try rows("SELECT name, value FROM input_tags WHERE input_uuid = ? ORDER BY \(order)", [.text(input)]).map {
                    KeyValue(key: $0[0].string ?? "", value: $0[1].string ?? "")
                }
            }
        }
        return out
    }

    /// Every metric point of a run in one ordered scan: a series per key (keys in bytewise order), its points by
    /// step and, within a step, in the order MLflow's `get-history` lists them (timestamp, then the stored value),
    /// values exactly as the database holds them (`is_nan` rows are NaN; ±Inf was stored as ±1.7976931348623157e308
    /// and stays so). The scan follows MLflow's `(run_uuid, key, step)` index, so SQLite sorts nothing; the rare
    /// points sharing a step are put in MLflow's order here.
    func metrics(runID: String) throws -> [SeriesBatch] {
        var out: [SeriesBatch] = []
        var key: [UInt8] = []
        var steps: [Int64] = [], stamps: [Int64] = [], values: [Double] = [], stored: [Double] = []
        var ties = false
        func close() {
            guard !steps.isEmpty else { return }
            if ties { Self.orderTies(&steps, &stamps, &values, stored) }
            let (name, hadNUL) = ImportText.storable(String(decoding: key, as: UTF8.self))
            if hadNUL { textsWithNUL += 1 }
            out.append(SeriesBatch(key: name, steps: steps, timestamps: stamps, values: values))
            steps.removeAll(keepingCapacity: true)
            stamps.removeAll(keepingCapacity: true)
            values.removeAll(keepingCapacity: true)
            stored.removeAll(keepingCapacity: true)
            ties = false
        }
        func point<K: Collection<UInt8>>(_ k: K, _ timestamp: Int64, _ step: Int64, _ value: Double, _ nan: Bool) {
            if steps.isEmpty || !k.elementsEqual(key) {
                close()
                key = Array(k)
            }
            if let last = steps.last, last == step { ties = true }
            stamps.append(timestamp)
            steps.append(step)
            stored.append(value)
            values.append(nan ? .nan : value)
        }
        switch database {
        case .sqlite(let db):
            // Millions of rows: a cursor, the key compared in place and made a String once per series.
            try db.scan("SELECT key, timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, step", [.text(runID)]) { r in
                point(r.text(0), r.int64(1), r.int64(2), r.double(3), r.int64(4) != 0)
            }
        case .postgres:
            // Pages of rows, so a run of millions of points is never one result set in memory: keyset pagination on
            // (key, step, timestamp, value, is_nan), which MLflow's primary key makes unique within a run. Keys
            // compare bytewise (`COLLATE "C"`) whatever the database's collation.
            let order = "key COLLATE \"C\", step, timestamp, value, is_nan"
            var after: [SQLValue]?
            while true {
                let page = try rows("SELECT key, timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ?"
                                    + (after == nil ? "" : " AND (key COLLATE \"C\", step, timestamp, value, is_nan) > (? COLLATE \"C\", ?, ?, ?, ? <> 0)")
                                    + " ORDER BY \(order) LIMIT \(Self.postgresPage)", [.text(runID)] + (after ?? []))
                for r in page { point((r[0].string ?? "").utf8, r[1].int ?? 0, r[2].int ?? 0, r[3].double ?? 0, (r[4].int ?? 0) != 0) }
                guard page.count == Self.postgresPage, let last = page.last else { break }
                after = [last[0], last[2], last[1], last[3], .integer(last[4].int ?? 0)]
            }
        }
        close()
        return out
    }

    /// Rows per page of a PostgreSQL metric scan.
    static let postgresPage = 50_000

    /// Sorts each group of points sharing a step by (timestamp, stored value), MLflow's history order.
    static func orderTies(_ steps: inout [Int64], _ stamps: inout [Int64], _ values: inout [Double], _ stored: [Double]) {
        var i = 0
        while i < steps.count {
            var j = i + 1
            while j < steps.count && steps[j] == steps[i] { j += 1 }
            if j - i > 1 {
                let order = (i..<j).sorted { (stamps[$0], stored[$0]) < (stamps[$1], stored[$1]) }
                let (t, v) = (order.map { stamps[$0] }, order.map { values[$0] })
                stamps.replaceSubrange(i..<j, with: t)
                values.replaceSubrange(i..<j, with: v)
            }
            i = j
        }
    }

    /// What changes when MLflow logs more to a run: its points, params and tags counted, status, end time and stage.
    /// A run imported with one fingerprint and found with another is imported again.
    func fingerprint(_ run: RunInfo) throws -> String {
        let id = SQLValue.text(run.runID)
        let r = try rows("SELECT (SELECT COUNT(*) FROM metrics WHERE run_uuid = ?), (SELECT COUNT(*) FROM params WHERE run_uuid = ?), "
                         + "(SELECT COUNT(*) FROM tags WHERE run_uuid = ?)", [id, id, id])[0]
        // Inputs (datasets and models) counted too; written only when there are some, so a run imported before they
        // were counted keeps its fingerprint.
        let inputs = has("inputs") ? try rows("SELECT COUNT(*) FROM inputs WHERE source_id = ? AND destination_type = 'MODEL_INPUT'", [id])[0][0].int ?? 0 : 0
        return "\(r[0].int ?? 0),\(r[1].int ?? 0),\(r[2].int ?? 0),\(run.status.rawValue),\(run.endTime ?? -1),\(run.lifecycleStage.rawValue),\(run.runName.utf8.count)"
            + (inputs > 0 ? ",models-in:\(inputs)" : "")
    }

    /// Artifacts on this machine (the database says where they are, not how to reach them).
    func artifacts(_ uri: String, owner: ArtifactOwner, artifactsFrom: String?) -> SourceArtifacts {
        localArtifacts(uri, artifactsFrom: artifactsFrom)
    }

    /// Metric points of a run, counted without reading them (dry runs, progress totals).
    func metricCount(runID: String) throws -> Int {
        Int(try rows("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", [.text(runID)]).first?.first?.int ?? 0)
    }
}
