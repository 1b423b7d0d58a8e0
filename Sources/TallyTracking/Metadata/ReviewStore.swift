import Foundation

/// Where MLflow 3's human review lives (`mlflow.genai.label_schemas`, `mlflow.genai.review_queues`): both metadata
/// stores, with the same SQL (``ReviewSQL``). Label schemas and review queues belong to an experiment; a queue's
/// reviewers, questions and items go with it.
public protocol ReviewStore {
    /// Adds a label schema; `false`, with nothing written, when the experiment has one of that name.
    func insertLabelSchema(_ schema: LabelSchema) throws -> Bool
    /// The label schema with this id.
    func labelSchema(id: String) throws -> LabelSchema?
    /// The experiment's label schema of this name (exactly).
    func labelSchema(experimentID: String, name: String) throws -> LabelSchema?
    /// The ids of the experiment's label schemas.
    func labelSchemaIDs(experimentID: String) throws -> Set<String>
    /// A page of the experiment's label schemas, newest first (then by id), after adding `seed` (its default question)
    /// when it has none.
    func labelSchemas(experimentID: String, seeding seed: LabelSchema, offset: Int, limit: Int) throws -> [LabelSchema]
    /// Changes a label schema in one transaction holding it; `nil` when there is none. Throws ``ReviewNameTaken`` when
    /// the new name is another schema's, and whatever `change` throws, writing nothing.
    func updateLabelSchema(id: String, _ change: (inout LabelSchema) throws -> Void) throws -> LabelSchema?
    /// Deletes a label schema once `check` passes; `false` when there is none.
    func deleteLabelSchema(id: String, _ check: (LabelSchema) throws -> Void) throws -> Bool

    /// Adds a review queue with its reviewers and questions; `false`, with nothing written, when the experiment has
    /// one of that name in any case.
    func insertReviewQueue(_ queue: ReviewQueue) throws -> Bool
    /// The review queue with this id.
    func reviewQueue(id: String) throws -> ReviewQueue?
    /// The experiment's review queue whose name is `name` in any case.
    func reviewQueue(experimentID: String, name: String) throws -> ReviewQueue?
    /// A page of the experiment's review queues, newest first (then by id): those `user` reviews, those holding
    /// `itemID`, when given.
    func reviewQueues(experimentID: String, user: String?, itemID: String?, offset: Int, limit: Int) throws -> [ReviewQueue]
    /// Changes a review queue in one transaction holding it (adding items waits): `change` gets the queue, how many
    /// items it holds and the ids of its experiment's label schemas. `nil` when there is none; ``ReviewNameTaken``
    /// when the new name is another queue's.
    func updateReviewQueue(id: String, _ change: (inout ReviewQueue, _ items: Int, _ schemaIDs: Set<String>) throws -> Void) throws -> ReviewQueue?
    /// Deletes a review queue with its reviewers, questions and items; `false` when there is none.
    func deleteReviewQueue(id: String) throws -> Bool
    /// Adds these items (pending) to the queue, holding it; an item already there keeps its status. The queue's items
    /// with these ids, in their order; `nil` when there is no such queue.
    func addReviewItems(queueID: String, itemIDs: [String], itemType: String, time: Int64) throws -> [ReviewQueueItem]?
    /// Takes these items out of the queue; `false` when there is no such queue.
    func removeReviewItems(queueID: String, itemIDs: [String]) throws -> Bool
    /// A page of the queue's items (of `status`, when given), newest first (then by id); `nil` when there is no such
    /// queue.
    func reviewItems(queueID: String, status: ReviewStatus?, offset: Int, limit: Int) throws -> [ReviewQueueItem]?
    /// Changes one item in one transaction holding it: `change` returns whether to write. ``ReviewItemLookup``.
    func updateReviewItem(queueID: String, itemID: String, _ change: (inout ReviewQueueItem) throws -> Bool) throws -> ReviewItemLookup
    /// Every label schema, queue and item of the experiment, oldest first (`tally export`); the default question only
    /// when it was made.
    func review(experimentID: String) throws -> SourceReview
    /// Stores label schemas and queues as another server gave them (`tally import`): each replaces the one with its id.
    func importReview(schemas: [LabelSchema], queues: [ReviewQueue], items: [ReviewQueueItem]) throws
}

/// What ``ReviewStore/updateReviewItem(queueID:itemID:_:)`` found.
public enum ReviewItemLookup: Sendable, Equatable {
    /// There is no such queue.
    case noQueue
    /// The queue does not hold the item.
    case noItem
    /// The item, as it now is.
    case item(ReviewQueueItem)
}

