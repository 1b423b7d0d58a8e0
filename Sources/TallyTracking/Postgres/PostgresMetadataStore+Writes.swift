/// The writes requests make most — a run created, params logged, a run's latest values written, a run finished —
/// sent through the store's ``PostgresDatabase/Lane``: concurrent requests' writes, of any of these kinds, go to
/// PostgreSQL as one statement over arrays (`docs/postgresql.md`, "Concurrent requests in one statement"). A batch
/// holds one write per run, so no two of its parts touch one row; its arrays are sorted by run, and the inserts take
/// their rows in that order.
extension PostgresMetadataStore {
    /// One write of a batch.
    enum Write: Sendable {
        /// A run to insert while its experiment is active, with its tags (``tagRows(_:)``) and its empty latest row.
        case run(RunInfo, tags: [KeyValue])
        /// Params to insert into a run while it is active (keys stored already are skipped).
        case params(runID: String, [KeyValue])
        /// A run's latest row to write while its `seq` is `expected` and the run is active.
        case latest(runID: String, data: [UInt8], expected: Int64)
        /// A run's new status and end time (either or both), written while it is active.
        case finish(runID: String, status: RunStatus?, endTime: Int64?)

        /// The run written (a batch holds one write per run).
        var runID: String {
            switch self {
            case .run(let info, _): info.runID
            case .params(let id, _), .latest(let id, _, _), .finish(let id, _, _): id
            }
        }
    }

    /// What a ``Write`` did.
    enum Written: Sendable, Equatable {
        /// Whether the run was inserted (its experiment was active).
        case run(inserted: Bool)
        /// Whether the run was active (nothing is inserted otherwise), and the keys inserted (the others were stored
        /// already, or by a concurrent insert this one waited for).
        case params(active: Bool, inserted: Set<String>)
        /// The row's new `seq`; `nil` when nothing was written (another `seq`, or the run not active).
        case latest(seq: Int64?)
        /// The run as updated; `nil` when it is not active (or missing).
        case finish(RunInfo?)
    }

    /// The lane of `db`'s writes.
    static func lane(_ db: PostgresDatabase) -> PostgresDatabase.Lane<Write, Written> {
        PostgresDatabase.Lane(db, build: { try statement($0) }, read: { outcomes($0, $1) })
    }

    /// Writes `w`: in a batch of the lane outside transactions, on the transaction's connection inside one.
    func send(_ w: Write) throws -> Written {
        try mapped {
            guard let c = current else { return try lane.submit(w, key: w.runID) }
            return Self.outcomes(try c.rows(try Self.statement([w])), [w])[0]
        }
    }

    /// One statement writing every write of `writes` (one per run), answering rows `(kind, run, text, int8, the
    /// run's columns …)` (``outcomes(_:_:)``): a write alone as ``single(_:)`` writes it; several as a part per kind
    /// present, each over arrays sorted by run, in a text prepared once per set of kinds.
    static func statement(_ writes: [Write]) throws -> PostgresDatabase.Connection.Statement {
        if writes.count == 1 { return try single(writes[0]) }
        var runs: [(RunInfo, [KeyValue])] = [], params: [(String, [KeyValue])] = [], latest: [(String, [UInt8], Int64)] = []
        var finishes: [(String, RunStatus?, Int64?)] = []
        for w in writes.sorted(by: { binaryLess($0.runID, $1.runID) }) {
            switch w {
            case .run(let info, let tags): runs.append((info, tags))
            case .params(let id, let kv): params.append((id, kv))
            case .latest(let id, let data, let expected): latest.append((id, data, expected))
            case .finish(let id, let status, let endTime): finishes.append((id, status, endTime))
            }
        }
        var mask = 0, columns: [PostgresDatabase.Connection.Column] = []
        if !runs.isEmpty {
            mask |= 1
            let infos = runs.map(\.0), tags = runs.flatMap { r in r.1.map { (r.0.runID, $0) } }
            columns += [.texts(infos.map(\.runID)), .texts(infos.map(\.runName)), .texts(infos.map(\.userID)), .texts(infos.map(\.status.rawValue)),
                        .integers(infos.map(\.startTime)), .integers(infos.map { $0.endTime ?? 0 }), .integers(infos.map { $0.endTime == nil ? 0 : 1 }),
                        .texts(infos.map(\.artifactURI)), .texts(infos.map(\.lifecycleStage.rawValue)), .integers(infos.map { Int64($0.experimentID) ?? -1 }),
                        .texts(tags.map(\.0)), .texts(tags.map(\.1.key)), .texts(tags.map(\.1.value))]
        }
        if !params.isEmpty {
            mask |= 2
            let rows = params.flatMap { p in p.1.map { (p.0, $0) } }
            columns += [.texts(params.map(\.0)), .texts(rows.map(\.0)), .texts(rows.map(\.1.key)), .texts(rows.map(\.1.value))]
        }
        if !latest.isEmpty {
            mask |= 4
            let ids = PostgresDatabase.Connection.Column.texts(latest.map(\.0))
            columns += [ids, .blobs(latest.map(\.1)), .integers(latest.map(\.2)), ids]
        }
        if !finishes.isEmpty {
            mask |= 8
            let ids = PostgresDatabase.Connection.Column.texts(finishes.map(\.0))
            columns += [ids, .texts(finishes.map { $0.1?.rawValue ?? "" }),
                        .integers(finishes.map { $0.2 ?? 0 }), .integers(finishes.map { $0.2 == nil ? 0 : 1 }), ids]
        }
        return PostgresDatabase.Connection.Statement(text: texts[mask], columns: columns)
    }

