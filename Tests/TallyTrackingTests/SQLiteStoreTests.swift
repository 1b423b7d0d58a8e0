import Testing
@testable import TallyStore
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store's file and its hold on it, and the run ids it hands out.
@Suite struct SQLiteStoreTests {
    /// New files get small pages and a WAL checkpointed every 16 MB. One store at a time: its cache of runs is only
    /// right for the database's one writer, so a second store (a second server on the same file) is refused with an
    /// error naming the file, no other program reads it meanwhile (`tally token` goes through the server's admin
    /// socket), and it opens once the first closed.
    @Test func theFileHasSmallPagesAndOneStoreHoldsIt() throws {
        var template = Array("/tmp/tally-sqlite-file-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileIO.removeTree(dir) }
        let path = dir + "/metadata.sqlite"
        let first = try SQLiteMetadataStore(path: path, now: 1)
        let id = try first.insertExperiment(name: "held", artifactLocation: "/a/{id}", tags: [], now: 1)
        #expect(try first.with { try $0.rows("PRAGMA page_size") }.first?.first?.int == Int64(SQLiteDatabase.pageSize))
        #expect(try first.with { try $0.rows("PRAGMA wal_autocheckpoint") }.first?.first?.int
                == Int64(SQLiteDatabase.checkpointBytes / SQLiteDatabase.pageSize))
        expectError(.internalError, "the metadata database \(path) is in use by another process") {
            _ = try SQLiteMetadataStore(path: path, now: 2)
        }
        #expect(throws: SQLiteError.self) { _ = try SQLiteDatabase(path: path, readOnly: true, busyMillis: 0).rows("SELECT count(*) FROM experiments") }
        first.close()
        #expect(throws: SQLiteError.self) { _ = try first.experiments() }
        let second = try SQLiteMetadataStore(path: path, now: 2)
        defer { second.close() }
        #expect(try second.experiment(id: Int64(id)!)?.name == "held")
        // An existing file keeps its page size (1 KB pages are for new files only) and gets the same checkpoints.
        let old = dir + "/old.sqlite"
        let legacy = try SQLiteDatabase(path: ":memory:")
        try legacy.execute("PRAGMA page_size = 4096; CREATE TABLE t (x); VACUUM INTO '\(old)'")  // a file made with SQLite's default pages
        legacy.close()
        let reopened = try SQLiteDatabase(path: old)
        defer { reopened.close() }
        #expect(try reopened.rows("PRAGMA page_size").first?.first?.int == 4_096)
        #expect(try reopened.rows("PRAGMA wal_autocheckpoint").first?.first?.int == Int64(SQLiteDatabase.checkpointBytes / 4_096))
    }

    @Test func runIDsAreRandomVersion4UUIDs() {
        let ids = (0..<2_000).map { _ in RunNames.runID() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            let u = Array(id.utf8)
            #expect(u.count == 32 && u.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "\(id)")
            #expect(u[12] == UInt8(ascii: "4") && "89ab".utf8.contains(u[16]), "\(id)")
        }
        // Every hex digit shows up in every position but the fixed ones (a stuck nibble would not).
        for p in 0..<32 where p != 12 && p != 16 {
            #expect(Set(ids.map { Array($0.utf8)[p] }).count == 16, "position \(p)")
        }
    }
}