/// A rename to a name the experiment's other label schema or queue holds.
public struct ReviewNameTaken: Error, Sendable {
    /// The name asked for.
    public var name: String
}

/// The review tables' statements, in the SQL both dialects read alike.
enum ReviewSQL {
    /// SQLite's version 13 and PostgreSQL's version 12 (`text` and `integer` are the dialect's types).
    static func schema(text: String, integer: String) -> String {
        """
        CREATE TABLE label_schemas (
            schema_id \(text) PRIMARY KEY, experiment_id \(text) NOT NULL, name \(text) NOT NULL, type \(text) NOT NULL,
            instruction \(text), enable_comment \(integer) NOT NULL, input_type \(text) NOT NULL, input_config \(text) NOT NULL,
            created_by \(text), created_time \(integer) NOT NULL, last_update_time \(integer) NOT NULL, is_default \(integer) NOT NULL,
            UNIQUE (experiment_id, name));
        CREATE TABLE review_queues (
            queue_id \(text) PRIMARY KEY, experiment_id \(text) NOT NULL, name \(text) NOT NULL, name_key \(text) NOT NULL,
            queue_type \(text) NOT NULL, created_by \(text), creation_time \(integer) NOT NULL, last_update_time \(integer) NOT NULL,
            UNIQUE (experiment_id, name_key));
        CREATE TABLE review_queue_users (
            queue_id \(text) NOT NULL REFERENCES review_queues(queue_id) ON DELETE CASCADE, user_id \(text) NOT NULL,
            PRIMARY KEY (queue_id, user_id));
        CREATE INDEX review_queue_users_by_user ON review_queue_users (user_id);
        CREATE TABLE review_queue_schemas (
            queue_id \(text) NOT NULL REFERENCES review_queues(queue_id) ON DELETE CASCADE, schema_id \(text) NOT NULL,
            PRIMARY KEY (queue_id, schema_id));
        CREATE TABLE review_queue_items (
            queue_id \(text) NOT NULL REFERENCES review_queues(queue_id) ON DELETE CASCADE, item_type \(text) NOT NULL,
            item_id \(text) NOT NULL, status \(text) NOT NULL, completed_by \(text), completed_time \(integer),
            creation_time \(integer) NOT NULL, last_update_time \(integer) NOT NULL, PRIMARY KEY (queue_id, item_id));
        CREATE INDEX review_queue_items_by_item ON review_queue_items (item_id);
        """
    }

    /// The tables `tally metadata migrate` copies, in an order that satisfies their references.
    static let tables = ["label_schemas", "review_queues", "review_queue_users", "review_queue_schemas", "review_queue_items"]

    // MARK: Label schemas

    static let schemaColumns = """
        schema_id, experiment_id, name, type, instruction, enable_comment, input_type, input_config, created_by, created_time, \
        last_update_time, is_default
        """

    static func row(_ s: LabelSchema) -> [SQLValue] {
        let (kind, config) = inputConfig(s.input)
        return [.text(s.id), .text(s.experimentID), .text(s.name), .text(s.type.rawValue), .text(orNull: s.instruction), .integer(s.enableComment ? 1 : 0),
                .text(kind), .text(config), .text(orNull: s.createdBy), .integer(s.creationTime), .integer(s.lastUpdateTime), .integer(s.isDefault ? 1 : 0)]
    }

    static func schema(_ r: [SQLValue]) throws -> LabelSchema {
        let id = r[0].string ?? ""
        guard let type = LabelSchemaType(rawValue: r[3].string ?? "") else {
            throw TrackingError(.internalError, "label schema '\(id)': unknown type '\(r[3].string ?? "")'")
        }
        return LabelSchema(id: id, experimentID: r[1].string ?? "", name: r[2].string ?? "", type: type,
                           input: try input(kind: r[6].string ?? "", config: r[7].string ?? "", schemaID: id), instruction: r[4].string,
                           enableComment: (r[5].int ?? 0) != 0, createdBy: r[8].string, creationTime: r[9].int ?? 0,
                           lastUpdateTime: r[10].int ?? 0, isDefault: (r[11].int ?? 0) != 0)
    }

