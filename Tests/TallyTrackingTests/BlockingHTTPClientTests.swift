import Foundation
import NIOHTTP1
import Synchronization
import Testing
@testable import TallyTracking

/// The blocking HTTP client's streamed uploads against a server that answers the moment it has read a body, the
/// pattern under which AsyncHTTPClient 1.37's pool could be told of a connection's release after it had dropped the
/// connection (`HTTPConnectionPool+HTTP1Connections.swift:502`, a fatal error seen once in CI during `tally cluster
/// migrate`'s copy to S3): the answer completes the request before the body stream's end is processed, and the
/// release is deferred by a hop between event loops that a close of the client can overtake.
@Suite struct BlockingHTTPClientTests {
    /// A file of `size` bytes, open for reading (closed and removed by the caller).
    static func file(size: Int) throws -> (fd: Int32, path: String) {
        let path = NSTemporaryDirectory() + "tally-upload-\(UInt64.random(in: 0...UInt64.max))"
        guard FileManager.default.createFile(atPath: path, contents: Data((0..<size).map { UInt8($0 & 0xff) })) else {
            throw TrackingError(.internalError, "cannot write \(path)")
        }
        return (open(path, O_RDONLY), path)
    }

    /// Uploads answered as soon as their body is in, each by a client closed right after its answer (what `tally
    /// cluster migrate` does with its target store): every one succeeds, and none brings the process down.
    @Test func uploadsAnsweredEarlyThenClosed() throws {
        let server = try LoopbackHTTPServer()
        defer { server.close() }
        let (fd, path) = try Self.file(size: 200_000)
        defer {
            Glibc.close(fd)
            unlink(path)
        }
        let rounds = 400
        let statuses = try BlockingHTTPClient.concurrently(Array(0..<rounds), limit: 4) { i in
            let http = BlockingHTTPClient(service: "the test server")
            defer { http.close() }
            return try (0..<3).map { _ in
                try http.upload(.PUT, "http://127.0.0.1:\(server.port)/object/\(i)", headers: HTTPHeaders(), fd: fd, count: 200_000, retry: .once).status
            }
        }
        #expect(statuses.joined().allSatisfy { $0 == 200 })
        #expect(server.count == rounds * 3)
    }
}
