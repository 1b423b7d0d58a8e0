import Testing
@testable import TallyStore
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ArtifactStoreTests {
    @Test func pathsStayInsideTheRoot() throws {
        let f = try Fixture("art")
        let store = try ArtifactStore(root: f.dir + "/artifacts")
        let up = try store.upload("1/run/artifacts/a b.txt")
        try "hello".utf8.withContiguousStorageIfAvailable { try up.write(UnsafeRawBufferPointer($0)) }
        try up.finish()
        let r = try store.open("1/run/artifacts/a b.txt")
        #expect(String(decoding: try r.read(at: 0, count: 100), as: UTF8.self) == "hello")
        #expect(try store.list("1/run/artifacts").map(\.name) == ["a b.txt"])
        #expect(try store.list("1/run/artifacts/a b.txt").isEmpty, "a file lists as empty")
        #expect(try store.list("missing").isEmpty)
        for bad in ["../x", "a/../../x", "/etc/passwd", "C:\\x", "", "%2e%2e/x", "a#b", "dir/"] {
            #expect(throws: TrackingError.self, "\(bad)") { _ = try store.upload(bad) }
        }
        // "." components are harmless (MLflow accepts `./a.txt`): they name the same file.
        let dot = try store.upload("d/./e.txt")
        try dot.finish()
        #expect(try store.list("d").map(\.name) == ["e.txt"])
        // A symlink inside the root that points outside is refused, for reads and writes.
        mkdir(f.dir + "/outside", 0o755)
        symlink(f.dir + "/outside", f.dir + "/artifacts/link")
        #expect(throws: TrackingError.self) { _ = try store.upload("link/x.txt") }
        #expect(throws: TrackingError.self) { _ = try store.list("link") }
        #expect(try FileIO.list(f.dir + "/outside").isEmpty)
        #expect(throws: TrackingError.self) { _ = try store.open("1/run/artifacts") }  // a directory
        try store.delete("1/run")
        #expect(try store.list("1").isEmpty)
    }
}
