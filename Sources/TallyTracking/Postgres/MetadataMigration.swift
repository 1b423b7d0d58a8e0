import Foundation
import Synchronization
import TallyStore

/// `tally metadata migrate`: copies an embedded deployment's SQLite metadata into a PostgreSQL database, table by
/// table in batches. Idempotent: every row is upserted by its primary key, so a rerun (after an interruption, or
/// after more writes to the SQLite file) converges on the source. Ids are kept (experiments, users; the sequences
/// move past them); latest-value rows are re-encoded with the target's metric-key ids, which need not match the
/// source's. Ends with a count check per table; the tables are committed only when it passes (``run(source:target:progress:)``).
public enum MetadataMigration {
    /// The tables copied as they are, in an order that satisfies their references. `metric_keys` and `run_latest`
    /// are not among them (re-interned and re-encoded).
    static let tables = [
        "experiments", "experiment_tags", "runs", "params", "tags", "inputs", "datasets", "run_outputs", "run_model_inputs", "logged_models", "logged_model_tags",
        "logged_model_params", "logged_model_metrics", "registered_models", "registered_model_tags", "registered_model_aliases",
        "model_versions", "model_version_tags", "users", "user_grants", "access_tokens", "webhooks", "webhook_events",
    ] + TraceSQL.tables + SpanSQL.tables + EvaluationDatasetSQL.tables + ScorerSQL.tables + ReviewSQL.tables + IssueSQL.tables
        + TracePromptSQL.tables + PurgeSQL.tables

    /// One table's outcome.
    public struct TableCount: Sendable, Equatable {
        /// The table.
        public var table: String
        /// Rows in the source.
        public var source: Int64
        /// Rows in the target after the copy.
        public var target: Int64
    }

    /// What every refusal ends with: the target is as it was.
    static let startAfresh = "Nothing was written; migrate into an empty database"

    /// The copy would leave the target with rows the source does not have (rows deleted from the source since an
    /// earlier copy, or another deployment's data): nothing was written.
    public struct Mismatch: Error, Sendable, CustomStringConvertible {
        /// Every table's counts as the copy found them (before it was rolled back).
        public var counts: [TableCount]
        /// Which tables differ, and what to do.
        public var description: String {
            "the target holds rows the source does not (" + counts.filter { $0.source != $0.target }.map(\.table).joined(separator: ", ")
                + "): rows deleted from the source since an earlier copy, or another deployment's data. " + MetadataMigration.startAfresh
        }
    }

