import CSQLite3

/// A value bound to or read from SQLite.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The integer, when this is one.
    public var int: Int64? { if case .integer(let v) = self { v } else { nil } }
    /// The real, when this is one (integers convert).
    public var double: Double? {
        switch self {
        case .real(let v): v
        case .integer(let v): Double(v)
        default: nil
        }
    }
    /// The text, when this is one.
    public var string: String? { if case .text(let v) = self { v } else { nil } }
    /// The bytes, when this is a blob.
    public var bytes: [UInt8]? { if case .blob(let v) = self { v } else { nil } }
}

/// An error reported by SQLite.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// SQLite's result code.
    public var code: Int32
    /// SQLite's message.
    public var message: String
    /// The statement, when one was being run.
    public var sql: String?

    /// `SQLite error N: message (in: sql)`.
    public var description: String { "SQLite error \(code): \(message)" + (sql.map { " (in: \($0))" } ?? "") }

    /// Whether the error is a constraint violation (unique key and the like).
    public var isConstraint: Bool { code & 0xFF == SQLITE_CONSTRAINT }
    /// Another connection holds the lock the statement needs (past the busy timeout).
    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY }
}

/// The current row of ``SQLiteDatabase/scan(_:_:_:)``: valid only inside its callback.
struct SQLiteRow {
    fileprivate let statement: OpaquePointer

    /// Column `i` as an integer (SQLite's conversion: 0 for NULL).
    func int64(_ i: Int32) -> Int64 { sqlite3_column_int64(statement, i) }
    /// Column `i` as a double (SQLite's conversion: 0 for NULL).
    func double(_ i: Int32) -> Double { sqlite3_column_double(statement, i) }
    /// Whether column `i` is NULL.
    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(statement, i) == SQLITE_NULL }
    /// Column `i`'s text bytes, in place (valid until the next step).
    func text(_ i: Int32) -> UnsafeRawBufferPointer {
        let p = sqlite3_column_text(statement, i)
        return UnsafeRawBufferPointer(start: p, count: p == nil ? 0 : Int(sqlite3_column_bytes(statement, i)))
    }
}

