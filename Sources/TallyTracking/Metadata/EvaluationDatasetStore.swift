/// Where evaluation datasets are kept (MLflow 3's `mlflow.genai.datasets`): both metadata stores, with the same SQL
/// (``EvaluationDatasetSQL``). A dataset's records, tags and experiments go with it when it is deleted.
public protocol EvaluationDatasetStore {
    /// Stores a new dataset with its tags, linked to `experimentIDs` (each once) at its creation time.
    func insertDataset(_ d: EvaluationDataset, experimentIDs: [String]) throws
    /// Datasets by id, with their tags, in no particular order; unknown ids are left out.
    func datasets(ids: [String]) throws -> [EvaluationDataset]
    /// The datasets linked to any of `experimentIDs` (every dataset when `nil`), with their tags, in no particular
    /// order.
    func datasets(experimentIDs: [String]?) throws -> [EvaluationDataset]
    /// The experiments a dataset is linked to, in the order they were linked (then by id); none for an unknown one.
    func datasetExperimentIDs(id: String) throws -> [String]
    /// The experiments of each of these datasets (as ``datasetExperimentIDs(id:)``), in one read per 300 datasets;
    /// a dataset linked to none is left out.
    func datasetExperimentIDs(ids: [String]) throws -> [String: [String]]
    /// Deletes a dataset with its records, tags and experiment links; nothing when there is none.
    func deleteDataset(id: String) throws
    /// Deletes a dataset's tag; nothing when there is none.
    func deleteDatasetTag(id: String, key: String) throws
    /// A page of a dataset's records, ordered by creation time and then id, starting after `cursor`.
    func datasetRecords(id: String, after cursor: DatasetRecordCursor?, limit: Int) throws -> [DatasetRecord]
    /// Runs `change` in one transaction holding the dataset's row (a concurrent change waits for it); `nil`, with
    /// nothing run, when the dataset does not exist. A throw writes nothing.
    func changeDataset<T>(id: String, _ change: (any DatasetEdit) throws -> T) throws -> T?
}

/// A dataset held for a change (``EvaluationDatasetStore/changeDataset(id:_:)``): reads and writes inside its transaction.
public protocol DatasetEdit {
    /// The dataset as it is now, with its tags.
    var dataset: EvaluationDataset { get }
    /// How many records it holds.
    func recordCount() throws -> Int
    /// Its records among these input hashes.
    func records(inputHashes: [String]) throws -> [DatasetRecord]
    /// Inserts records, or replaces those of the same id.
    func save(_ records: [DatasetRecord]) throws
    /// Deletes its records of these ids (others are ignored); returns how many.
    func deleteRecords(ids: [String]) throws -> Int
    /// Upserts tags (a new key goes last, a key already there keeps its place).
    func setTags(_ tags: [DatasetTag]) throws
    /// Links experiments not linked yet, at `time`.
    func addExperiments(_ ids: [String], time: Int64) throws
    /// Unlinks experiments; returns how many were linked.
    func removeExperiments(_ ids: [String]) throws -> Int
    /// Writes the dataset's own fields (schema, profile, digest, update time and author; not its name or tags).
    func update(_ d: EvaluationDataset) throws
}

/// The evaluation dataset tables' statements, in the SQL both dialects read alike.
enum EvaluationDatasetSQL {
    /// SQLite's version 11 and PostgreSQL's version 10 (`text` and `integer` are the dialect's types; `order` the
    /// column that keeps insertion order, where the dialect needs one: PostgreSQL's `seq`).
    static func schema(text: String, integer: String, order: String) -> String {
        """
        CREATE TABLE evaluation_datasets (
            dataset_id \(text) PRIMARY KEY, name \(text) NOT NULL, schema \(text), profile \(text), digest \(text) NOT NULL,
            created_time \(integer) NOT NULL, last_update_time \(integer) NOT NULL, created_by \(text), last_updated_by \(text));
        CREATE INDEX evaluation_datasets_by_name ON evaluation_datasets (name);
        CREATE TABLE evaluation_dataset_tags (\(order)
            dataset_id \(text) NOT NULL REFERENCES evaluation_datasets(dataset_id) ON DELETE CASCADE, key \(text) NOT NULL, value \(text),
            PRIMARY KEY (dataset_id, key));
        CREATE TABLE evaluation_dataset_experiments (\(order)
            dataset_id \(text) NOT NULL REFERENCES evaluation_datasets(dataset_id) ON DELETE CASCADE, experiment_id \(text) NOT NULL,
            created_time \(integer) NOT NULL, PRIMARY KEY (dataset_id, experiment_id));
        CREATE INDEX evaluation_dataset_experiments_by_experiment ON evaluation_dataset_experiments (experiment_id);
        CREATE TABLE evaluation_dataset_records (
            dataset_record_id \(text) PRIMARY KEY, dataset_id \(text) NOT NULL REFERENCES evaluation_datasets(dataset_id) ON DELETE CASCADE,
            input_hash \(text) NOT NULL, inputs \(text) NOT NULL, outputs \(text), expectations \(text), tags \(text) NOT NULL, source \(text),
            source_id \(text), source_type \(text), created_time \(integer) NOT NULL, last_update_time \(integer) NOT NULL, created_by \(text),
            last_updated_by \(text), UNIQUE (dataset_id, input_hash));
        CREATE INDEX evaluation_dataset_records_in_order ON evaluation_dataset_records (dataset_id, created_time, dataset_record_id);
        """
    }