    /// MLflow's `input_type` and `input_config` columns: the one-of's name and its fields as Python's `json.dumps`
    /// writes them (a database MLflow wrote reads the same).
    static func inputConfig(_ input: LabelInput) -> (String, String) {
        let members: [(String, JSONValue)]
        switch input {
        case .passFail(let p, let n): members = [("positive_label", .string(p)), ("negative_label", .string(n))]
        case .categorical(let options, let multi): members = [("options", .array(options.map(JSONValue.string))), ("multi_select", .bool(multi))]
        case .numeric(let lo, let hi): members = [("min_value", lo.map(number) ?? .null), ("max_value", hi.map(number) ?? .null)]
        case .text(let n): members = [("max_length", n.map { .number(String($0)) } ?? .null)]
        }
        return (input.kind, JSONValue.object(members).pythonDumps())
    }

    static func number(_ v: Double) -> JSONValue { .number(v.isNaN ? "NaN" : v.isInfinite ? (v > 0 ? "Infinity" : "-Infinity") : Validation.pythonFloat(v)) }

    static func input(kind: String, config: String, schemaID: String) throws -> LabelInput {
        let c: JSONValue
        do { c = try JSONParser.parse(Array(config.utf8)) } catch {
            throw TrackingError(.internalError, "label schema '\(schemaID)': its input_config is not JSON (\(error))")
        }
        func string(_ k: String) -> String { if case .string(let s)? = c[k] { s } else { "" } }
        func double(_ k: String) -> Double? { if case .number(let n)? = c[k] { PythonNumber.double(n) } else { nil } }
        switch kind {
        case "pass_fail": return .passFail(positive: string("positive_label"), negative: string("negative_label"))
        case "categorical":
            guard case .array(let options)? = c["options"] else { return .categorical(options: [], multiSelect: false) }
            let multi: Bool = if case .bool(let b)? = c["multi_select"] { b } else { false }
            return .categorical(options: options.compactMap { if case .string(let s) = $0 { s } else { nil } }, multiSelect: multi)
        case "numeric": return .numeric(min: double("min_value"), max: double("max_value"))
        case "text":
            let n: Int64? = if case .number(let t)? = c["max_length"] { Int64(t) } else { nil }
            return .text(maxLength: n)
        default: throw TrackingError(.internalError, "label schema '\(schemaID)': unknown input type '\(kind)'")
        }
    }

    static func insertSchema(_ db: some SQLConnection, _ s: LabelSchema) throws -> Bool {
        try db.run("INSERT INTO label_schemas (\(schemaColumns)) VALUES (\(sqlMarks(12))) ON CONFLICT (experiment_id, name) DO NOTHING", row(s)) > 0
    }

    static func schemas(_ db: some SQLConnection, where cond: String, _ values: [SQLValue], lock: RowLock? = nil) throws -> [LabelSchema] {
        try db.rows("SELECT \(schemaColumns) FROM label_schemas WHERE \(cond)" + (lock.map(db.locking) ?? ""), values).map(schema)
    }

    static func schemaIDs(_ db: some SQLConnection, _ experimentID: String) throws -> Set<String> {
        Set(try db.rows("SELECT schema_id FROM label_schemas WHERE experiment_id = ?", [.text(experimentID)]).compactMap { $0[0].string })
    }

    /// Whether the experiment has its default question.
    static func hasDefault(_ db: some SQLConnection, _ experimentID: String) throws -> Bool {
        try !db.rows("SELECT 1 FROM label_schemas WHERE experiment_id = ? AND is_default = 1", [.text(experimentID)]).isEmpty
    }

    /// The default question, made the first time the experiment's questions are read (MLflow's list seeds it too);
    /// made once when two servers read them at once.
    static func seed(_ db: some SQLConnection, _ experimentID: String, _ seed: LabelSchema) throws {
        _ = try db.run("""
            INSERT INTO label_schemas (\(schemaColumns)) SELECT \(sqlMarks(12))
            WHERE NOT EXISTS (SELECT 1 FROM label_schemas WHERE experiment_id = ? AND is_default = 1)
            ON CONFLICT (experiment_id, name) DO NOTHING
            """, row(seed) + [.text(experimentID)])
    }

    static func listSchemas(_ db: some SQLConnection, experimentID: String, offset: Int, limit: Int) throws -> [LabelSchema] {
        try schemas(db, where: "experiment_id = ? ORDER BY created_time DESC, schema_id LIMIT ? OFFSET ?",
                    [.text(experimentID), .integer(Int64(limit)), .integer(Int64(offset))])
    }

