import Synchronization
import TallyStore

extension PostgresMetadataStore {
    // MARK: Runs

    public func insertRun(_ info: RunInfo, tags: [KeyValue]) throws {
        // One statement (atomic by itself): the run, its tags, and an empty latest row from the start — the row every
        // later batch locks (two servers' first batches of a run then take turns instead of both inserting).
        let tags = Self.tagRows(tags)
        let tagInsert = tags.isEmpty ? "" : ", t AS (" + Self.tagUpsert(tags.count) + ")"
        try conn { c in
            try c.exec("WITH r AS (INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) RETURNING run_uuid)" + tagInsert
                      + " INSERT INTO run_latest SELECT run_uuid, ''::bytea FROM r",
                      [.text(info.runID), .integer(Int64(info.experimentID) ?? 0), .text(info.runName), .text(info.userID),
                       .text(info.status.rawValue), .integer(info.startTime), info.endTime.map(SQLValue.integer) ?? .null,
                       .text(info.artifactURI), .text(info.lifecycleStage.rawValue)]
                      + tags.flatMap { [.text(info.runID), .text($0.key), .text($0.value)] })
        }
        rememberNewRun(info.runID)
    }

    /// A run's empty latest row, as its insert made it (committed: outside transactions only), remembered so the
    /// run's first metrics request needs no read (``metricsRequest(runID:_:)``).
    func rememberNewRun(_ runID: String) {
        if current == nil { latestCache.put(runID, LatestCache.Entry(seq: 0, data: [])) }
    }

    public func insertRun(inActiveExperiment info: RunInfo, tags: [KeyValue]) throws -> Bool {
        // One statement (for this and concurrent requests' runs): the run row made only while its experiment is
        // active, its tags and its empty latest row joined to the inserted run, so nothing is written otherwise.
        guard case .run(inserted: true) = try send(.run(info, tags: Self.tagRows(tags))) else { return false }
        rememberNewRun(info.runID)
        return true
    }

    public func artifactLocation(experimentID: Int64) throws -> String? {
        if let known = artifactLocations.withLock({ $0[experimentID] }) { return known }
        let found = try conn { try $0.rows("SELECT artifact_location FROM experiments WHERE experiment_id = ?", [.integer(experimentID)]) }
        guard let location = found.first?.first?.string else { return nil }
        artifactLocations.withLock { $0[experimentID] = location }
        return location
    }

    /// Tags to upsert: the last of equal keys winning, in key order (concurrent writers lock rows in one order: no
    /// deadlock).
    static func tagRows(_ tags: [KeyValue]) -> [KeyValue] {
        TrackingService.lastWins(tags).sorted { binaryLess($0.key, $1.key) }
    }

    /// The upsert of `n` run tags (binds: run, key, value for each).
    static func tagUpsert(_ n: Int) -> String {
        "INSERT INTO tags VALUES " + Array(repeating: "(?, ?, ?)", count: n).joined(separator: ", ")
            + " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value"
    }

    /// Upserts run tags (see ``tagRows(_:)``).
    static func upsertTags(_ c: PostgresDatabase.Connection, runID: String, _ tags: [KeyValue]) throws {
        let tags = tagRows(tags)
        guard !tags.isEmpty else { return }
        try c.exec(tagUpsert(tags.count), tags.flatMap { [.text(runID), .text($0.key), .text($0.value)] })
    }

    public func runInfo(id: String) throws -> RunInfo? {
        try conn { try $0.rows("SELECT \(SQLiteMetadataStore.runColumns) FROM runs WHERE run_uuid = ?", [.text(id)]).first.map(SQLiteMetadataStore.runInfo) }
    }

    public func run(id: String) throws -> Run? {
        try runs(ids: [id]).first
    }