    /// Copies `source` (a SQLite file) into `target`; `progress` gets a line per batch (table, rows done, rows in the
    /// table). Returns the count check.
    ///
    /// The tables are copied in one transaction, committed only when every table holds as many rows as the source's
    /// (every source row is upserted, so a difference is rows only the target has): otherwise nothing is written and
    /// ``Mismatch`` is thrown. Before anything is written, the users of both must agree (an id naming another user in
    /// the target would hand that user's grants and tokens to the source's).
    public static func run(source path: String, target: PostgresMetadataStore, progress: (String, Int, Int) -> Void) throws -> [TableCount] {
        guard FileManager.default.fileExists(atPath: path) else { throw TrackingError.invalid("No SQLite metadata at \(path)") }
        // Opening through the store brings an older embedded schema to the current one first.
        try SQLiteMetadataStore(path: path, now: TrackingService.nowMillis()).close()  // releases the file for the read below
        let src = try SQLiteDatabase(path: path)
        var counts: [TableCount] = []
        try target.mapped {
            do {
                try target.db.transaction { c in
                    counts = []  // a transaction run again starts over
                    try checkUsers(src, c)
                    for table in tables {
                        let total = Int(try src.rows("SELECT COUNT(*) FROM \(table)", [])[0][0].int ?? 0)
                        try copy(table, from: src, to: c, total: total, progress: progress)
                        counts.append(TableCount(table: table, source: Int64(total), target: try c.rows("SELECT COUNT(*) FROM \(table)")[0][0].int ?? 0))
                    }
                    guard counts.allSatisfy({ $0.source == $0.target }) else { throw Mismatch(counts: counts) }  // rolled back
                    // Ids given by the source: the target's generators continue past them.
                    try c.execute("SELECT setval('experiment_ids', GREATEST((SELECT MAX(experiment_id) FROM experiments), "
                                  + "(SELECT MAX(experiment_id) FROM purged_experiments), 1))")
                    try c.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST((SELECT MAX(id) FROM users), 1))")
                }
            } catch let e as PostgresError where e.isConstraint {
                // A name the target holds under another id (an experiment, a registered model): not a copy of this source.
                throw TrackingError.invalid("A row of the source conflicts with one of the target (\(e.message)): the target holds another deployment's data. "
                    + startAfresh)
            }
        }
        counts.append(try copyLatest(from: src, to: target, progress: progress))
        return counts
    }

    /// Refuses a target whose users are not the source's: one id naming two users, or one name under two ids.
    static func checkUsers(_ src: SQLiteDatabase, _ c: PostgresDatabase.Connection) throws {
        var byID: [Int64: String] = [:]
        for r in try src.rows("SELECT id, username FROM users", []) { byID[r[0].int ?? 0] = r[1].string ?? "" }
        let byName = Dictionary(byID.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        for r in try c.rows("SELECT id, username FROM users ORDER BY id") {
            let id = r[0].int ?? 0, name = r[1].string ?? ""
            if let other = byID[id], other != name {
                throw TrackingError.invalid("User id \(id) is '\(name)' in the target and '\(other)' in the source: the target holds another deployment's users. "
                    + startAfresh)
            }
            if let other = byName[name], other != id {
                throw TrackingError.invalid("User '\(name)' has id \(id) in the target and \(other) in the source: the target holds another deployment's users. "
                    + startAfresh)
            }
        }
    }

    /// Upserts a table's rows, 500 per statement, in the source's insertion order (so identity columns ordering
    /// tags keep it).
    static func copy(_ table: String, from src: SQLiteDatabase, to c: PostgresDatabase.Connection, total: Int,
                     progress: (String, Int, Int) -> Void) throws {
        // The target's columns the source has too (not its own `seq`, nor the `version` its triggers keep), which of
        // them are boolean, and its primary key.
        let sourceColumns = Set(try src.rows("SELECT name FROM pragma_table_info(?)", [.text(table)]).compactMap { $0.first?.string })
        let columns = try c.rows("SELECT column_name, data_type, is_identity FROM information_schema.columns WHERE table_name = ? "
                                 + "AND table_schema = current_schema() AND column_name <> 'seq' ORDER BY ordinal_position", [.text(table)]).filter { sourceColumns.contains($0[0].string ?? "") }
        let names = columns.map { $0[0].string ?? "" }
        let boolean = columns.map { $0[1].string == "boolean" }
        let identity = columns.contains { $0[2].string == "YES" }
        let key = try c.rows("SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                             + "WHERE i.indrelid = ?::regclass AND i.indisprimary", [.text(table)]).map { $0[0].string ?? "" }
        let others = names.filter { !key.contains($0) }
        let conflict = " ON CONFLICT (\(key.joined(separator: ", "))) " + (others.isEmpty ? "DO NOTHING"
            : "DO UPDATE SET " + others.map { "\($0) = excluded.\($0)" }.joined(separator: ", "))
        let row = "(" + boolean.map { $0 ? "? <> 0" : "?" }.joined(separator: ", ") + ")"
        let head = "INSERT INTO \(table) (\(names.joined(separator: ", ")))" + (identity ? " OVERRIDING SYSTEM VALUE" : "") + " VALUES "
        var batch: [[SQLValue]] = [], done = 0
        func flush() throws {
            guard !batch.isEmpty else { return }
            try c.run(head + Array(repeating: row, count: batch.count).joined(separator: ", ") + conflict, batch.flatMap { $0 })
            done += batch.count
            batch.removeAll(keepingCapacity: true)
            progress(table, done, total)
        }
        // In insertion order where the table has one (a `WITHOUT ROWID` table is in key order).
        let rowid = try src.rows("SELECT wr FROM pragma_table_list WHERE name = ?", [.text(table)]).first?.first?.int == 0
        try src.query("SELECT \(names.joined(separator: ", ")) FROM \(table)" + (rowid ? " ORDER BY rowid" : ""), []) { r in
            batch.append(r)
            if batch.count == 500 { try flush() }
        }
        try flush()
        if total == 0 { progress(table, 0, 0) }
    }

    /// Every run's latest values, decoded with the source's key ids and encoded with the target's; runs without
    /// any get the empty row the PostgreSQL store keeps for every run.
    static func copyLatest(from src: SQLiteDatabase, to target: PostgresMetadataStore, progress: (String, Int, Int) -> Void) throws -> TableCount {
        var keys = MetricKeyTable(), names: [String] = []
        try src.query("SELECT key_id, key FROM metric_keys", []) { r in
            keys.add(id: r[0].int ?? 0, key: r[1].string ?? "")
            names.append(r[1].string ?? "")
        }
        try target.intern(names)
        let table = target.keys.withLock { $0 }
        let runs = try src.rows("SELECT r.run_uuid, l.data FROM runs r LEFT JOIN run_latest l USING (run_uuid) ORDER BY r.rowid", [])
        let codec = ColumnCodec()
        var source: Int64 = 0
        try target.mapped {
            try target.db.withConnection { c in
                for start in stride(from: 0, to: runs.count, by: 200) {
                    var values: [SQLValue] = []
                    for r in runs[start..<min(runs.count, start + 200)] {
                        let id = r[0].string ?? "", bytes = r[1].bytes ?? []
                        var encoded: [UInt8] = []
                        if !bytes.isEmpty {
                            source += 1
                            let metrics = try LatestRows.decodeWithIDs(bytes, runID: id, codec: codec) { keys.key($0) }.metrics
                            encoded = try LatestRows.encode(metrics, codec: codec) { k in
                                guard let i = table.id(k) else { throw TrackingError(.internalError, "metric key \(k) was not interned") }
                                return i
                            }
                        }
                        values += [.text(id), .blob(encoded)]
                    }
                    try c.run("INSERT INTO run_latest VALUES " + Array(repeating: "(?, ?)", count: values.count / 2).joined(separator: ", ")
                              + " ON CONFLICT (run_uuid) DO UPDATE SET data = excluded.data, seq = run_latest.seq + 1, " + PostgresSchema.stamp, values)  // a row written raises its seq
                    progress("run_latest", min(runs.count, start + 200), runs.count)
                }
                if runs.isEmpty { progress("run_latest", 0, 0) }
            }
        }
        let copied = try target.mapped {
            try target.db.withConnection { try $0.rows("SELECT COUNT(*) FROM run_latest WHERE length(data) > 0")[0][0].int ?? 0 }
        }
        return TableCount(table: "run_latest", source: source, target: copied)
    }
}
