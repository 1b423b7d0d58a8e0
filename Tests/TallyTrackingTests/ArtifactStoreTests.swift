import Foundation
import NIOHTTP1
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
        // A client's name holding ".upload-" is listed (only Tally's own `name.upload-<digits>` temporaries are not).
        let own = try store.upload("1/run/artifacts/model.upload-v2.bin")
        try own.finish()
        #expect(try store.list("1/run/artifacts").map(\.name) == ["a b.txt", "model.upload-v2.bin"])
        #expect(try store.files(under: "1/run").map(\.path).contains("artifacts/model.upload-v2.bin"))
        #expect(ArtifactStore.isSpooled("x.txt.upload-1234") && !ArtifactStore.isSpooled("x.upload-") && !ArtifactStore.isSpooled("x.upload-v2"))
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

    /// The same rules and answers with the files in S3 (SeaweedFS from `scripts/s3-test run`): paths checked the same
    /// way, directories made of keys, uploads spooled then sent (in parts when large), reads by ranged GETs.
    @Test(.enabled(if: S3LiveTests.endpoint != nil)) func objectStorageBackend() throws {
        let f = try Fixture("art-s3")
        let location = S3Location(bucket: "tally", prefix: S3LiveTests.prefix() + "/artifacts")
        let client = try S3LiveTests.client()
        let store = try ArtifactStore(s3: client, location: location, spool: f.dir + "/spool")
        #expect(store.root == location.description)
        func put(_ path: String, _ bytes: [UInt8]) throws {
            let up = try store.upload(path)
            try bytes.withUnsafeBytes { try up.write($0) }
            try up.finish()
        }
        try put("1/run/artifacts/a b.txt", Array("hello".utf8))
        try put("1/run/artifacts/dir/inner.json", Array("{}".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.dir + "/spool").isEmpty, "the spooled file is removed once sent")
        let r = try store.open("1/run/artifacts/a b.txt")
        let text = String(decoding: try r.read(at: 0, count: 100), as: UTF8.self)
        #expect(r.size == 5 && text == "hello")
        #expect(try r.read(at: 5, count: 10).isEmpty)
        let entries = try store.list("1/run/artifacts")
        #expect(entries.map(\.name) == ["a b.txt", "dir"] && entries.map(\.isDir) == [false, true] && entries[0].size == 5)
        #expect(try store.list("1/run/artifacts/a b.txt").isEmpty, "a file lists as empty")
        #expect(try store.list("missing").isEmpty)
        #expect(try store.files(under: "1/run").map(\.path) == ["artifacts/a b.txt", "artifacts/dir/inner.json"])
        _ = try store.upload("1/" + String(repeating: "n", count: 255))  // NAME_MAX itself is fine
        for bad in ["../x", "a/../../x", "/etc/passwd", "C:\\x", "", "%2e%2e/x", "a#b", "dir/"] {
            #expect(throws: TrackingError.self, "\(bad)") { _ = try store.upload(bad) }
        }
        expectError(.invalidParameterValue, "refers to a directory") { _ = try store.open("1/run/artifacts/dir") }
        expectError(.resourceDoesNotExist, "No such artifact") { _ = try store.open("1/run/artifacts/nope") }
        expectError(.invalidParameterValue, "Invalid path") { _ = try store.upload("1/run/artifacts/dir") }  // a directory
        expectError(.invalidParameterValue, "Invalid path") { _ = try store.upload("1/run/artifacts/a b.txt/x") }  // under a file
        expectError(.invalidParameterValue, "Invalid path") { _ = try store.upload("1/" + String(repeating: "n", count: 256)) }
        // A directory emptied and replaced by a file is a file for later uploads too (the known-directory cache forgets it).
        try store.delete("1/run/artifacts/dir")
        try put("1/run/artifacts/dir", Array("now a file".utf8))
        expectError(.invalidParameterValue, "Invalid path") { _ = try store.upload("1/run/artifacts/dir/inner.json") }
        // Larger than a part: a multipart upload through the spool; read back across ranged-GET windows.
        var big = [UInt8](repeating: 0, count: (11 << 20) + 3)
        for i in big.indices { big[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        try put("2/big.bin", big)
        let rb = try store.open("2/big.bin")
        var back: [UInt8] = []
        while back.count < rb.size { back += try rb.read(at: back.count, count: 256 << 10) }
        #expect(back == big)
        let copy = try store.withLocalFile("2/big.bin", scratch: f.dir) { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(copy == Data(big))
        // Arriving in small chunks, parts leave while the rest comes (streamed); an upload given up leaves nothing:
        // no object, no multipart upload holding parts.
        let chunked = try store.upload("2/chunked.bin")
        for at in stride(from: 0, to: big.count, by: 64 << 10) { try big[at..<min(at + (64 << 10), big.count)].withUnsafeBytes { try chunked.write($0) } }
        try chunked.finish()
        #expect(try client.get(bucket: "tally", key: location.key("2/chunked.bin")) == big)
        let dropped = try store.upload("2/dropped.bin")
        try big.withUnsafeBytes { try dropped.write($0) }  // two parts sent
        func openUploads() throws -> String {
            let a = try client.request(.GET, bucket: "tally", query: [("uploads", "")])
            #expect(a.status == 200)
            return String(decoding: a.body, as: UTF8.self)
        }
        var pending = ""
        for _ in 0..<50 where !pending.contains("dropped.bin") {  // the parts go in the background
            pending = try openUploads()
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(pending.contains("dropped.bin"), "the parts were not sent before the upload finished")
        dropped.abort()
        for _ in 0..<50 where pending.contains("dropped.bin") {  // so does the abort
            Thread.sleep(forTimeInterval: 0.1)
            pending = try openUploads()
        }
        #expect(!pending.contains("dropped.bin"), "the multipart upload of an aborted artifact is still open")
        #expect(try client.size(bucket: "tally", key: location.key("2/dropped.bin")) == nil)
        try store.delete("1/run")
        #expect(try store.list("1").isEmpty)
        #expect(throws: TrackingError.self) { try store.delete("") }
        try store.delete("2")
        #expect(try client.list(bucket: "tally", prefix: location.prefix + "/", delimiter: nil).objects.isEmpty)
        // A bucket that is not there is named at startup.
        expectError(.resourceDoesNotExist, "S3 bucket 'absent' does not exist") {
            _ = try ArtifactStore(s3: client, location: S3Location(bucket: "absent", prefix: ""), spool: f.dir + "/spool")
        }
    }
}
