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
    /// MLflow's clients and webhooks), in seconds or as an HTTP date in any of its three forms, never longer than the
    /// caller's cap; 0 or a date past keep the client's own backoff; a caller that reads no `Retry-After` (S3) keeps it
    /// always.
    @Test func retryAfterIsWaitedFor() throws {
        let server = try LoopbackHTTPServer(answer: { n in n % 2 == 0 ? (503, "busy") : (200, "ok") }, headers: { n in n % 2 == 0 ? "Retry-After: 2\r\n" : "" })
        defer { server.close() }
        let http = BlockingHTTPClient(service: "the test server", attempts: 2)
        defer { http.close() }
        let url = "http://127.0.0.1:\(server.port)/hook"
        var start = Date()
        let a = try http.send(.POST, url, headers: HTTPHeaders(), body: [1], retry: BlockingHTTPClient.Retry(statuses: [503], dropped: false, retryAfterCap: 10))
        #expect(a.status == 200 && server.count == 2)
        #expect(Date().timeIntervalSince(start) >= 1.9, "waited \(Date().timeIntervalSince(start)) s, not the 2 s asked")
        start = Date()
        _ = try http.send(.POST, url, headers: HTTPHeaders(), body: [1], retry: BlockingHTTPClient.Retry(statuses: [503], dropped: false))
        #expect(server.count == 4 && Date().timeIntervalSince(start) < 1.9, "a policy without a cap keeps the client's backoff")
        func answer(_ value: String?) -> BlockingHTTPClient.Answer {
            BlockingHTTPClient.Answer(status: 503, headers: HTTPHeaders(value.map { [("Retry-After", $0)] } ?? []), body: [])
        }
        let now = Date(timeIntervalSince1970: 1_764_892_800)  // Fri, 05 Dec 2025 00:00:00 GMT
        #expect(BlockingHTTPClient.retryAfter(answer("3"), now: now) == 3)
        #expect(BlockingHTTPClient.retryAfter(answer("Fri, 05 Dec 2025 00:00:07 GMT"), now: now) == 7)
        #expect(BlockingHTTPClient.retryAfter(answer("Friday, 05-Dec-25 00:00:08 GMT"), now: now) == 8)
        #expect(BlockingHTTPClient.retryAfter(answer("Fri Dec  5 00:00:09 2025"), now: now) == 9)
        #expect(BlockingHTTPClient.retryAfter(answer("86400"), now: now) == 86400)  // the caller's cap cuts it
        for value in ["0", "Thu, 04 Dec 2025 00:00:00 GMT", "soon", "-1", "1.5", nil] as [String?] {
            #expect(BlockingHTTPClient.retryAfter(answer(value), now: now) == nil, "\(value ?? "none")")
        }
    }
}
