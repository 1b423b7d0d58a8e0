import Foundation
import Synchronization
import Testing
@testable import TallyTracking

/// A loopback HTTP/1.1 server on a thread per connection, for clients under test: reads each request's head and
/// `Content-Length` bytes, records them, and answers at once with what `answer` says for the request's number (from
/// 0), keeping the connection until the client closes it.
final class LoopbackHTTPServer: Sendable {
    /// A request as received.
    struct Request: Sendable {
        /// The request line and headers, as sent.
        var head: String
        /// The body.
        var body: [UInt8]

        /// A header's value (names compared without case).
        func header(_ name: String) -> String? {
            head.split(separator: "\r\n").dropFirst().first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
        }
    }

    let port: Int
    private let listener: Int32
    private let received = Mutex<[Request]>([])
    private let answer: @Sendable (Int) -> (status: Int, body: String)
    private let headers: @Sendable (Int) -> String

    /// A server answering each request as `answer` says (default: `200` with an empty body), with the header lines
    /// `headers` gives (each ending in CRLF; default none).
    init(answer: @escaping @Sendable (Int) -> (status: Int, body: String) = { _ in (200, "") },
         headers: @escaping @Sendable (Int) -> String = { _ in "" }) throws {
        self.answer = answer
        self.headers = headers
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

    /// Stops accepting connections.
    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
    }

    /// The requests so far, in the order they were read.
    var requests: [Request] { received.withLock { $0 } }
    /// How many requests were read.
    var count: Int { received.withLock { $0.count } }

    /// Waits up to `seconds` for `n` requests; whether they came.
    func waitFor(_ n: Int, seconds: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while count < n && Date() < end { usleep(10_000) }
        return count >= n
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
            let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
            let length = head.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let total = headEnd! + 4 + length
            while buffer.count < total { if !fill() { return } }
            let body = Array(buffer[(headEnd! + 4)..<total])
            buffer.removeFirst(total)
            let n = received.withLock { r in
                r.append(Request(head: head, body: body))
                return r.count - 1
            }
            let (status, text) = answer(n)
            let reply = Array("HTTP/1.1 \(status) X\r\n\(headers(n))Content-Length: \(text.utf8.count)\r\n\r\n\(text)".utf8)
            guard reply.withUnsafeBytes({ write(c, $0.baseAddress, $0.count) }) == reply.count else { return }
        }
    }
}
