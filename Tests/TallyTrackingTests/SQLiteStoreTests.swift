import Testing
@testable import TallyStore
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store's file, and the run ids it hands out.
@Suite struct SQLiteStoreTests {
    /// New files get small pages and a WAL checkpointed every 16 MB, and the file stays open to another program
    /// beside the store (`tally token` next to a running server): what one writes, the other reads.
    @Test func theFileHasSmallPagesAndStaysSharedWithOtherPrograms() throws {
        var template = Array("/tmp/tally-sqlite-file-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileIO.removeTree(dir) }
        let path = dir + "/metadata.sqlite"
        let store = try SQLiteMetadataStore(path: path, now: 1)
        defer { store.close() }
        let id = try store.insertExperiment(name: "shared", artifactLocation: "/a/{id}", tags: [], now: 1)
        #expect(try store.with { try $0.rows("PRAGMA page_size") }.first?.first?.int == Int64(SQLiteDatabase.pageSize))
        #expect(try store.with { try $0.rows("PRAGMA wal_autocheckpoint") }.first?.first?.int
                == Int64(SQLiteDatabase.checkpointBytes / SQLiteDatabase.pageSize))
        let other = try SQLiteDatabase(path: path)
        #expect(try other.rows("SELECT name FROM experiments WHERE experiment_id = ?", [.integer(Int64(id)!)]) == [[.text("shared")]])
        try other.run("INSERT INTO experiment_tags VALUES (?, 'team', 'a')", [.integer(Int64(id)!)])
        other.close()
        #expect(throws: SQLiteError.self) { _ = try other.rows("SELECT 1") }
        #expect(try SQLiteMetadataStore.experimentRows(try store.with { $0 }, "WHERE experiment_id = ?", [.integer(Int64(id)!)]).first?.tags
                == [KeyValue(key: "team", value: "a")])
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