    /// The statement of one write: values bound in the shape of the write, the smallest plan (a batch's arrays cost
    /// the database about twice as much for one row).
    static func single(_ w: Write) throws -> PostgresDatabase.Connection.Statement {
        switch w {
        case .run(let info, let tags):
            // The run row made from the experiment's row only while it is active, the row kept from a delete until
            // the run commits (``PostgresMetadataStore/setExperimentStage(id:_:now:)``); the tags and the latest row
            // joined to the inserted run, so nothing is written otherwise.
            let tagInsert = tags.isEmpty ? "" : ", t AS (INSERT INTO tags SELECT v.* FROM (VALUES "
                + Array(repeating: "(?, ?, ?)", count: tags.count).joined(separator: ", ") + ") AS v(run_uuid, key, value) JOIN r USING (run_uuid))"
            return try .init("WITH r AS (INSERT INTO runs SELECT ?, experiment_id, ?, ?, ?, ?, CAST(? AS int8), ?, ?, NULL FROM experiments "
                              + "WHERE experiment_id = ? AND lifecycle_stage = 'active' FOR KEY SHARE RETURNING run_uuid)"
                              + ", l AS (INSERT INTO run_latest SELECT run_uuid, ''::bytea FROM r)" + tagInsert + " SELECT 0, run_uuid FROM r",
                             [.text(info.runID), .text(info.runName), .text(info.userID), .text(info.status.rawValue), .integer(info.startTime),
                              info.endTime.map(SQLValue.integer) ?? .null, .text(info.artifactURI), .text(info.lifecycleStage.rawValue),
                              .integer(Int64(info.experimentID) ?? -1)]
                              + tags.flatMap { [.text(info.runID), .text($0.key), .text($0.value)] })
        case .params(let runID, let params):
            let read = "SELECT 1, run_uuid, lifecycle_stage FROM runs WHERE run_uuid = ?"
            guard !params.isEmpty else { return try .init(read, [.text(runID)]) }
            return try .init("WITH r AS (SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid = ?), i AS (INSERT INTO params SELECT v.* FROM (VALUES "
                             + Array(repeating: "(?, ?, ?)", count: params.count).joined(separator: ", ")
                             + ") AS v(run_uuid, key, value), r WHERE r.lifecycle_stage = 'active' ON CONFLICT (run_uuid, key) DO NOTHING RETURNING run_uuid, key)"
                             + " SELECT 1, run_uuid, lifecycle_stage FROM r UNION ALL SELECT 2, run_uuid, key FROM i",
                             [.text(runID)] + params.flatMap { [.text(runID), .text($0.key), .text($0.value)] })
        case .latest(let runID, let data, let expected):
            return try .init("UPDATE run_latest l SET data = ?, seq = l.seq + 1, \(PostgresSchema.stamp) FROM runs r WHERE l.run_uuid = ? AND l.seq = ? "
                             + "AND r.run_uuid = l.run_uuid AND r.lifecycle_stage = 'active' RETURNING 3, l.run_uuid, NULL::text, l.seq",
                             [.blob(data), .text(runID), .integer(expected)])
        case .finish(let runID, let status, let endTime):
            let (set, values) = runChanges(status: status, endTime: endTime, name: nil)
            precondition(!set.isEmpty, "a finish sets the status or the end time")
            return try .init("UPDATE runs SET \(set.joined(separator: ", ")) WHERE run_uuid = ? AND lifecycle_stage = 'active' "
                             + "RETURNING 4, run_uuid, NULL::text, NULL::int8, \(SQLiteMetadataStore.runColumns.dropFirst("run_uuid, ".count))",
                             values + [.text(runID)])
        }
    }

