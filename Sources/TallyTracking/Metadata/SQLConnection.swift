/// `?, ?, …` for `n` values: the placeholder list of an `IN (…)` or `VALUES (…)`, in the SQL both dialects read.
func sqlMarks(_ n: Int) -> String {
    Array(repeating: "?", count: n).joined(separator: ", ")
}

extension SQLValue {
    /// A text cell, or NULL for `nil`.
    static func text(orNull s: String?) -> SQLValue { s.map(SQLValue.text) ?? .null }
}

/// How a read locks its rows (PostgreSQL's row locks; SQLite's writes are serial).
enum RowLock {
    /// Kept from being deleted or having its key changed: rows inserted under it cannot break their foreign key
    /// (`FOR KEY SHARE`).
    case keep
    /// Kept from any change (`FOR SHARE`): a model version another server is deleting is an `UPDATE` of its stage.
    case freeze
    /// Held for the caller's own update (`FOR UPDATE`): a read, changed and written back, loses no other write.
    case update
}

/// What the row readers both metadata stores share need of a connection: SQLite's (``SQLiteDatabase``) and
/// PostgreSQL's (``PostgresDatabase/Connection``) answer the same SQL with `?` placeholders and ``SQLValue`` cells,
/// so one schema design is read by one piece of code.
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
    /// What a `SELECT` ends with to lock the rows it reads until the transaction ends (``RowLock``); nothing in SQLite,
    /// whose writes hold the database's one write lock from their start.
    func locking(_ lock: RowLock) -> String
    /// An aggregate: a percentile of `value` over a group, interpolated linearly between the closest ranks
    /// (``TraceMetricsRenderer/percentile(_:fraction:)``), its fraction (0–1) the one `?`; NULL for a group without
    /// values.
    func percentile(_ value: String) -> String
    /// An aggregate: the sum (or with `mean` the mean) of `value` over a group, as a double, or the text of a decimal
    /// where that is how the dialect gets past a double's range without an error (infinite once read); NULL for a
    /// group without values.
    func total(_ value: String, mean: Bool) -> String
}

extension SQLiteDatabase: SQLConnection {
    var insertionOrder: String { "rowid" }
    func locking(_ lock: RowLock) -> String { "" }
    func percentile(_ value: String) -> String { "\(Self.percentileFunction)(\(value), ?)" }
    /// SQLite's sum of doubles goes to infinity past their range.
    func total(_ value: String, mean: Bool) -> String { (mean ? "AVG" : "SUM") + "(CAST(\(value) AS REAL))" }
}

extension PostgresDatabase.Connection: SQLConnection {
    var insertionOrder: String { "seq" }
    func percentile(_ value: String) -> String { "percentile_cont(CAST(? AS DOUBLE PRECISION)) WITHIN GROUP (ORDER BY CAST(\(value) AS DOUBLE PRECISION))" }
    /// PostgreSQL's sum of doubles fails past their range ("value out of range: overflow"); a `NUMERIC` sum does not.
    func total(_ value: String, mean: Bool) -> String { "CAST(" + (mean ? "AVG" : "SUM") + "(CAST(\(value) AS NUMERIC)) AS TEXT)" }
    func locking(_ lock: RowLock) -> String {
        switch lock {
        case .keep: " FOR KEY SHARE"
        case .freeze: " FOR SHARE"
        case .update: " FOR UPDATE"
        }
    }

    func query(_ sql: String, _ values: [SQLValue], _ row: ([SQLValue]) throws -> Void) throws {
        for r in try rows(sql, values) { try row(r) }
    }
}