/// One SQLite connection with a cache of prepared statements. Not thread-safe by itself: it is only ever used
/// inside its owner's `Mutex` (hence `@unchecked Sendable`), which serialises every call.
final class SQLiteDatabase: @unchecked Sendable {
    /// The connection (used only under the owner's lock, as every method is; ``SQLiteCopy`` reads through it).
    let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    /// `SQLITE_TRANSIENT`, which the C header defines as a cast Swift cannot import.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    /// Opens (creating) the database at `path` (`:memory:` for a private in-memory one), in WAL journal mode; with
    /// `readOnly`, opens an existing database without changing anything in it (not even its journal mode): another
    /// program's database read by `tally import`. With `exclusive`, the connection takes the file's lock at once and
    /// keeps it until closed (`locking_mode = EXCLUSIVE`, the WAL index in this process's memory): no other process
    /// can read or write the database meanwhile, and no transaction pays for file locks (they were 16 % of run
    /// creation's CPU). A database another process holds fails here with ``SQLiteError/isBusy``, at once: a holder
    /// keeps its lock as long as it runs, so waiting `busyMillis` for it (what other opens do) would only delay the
    /// error.
    init(path: String, readOnly: Bool = false, exclusive: Bool = false, busyMillis: Int32 = 5_000) throws {
        var handle: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: "\(msg): \(path)")
        }
        db = handle
        sqlite3_busy_timeout(db, exclusive ? 0 : busyMillis)
        try Self.addPercentile(handle)
        if readOnly { return }
        // Before the first access to the WAL: only then does the WAL index live in this process's memory.
        if exclusive { try execute("PRAGMA locking_mode = EXCLUSIVE") }
        // A new file gets 1 KB pages (an existing one keeps its own): each commit writes its changed pages whole to
        // the WAL, and a tracking call changes one or two rows, so 4 KB pages wrote ~68 KB per created run (10
        // calls) and the disk's writeback stalled commits.
        try execute("PRAGMA page_size = \(Self.pageSize)")
        try execute("PRAGMA journal_mode = WAL")
        // Checkpoints (which fsync the WAL and the database, holding the connection) every 16 MB of WAL rather than
        // SQLite's 1,000 pages: hot pages (a run's latest values, the runs table's tail) are copied once per
        // checkpoint however often they changed. With `synchronous = NORMAL` commits are fsynced at checkpoints only,
        // so a power cut (not a crash of the process) may lose the commits of up to that much WAL, never corrupt.
        // (docs/architecture.md).
        let pageSize = try rows("PRAGMA page_size").first?.first?.int ?? Int64(Self.pageSize)
        try execute("PRAGMA wal_autocheckpoint = \(Self.checkpointBytes / Int(max(512, pageSize)))")
        try execute("PRAGMA synchronous = NORMAL")
        try execute("PRAGMA foreign_keys = ON")
        try execute("PRAGMA case_sensitive_like = ON")
    }

    /// The page size of databases this type creates.
    static let pageSize = 1_024
    /// WAL bytes between automatic checkpoints.
    static let checkpointBytes = 16 << 20

    /// Set by ``close()``: every later call throws.
    private var closed = false
    /// Whether ``close()`` was called.
    var isClosed: Bool { closed }

    deinit { close() }

    /// Closes the connection; later calls throw `SQLITE_MISUSE`. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        for (_, s) in statements { sqlite3_finalize(s) }
        statements.removeAll()
        sqlite3_close_v2(db)
    }

    /// The error of a call after ``close()``.
    var closedError: SQLiteError { SQLiteError(code: SQLITE_MISUSE, message: "the database connection is closed") }

    private func error(_ rc: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql)
    }

    /// Runs one or more statements without results.
    func execute(_ sql: String) throws {
        guard !closed else { throw closedError }
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "error"
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: msg, sql: sql)
        }
    }

    private func statement(_ sql: String) throws -> OpaquePointer {
        guard !closed else { throw closedError }
        if let s = statements[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            return s
        }
        var s: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil)
        guard rc == SQLITE_OK, let s else { throw error(rc, sql) }
        statements[sql] = s
        return s
    }

    private func bind(_ s: OpaquePointer, _ values: [SQLValue], _ sql: String) throws {
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(s, idx)
            case .integer(let x): rc = sqlite3_bind_int64(s, idx, x)
            case .real(let x): rc = sqlite3_bind_double(s, idx, x)
            case .text(let x):
                // With the explicit byte length, text containing NUL is stored whole instead of cut at the NUL.
                if x.utf8.isEmpty {
                    rc = sqlite3_bind_text(s, idx, "", 0, Self.transient)
                } else {
                    var x = x
                    rc = x.withUTF8 { u in
                        u.withMemoryRebound(to: CChar.self) { c in sqlite3_bind_text(s, idx, c.baseAddress, Int32(c.count), Self.transient) }
                    }
                }
            case .blob(let x):
                rc = x.withUnsafeBytes { sqlite3_bind_blob(s, idx, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), Self.transient) }
            }
            if rc != SQLITE_OK { throw error(rc, sql) }
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
        let s = try statement(sql)
        defer { sqlite3_reset(s) }
        try bind(s, values, sql)
        let rc = sqlite3_step(s)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc, sql) }
        return Int(sqlite3_changes(db))
    }

    /// Runs a query and calls `row` for each result row with its columns.
    func query(_ sql: String, _ values: [SQLValue] = [], _ row: ([SQLValue]) throws -> Void) throws {
        let s = try statement(sql)
        defer { sqlite3_reset(s) }
        try bind(s, values, sql)
        let n = sqlite3_column_count(s)
        while true {
            let rc = sqlite3_step(s)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            var cols: [SQLValue] = []
            cols.reserveCapacity(Int(n))
            for i in 0..<n {
                switch sqlite3_column_type(s, i) {
                case SQLITE_INTEGER: cols.append(.integer(sqlite3_column_int64(s, i)))
                case SQLITE_FLOAT: cols.append(.real(sqlite3_column_double(s, i)))
                case SQLITE_NULL: cols.append(.null)
                case SQLITE_BLOB:
                    let n = Int(sqlite3_column_bytes(s, i))
                    let p = sqlite3_column_blob(s, i)
                    cols.append(.blob(p.map { Array(UnsafeRawBufferPointer(start: $0, count: n)) } ?? []))
                default:
                    let p = sqlite3_column_text(s, i)
                    let n = Int(sqlite3_column_bytes(s, i))
                    cols.append(.text(p.map { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) } ?? ""))
                }
            }
            try row(cols)
        }
    }

    /// Runs a query and calls `row` with a cursor on each result row: no per-row array or boxed cells, and text
    /// read in place (for scans of millions of rows, such as `tally import` reading MLflow's metric table).
    func scan(_ sql: String, _ values: [SQLValue] = [], _ row: (SQLiteRow) throws -> Void) throws {
        let s = try statement(sql)
        defer { sqlite3_reset(s) }
        try bind(s, values, sql)
        while true {
            let rc = sqlite3_step(s)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            try row(SQLiteRow(statement: s))
        }
    }

    /// All rows of a query.
    func rows(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
        var out: [[SQLValue]] = []
        try query(sql, values) { out.append($0) }
        return out
    }

    /// Runs `body` in a transaction (`BEGIN IMMEDIATE`), committing on success and rolling back on error.
    func transaction<R>(_ body: () throws -> R) throws -> R {
        try begin()
        do {
            let r = try body()
            try commit()
            return r
        } catch {
            rollback()
            throw error
        }
    }

    /// `BEGIN IMMEDIATE` (a prepared statement kept like any other: no parse per transaction).
    func begin() throws { try run("BEGIN IMMEDIATE") }
    /// `COMMIT`.
    func commit() throws { try run("COMMIT") }
    /// `ROLLBACK`, when a transaction is open (errors ignored: the caller reports the error that caused it).
    func rollback() {
        if !closed && sqlite3_get_autocommit(db) == 0 { _ = try? run("ROLLBACK") }
    }

    /// Rows inserted, updated or deleted by the statements this connection completed (triggers' included; a statement
    /// that failed counts none, its changes undone).
    var totalChanges: Int64 { closed ? 0 : sqlite3_total_changes64(db) }

    /// Ends a transaction its caller gives up on (errors ignored, as ``rollback()``'s). When it changed no row since
    /// `changes` (``totalChanges`` at its `BEGIN`) the database is as it was then, and a `COMMIT` ends it the same
    /// way without the `ROLLBACK` that makes SQLite start a copy in progress over (``SQLiteCopy``); otherwise, or
    /// if that commit fails, a `ROLLBACK`. Not for transactions with schema changes, which no row count shows.
    func abandonTransaction(changesAtBegin changes: Int64) {
        guard !closed, sqlite3_get_autocommit(db) == 0 else { return }
        if sqlite3_total_changes64(db) == changes, (try? run("COMMIT")) != nil, sqlite3_get_autocommit(db) != 0 { return }
        rollback()
    }

    /// `PRAGMA user_version`, the schema version.
    var userVersion: Int {
        get throws { Int(try rows("PRAGMA user_version").first?.first?.int ?? 0) }
    }
}
