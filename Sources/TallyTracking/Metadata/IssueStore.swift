import Foundation

/// Where MLflow 3's issues live (`/api/3.0/mlflow/issues`): both metadata stores, with the same SQL (``IssueSQL``).
/// An issue belongs to an experiment; the traces it touches are the ones with an issue-reference assessment named after
/// it, which stay with their traces.
public protocol IssueStore {
    /// Adds an issue.
    func insertIssue(_ issue: TraceIssue) throws
    /// The issue with this id (its trace count not counted).
    func issue(id: String) throws -> TraceIssue?
    /// Changes an issue in one transaction holding it; `nil` when there is none.
    func updateIssue(id: String, _ change: (inout TraceIssue) throws -> Void) throws -> TraceIssue?
    /// A page of the issues `search` selects, in MLflow's order: the worst severity first (none last), the most traces
    /// first when they are counted, then the newest, then by id descending.
    func issues(_ search: IssueSearch, offset: Int, limit: Int) throws -> [TraceIssue]
    /// Stores issues as another server gave them (`tally import`): each replaces the one with its id.
    func importIssues(_ issues: [TraceIssue]) throws
}

/// The issue table's statements, in the SQL both dialects read alike.
enum IssueSQL {
    /// SQLite's version 16 and PostgreSQL's version 15 (`text` and `integer` are the dialect's types): the table, and
    /// assessments indexed by name, kind and trace, which finds an issue's traces from the index alone (its trace
    /// count, `issue.id` in a trace search).
    static func schema(text: String, integer: String) -> String {
        """
        CREATE TABLE issues (
            issue_id \(text) PRIMARY KEY, experiment_id \(text) NOT NULL, name \(text) NOT NULL, description \(text) NOT NULL,
            status \(text) NOT NULL, severity \(text), root_causes \(text), source_run_id \(text), categories \(text), created_by \(text),
            created_timestamp \(integer) NOT NULL, last_updated_timestamp \(integer) NOT NULL);
        CREATE INDEX issues_by_experiment ON issues (experiment_id, created_timestamp);
        CREATE INDEX assessments_by_name ON assessments (name, kind, trace_id);
        """
    }

    /// The tables `tally metadata migrate` copies.
    static let tables = ["issues"]

    static let columns = """
        issue_id, experiment_id, name, description, status, severity, root_causes, source_run_id, categories, created_by, created_timestamp, \
        last_updated_timestamp
        """

    /// How many traces refer to the issue `i` (any of their references, valid or not, as MLflow counts).
    static let traceCount = "(SELECT COUNT(DISTINCT a.trace_id) FROM assessments a WHERE a.name = i.issue_id AND a.kind = 'issue')"

    /// MLflow's severity order: `not_an_issue` 0 … `high` 3, none (or an unknown word) -1.
    static let severityRank = "CASE i.severity " + IssueSeverity.allCases.map { "WHEN '\($0.rawValue)' THEN \($0.rank) " }.joined() + "ELSE -1 END"

    static func row(_ i: TraceIssue) -> [SQLValue] {
        [.text(i.id), .text(i.experimentID), .text(i.name), .text(i.description), .text(i.status.rawValue), .text(orNull: i.severity?.rawValue),
         .text(orNull: list(i.rootCauses)), .text(orNull: i.sourceRunID), .text(orNull: list(i.categories)), .text(orNull: i.createdBy),
         .integer(i.creationTime), .integer(i.lastUpdateTime)]
    }

    /// A list column as MLflow writes it (`json.dumps`), none when empty.
    static func list(_ items: [String]) -> String? { items.isEmpty ? nil : JSONValue.array(items.map(JSONValue.string)).pythonDumps() }

