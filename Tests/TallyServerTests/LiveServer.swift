import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TallyServer
import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// An answer: status, headers (lowercased names) and body.
struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    /// MLflow's `error_code`.
    var errorCode: String? { json["error_code"] as? String }
}

/// The real application (the one `tally server` runs) on a free loopback port with a fresh data directory, inside a
/// `ServiceGroup`, driven over real sockets: requests written byte for byte, so tests can send what no HTTP client
/// library would (missing content types, truncated bodies, broken chunking).
struct LiveServer {
    let port: Int
    let service: TrackingService
    /// The server's data directory.
    let directory: String

    /// Runs `body` against a new server, then shuts it down gracefully (the stores closed by the application).
    static func with<T: Sendable>(_ configure: (inout ServerConfiguration) -> Void = { _ in },
                                  _ body: @Sendable (LiveServer) async throws -> T) async throws -> T {
        let dir = NSTemporaryDirectory() + "tally-routes-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.dataDirectory = dir
        config.logLevel = .error
        config.blockingThreads = 4
        configure(&config)
        let service = try TallyApplication.openService(config)
        let (ports, cont) = AsyncStream.makeStream(of: Int.self)
        let app = try TallyApplication.application(service: service, config: config) { cont.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: Logger(label: "test")))
        return try await withThrowingTaskGroup(of: Void.self) { tg in
            tg.addTask { try await group.run() }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else { throw CancellationError() }
            do {
                let result = try await body(LiveServer(port: port, service: service, directory: config.dataDirectory))
                await group.triggerGracefulShutdown()
                try await tg.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tg.waitForAll()
                throw error
            }
        }
    }

    /// A request with a body; `contentType` `nil` sends none. The connection is closed after the answer.
    func request(_ method: String, _ path: String, body: [UInt8] = [], contentType: String? = "application/json",
                 headers: [String: String] = [:]) async throws -> HTTPAnswer {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if method != "GET" || !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        return try await raw(Array((head + "\r\n").utf8) + body)
    }

    /// A JSON POST.
    func post(_ path: String, _ json: String) async throws -> HTTPAnswer {
        try await request("POST", path, body: Array(json.utf8))
    }

    /// A GET.
    func get(_ path: String) async throws -> HTTPAnswer { try await request("GET", path, contentType: nil) }

    /// Sends raw bytes, half-closes, and reads the answer (status 0 when the server closed without one).
    func raw(_ bytes: [UInt8], halfClose: Bool = true) async throws -> HTTPAnswer {
        let port = port
        return try await withCheckedThrowingContinuation { cont in
            // A thread of its own: blocking socket calls must not hold a cooperative thread the server needs.
            Thread {
                cont.resume(with: Result { try Self.exchange(port: port, bytes, halfClose: halfClose) })
            }.start()
        }
    }

    struct SocketError: Error { var message: String }

    static func exchange(port: Int, _ bytes: [UInt8], halfClose: Bool) throws -> HTTPAnswer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(message: "socket") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw SocketError(message: "connect") }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer and close before reading everything
            sent += n
        }
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        return parse(data)
    }

    /// Parses one HTTP/1.1 answer (Content-Length or chunked, or to the end).
    static func parse(_ data: [UInt8]) -> HTTPAnswer {
        guard let end = data.indices.dropLast(3).first(where: { data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10 }) else {
            return HTTPAnswer(status: 0, headers: [:], body: data)
        }
        let lines = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[(end + 4)...])
        if headers["transfer-encoding"] == "chunked" {
            var out: [UInt8] = []
            var rest = body[...]
            while let nl = rest.firstIndex(of: 10), let size = Int(String(decoding: rest[..<nl], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), radix: 16), size > 0 {
                let start = nl + 1
                out += rest[start..<min(rest.endIndex, start + size)]
                rest = rest[min(rest.endIndex, start + size + 2)...]
            }
            body = out
        } else if let n = headers["content-length"].flatMap(Int.init), n <= body.count {
            body = Array(body[..<n])
        }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }
}