    /// A kind's part of the statement: its common table expressions, its answer rows, and its binds' types in the
    /// order ``statement(_:)`` binds them.
    private struct Part {
        let ctes: [String]
        let answers: [String]
        let casts: [String]
    }

    /// The parts, in the order of the bits of ``texts``: runs created, params, latest rows, runs finished.
    ///
    /// Each reaches its rows by key whatever the tables' statistics when the lane's connection makes its one plan
    /// (`PostgresLaneTests.aBatchReachesItsRowsByKey`): a run's or an experiment's stage is read by a subquery per
    /// array element (an index lookup), and an updated table is bounded by its keys in the array (`= ANY`). The
    /// finish's stage test is written `IS TRUE` so that it is no index condition: as one, the index on
    /// `(experiment_id, lifecycle_stage)` looks selective on a new database, and the plan would read every active run.
    private static let parts: [Part] = [
        Part(ctes: ["rv AS (SELECT * FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) AS rv(id, name, user_id, status, start_time, end_time, has_end, "
                        + "artifact_uri, stage, experiment))",
                    "ri AS (INSERT INTO runs SELECT rv.id, rv.experiment, rv.name, rv.user_id, rv.status, rv.start_time, "
                        + "CASE WHEN rv.has_end = 1 THEN rv.end_time END, rv.artifact_uri, rv.stage, NULL FROM rv "
                        + "WHERE (SELECT e.lifecycle_stage FROM experiments e WHERE e.experiment_id = rv.experiment FOR KEY SHARE) = 'active' "
                        + "ORDER BY rv.id COLLATE \"C\" RETURNING run_uuid)",
                    "rl AS (INSERT INTO run_latest SELECT run_uuid, ''::bytea FROM ri ORDER BY run_uuid COLLATE \"C\")",
                    "rt AS (INSERT INTO tags SELECT g.* FROM unnest(?, ?, ?) AS g(run_uuid, key, value) JOIN ri USING (run_uuid) "
                        + "ORDER BY g.run_uuid COLLATE \"C\", g.key COLLATE \"C\")"],
             answers: [answer(0, "run_uuid", from: "ri")],
             casts: ["text", "text", "text", "text", "int8", "int8", "int8", "text", "text", "int8", "text", "text", "text"]),
        Part(ctes: ["pr AS (SELECT pk.id AS run_uuid, (SELECT lifecycle_stage FROM runs WHERE run_uuid = pk.id) AS lifecycle_stage FROM unnest(?) AS pk(id))",
                    "pi AS (INSERT INTO params SELECT pv.* FROM unnest(?, ?, ?) AS pv(run_uuid, key, value) JOIN pr USING (run_uuid) "
                        + "WHERE pr.lifecycle_stage = 'active' ORDER BY pv.run_uuid COLLATE \"C\", pv.key COLLATE \"C\" "
                        + "ON CONFLICT (run_uuid, key) DO NOTHING RETURNING run_uuid, key)"],
             answers: [answer(1, "run_uuid", text: "lifecycle_stage", from: "pr"), answer(2, "run_uuid", text: "key", from: "pi")],
             casts: ["text", "text", "text", "text"]),
        Part(ctes: ["lu AS (UPDATE run_latest l SET data = lv.data, seq = l.seq + 1, \(PostgresSchema.stamp) FROM unnest(?, ?, ?) AS lv(id, data, expected) "
                        + "WHERE l.run_uuid = lv.id AND l.run_uuid = ANY(?) AND l.seq = lv.expected "
                        + "AND (SELECT r.lifecycle_stage FROM runs r WHERE r.run_uuid = lv.id) = 'active' RETURNING l.run_uuid, l.seq)"],
             answers: [answer(3, "run_uuid", int: "seq", from: "lu")],
             casts: ["text", "bytea", "int8", "text"]),
        Part(ctes: ["uu AS (UPDATE runs SET status = CASE WHEN uv.new_status = '' THEN status ELSE uv.new_status END, "
                        + "end_time = CASE WHEN uv.has_end = 1 THEN uv.new_end ELSE end_time END "
                        + "FROM unnest(?, ?, ?, ?) AS uv(id, new_status, new_end, has_end) WHERE run_uuid = uv.id AND run_uuid = ANY(?) "
                        + "AND (lifecycle_stage = 'active') IS TRUE RETURNING \(SQLiteMetadataStore.runColumns))"],
             answers: [answer(4, "run_uuid", run: true, from: "uu")],
             casts: ["text", "text", "int8", "int8", "text"]),
    ]

