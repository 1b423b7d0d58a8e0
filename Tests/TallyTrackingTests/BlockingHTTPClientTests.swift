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

    /// A receiver that sheds a request with `Retry-After` is left that long before the next try (urllib3's rule for
    /// MLflow's clients and webhooks), in seconds or as an HTTP date, and never longer than the cap; other answers
    /// keep the client's own backoff.
    @Test func retryAfterIsWaitedFor() throws {
        let server = try LoopbackHTTPServer(answer: { n in n == 0 ? (503, "busy") : (200, "ok") }, headers: { n in n == 0 ? "Retry-After: 2\r\n" : "" })
        defer { server.close() }
        let http = BlockingHTTPClient(service: "the test server", attempts: 2)
        defer { http.close() }
        let start = Date()
        let a = try http.send(.POST, "http://127.0.0.1:\(server.port)/hook", headers: HTTPHeaders(), body: [1], retry: BlockingHTTPClient.Retry(statuses: [503], dropped: false))
        #expect(a.status == 200 && server.count == 2)
        #expect(Date().timeIntervalSince(start) >= 1.9, "waited \(Date().timeIntervalSince(start)) s, not the 2 s asked")
        func answer(_ status: UInt, _ value: String?) -> BlockingHTTPClient.Answer {
            BlockingHTTPClient.Answer(status: status, headers: HTTPHeaders(value.map { [("Retry-After", $0)] } ?? []), body: [])
        }
        let now = Date(timeIntervalSince1970: 1_764_892_800)  // Fri, 05 Dec 2025 00:00:00 GMT
        #expect(BlockingHTTPClient.retryAfter(answer(429, "3"), now: now) == 3)
        #expect(BlockingHTTPClient.retryAfter(answer(503, "Fri, 05 Dec 2025 00:00:07 GMT"), now: now) == 7)
        #expect(BlockingHTTPClient.retryAfter(answer(503, "Thu, 04 Dec 2025 00:00:00 GMT"), now: now) == 0)  // past: at once
        #expect(BlockingHTTPClient.retryAfter(answer(429, "86400"), now: now) == BlockingHTTPClient.maxRetryAfterSeconds)
        for (status, value) in [(UInt(500), "3"), (429, "soon"), (429, "-1"), (429, "1.5"), (503, nil)] as [(UInt, String?)] {
            #expect(BlockingHTTPClient.retryAfter(answer(status, value), now: now) == nil, "\(status) \(value ?? "none")")
        }
    }
}
