import Foundation
import TallyServer
import TallyTracking

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal blocking HTTP/1.1 client over one keep-alive TCP connection: what a load generator needs, with no
/// per-request allocations beyond the response body. Plain HTTP (no TLS).
final class BlockingHTTP {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let fd: Int32
    private let host: String
    /// The `Authorization` header sent with every request (from MLflow's client variables by default).
    var authorization = MLflowCredentials.fromEnvironment()
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0

    init(host: String = "127.0.0.1", port: Int) throws {
        self.host = host
        fd = try DrivenSocket.tcp(host: host, port: port, timeoutMillis: 10_000).fd
    }

    deinit { close(fd) }

    /// Sends a request and reads the whole response: (status, body).
    func request(_ method: String, _ path: String, body: [UInt8] = [], contentType: String = "application/json") throws -> (Int, [UInt8]) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        if method != "GET" { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        if let authorization { head += "Authorization: \(authorization)\r\n" }
        head += "\r\n"
        try send(Array(head.utf8))
        if !body.isEmpty { try send(body) }
        return try readResponse()
    }

    private func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try DrivenSocket.sendAll(fd, $0) }
    }

    private func fill() throws {
        if start > 0 {
            buffer.withUnsafeMutableBytes { b in
                if end > start { memmove(b.baseAddress!, b.baseAddress! + start, end - start) }
            }
            end -= start
            start = 0
        }
        if end == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
        let n = buffer.withUnsafeMutableBytes { b in recv(fd, b.baseAddress! + end, b.count - end, 0) }
        guard n > 0 else { throw Failure(description: "connection closed (errno \(errno))") }
        end += n
    }

    private func readResponse() throws -> (Int, [UInt8]) {
        // Headers.
        var headerEnd = -1
        while headerEnd < 0 {
            if end - start >= 4 {
                for i in start...(end - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
                    headerEnd = i
                    break
                }
            }
            if headerEnd < 0 { try fill() }
        }
        let head = String(decoding: buffer[start..<headerEnd], as: UTF8.self)
        start = headerEnd + 4
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ")[1]) else {
            throw Failure(description: "bad status line")
        }
        var length = 0
        var chunked = false
        for l in lines.dropFirst() {
            let lower = l.lowercased()
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0 }
            if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") { chunked = true }
        }
        guard chunked else { return (status, try take(length)) }
        var body: [UInt8] = []
        while true {
            let line = try readLine()
            let size = Int(line.split(separator: ";")[0], radix: 16) ?? 0
            if size == 0 {
                _ = try readLine()
                return (status, body)
            }
            body += try take(size)
            _ = try readLine()
        }
    }

    private func take(_ n: Int) throws -> [UInt8] {
        while end - start < n { try fill() }
        defer { start += n }
        return Array(buffer[start..<(start + n)])
    }

    private func readLine() throws -> String {
        while true {
            if end - start >= 2 {
                for i in start...(end - 2) where buffer[i] == 13 && buffer[i + 1] == 10 {
                    defer { start = i + 2 }
                    return String(decoding: buffer[start..<i], as: UTF8.self)
                }
            }
            try fill()
        }
    }
}

/// A `tally server` child process on a free loopback port, stopped (SIGTERM) by `stop()`.
final class ChildServer {
    let port: Int
    let pid: pid_t

    /// The admin password of a server started with `auth` (`--auth basic`).
    static let adminPassword = "bench-admin-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)

    /// `executable`: the `tally` binary to start (default: this one), e.g. an earlier build for a before/after run.
    init(dataDirectory: String, durability: String, metricMemoryMB: Int? = nil, auth: Bool = false, executable: String? = nil) throws {
        port = Self.freePort()
        let exe = executable ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let args = [exe, "server", "--host", "127.0.0.1", "--port", "\(port)", "--data-dir", dataDirectory, "--durability", durability,
                    "--log-level", "warning", "--max-body-bytes", "\(64 << 20)"] + (metricMemoryMB.map { ["--metric-memory-mb", "\($0)"] } ?? [])
            + (auth ? ["--auth", "basic"] : [])
        if auth { setenv("MLFLOW_AUTH_ADMIN_PASSWORD", Self.adminPassword, 1) }
        var cargs = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var p: pid_t = 0
        guard posix_spawn(&p, exe, nil, nil, &cargs, environ) == 0 else { throw BlockingHTTP.Failure(description: "could not start \(exe)") }
        pid = p
        for _ in 0..<600 {
            if let c = try? BlockingHTTP(port: port), let (s, _) = try? c.request("GET", "/health"), s == 200 { return }
            usleep(100_000)
        }
        kill(pid, SIGKILL)
        throw BlockingHTTP.Failure(description: "tally server did not start on port \(port)")
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        _ = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