    static func updateSchema(_ db: some SQLConnection, id: String, _ change: (inout LabelSchema) throws -> Void) throws -> LabelSchema? {
        guard var s = try schemas(db, where: "schema_id = ?", [.text(id)], lock: .update).first else { return nil }
        let before = s.name
        try change(&s)
        s.id = id
        if s.name != before, try !schemas(db, where: "experiment_id = ? AND name = ? AND schema_id <> ?", [.text(s.experimentID), .text(s.name), .text(id)]).isEmpty {
            throw ReviewNameTaken(name: s.name)
        }
        let (kind, config) = inputConfig(s.input)
        do {
            _ = try db.run("""
                UPDATE label_schemas SET name = ?, instruction = ?, enable_comment = ?, input_type = ?, input_config = ?, last_update_time = ?
                WHERE schema_id = ?
                """, [.text(s.name), .text(orNull: s.instruction), .integer(s.enableComment ? 1 : 0), .text(kind), .text(config), .integer(s.lastUpdateTime), .text(id)])
        } catch where isConstraint(error) {
            throw ReviewNameTaken(name: s.name)  // a concurrent create or rename took it since the check
        }
        return s
    }

    static func deleteSchema(_ db: some SQLConnection, id: String, _ check: (LabelSchema) throws -> Void) throws -> Bool {
        guard let s = try schemas(db, where: "schema_id = ?", [.text(id)], lock: .update).first else { return false }
        try check(s)
        return try db.run("DELETE FROM label_schemas WHERE schema_id = ?", [.text(id)]) > 0
    }

    /// Whether a statement failed on a constraint (a unique key a concurrent write took), in either dialect.
    static func isConstraint(_ error: any Error) -> Bool {
        (error as? SQLiteError)?.isConstraint ?? (error as? PostgresError)?.isConstraint ?? false
    }

    // MARK: Review queues

    static let queueColumns = "queue_id, experiment_id, name, queue_type, created_by, creation_time, last_update_time"

    static func insertQueue(_ db: some SQLConnection, _ q: ReviewQueue) throws -> Bool {
        let made = try db.run("""
            INSERT INTO review_queues (\(queueColumns), name_key) VALUES (\(sqlMarks(8))) ON CONFLICT (experiment_id, name_key) DO NOTHING
            """, [.text(q.id), .text(q.experimentID), .text(q.name), .text(q.type.rawValue), .text(orNull: q.createdBy), .integer(q.creationTime),
                  .integer(q.lastUpdateTime), .text(q.nameKey)])
        guard made > 0 else { return false }
        try setMembers(db, q)
        return true
    }

    /// Replaces the queue's reviewers and questions by `q`'s.
    static func setMembers(_ db: some SQLConnection, _ q: ReviewQueue) throws {
        _ = try db.run("DELETE FROM review_queue_users WHERE queue_id = ?", [.text(q.id)])
        _ = try db.run("DELETE FROM review_queue_schemas WHERE queue_id = ?", [.text(q.id)])
        for u in Set(q.users) { _ = try db.run("INSERT INTO review_queue_users (queue_id, user_id) VALUES (?, ?)", [.text(q.id), .text(u)]) }
        for s in Set(q.schemaIDs) { _ = try db.run("INSERT INTO review_queue_schemas (queue_id, schema_id) VALUES (?, ?)", [.text(q.id), .text(s)]) }
    }

    /// The queues `cond` selects, with their reviewers and questions (two more statements for all of them).
    static func queues(_ db: some SQLConnection, where cond: String, _ values: [SQLValue], lock: RowLock? = nil) throws -> [ReviewQueue] {
        var found = try db.rows("SELECT \(queueColumns) FROM review_queues WHERE \(cond)" + (lock.map(db.locking) ?? ""), values).map { r in
            ReviewQueue(id: r[0].string ?? "", experimentID: r[1].string ?? "", name: r[2].string ?? "",
                        type: ReviewQueueType(rawValue: r[3].string ?? "") ?? .custom, createdBy: r[4].string, creationTime: r[5].int ?? 0,
                        lastUpdateTime: r[6].int ?? 0, users: [], schemaIDs: [])
        }
        guard !found.isEmpty else { return [] }
        let at = Dictionary(found.indices.map { (found[$0].id, $0) }, uniquingKeysWith: { a, _ in a })
        for chunk in Array(at.keys).chunks(of: 300) {
            let marks = sqlMarks(chunk.count), ids = chunk.map(SQLValue.text)
            for r in try db.rows("SELECT queue_id, user_id FROM review_queue_users WHERE queue_id IN (\(marks))", ids) {
                if let i = at[r[0].string ?? ""] { found[i].users.append(r[1].string ?? "") }
            }
            for r in try db.rows("SELECT queue_id, schema_id FROM review_queue_schemas WHERE queue_id IN (\(marks))", ids) {
                if let i = at[r[0].string ?? ""] { found[i].schemaIDs.append(r[1].string ?? "") }
            }
        }
        for i in found.indices {  // by bytes, as MLflow's ORDER BY reads them
            found[i].users.sort(by: binaryLess)
            found[i].schemaIDs.sort(by: binaryLess)
        }
        return found
    }

