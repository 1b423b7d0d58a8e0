import Testing
@testable import TallyStore
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store's hold on its file, and the run ids it hands out.
@Suite struct SQLiteStoreTests {
    /// One store at a time: its cache of runs is only right for the database's one writer, so a second store (a
    /// second server on the same file) is refused with an error naming the file, and opens once the first closed.
    @Test func aSecondStoreOnTheFileIsRefusedUntilTheFirstCloses() throws {
        var template = Array("/tmp/tally-sqlite-excl-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileIO.removeTree(dir) }
        let path = dir + "/metadata.sqlite"
        let first = try SQLiteMetadataStore(path: path, now: 1)
        let id = try first.insertExperiment(name: "held", artifactLocation: "/a/{id}", tags: [], now: 1)
        expectError(.internalError, "the metadata database \(path) is in use by another process") {
            _ = try SQLiteMetadataStore(path: path, now: 2)
        }
        // Nor can another program read it meanwhile.
        #expect(throws: SQLiteError.self) { _ = try SQLiteDatabase(path: path, readOnly: true).rows("SELECT count(*) FROM experiments") }
        first.close()
        #expect(throws: SQLiteError.self) { _ = try first.experiments() }
        let second = try SQLiteMetadataStore(path: path, now: 2)
        defer { second.close() }
        #expect(try second.experiment(id: Int64(id)!)?.name == "held")
        #expect(try second.with { try $0.rows("PRAGMA page_size") }.first?.first?.int == Int64(SQLiteDatabase.pageSize))
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
