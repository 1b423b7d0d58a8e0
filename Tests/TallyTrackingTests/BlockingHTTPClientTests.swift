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
    /// A loopback HTTP/1.1 server on a thread per connection: reads each request's head and `Content-Length` bytes,
    /// answers `200` with an empty body at once, keeps the connection until the client closes it.
    final class EarlyAnswerServer: Sendable {
        let port: Int
        private let listener: Int32
        let requests = Atomic<Int>(0)

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0, listen(fd, 64) == 0 else { throw TrackingError(.internalError, "cannot listen: errno \(errno)") }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            listener = fd
            port = Int(UInt16(bigEndian: addr.sin_port))
            Thread.detachNewThread { [self] in
                while true {
                    let c = accept(fd, nil, nil)
                    guard c >= 0 else {  // shut down
                        Glibc.close(fd)
                        return
                    }
                    Thread.detachNewThread { self.serve(c) }
                }
            }
        }

        deinit { close() }

        func close() {
            shutdown(listener, Int32(SHUT_RDWR))
        }

        private func serve(_ c: Int32) {
            defer { Glibc.close(c) }
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            func fill() -> Bool {
                let n = chunk.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
                guard n > 0 else { return false }
                buffer += chunk[0..<n]
                return true
            }
            let end = Array("\r\n\r\n".utf8)
            while true {
                var headEnd: Int?
                while headEnd == nil {
                    if buffer.count >= 4 { headEnd = (0...(buffer.count - 4)).first { Array(buffer[$0..<$0 + 4]) == end } }
                    if headEnd == nil, !fill() { return }
                }
                let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                let total = headEnd! + 4 + length
                while buffer.count < total { if !fill() { return } }
                buffer.removeFirst(total)
                requests.add(1, ordering: .relaxed)
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
                guard answer.withUnsafeBytes({ write(c, $0.baseAddress, $0.count) }) == answer.count else { return }
            }
        }
    }

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
        let server = try EarlyAnswerServer()
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
        #expect(server.requests.load(ordering: .relaxed) == rounds * 3)
    }
}