    /// The tables `tally metadata migrate` copies, in an order that satisfies their references.
    static let tables = ["evaluation_datasets", "evaluation_dataset_tags", "evaluation_dataset_experiments", "evaluation_dataset_records"]

    static func insert(_ db: some SQLConnection, _ d: EvaluationDataset, experimentIDs: [String]) throws {
        try db.run("""
            INSERT INTO evaluation_datasets (dataset_id, name, schema, profile, digest, created_time, last_update_time, created_by, last_updated_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(d.id), .text(d.name), .text(orNull: d.schema), .text(orNull: d.profile), .text(d.digest), .integer(d.createdTime), .integer(d.lastUpdateTime),
                  .text(orNull: d.createdBy), .text(orNull: d.lastUpdatedBy)])
        try setTags(db, d.id, d.tags)
        try addExperiments(db, d.id, experimentIDs, time: d.createdTime)
    }

    /// Upserts tags, a statement per 300 (the last of a key given twice wins).
    static func setTags(_ db: some SQLConnection, _ id: String, _ tags: [DatasetTag]) throws {
        var last: [ExactKey: Int] = [:]  // by bytes: "é" and "e" + U+0301 are two keys, as to Python
        for (i, t) in tags.enumerated() { last[ExactKey(t.key)] = i }
        let rows = tags.enumerated().filter { last[ExactKey($0.element.key)] == $0.offset }.map(\.element)
        for chunk in rows.chunks(of: 300) {
            try db.run("INSERT INTO evaluation_dataset_tags (dataset_id, key, value) VALUES "
                       + Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ")
                       + " ON CONFLICT (dataset_id, key) DO UPDATE SET value = excluded.value",
                       chunk.flatMap { [SQLValue.text(id), .text($0.key), .text(orNull: $0.value)] })
        }
    }

    static func addExperiments(_ db: some SQLConnection, _ id: String, _ experimentIDs: [String], time: Int64) throws {
        var seen = Set<String>()
        let ids = experimentIDs.filter { seen.insert($0).inserted }
        for chunk in ids.chunks(of: 300) {
            try db.run("INSERT INTO evaluation_dataset_experiments (dataset_id, experiment_id, created_time) VALUES "
                       + Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ") + " ON CONFLICT (dataset_id, experiment_id) DO NOTHING",
                       chunk.flatMap { [SQLValue.text(id), .text($0), .integer(time)] })
        }
    }

    /// Reads datasets in one statement (one snapshot on PostgreSQL): each dataset's row and its tags' rows in common
    /// columns, grouped afterwards.
    static func datasets(_ db: some SQLConnection, where cond: String, _ values: [SQLValue]) throws -> [EvaluationDataset] {
        let sql = """
            SELECT 0, d.dataset_id, d.name, d.schema, d.profile, d.digest, d.created_by, d.last_updated_by, d.created_time, d.last_update_time,
            CAST(NULL AS BIGINT) FROM evaluation_datasets d WHERE \(cond)
            UNION ALL SELECT 1, t.dataset_id, t.key, t.value, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
            CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), t.\(db.insertionOrder) FROM evaluation_dataset_tags t
            JOIN evaluation_datasets d ON d.dataset_id = t.dataset_id WHERE \(cond)
            """
        var found: [String: EvaluationDataset] = [:]
        var tags: [String: [(Int64, DatasetTag)]] = [:]
        try db.query(sql, values + values) { r in
            let id = r[1].string ?? ""
            if r[0].int == 0 {
                found[id] = EvaluationDataset(id: id, name: r[2].string ?? "", schema: r[3].string, profile: r[4].string, digest: r[5].string ?? "",
                                              createdTime: r[8].int ?? 0, lastUpdateTime: r[9].int ?? 0, createdBy: r[6].string, lastUpdatedBy: r[7].string)
            } else {
                tags[id, default: []].append((r[10].int ?? 0, DatasetTag(key: r[2].string ?? "", value: r[3].string)))
            }
        }
        for (id, list) in tags where found[id] != nil { found[id]!.tags = list.sorted { $0.0 < $1.0 }.map(\.1) }
        return Array(found.values)
    }

    /// Datasets by id, 300 ids a statement (a statement's binds are bounded: PostgreSQL's 65,535, SQLite's 32,766).
    static func datasets(_ db: some SQLConnection, ids: [String]) throws -> [EvaluationDataset] {
        try Array(Set(ids)).chunks(of: 300).flatMap { chunk in
            try datasets(db, where: "d.dataset_id IN (\(sqlMarks(chunk.count)))", chunk.map(SQLValue.text))
        }
    }

    /// The datasets linked to any of `experimentIDs` (all when `nil`), 300 experiments a statement, each dataset once.
    static func datasets(_ db: some SQLConnection, experimentIDs: [String]?) throws -> [EvaluationDataset] {
        guard let experimentIDs else { return try datasets(db, where: "1 = 1", []) }
        var found: [String: EvaluationDataset] = [:]
        for chunk in Array(Set(experimentIDs)).chunks(of: 300) {
            for d in try datasets(db, where: "d.dataset_id IN (SELECT dataset_id FROM evaluation_dataset_experiments WHERE experiment_id IN (\(sqlMarks(chunk.count))))",
                                  chunk.map(SQLValue.text)) { found[d.id] = d }
        }
        return Array(found.values)
    }

    static func experimentIDs(_ db: some SQLConnection, _ id: String) throws -> [String] { try experimentIDs(db, ids: [id])[id] ?? [] }

    static func experimentIDs(_ db: some SQLConnection, ids: [String]) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for chunk in Array(Set(ids)).chunks(of: 300) {
            try db.query("SELECT dataset_id, experiment_id FROM evaluation_dataset_experiments WHERE dataset_id IN (\(sqlMarks(chunk.count))) "
                         + "ORDER BY created_time, experiment_id", chunk.map(SQLValue.text)) { r in
                out[r[0].string ?? "", default: []].append(r[1].string ?? "")
            }
        }
        return out
    }

    static let recordColumns = "dataset_record_id, dataset_id, input_hash, inputs, outputs, expectations, tags, source, source_id, source_type, "
        + "created_time, last_update_time, created_by, last_updated_by"

    /// A record from its row (``recordColumns``); text that is not JSON (no store writes it) reads as null.
    static func record(_ r: [SQLValue]) -> DatasetRecord {
        func json(_ v: SQLValue) -> JSONValue? { v.string.flatMap { try? JSONParser.parse(Array($0.utf8)) } }
        return DatasetRecord(id: r[0].string ?? "", datasetID: r[1].string ?? "", inputHash: r[2].string ?? "", inputs: json(r[3]) ?? .object([]),
                             outputs: json(r[4]), expectations: json(r[5]), tags: json(r[6]) ?? .object([]), source: json(r[7]),
                             sourceID: r[8].string, sourceType: r[9].string, createdTime: r[10].int ?? 0, lastUpdateTime: r[11].int ?? 0,
                             createdBy: r[12].string, lastUpdatedBy: r[13].string)
    }

    static func records(_ db: some SQLConnection, _ id: String, after cursor: DatasetRecordCursor?, limit: Int) throws -> [DatasetRecord] {
        var sql = "SELECT \(recordColumns) FROM evaluation_dataset_records WHERE dataset_id = ?"
        var values: [SQLValue] = [.text(id)]
        var offset = 0
        switch cursor {
        case .after(let time, let rid)?:
            sql += " AND (created_time > ? OR (created_time = ? AND dataset_record_id > ?))"
            values += [.integer(time), .integer(time), .text(rid)]
        case .offset(let n)?: offset = n
        case nil: break
        }
        sql += " ORDER BY created_time, dataset_record_id LIMIT ? OFFSET ?"
        return try db.rows(sql, values + [.integer(Int64(limit)), .integer(Int64(offset))]).map(record)
    }

    static func delete(_ db: some SQLConnection, _ id: String) throws {
        try db.run("DELETE FROM evaluation_datasets WHERE dataset_id = ?", [.text(id)])
    }

    static func deleteTag(_ db: some SQLConnection, _ id: String, _ key: String) throws {
        try db.run("DELETE FROM evaluation_dataset_tags WHERE dataset_id = ? AND key = ?", [.text(id), .text(key)])
    }

    /// Holds the dataset's row (`FOR UPDATE` on PostgreSQL; SQLite's write lock is the database's) and runs `change`
    /// with it; `nil` when there is no such dataset.
    static func change<C: SQLConnection, T>(_ db: C, _ id: String, _ change: (any DatasetEdit) throws -> T) throws -> T? {
        guard !(try db.rows("SELECT dataset_id FROM evaluation_datasets WHERE dataset_id = ?" + db.locking(.update), [.text(id)])).isEmpty,
              let d = try datasets(db, ids: [id]).first else { return nil }
        return try change(Edit(db: db, dataset: d))
    }

    /// ``DatasetEdit`` over a connection inside the change's transaction.
    struct Edit<C: SQLConnection>: DatasetEdit {
        let db: C
        let dataset: EvaluationDataset

        func recordCount() throws -> Int {
            Int(try db.rows("SELECT COUNT(*) FROM evaluation_dataset_records WHERE dataset_id = ?", [.text(dataset.id)])[0][0].int ?? 0)
        }

        func records(inputHashes: [String]) throws -> [DatasetRecord] {
            var out: [DatasetRecord] = []
            for chunk in Array(Set(inputHashes)).chunks(of: 300) {
                out += try db.rows("SELECT \(recordColumns) FROM evaluation_dataset_records WHERE dataset_id = ? AND input_hash IN (\(sqlMarks(chunk.count)))",
                                   [.text(dataset.id)] + chunk.map(SQLValue.text)).map(record)
            }
            return out
        }

        func save(_ records: [DatasetRecord]) throws {
            func json(_ v: JSONValue?) -> SQLValue { v.map { .text($0.pythonDumps()) } ?? .null }
            for chunk in records.chunks(of: 50) {
                try db.run("INSERT INTO evaluation_dataset_records (\(recordColumns)) VALUES "
                           + Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                           + " ON CONFLICT (dataset_record_id) DO UPDATE SET outputs = excluded.outputs, expectations = excluded.expectations, "
                           + "tags = excluded.tags, last_update_time = excluded.last_update_time, last_updated_by = excluded.last_updated_by",
                           chunk.flatMap { r -> [SQLValue] in
                               [.text(r.id), .text(r.datasetID), .text(r.inputHash), json(r.inputs), json(r.outputs), json(r.expectations), json(r.tags),
                                json(r.source), .text(orNull: r.sourceID), .text(orNull: r.sourceType), .integer(r.createdTime), .integer(r.lastUpdateTime),
                                .text(orNull: r.createdBy), .text(orNull: r.lastUpdatedBy)]
                           })
            }
        }

        func deleteRecords(ids: [String]) throws -> Int {
            var n = 0
            for chunk in Array(Set(ids)).chunks(of: 300) {
                n += try db.run("DELETE FROM evaluation_dataset_records WHERE dataset_id = ? AND dataset_record_id IN (\(sqlMarks(chunk.count)))",
                                [.text(dataset.id)] + chunk.map(SQLValue.text))
            }
            return n
        }

        func setTags(_ tags: [DatasetTag]) throws { try EvaluationDatasetSQL.setTags(db, dataset.id, tags) }

        func addExperiments(_ ids: [String], time: Int64) throws { try EvaluationDatasetSQL.addExperiments(db, dataset.id, ids, time: time) }

        func removeExperiments(_ ids: [String]) throws -> Int {
            var n = 0
            for chunk in Array(Set(ids)).chunks(of: 300) {
                n += try db.run("DELETE FROM evaluation_dataset_experiments WHERE dataset_id = ? AND experiment_id IN (\(sqlMarks(chunk.count)))",
                                [.text(dataset.id)] + chunk.map(SQLValue.text))
            }
            return n
        }

        func update(_ d: EvaluationDataset) throws {
            try db.run("UPDATE evaluation_datasets SET schema = ?, profile = ?, digest = ?, last_update_time = ?, last_updated_by = ? WHERE dataset_id = ?",
                       [.text(orNull: d.schema), .text(orNull: d.profile), .text(d.digest), .integer(d.lastUpdateTime), .text(orNull: d.lastUpdatedBy), .text(dataset.id)])
        }
    }
}

extension SQLiteMetadataStore: EvaluationDatasetStore {
    /// Version 11: evaluation datasets (``EvaluationDatasetSQL``).
    static let schemaVersion11 = EvaluationDatasetSQL.schema(text: "TEXT", integer: "INTEGER", order: "")

    public func insertDataset(_ d: EvaluationDataset, experimentIDs: [String]) throws {
        try transaction { try with { try EvaluationDatasetSQL.insert($0, d, experimentIDs: experimentIDs) } }
    }
    public func datasets(ids: [String]) throws -> [EvaluationDataset] { try with { try EvaluationDatasetSQL.datasets($0, ids: ids) } }
    public func datasets(experimentIDs: [String]?) throws -> [EvaluationDataset] { try with { try EvaluationDatasetSQL.datasets($0, experimentIDs: experimentIDs) } }
    public func datasetExperimentIDs(id: String) throws -> [String] { try with { try EvaluationDatasetSQL.experimentIDs($0, id) } }
    public func datasetExperimentIDs(ids: [String]) throws -> [String: [String]] { try with { try EvaluationDatasetSQL.experimentIDs($0, ids: ids) } }
    public func deleteDataset(id: String) throws { try with { try EvaluationDatasetSQL.delete($0, id) } }
    public func deleteDatasetTag(id: String, key: String) throws { try with { try EvaluationDatasetSQL.deleteTag($0, id, key) } }
    public func datasetRecords(id: String, after cursor: DatasetRecordCursor?, limit: Int) throws -> [DatasetRecord] {
        try with { try EvaluationDatasetSQL.records($0, id, after: cursor, limit: limit) }
    }
    public func changeDataset<T>(id: String, _ change: (any DatasetEdit) throws -> T) throws -> T? {
        try transaction { try with { try EvaluationDatasetSQL.change($0, id, change) } }
    }
}

extension PostgresMetadataStore: EvaluationDatasetStore {
    /// Version 10: evaluation datasets (``EvaluationDatasetSQL``).
    static let schemaVersion10 = EvaluationDatasetSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT", order: "seq BIGINT GENERATED ALWAYS AS IDENTITY,")

    public func insertDataset(_ d: EvaluationDataset, experimentIDs: [String]) throws {
        try write { try EvaluationDatasetSQL.insert($0, d, experimentIDs: experimentIDs) }
    }
    public func datasets(ids: [String]) throws -> [EvaluationDataset] { try conn { try EvaluationDatasetSQL.datasets($0, ids: ids) } }
    public func datasets(experimentIDs: [String]?) throws -> [EvaluationDataset] { try conn { try EvaluationDatasetSQL.datasets($0, experimentIDs: experimentIDs) } }
    public func datasetExperimentIDs(id: String) throws -> [String] { try conn { try EvaluationDatasetSQL.experimentIDs($0, id) } }
    public func datasetExperimentIDs(ids: [String]) throws -> [String: [String]] { try conn { try EvaluationDatasetSQL.experimentIDs($0, ids: ids) } }
    public func deleteDataset(id: String) throws { try conn { try EvaluationDatasetSQL.delete($0, id) } }
    public func deleteDatasetTag(id: String, key: String) throws { try conn { try EvaluationDatasetSQL.deleteTag($0, id, key) } }
    public func datasetRecords(id: String, after cursor: DatasetRecordCursor?, limit: Int) throws -> [DatasetRecord] {
        try conn { try EvaluationDatasetSQL.records($0, id, after: cursor, limit: limit) }
    }
    public func changeDataset<T>(id: String, _ change: (any DatasetEdit) throws -> T) throws -> T? {
        try write { try EvaluationDatasetSQL.change($0, id, change) }
    }
}