    static func listQueues(_ db: some SQLConnection, experimentID: String, user: String?, itemID: String?, offset: Int, limit: Int) throws -> [ReviewQueue] {
        var cond = "experiment_id = ?", values: [SQLValue] = [.text(experimentID)]
        if let user {
            cond += " AND queue_id IN (SELECT queue_id FROM review_queue_users WHERE user_id = ?)"
            values.append(.text(user))
        }
        if let itemID {
            cond += " AND queue_id IN (SELECT queue_id FROM review_queue_items WHERE item_id = ?)"
            values.append(.text(itemID))
        }
        return try queues(db, where: cond + " ORDER BY creation_time DESC, queue_id LIMIT ? OFFSET ?",
                          values + [.integer(Int64(limit)), .integer(Int64(offset))])
    }

    static func updateQueue(_ db: some SQLConnection, id: String, _ change: (inout ReviewQueue, Int, Set<String>) throws -> Void) throws -> ReviewQueue? {
        guard var q = try queues(db, where: "queue_id = ?", [.text(id)], lock: .update).first else { return nil }
        let before = q
        let items = Int(try db.rows("SELECT COUNT(*) FROM review_queue_items WHERE queue_id = ?", [.text(id)])[0][0].int ?? 0)
        let schemaIDs = try self.schemaIDs(db, q.experimentID)
        try change(&q, items, schemaIDs)
        q.id = id
        do {
            _ = try db.run("UPDATE review_queues SET name = ?, name_key = ?, created_by = ?, last_update_time = ? WHERE queue_id = ?",
                           [.text(q.name), .text(q.nameKey), .text(orNull: q.createdBy), .integer(q.lastUpdateTime), .text(id)])
        } catch where isConstraint(error) {
            throw ReviewNameTaken(name: q.name)
        }
        if q.users != before.users || q.schemaIDs != before.schemaIDs { try setMembers(db, q) }
        q.users = Set(q.users).sorted(by: binaryLess)
        q.schemaIDs = Set(q.schemaIDs).sorted(by: binaryLess)
        return q
    }

    // MARK: Items

    static let itemColumns = "queue_id, item_type, item_id, status, completed_by, completed_time, creation_time, last_update_time"

    static func item(_ r: [SQLValue]) -> ReviewQueueItem {
        ReviewQueueItem(queueID: r[0].string ?? "", itemType: r[1].string ?? "", itemID: r[2].string ?? "",
                        status: ReviewStatus(rawValue: r[3].string ?? "") ?? .pending, completedBy: r[4].string, completedTime: r[5].int,
                        creationTime: r[6].int ?? 0, lastUpdateTime: r[7].int ?? 0)
    }

    static func queueExists(_ db: some SQLConnection, _ id: String, lock: RowLock? = nil) throws -> Bool {
        try !db.rows("SELECT 1 FROM review_queues WHERE queue_id = ?" + (lock.map(db.locking) ?? ""), [.text(id)]).isEmpty
    }

    static func addItems(_ db: some SQLConnection, queueID: String, itemIDs: [String], itemType: String, time: Int64) throws -> [ReviewQueueItem]? {
        guard try queueExists(db, queueID, lock: .update) else { return nil }
        for id in itemIDs {
            _ = try db.run("INSERT INTO review_queue_items (\(itemColumns)) VALUES (\(sqlMarks(8))) ON CONFLICT (queue_id, item_id) DO NOTHING",
                           [.text(queueID), .text(itemType), .text(id), .text(ReviewStatus.pending.rawValue), .null, .null, .integer(time), .integer(time)])
        }
        var byID: [String: ReviewQueueItem] = [:]
        for chunk in itemIDs.chunks(of: 300) {
            for r in try db.rows("SELECT \(itemColumns) FROM review_queue_items WHERE queue_id = ? AND item_id IN (\(sqlMarks(chunk.count)))",
                                 [.text(queueID)] + chunk.map(SQLValue.text)) {
                let i = item(r)
                byID[i.itemID] = i
            }
        }
        return itemIDs.compactMap { byID[$0] }
    }