    public func runs(ids: [String]) throws -> [Run] {
        var found: [String: Run] = [:]
        try conn { c in
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = ids[start..<min(ids.count, start + 500)].map { SQLValue.text($0) }
                for r in try runRows(c, where: "run_uuid IN (\(sqlMarks(chunk.count)))", chunk) {
                    var run = r.run
                    if !r.latest.isEmpty { run.metrics = try decodeLatest(r.latest, runID: run.info.runID).metrics }
                    found[run.info.runID] = run
                }
            }
        }
        return ids.compactMap { found[$0] }
    }

    /// Runs matching a condition on `runs` with params, tags and inputs, each with its latest row (empty: none):
    /// five statements whatever the number of runs.
    func runRows(_ c: PostgresDatabase.Connection, where condition: String, _ values: [SQLValue]) throws -> [(run: Run, latest: [UInt8])] {
        var out = try c.rows("SELECT \(SQLiteMetadataStore.runColumns) FROM runs WHERE \(condition)", values).map {
            (run: Run(info: SQLiteMetadataStore.runInfo($0), metrics: [], params: [], tags: [], inputs: []), latest: [UInt8]())
        }
        guard !out.isEmpty else { return [] }
        var index: [String: Int] = [:]
        for (i, r) in out.enumerated() { index[r.run.info.runID] = i }
        let of = "run_uuid IN (SELECT run_uuid FROM runs WHERE \(condition))"
        for r in try c.rows("SELECT run_uuid, data FROM run_latest WHERE \(of)", values) {
            if let i = index[r[0].string ?? ""] { out[i].latest = r[1].bytes ?? [] }
        }
        for r in try c.rows("SELECT run_uuid, key, value FROM params WHERE \(of) ORDER BY run_uuid, key", values) {
            if let i = index[r[0].string ?? ""] { out[i].run.params.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? "")) }
        }
        for r in try c.rows("SELECT run_uuid, key, value FROM tags WHERE \(of) ORDER BY run_uuid, key", values) {
            if let i = index[r[0].string ?? ""] { out[i].run.tags.append(KeyValue(key: r[1].string ?? "", value: r[2].string ?? "")) }
        }
        for r in try c.rows("SELECT run_uuid, name, digest, source_type, source, schema, profile, tags FROM inputs WHERE \(of) ORDER BY run_uuid, position", values) {
            guard let i = index[r[0].string ?? ""] else { continue }
            let ds = Dataset(name: r[1].string ?? "", digest: r[2].string ?? "", sourceType: r[3].string ?? "", source: r[4].string ?? "",
                             schema: r[5].string, profile: r[6].string)
            out[i].run.inputs.append(DatasetInput(dataset: ds, tags: TagCoding.decode(r[7].string ?? "")))
        }
        return out
    }

    public func searchRuns(experimentIDs: [Int64], view: ViewType, metricKeys: [String]) throws -> RunCandidates {
        // Each experiment's runs through the search cache (what changed since it was read, not every run again), and
        // the values of the keys asked for (decoded once per run and key, kept with the cache).
        let keyIDs = try metricKeys.map { try keyID(ifKnown: $0) }
        var runs: [Run] = [], metrics = metricKeys.map { _ in [Double?]() }
        try conn { c in
            var experiments = Set(experimentIDs).sorted()
            if experiments.count > 2 {
                // Only those with runs (one statement, instead of two for each experiment that has none).
                experiments = try c.rows("SELECT e.id FROM unnest(?) AS e(id) WHERE EXISTS (SELECT 1 FROM runs r WHERE r.experiment_id = e.id) ORDER BY e.id",
                                         arrays: [.integers(experiments)]).compactMap { $0[0].int }
            }
            for experiment in experiments {
                let part = try candidates(try experimentRuns(c, experiment), experiment: experiment, view: view, keyIDs: keyIDs)
                runs += part.runs
                for k in metrics.indices { metrics[k] += part.metrics[k] }
            }
        }
        return RunCandidates(runs: runs, metrics: metrics)
    }

    /// The `SET` items (`status = ?`, …) and their values of a run update: only what is given.
    static func runChanges(status: RunStatus?, endTime: Int64?, name: String?) -> (set: [String], values: [SQLValue]) {
        var set: [String] = [], values: [SQLValue] = []
        if let status { set.append("status = ?"); values.append(.text(status.rawValue)) }
        if let endTime { set.append("end_time = ?"); values.append(.integer(endTime)) }
        if let name { set.append("name = ?"); values.append(.text(name)) }
        return (set, values)
    }

    public func updateRun(id: String, status: RunStatus?, endTime: Int64?, name: String?) throws {
        let (set, values) = Self.runChanges(status: status, endTime: endTime, name: name)
        guard !set.isEmpty else { return }
        let update = { (c: PostgresDatabase.Connection) in
            try c.exec("UPDATE runs SET \(set.joined(separator: ", ")) WHERE run_uuid = ?", values + [.text(id)])
        }
        // One statement unless the name's tag goes with it.
        guard let name else { return try conn { _ = try update($0) } }
        try write { c in
            _ = try update(c)
            try Self.upsertTags(c, runID: id, [KeyValue(key: "mlflow.runName", value: name)])
        }
    }

    public func setRunStage(id: String, _ stage: LifecycleStage, now: Int64) throws {
        try conn {
            try $0.run("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?",
                       [.text(stage.rawValue), stage == .deleted ? .integer(now) : .null, .text(id)])
        }
    }

    public func setRunTags(id: String, _ tags: [KeyValue]) throws {
        // One statement unless the run's name changes with its tag.
        guard let name = TrackingService.lastWins(tags).last(where: { $0.key == "mlflow.runName" }) else {
            return try conn { try Self.upsertTags($0, runID: id, tags) }
        }
        try write { c in
            try Self.upsertTags(c, runID: id, tags)
            try c.run("UPDATE runs SET name = ? WHERE run_uuid = ?", [.text(name.value), .text(id)])
        }
    }

    public func updateRunTag(activeRunID id: String, key: String, _ update: (String?) throws -> String) throws -> Bool {
        try write { c in
            // The run's row locked: a concurrent update of the same tag waits here and then reads this one's value.
            guard try c.rows("SELECT lifecycle_stage FROM runs WHERE run_uuid = ? FOR UPDATE", [.text(id)]).first?[0].string
                == LifecycleStage.active.rawValue else { return false }
            let current = try c.rows("SELECT value FROM tags WHERE run_uuid = ? AND key = ?", [.text(id), .text(key)]).first?[0].string
            try Self.upsertTags(c, runID: id, [KeyValue(key: key, value: try update(current))])
            return true
        }
    }

    public func deleteRunTag(id: String, key: String) throws -> Bool {
        try conn { try $0.run("DELETE FROM tags WHERE run_uuid = ? AND key = ?", [.text(id), .text(key)]) > 0 }
    }

    public func params(runID: String, keys: [String]) throws -> [String: String] {
        guard !keys.isEmpty else { return [:] }
        return try conn { c in
            var out: [String: String] = [:]
            for start in stride(from: 0, to: keys.count, by: 500) {
                let chunk = keys[start..<min(keys.count, start + 500)].map { SQLValue.text($0) }
                for r in try c.rows("SELECT key, value FROM params WHERE run_uuid = ? AND key IN (\(sqlMarks(chunk.count)))", [.text(runID)] + chunk) {
                    out[r[0].string ?? ""] = r[1].string ?? ""
                }
            }
            return out
        }
    }

    public func insertParams(runID: String, _ params: [KeyValue]) throws -> [String: String] {
        // Key order (no deadlock between concurrent writers); the insert waits for a concurrent uncommitted one of the
        // same key and then skips it, so the value stored first is the one answered.
        let params = params.sorted { binaryLess($0.key, $1.key) }
        guard !params.isEmpty else { return [:] }
        // One statement, atomic by itself (inside a batch's transaction when there is one); the values of skipped
        // keys are read after it, so they are the ones stored first.
        return try conn { c in
            let inserted = Set(try c.rows("INSERT INTO params VALUES " + Array(repeating: "(?, ?, ?)", count: params.count).joined(separator: ", ")
                                          + " ON CONFLICT (run_uuid, key) DO NOTHING RETURNING key",
                                          params.flatMap { [.text(runID), .text($0.key), .text($0.value)] }).compactMap { $0.first?.string })
            let others = params.filter { !inserted.contains($0.key) }.map(\.key)
            return try self.params(runID: runID, keys: others)
        }
    }

    // MARK: Writes guarded by the run's stage (one statement each: the check rides on the write)

    public func insertParams(activeRunID runID: String, _ params: [KeyValue]) throws -> [String: String]? {
        // One statement (for this and concurrent requests' runs): nothing is inserted into a run that is not active.
        let params = params.sorted { binaryLess($0.key, $1.key) }
        guard case .params(active: true, let inserted) = try send(.params(runID: runID, params)) else { return nil }
        let others = params.filter { !inserted.contains($0.key) }.map(\.key)
        return others.isEmpty ? [:] : try self.params(runID: runID, keys: others)
    }

    public func updateRun(activeID id: String, status: RunStatus?, endTime: Int64?, name: String?) throws -> RunInfo? {
        if name == nil, status != nil || endTime != nil {  // one statement, with concurrent requests' updates
            guard case .finish(let info) = try send(.finish(runID: id, status: status, endTime: endTime)) else { return nil }
            return info
        }
        let (set, values) = Self.runChanges(status: status, endTime: endTime, name: name)
        let columns = SQLiteMetadataStore.runColumns
        let update = { (c: PostgresDatabase.Connection) -> RunInfo? in
            let sql = set.isEmpty ? "SELECT \(columns) FROM runs WHERE run_uuid = ? AND lifecycle_stage = 'active'"
                : "UPDATE runs SET \(set.joined(separator: ", ")) WHERE run_uuid = ? AND lifecycle_stage = 'active' RETURNING \(columns)"
            return try c.rows(sql, values + [.text(id)]).first.map(SQLiteMetadataStore.runInfo)
        }
        // One statement unless the name's tag goes with it.
        guard let name else { return try conn(update) }
        return try write { c in
            guard let info = try update(c) else { return nil }
            try Self.upsertTags(c, runID: id, [KeyValue(key: "mlflow.runName", value: name)])
            return info
        }
    }

    // MARK: Inputs and outputs

    public func insertInputs(runID: String, _ inputs: [DatasetInput]) throws {
        guard !inputs.isEmpty else { return }
        // As one by one would, in three statements whatever their number: the experiment's first version of each
        // dataset stays (a new one is added), and a run's input, once there, keeps its fields and tags; a new input
        // copies the experiment's version and takes the next position, in the order given. Of a dataset given twice,
        // the first stays: its row is inserted first (ties in key order broken by the order given), and its input has
        // the lower position. New datasets are inserted in key order, as every multi-row write is: two runs adding the
        // same ones wait for each other in one order, never in a cycle.
        typealias Column = PostgresDatabase.Connection.Column
        let n = inputs.count, d = inputs.map(\.dataset)
        try write { c in
            // Positions are the run's: one writer at a time.
            guard let row = try c.rows("SELECT experiment_id, (SELECT COALESCE(MAX(position), -1) + 1 FROM inputs WHERE run_uuid = ?) FROM runs "
                                       + "WHERE run_uuid = ? FOR UPDATE", [.text(runID), .text(runID)]).first,
                  let experiment = row[0].int, let next = row[1].int else { return }
            let experiments = Column.integers(Array(repeating: experiment, count: n)), names = Column.texts(d.map(\.name)), digests = Column.texts(d.map(\.digest))
            try c.rows("INSERT INTO datasets SELECT v.experiment_id, v.name, v.digest, v.source_type, v.source, CASE WHEN v.has_schema = 1 THEN v.schema END, "
                       + "CASE WHEN v.has_profile = 1 THEN v.profile END "
                       + "FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?) WITH ORDINALITY AS v(experiment_id, name, digest, source_type, source, schema, has_schema, "
                       + "profile, has_profile, n) ORDER BY v.name COLLATE \"C\", v.digest COLLATE \"C\", v.n ON CONFLICT DO NOTHING",
                       arrays: [experiments, names, digests, .texts(d.map(\.sourceType)), .texts(d.map(\.source)),
                                .texts(d.map { $0.schema ?? "" }), .integers(d.map { $0.schema == nil ? 0 : 1 }),
                                .texts(d.map { $0.profile ?? "" }), .integers(d.map { $0.profile == nil ? 0 : 1 })])
            try c.rows("INSERT INTO inputs SELECT v.run_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile, v.tags, v.position "
                       + "FROM unnest(?, ?, ?, ?, ?, ?) AS v(run_uuid, experiment_id, name, digest, tags, position) "
                       + "JOIN datasets d ON d.experiment_id = v.experiment_id AND d.name = v.name AND d.digest = v.digest ORDER BY v.position ON CONFLICT DO NOTHING",
                       arrays: [.texts(Array(repeating: runID, count: n)), experiments, names, digests, .texts(inputs.map { TagCoding.encode($0.tags) }),
                                .integers((0..<n).map { next + Int64($0) })])
        }
    }

    public func insertRunOutputs(runID: String, _ outputs: [ModelOutput]) throws {
        guard !outputs.isEmpty else { return }
        try write { c in
            // Positions in the order given; a model the run has already output keeps its place (a gap is no matter).
            try c.run("SELECT 1 FROM runs WHERE run_uuid = ? FOR UPDATE", [.text(runID)])
            let next = try c.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM run_outputs WHERE run_uuid = ?", [.text(runID)]).first?.first?.int ?? 0
            try c.rows("INSERT INTO run_outputs SELECT * FROM unnest(?, ?, ?, ?) AS v(run_uuid, model_id, step, position) ORDER BY position ON CONFLICT DO NOTHING",
                       arrays: [.texts(Array(repeating: runID, count: outputs.count)), .texts(outputs.map(\.modelID)), .integers(outputs.map(\.step)),
                                .integers(outputs.indices.map { next + Int64($0) })])
        }
    }

    public func insertRunModelInputs(runID: String, _ inputs: [ModelInput]) throws {
        guard !inputs.isEmpty else { return }
        try write { c in
            try c.run("SELECT 1 FROM runs WHERE run_uuid = ? FOR UPDATE", [.text(runID)])
            let next = try c.rows("SELECT COALESCE(MAX(position), -1) + 1 FROM run_model_inputs WHERE run_uuid = ?", [.text(runID)]).first?.first?.int ?? 0
            try c.rows("INSERT INTO run_model_inputs SELECT * FROM unnest(?, ?, ?) AS v(run_uuid, model_id, position) ORDER BY position ON CONFLICT DO NOTHING",
                       arrays: [.texts(Array(repeating: runID, count: inputs.count)), .texts(inputs.map(\.modelID)), .integers(inputs.indices.map { next + Int64($0) })])
        }
    }

    public func runModelInputs(runID: String) throws -> [ModelInput] {
        try conn { c in
            try c.rows("SELECT model_id FROM run_model_inputs WHERE run_uuid = ? ORDER BY position", [.text(runID)]).map { ModelInput(modelID: $0[0].string ?? "") }
        }
    }

    public func runOutputs(runIDs: [String]) throws -> [String: [ModelOutput]] {
        guard !runIDs.isEmpty else { return [:] }
        return try conn { try SQLiteMetadataStore.runOutputs($0, runIDs) }
    }

    public func runOutputs(runID: String) throws -> [ModelOutput] {
        try conn { c in
            try c.rows("SELECT model_id, step FROM run_outputs WHERE run_uuid = ? ORDER BY position", [.text(runID)]).map {
                ModelOutput(modelID: $0[0].string ?? "", step: $0[1].int ?? 0)
            }
        }
    }
}
