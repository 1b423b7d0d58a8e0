#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking TCP sockets for the load generators that move their own bytes (``BlockingHTTP``, `tally bench postgres`'s
/// caller-driven mode).
enum BlockingSocket {
    /// A socket that could not be made, connected or written.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A TCP connection to the first of `host`'s addresses that accepts one, with `TCP_NODELAY` (requests are
    /// written whole, and each waits for its answer).
    static func connected(host: String, port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var connected: Int32 = -1
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai, connected < 0 {
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s >= 0 {
                if connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { connected = s } else { close(s) }
            }
            ai = a.pointee.ai_next
        }
        guard connected >= 0 else { throw Failure(description: "cannot connect to \(host):\(port) (errno \(errno))") }
        var one: Int32 = 1
        setsockopt(connected, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return connected
    }

    /// Writes all of `bytes` to `fd` (`MSG_NOSIGNAL`: a peer that closed is an error here, not a SIGPIPE for the
    /// process; an interrupted write is retried).
    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            off += n
        }
    }
}
