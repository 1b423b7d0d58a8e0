/// What the row readers both metadata stores share need of a connection: SQLite's (``SQLiteDatabase``) and
/// PostgreSQL's (``PostgresDatabase/Connection``) answer the same SQL with `?` placeholders and ``SQLValue`` cells,
/// so one schema design is read by one piece of code.
/// `?, ?, …` for `n` values: the placeholder list of an `IN (…)` or `VALUES (…)`, in the SQL both dialects read.
func sqlMarks(_ n: Int) -> String {
    Array(repeating: "?", count: n).joined(separator: ", ")
}

protocol SQLConnection {
    /// Runs a statement; returns the rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLValue]) throws -> Int
    /// Calls `row` with each result row.
    func query(_ sql: String, _ values: [SQLValue], _ row: ([SQLValue]) throws -> Void) throws
    /// Every result row.
    func rows(_ sql: String, _ values: [SQLValue]) throws -> [[SQLValue]]
    /// The column ordering a table's rows as they were first inserted: SQLite's `rowid`, PostgreSQL's identity
    /// column `seq` (tags are listed in the order first set, as MLflow lists them).
    var insertionOrder: String { get }
    /// What a `SELECT` of a parent row ends with to keep it from being deleted until the transaction ends, so that
    /// rows inserted under it cannot break their foreign key: PostgreSQL's ` FOR KEY SHARE`; nothing in SQLite, whose
    /// writes hold the database's one write lock from their start.
    var keepingRow: String { get }
}

extension SQLiteDatabase: SQLConnection {
    var insertionOrder: String { "rowid" }
    var keepingRow: String { "" }
}

extension PostgresDatabase.Connection: SQLConnection {
    var insertionOrder: String { "seq" }
    var keepingRow: String { " FOR KEY SHARE" }

    func query(_ sql: String, _ values: [SQLValue], _ row: ([SQLValue]) throws -> Void) throws {
        for r in try rows(sql, values) { try row(r) }
    }
}
