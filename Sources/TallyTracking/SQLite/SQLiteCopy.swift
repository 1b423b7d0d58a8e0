import CSQLite3
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An online copy of a database into a new file (SQLite's backup API), made in steps while the database is in use.
/// Every page the source connection writes after a step has copied it reaches the copy too (SQLite updates a backup
/// from the writing connection, and starts it over when a rollback undoes pages already written), so once
/// ``complete(from:)`` returns, the copy holds the database as it is at that moment, committed writes only.
///
/// Every call but ``seal()`` is made under the lock that serialises the source connection: the copy's own
/// connection is written by the source's writes. A step never copies the last pages (``step(_:pages:)``), since
/// a copy SQLite calls done stops following pages the database adds afterwards.
final class SQLiteCopy: @unchecked Sendable {
    /// Where the copy is written.
    let path: String
    private let dest: OpaquePointer
    private var backup: OpaquePointer?
    /// The database's pages when the copy began.
    let pages: Int
    /// Pages copied by ``step(_:pages:)`` calls so far, counting those copied again after a restart.
    private(set) var stepped = 0
    /// Set when a step copied the last page after all (the database shrank): ``complete(from:)`` starts over.
    private var doneEarly = false

    /// Starts a copy of `source` into a new file at `path` (a file there is overwritten).
    init(of source: SQLiteDatabase, to path: String) throws {
        guard !source.isClosed else { throw source.closedError }
        pages = Int(try source.rows("PRAGMA page_count").first?.first?.int ?? 0)  // before anything needs closing
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let dest = handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: "\(msg): \(path)")
        }
        self.dest = dest
        self.path = path
        // The copy is made durable as a whole when it is done (the backup syncs its file system once): no fsync.
        // A small cache: the copy's pages go to its file as the steps write them (its one transaction spills), not
        // all at its commit, which comes in the pause.
        sqlite3_exec(dest, "PRAGMA synchronous = OFF; PRAGMA cache_size = 64", nil, nil, nil)
        guard let backup = sqlite3_backup_init(dest, "main", source.db, "main") else {
            let e = failure(sqlite3_errcode(dest))
            sqlite3_close_v2(dest)
            throw e
        }
        self.backup = backup
    }

    /// Pages left to copy: the database's before the first step, then as of the last one (pages written since were
    /// copied as they were written; a restart after a rollback shows at the next step).
    var left: Int { stepped == 0 ? pages : backup.map { Int(sqlite3_backup_remaining($0)) } ?? 0 }

    /// Copies up to `pages` more pages of `source` (the database the copy began on), unless that could copy the last
    /// ones: returns whether it copied. (A database that shrank meanwhile, which only `VACUUM` does, can still be
    /// copied whole by a step: ``complete(from:)`` then copies it again.)
    func step(_ source: SQLiteDatabase, pages: Int) throws -> Bool {
        guard let backup else { return false }
        guard !source.isClosed else { throw source.closedError }
        guard left > pages else { return false }
        let rc = sqlite3_backup_step(backup, Int32(pages))
        // Locked or busy cannot happen on a connection held exclusively by this process, but would only mean "later".
        guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_BUSY || rc == SQLITE_LOCKED else { throw failure(rc) }
        stepped += pages
        if rc == SQLITE_DONE { doneEarly = true }
        return rc == SQLITE_OK
    }

    /// Copies every page not copied yet and ends the copy: it is the database as it is now.
    func complete(from source: SQLiteDatabase) throws {
        guard var backup else { throw SQLiteError(code: SQLITE_MISUSE, message: "copy to \(path): already ended") }
        guard !source.isClosed else { throw source.closedError }
        if doneEarly {
            sqlite3_backup_finish(backup)
            self.backup = nil
            guard let again = sqlite3_backup_init(dest, "main", source.db, "main") else { throw failure(sqlite3_errcode(dest)) }
            backup = again
            doneEarly = false
        }
        let step = sqlite3_backup_step(backup, -1)
        let finish = sqlite3_backup_finish(backup)
        self.backup = nil
        guard step == SQLITE_DONE, finish == SQLITE_OK else { throw failure(step == SQLITE_DONE ? finish : step) }
    }

    /// Ends the copy unfinished and removes its files.
    func abandon() {
        if let backup { sqlite3_backup_finish(backup) }
        backup = nil
        sqlite3_close_v2(dest)
        for suffix in ["", "-wal", "-journal"] { unlink(path + suffix) }
    }

    /// After ``complete(from:)``, with no lock: the copy's header says WAL mode (it came with page 1), so it is
    /// checkpointed and set back to a rollback journal (one file and nothing else), and closed. Not synced: the
    /// backup makes everything it wrote durable at once, before it puts the copy in place.
    func seal() throws {
        defer { sqlite3_close_v2(dest) }
        guard sqlite3_exec(dest, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE", nil, nil, nil) == SQLITE_OK else {
            throw failure(sqlite3_errcode(dest))
        }
    }

    private func failure(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: "copy to \(path): \(String(cString: sqlite3_errmsg(dest)))")
    }
}