    /// One part's answer rows: `kind`, the run, a text, an integer and the run's columns after
    /// ``SQLiteMetadataStore/runColumns``' first (NULL where the part has none).
    private static func answer(_ kind: Int, _ id: String, text: String = "NULL", int: String = "NULL", run: Bool = false, from: String) -> String {
        let columns = run ? "experiment_id::int8, name::text, user_id::text, status::text, start_time::int8, end_time::int8, artifact_uri::text, lifecycle_stage::text"
            : "NULL::int8, NULL::text, NULL::text, NULL::text, NULL::int8, NULL::int8, NULL::text, NULL::text"
        return "SELECT \(kind)::int8, \(id)::text, \(text)::text, \(int)::int8, \(columns) FROM \(from)"
    }

    /// The statement for each set of kinds (bit `i`: ``parts``[`i`]), as PostgreSQL reads it.
    static let texts: [String] = (0..<16).map { mask in
        let present = parts.indices.filter { mask & (1 << $0) != 0 }.map { parts[$0] }
        guard !present.isEmpty else { return "" }
        let sql = "WITH " + present.flatMap(\.ctes).joined(separator: ", ") + " " + present.flatMap(\.answers).joined(separator: " UNION ALL ")
        guard let text = try? PostgresDatabase.Connection.text(sql, types: present.flatMap(\.casts).map { "::\($0)[]" }) else {
            preconditionFailure("a part binds one array per placeholder")
        }
        return text
    }

    /// Each write's outcome from the rows of ``statement(_:)``.
    static func outcomes(_ rows: [[SQLValue]], _ writes: [Write]) -> [Written] {
        var inserted = Set<String>(), active = Set<String>(), keys: [String: Set<String>] = [:], seqs: [String: Int64] = [:]
        var finished: [String: RunInfo] = [:]
        for r in rows {
            guard let kind = r[0].int, let run = r[1].string else { continue }
            switch kind {
            case 0: inserted.insert(run)
            case 1: if r[2].string == LifecycleStage.active.rawValue { active.insert(run) }
            case 2: keys[run, default: []].insert(r[2].string ?? "")
            case 3: seqs[run] = r[3].int
            default: if r.count == 12 { finished[run] = SQLiteMetadataStore.runInfo([r[1]] + r[4...]) }
            }
        }
        return writes.map { w in
            switch w {
            case .run(let info, _): .run(inserted: inserted.contains(info.runID))
            case .params(let id, _): .params(active: active.contains(id), inserted: keys[id] ?? [])
            case .latest(let id, _, _): .latest(seq: seqs[id])
            case .finish(let id, _, _): .finish(finished[id])
            }
        }
    }
}