    static func removeItems(_ db: some SQLConnection, queueID: String, itemIDs: [String]) throws -> Bool {
        guard try queueExists(db, queueID) else { return false }
        for chunk in itemIDs.chunks(of: 300) {
            _ = try db.run("DELETE FROM review_queue_items WHERE queue_id = ? AND item_id IN (\(sqlMarks(chunk.count)))", [.text(queueID)] + chunk.map(SQLValue.text))
        }
        return true
    }

    static func listItems(_ db: some SQLConnection, queueID: String, status: ReviewStatus?, offset: Int, limit: Int) throws -> [ReviewQueueItem]? {
        guard try queueExists(db, queueID) else { return nil }
        var cond = "queue_id = ?", values: [SQLValue] = [.text(queueID)]
        if let status {
            cond += " AND status = ?"
            values.append(.text(status.rawValue))
        }
        return try db.rows("SELECT \(itemColumns) FROM review_queue_items WHERE \(cond) ORDER BY creation_time DESC, item_id LIMIT ? OFFSET ?",
                           values + [.integer(Int64(limit)), .integer(Int64(offset))]).map(item)
    }

    static func updateItem(_ db: some SQLConnection, queueID: String, itemID: String, _ change: (inout ReviewQueueItem) throws -> Bool) throws -> ReviewItemLookup {
        // The item first (held): the queue is looked for only when it is not there, one statement fewer in the usual case.
        guard var i = try db.rows("SELECT \(itemColumns) FROM review_queue_items WHERE queue_id = ? AND item_id = ?" + db.locking(.update),
                                  [.text(queueID), .text(itemID)]).first.map(item) else { return try queueExists(db, queueID) ? .noItem : .noQueue }
        guard try change(&i) else { return .item(i) }
        _ = try db.run("""
            UPDATE review_queue_items SET status = ?, completed_by = ?, completed_time = ?, last_update_time = ? WHERE queue_id = ? AND item_id = ?
            """, [.text(i.status.rawValue), .text(orNull: i.completedBy), i.completedTime.map(SQLValue.integer) ?? .null, .integer(i.lastUpdateTime),
                  .text(queueID), .text(itemID)])
        return .item(i)
    }

    static func review(_ db: some SQLConnection, experimentID: String) throws -> SourceReview {
        let e = SQLValue.text(experimentID)
        var out = SourceReview()
        out.schemas = try schemas(db, where: "experiment_id = ? ORDER BY created_time, schema_id", [e])
        out.queues = try queues(db, where: "experiment_id = ? ORDER BY creation_time, queue_id", [e])
        out.items = try db.rows("""
            SELECT \(itemColumns) FROM review_queue_items WHERE queue_id IN (SELECT queue_id FROM review_queues WHERE experiment_id = ?)
            ORDER BY queue_id, creation_time, item_id
            """, [e]).map(item)
        return out
    }

    /// Takes deleted traces out of every queue (an item names its trace without a foreign key, as in MLflow).
    static func forgetTraces(_ db: some SQLConnection, _ ids: [String]) throws {
        for chunk in ids.chunks(of: 300) {
            _ = try db.run("DELETE FROM review_queue_items WHERE item_type = 'trace' AND item_id IN (\(sqlMarks(chunk.count)))", chunk.map(SQLValue.text))
        }
    }

    static func importReview(_ db: some SQLConnection, schemas: [LabelSchema], queues: [ReviewQueue], items: [ReviewQueueItem]) throws {
        for s in schemas {
            _ = try db.run("DELETE FROM label_schemas WHERE schema_id = ? OR (experiment_id = ? AND name = ?)", [.text(s.id), .text(s.experimentID), .text(s.name)])
            _ = try insertSchema(db, s)
        }
        for q in queues {
            _ = try db.run("DELETE FROM review_queues WHERE queue_id = ? OR (experiment_id = ? AND name_key = ?)", [.text(q.id), .text(q.experimentID), .text(q.nameKey)])
            _ = try insertQueue(db, q)
        }
        for i in items {
            _ = try db.run("INSERT INTO review_queue_items (\(itemColumns)) VALUES (\(sqlMarks(8))) ON CONFLICT (queue_id, item_id) DO NOTHING",
                           [.text(i.queueID), .text(i.itemType), .text(i.itemID), .text(i.status.rawValue), .text(orNull: i.completedBy),
                            i.completedTime.map(SQLValue.integer) ?? .null, .integer(i.creationTime), .integer(i.lastUpdateTime)])
        }
    }
}

