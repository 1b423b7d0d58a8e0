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
}

extension SQLiteDatabase: SQLConnection {
    var insertionOrder: String { "rowid" }
}

extension PostgresDatabase.Connection: SQLConnection {
    var insertionOrder: String { "seq" }

    func query(_ sql: String, _ values: [SQLValue], _ row: ([SQLValue]) throws -> Void) throws {
        for r in try rows(sql, values) { try row(r) }
    }
}
