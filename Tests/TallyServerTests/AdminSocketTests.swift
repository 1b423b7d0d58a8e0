import Foundation
import Testing
import TallyStore
import TallyTracking
@testable import TallyServer

#if canImport(Glibc)
import Glibc
#endif

/// The admin socket `tally token` uses beside a running server (whose embedded metadata file no other process can
/// open meanwhile): the real application on a real Unix domain socket, driven by the command's client.
@Suite struct AdminSocketTests {
    /// `body` on a thread of its own: the client blocks, and must not hold a cooperative thread the server needs.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in Thread { cont.resume(with: Result { try body() }) }.start() }
    }

    @Test func tokensAreManagedThroughTheSocketWhileTheServerHoldsTheFile() async throws {
        let socketPath = try await LiveServer.with(AccessRouteTests.configure) { s in
            let admin = AccessRouteTests.basic("admin", AccessRouteTests.adminPassword)
            let created = try await s.request("POST", "/api/2.0/mlflow/users/create", body: Array(#"{"username": "alice", "password": "alice-password-1"}"#.utf8),
                                              headers: admin)
            #expect(created.status == 200, "\(created.text)")
            let path = AdminSocket.path(dataDirectory: s.directory)
            #expect(try AdminSocket.isListening(path))
            // In a directory only the server's user can enter.
            var info = stat()
            #expect(stat(s.directory + "/" + AdminSocket.directoryName, &info) == 0 && info.st_mode & 0o777 == 0o700 && info.st_uid == geteuid())
            // tally token's choice: the socket for the embedded store (named or not), the store itself for PostgreSQL.
            #expect(try AdminSocket.client(dataDirectory: s.directory, backendStoreURI: nil) != nil)
            #expect(try AdminSocket.client(dataDirectory: s.directory, backendStoreURI: "sqlite:///" + s.directory + "/metadata.sqlite") != nil)
            #expect(try AdminSocket.client(dataDirectory: s.directory, backendStoreURI: "postgresql://u:p@127.0.0.1:1/db") == nil)
            // The file is the server's alone.
            #expect(throws: (any Error).self) { _ = try SQLiteMetadataStore(path: s.directory + "/metadata.sqlite", now: 1) }

            let client = try AdminSocket.Client(path: path)
            let (id, token) = try await Self.blocking { try client.createToken(user: "alice", name: "laptop", expiresInDays: 7) }
            #expect(token.hasPrefix("tly_") && id.hasPrefix("tok-"))
            let bearer = ["Authorization": "Bearer " + token]
            #expect(try await s.request("GET", "/api/2.0/mlflow/experiments/search?max_results=1", contentType: nil, headers: bearer).status == 200)
            let listed = try await Self.blocking { try client.tokens(of: "alice") }
            #expect(listed.map(\.id) == [id] && listed[0].name == "laptop")
            let lifetime: Int64? = listed[0].expiryTime.map { $0 - listed[0].creationTime }
            #expect(lifetime == Int64(7 * 86_400_000))
            // The server's own rules and messages, for a user that does not exist and a token that is not theirs.
            let noUser = await #expect(throws: TrackingError.self) { _ = try await Self.blocking { try client.tokens(of: "nobody") } }
            #expect(noUser?.code == .resourceDoesNotExist && noUser?.message.contains("nobody") == true)
            let notHers = await #expect(throws: TrackingError.self) { try await Self.blocking { try client.revokeToken(id: id, of: "admin") } }
            #expect(notHers?.code == .resourceDoesNotExist)
            // Revoked through the server: refused at once (no cached credential outlives it).
            try await Self.blocking { try client.revokeToken(id: id, of: "alice") }
            #expect(try await s.request("GET", "/api/2.0/mlflow/experiments/search?max_results=1", contentType: nil, headers: bearer).status == 401)
            #expect(try await Self.blocking { try client.tokens(of: "alice") }.isEmpty)
            return path
        }
        // Removed on shutdown.
        let listening = try AdminSocket.isListening(socketPath)
        #expect(!FileManager.default.fileExists(atPath: socketPath) && !listening)
    }

    /// `tally backup` through the socket of a running server: the copy is a data directory another server starts on
    /// with the same runs, params, points, latest values and artifacts; a refused directory is the server's error.
    @Test func aBackupThroughTheSocketStartsAnotherServer() async throws {
        let copy = "/tmp/tally-socket-backup-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let p = "/api/2.0/mlflow"
        let (runID, expected) = try await LiveServer.with { s in
            let (_, run) = try await RouteTests.run(s, p, name: "backed-up")
            #expect(try await s.post(p + "/runs/log-batch", #"{"run_id": "\#(run)", "params": [{"key": "lr", "value": "0.1"}], "metrics": [\#((0..<50).map { #"{"key": "loss", "value": \#(Double($0) / 4), "timestamp": \#($0 + 1), "step": \#($0)}"# }.joined(separator: ", "))]}"#).status == 200)
            #expect(try await s.request("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/\(run)/artifacts/model/w.bin", body: Array("weights".utf8), contentType: nil).status == 200)
            let client = try AdminSocket.Client(path: AdminSocket.path(dataDirectory: s.directory))
            let summary = try await Self.blocking { try client.backup(into: copy, artifacts: true) }
            #expect(summary.directory == copy && (summary.metadataBytes ?? 0) > 0 && summary.metricBytes > 0)
            #expect(summary.artifacts?.copied == 1 && summary.artifacts?.bytes == 7)
            let again = await #expect(throws: TrackingError.self) { _ = try await Self.blocking { try client.backup(into: copy, artifacts: true) } }
            #expect(again?.code == .invalidParameterValue && again?.message.contains("not empty") == true)
            let inside = await #expect(throws: TrackingError.self) { _ = try await Self.blocking { try client.backup(into: s.directory + "/b", artifacts: true) } }
            #expect(inside?.message.contains("outside the data directory") == true)
            return (run, try await s.get(p + "/runs/get?run_id=\(run)").text)
        }
        try await LiveServer.with({ $0.dataDirectory = copy }) { s in
            #expect(try await s.get(p + "/runs/get?run_id=\(runID)").text == expected)
            let history = try await s.get(p + "/metrics/get-history?run_id=\(runID)&metric_key=loss")
            #expect((history.json["metrics"] as? [[String: Any]])?.compactMap { $0["step"] as? Int } == Array(0..<50))
            #expect(try await s.get("/api/2.0/mlflow-artifacts/artifacts/0/\(runID)/artifacts/model/w.bin").text == "weights")
        }
    }

    /// Without access control the socket still answers (for users made while it was on); a data directory whose
    /// socket path would not fit gets none, and another kind of file where the socket goes, or a symbolic link where
    /// its directory goes, is left alone: the server runs either way.
    @Test func theSocketWithoutAccessControlAndWithoutRoom() async throws {
        try await LiveServer.with { s in
            let path = AdminSocket.path(dataDirectory: s.directory)
            let listening = try AdminSocket.isListening(path)
            #expect(listening)
            let e = await #expect(throws: TrackingError.self) { _ = try await Self.blocking { try AdminSocket.Client(path: path).tokens(of: "admin") } }
            #expect(e?.code == .resourceDoesNotExist)
        }
        let long = NSTemporaryDirectory() + "tally-admin-" + String(repeating: "d", count: 110)
        defer { try? FileManager.default.removeItem(atPath: long) }
        try await LiveServer.with({ $0.dataDirectory = long }) { s in
            #expect(!FileManager.default.fileExists(atPath: AdminSocket.path(dataDirectory: long)))
            let health = try await s.get("/health")
            #expect(health.status == 200)
        }
        let occupied = NSTemporaryDirectory() + "tally-admin-file-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: occupied) }
        try FileManager.default.createDirectory(atPath: occupied + "/" + AdminSocket.directoryName, withIntermediateDirectories: true)
        let file = AdminSocket.path(dataDirectory: occupied)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: file))
        try await LiveServer.with({ $0.dataDirectory = occupied }) { s in
            let listening = try AdminSocket.isListening(file)
            #expect(!listening)
            let health = try await s.get("/health")
            #expect(health.status == 200)
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "mine")
        // A symbolic link where the socket's directory goes: no socket, and the link's target keeps its mode.
        let linked = NSTemporaryDirectory() + "tally-admin-link-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: linked) }
        try FileManager.default.createDirectory(atPath: linked + "/target", withIntermediateDirectories: true)
        chmod(linked + "/target", 0o755)
        try FileManager.default.createDirectory(atPath: linked + "/data", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: linked + "/data/" + AdminSocket.directoryName, withDestinationPath: linked + "/target")
        try await LiveServer.with({ $0.dataDirectory = linked + "/data" }) { s in
            let health = try await s.get("/health")
            #expect(health.status == 200)
        }
        var target = stat()
        #expect(stat(linked + "/target", &target) == 0 && target.st_mode & 0o777 == 0o755)
        #expect(!FileManager.default.fileExists(atPath: linked + "/target/tally.sock"))
    }
}