extension SQLiteMetadataStore: ReviewStore {
    /// Version 13: label schemas and review queues (``ReviewSQL``).
    static let schemaVersion13 = ReviewSQL.schema(text: "TEXT", integer: "INTEGER")

    public func insertLabelSchema(_ schema: LabelSchema) throws -> Bool { try transaction { try with { try ReviewSQL.insertSchema($0, schema) } } }
    public func labelSchema(id: String) throws -> LabelSchema? { try with { try ReviewSQL.schemas($0, where: "schema_id = ?", [.text(id)]).first } }
    public func labelSchema(experimentID: String, name: String) throws -> LabelSchema? {
        try with { try ReviewSQL.schemas($0, where: "experiment_id = ? AND name = ?", [.text(experimentID), .text(name)]).first }
    }
    public func labelSchemaIDs(experimentID: String) throws -> Set<String> { try with { try ReviewSQL.schemaIDs($0, experimentID) } }
    public func labelSchemas(experimentID: String, seeding seed: LabelSchema, offset: Int, limit: Int) throws -> [LabelSchema] {
        if try !with({ try ReviewSQL.hasDefault($0, experimentID) }) { try transaction { try with { try ReviewSQL.seed($0, experimentID, seed) } } }
        return try with { try ReviewSQL.listSchemas($0, experimentID: experimentID, offset: offset, limit: limit) }
    }
    public func updateLabelSchema(id: String, _ change: (inout LabelSchema) throws -> Void) throws -> LabelSchema? {
        try transaction { try with { try ReviewSQL.updateSchema($0, id: id, change) } }
    }
    public func deleteLabelSchema(id: String, _ check: (LabelSchema) throws -> Void) throws -> Bool {
        try transaction { try with { try ReviewSQL.deleteSchema($0, id: id, check) } }
    }
    public func insertReviewQueue(_ queue: ReviewQueue) throws -> Bool { try transaction { try with { try ReviewSQL.insertQueue($0, queue) } } }
    public func reviewQueue(id: String) throws -> ReviewQueue? { try with { try ReviewSQL.queues($0, where: "queue_id = ?", [.text(id)]).first } }
    public func reviewQueue(experimentID: String, name: String) throws -> ReviewQueue? {
        try with { try ReviewSQL.queues($0, where: "experiment_id = ? AND name_key = ?", [.text(experimentID), .text(name.lowercased())]).first }
    }
    public func reviewQueues(experimentID: String, user: String?, itemID: String?, offset: Int, limit: Int) throws -> [ReviewQueue] {
        try with { try ReviewSQL.listQueues($0, experimentID: experimentID, user: user, itemID: itemID, offset: offset, limit: limit) }
    }
    public func updateReviewQueue(id: String, _ change: (inout ReviewQueue, Int, Set<String>) throws -> Void) throws -> ReviewQueue? {
        try transaction { try with { try ReviewSQL.updateQueue($0, id: id, change) } }
    }
    public func deleteReviewQueue(id: String) throws -> Bool {
        try transaction { try with { try $0.run("DELETE FROM review_queues WHERE queue_id = ?", [.text(id)]) > 0 } }
    }
    public func addReviewItems(queueID: String, itemIDs: [String], itemType: String, time: Int64) throws -> [ReviewQueueItem]? {
        try transaction { try with { try ReviewSQL.addItems($0, queueID: queueID, itemIDs: itemIDs, itemType: itemType, time: time) } }
    }
    public func removeReviewItems(queueID: String, itemIDs: [String]) throws -> Bool {
        try transaction { try with { try ReviewSQL.removeItems($0, queueID: queueID, itemIDs: itemIDs) } }
    }
    public func reviewItems(queueID: String, status: ReviewStatus?, offset: Int, limit: Int) throws -> [ReviewQueueItem]? {
        try with { try ReviewSQL.listItems($0, queueID: queueID, status: status, offset: offset, limit: limit) }
    }
    public func updateReviewItem(queueID: String, itemID: String, _ change: (inout ReviewQueueItem) throws -> Bool) throws -> ReviewItemLookup {
        try transaction { try with { try ReviewSQL.updateItem($0, queueID: queueID, itemID: itemID, change) } }
    }
    public func review(experimentID: String) throws -> SourceReview { try with { try ReviewSQL.review($0, experimentID: experimentID) } }
    public func importReview(schemas: [LabelSchema], queues: [ReviewQueue], items: [ReviewQueueItem]) throws {
        try transaction { try with { try ReviewSQL.importReview($0, schemas: schemas, queues: queues, items: items) } }
    }
}