    /// A list column read back; text that is not a JSON list of strings (written by something else) is an error naming
    /// the issue.
    static func items(_ text: String?, _ column: String, issue: String) throws -> [String] {
        guard let text else { return [] }
        guard case .array(let values)? = try? JSONParser.parse(Array(text.utf8)) else {
            throw TrackingError(.internalError, "issue '\(issue)': its \(column) is not a JSON list")
        }
        return values.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    static func issue(_ r: [SQLValue]) throws -> TraceIssue {
        let id = r[0].string ?? ""
        guard let status = IssueStatus(rawValue: r[4].string ?? "") else {
            throw TrackingError(.internalError, "issue '\(id)': unknown status '\(r[4].string ?? "")'")
        }
        var found = TraceIssue(id: id, experimentID: r[1].string ?? "", name: r[2].string ?? "", description: r[3].string ?? "", status: status,
                               severity: r[5].string.flatMap(IssueSeverity.init(rawValue:)),
                               rootCauses: try items(r[6].string, "root_causes", issue: id), sourceRunID: r[7].string,
                               categories: try items(r[8].string, "categories", issue: id), createdBy: r[9].string,
                               creationTime: r[10].int ?? 0, lastUpdateTime: r[11].int ?? 0)
        if r.count > 12 { found.traceCount = r[12].int ?? 0 }
        return found
    }

    static func insert(_ db: some SQLConnection, _ i: TraceIssue) throws {
        _ = try db.run("INSERT INTO issues (\(columns)) VALUES (\(sqlMarks(12)))", row(i))
    }

    static func issues(_ db: some SQLConnection, where cond: String, _ values: [SQLValue], lock: RowLock? = nil) throws -> [TraceIssue] {
        try db.rows("SELECT \(columns) FROM issues i WHERE \(cond)" + (lock.map(db.locking) ?? ""), values).map(issue)
    }

    static func update(_ db: some SQLConnection, id: String, _ change: (inout TraceIssue) throws -> Void) throws -> TraceIssue? {
        guard var i = try issues(db, where: "issue_id = ?", [.text(id)], lock: .update).first else { return nil }
        try change(&i)
        i.id = id
        _ = try db.run("""
            UPDATE issues SET name = ?, description = ?, status = ?, severity = ?, last_updated_timestamp = ? WHERE issue_id = ?
            """, [.text(i.name), .text(i.description), .text(i.status.rawValue), .text(orNull: i.severity?.rawValue), .integer(i.lastUpdateTime), .text(id)])
        return i
    }

    static func search(_ db: some SQLConnection, _ s: IssueSearch, offset: Int, limit: Int) throws -> [TraceIssue] {
        var conditions: [String] = [], values: [SQLValue] = []
        if let e = s.experimentID {
            conditions.append("i.experiment_id = ?")
            values.append(.text(e))
        }
        for c in s.filter.clauses {
            precondition(IssueFilter.fields.contains(c.field), "no issue field \(c.field)")
            conditions.append("i.\(c.field) \(c.negated ? "<>" : "=") ?")  // SQL's: a missing source run is neither
            values.append(.text(c.value))
        }
        let count = s.includeTraceCount ? ", \(traceCount) AS trace_count" : ""
        let order = "\(severityRank) DESC" + (s.includeTraceCount ? ", trace_count DESC" : "") + ", i.created_timestamp DESC, i.issue_id DESC"
        return try db.rows("SELECT \(columns)\(count) FROM issues i" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
                           + " ORDER BY \(order) LIMIT \(limit) OFFSET \(offset)", values).map(issue)
    }

    static func importIssues(_ db: some SQLConnection, _ issues: [TraceIssue]) throws {
        for i in issues {
            _ = try db.run("DELETE FROM issues WHERE issue_id = ?", [.text(i.id)])
            try insert(db, i)
        }
    }
}

extension SQLiteMetadataStore: IssueStore {
    /// Version 16: issues (``IssueSQL``).
    static let schemaVersion16 = IssueSQL.schema(text: "TEXT", integer: "INTEGER")

    public func insertIssue(_ issue: TraceIssue) throws { try transaction { try with { try IssueSQL.insert($0, issue) } } }
    public func issue(id: String) throws -> TraceIssue? { try with { try IssueSQL.issues($0, where: "issue_id = ?", [.text(id)]).first } }
    public func updateIssue(id: String, _ change: (inout TraceIssue) throws -> Void) throws -> TraceIssue? {
        try transaction { try with { try IssueSQL.update($0, id: id, change) } }
    }
    public func issues(_ search: IssueSearch, offset: Int, limit: Int) throws -> [TraceIssue] {
        try with { try IssueSQL.search($0, search, offset: offset, limit: limit) }
    }
    public func importIssues(_ issues: [TraceIssue]) throws { try transaction { try with { try IssueSQL.importIssues($0, issues) } } }
}

extension PostgresMetadataStore: IssueStore {
    /// Version 15: issues (``IssueSQL``).
    static let schemaVersion15 = IssueSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT")

    public func insertIssue(_ issue: TraceIssue) throws { try write { try IssueSQL.insert($0, issue) } }
    public func issue(id: String) throws -> TraceIssue? { try conn { try IssueSQL.issues($0, where: "issue_id = ?", [.text(id)]).first } }
    public func updateIssue(id: String, _ change: (inout TraceIssue) throws -> Void) throws -> TraceIssue? {
        try write { try IssueSQL.update($0, id: id, change) }
    }
    public func issues(_ search: IssueSearch, offset: Int, limit: Int) throws -> [TraceIssue] {
        try conn { try IssueSQL.search($0, search, offset: offset, limit: limit) }
    }
    public func importIssues(_ issues: [TraceIssue]) throws { try write { try IssueSQL.importIssues($0, issues) } }
}