extension PostgresMetadataStore: ReviewStore {
    /// Version 12: label schemas and review queues (``ReviewSQL``).
    static let schemaVersion12 = ReviewSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT")

    public func insertLabelSchema(_ schema: LabelSchema) throws -> Bool { try write { try ReviewSQL.insertSchema($0, schema) } }
    public func labelSchema(id: String) throws -> LabelSchema? { try conn { try ReviewSQL.schemas($0, where: "schema_id = ?", [.text(id)]).first } }
    public func labelSchema(experimentID: String, name: String) throws -> LabelSchema? {
        try conn { try ReviewSQL.schemas($0, where: "experiment_id = ? AND name = ?", [.text(experimentID), .text(name)]).first }
    }
    public func labelSchemaIDs(experimentID: String) throws -> Set<String> { try conn { try ReviewSQL.schemaIDs($0, experimentID) } }
    public func labelSchemas(experimentID: String, seeding seed: LabelSchema, offset: Int, limit: Int) throws -> [LabelSchema] {
        if try !conn({ try ReviewSQL.hasDefault($0, experimentID) }) { try write { try ReviewSQL.seed($0, experimentID, seed) } }
        return try conn { try ReviewSQL.listSchemas($0, experimentID: experimentID, offset: offset, limit: limit) }
    }
    public func updateLabelSchema(id: String, _ change: (inout LabelSchema) throws -> Void) throws -> LabelSchema? {
        try write { try ReviewSQL.updateSchema($0, id: id, change) }
    }
    public func deleteLabelSchema(id: String, _ check: (LabelSchema) throws -> Void) throws -> Bool {
        try write { try ReviewSQL.deleteSchema($0, id: id, check) }
    }
    public func insertReviewQueue(_ queue: ReviewQueue) throws -> Bool { try write { try ReviewSQL.insertQueue($0, queue) } }
    public func reviewQueue(id: String) throws -> ReviewQueue? { try conn { try ReviewSQL.queues($0, where: "queue_id = ?", [.text(id)]).first } }
    public func reviewQueue(experimentID: String, name: String) throws -> ReviewQueue? {
        try conn { try ReviewSQL.queues($0, where: "experiment_id = ? AND name_key = ?", [.text(experimentID), .text(name.lowercased())]).first }
    }
    public func reviewQueues(experimentID: String, user: String?, itemID: String?, offset: Int, limit: Int) throws -> [ReviewQueue] {
        try conn { try ReviewSQL.listQueues($0, experimentID: experimentID, user: user, itemID: itemID, offset: offset, limit: limit) }
    }
    public func updateReviewQueue(id: String, _ change: (inout ReviewQueue, Int, Set<String>) throws -> Void) throws -> ReviewQueue? {
        try write { try ReviewSQL.updateQueue($0, id: id, change) }
    }
    public func deleteReviewQueue(id: String) throws -> Bool {
        try write { try $0.run("DELETE FROM review_queues WHERE queue_id = ?", [.text(id)]) > 0 }
    }
    public func addReviewItems(queueID: String, itemIDs: [String], itemType: String, time: Int64) throws -> [ReviewQueueItem]? {
        try write { try ReviewSQL.addItems($0, queueID: queueID, itemIDs: itemIDs, itemType: itemType, time: time) }
    }
    public func removeReviewItems(queueID: String, itemIDs: [String]) throws -> Bool {
        try write { try ReviewSQL.removeItems($0, queueID: queueID, itemIDs: itemIDs) }
    }
    public func reviewItems(queueID: String, status: ReviewStatus?, offset: Int, limit: Int) throws -> [ReviewQueueItem]? {
        try conn { try ReviewSQL.listItems($0, queueID: queueID, status: status, offset: offset, limit: limit) }
    }
    public func updateReviewItem(queueID: String, itemID: String, _ change: (inout ReviewQueueItem) throws -> Bool) throws -> ReviewItemLookup {
        try write { try ReviewSQL.updateItem($0, queueID: queueID, itemID: itemID, change) }
    }
    public func review(experimentID: String) throws -> SourceReview { try conn { try ReviewSQL.review($0, experimentID: experimentID) } }
    public func importReview(schemas: [LabelSchema], queues: [ReviewQueue], items: [ReviewQueueItem]) throws {
        try write { try ReviewSQL.importReview($0, schemas: schemas, queues: queues, items: items) }
    }
}
