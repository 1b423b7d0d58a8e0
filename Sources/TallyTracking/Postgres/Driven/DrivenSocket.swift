import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The blocking socket under a ``DrivenChannel``: connected within a deadline, written whole, read only after `poll`
/// says bytes wait (so a read never blocks past the caller's deadline). The load generators of `tally bench` that
/// move their own bytes use it too.
public enum DrivenSocket {
    /// A socket that could not be made, connected, written or read; the message says which and why.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String

        /// A failure saying `description`.
        public init(description: String) {
            self.description = description
        }
    }

    /// A connected socket and the address it reached.
    public struct Connected {
        /// The socket's descriptor, owned by whoever holds it.
        public let fd: Int32
        /// The address reached (`nil` when not an IP address).
        public let address: SocketAddress?
    }

    /// A TCP connection to the first of `host`'s addresses that accepts one within `timeoutMillis` (each address gets
    /// the whole of it, as in libpq: an address that drops packets does not use up the others' time), with
    /// `TCP_NODELAY`: statements are written whole, and each waits for its answer.
    public static func tcp(host: String, port: Int, timeoutMillis: Int) throws -> Connected {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw Failure(description: "cannot resolve host \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(list) }
        var last = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            guard fd >= 0 else { last = "socket: \(reason(errno))"; continue }
            if let why = connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen, deadline: .now() + .milliseconds(Int64(timeoutMillis))) {
                close(fd)
                last = why
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return Connected(fd: fd, address: address(a.pointee.ai_addr, host: host))
        }
        throw Failure(description: "cannot connect to \(host):\(port): \(last)")
    }

    /// A connection to the Unix-domain socket at `path`.
    static func unix(path: String) throws -> Connected {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            p.copyBytes(from: bytes)
            p[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(reason(errno))") }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            let e = errno
            close(fd)
            throw Failure(description: "cannot connect to \(path): \(reason(e))")
        }
        return Connected(fd: fd, address: SocketAddress(addr))
    }

    /// Connects `fd` to `addr` without blocking past `deadline`; `nil` once connected, else why not. The socket is
    /// blocking again afterwards.
    private static func connect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ length: socklen_t, deadline: NIODeadline) -> String? {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        if Glibc.connect(fd, addr, length) == 0 { return nil }
        guard errno == EINPROGRESS || errno == EINTR else { return reason(errno) }  // interrupted: it goes on regardless
        while true {
            let left = deadline - .now()
            guard left > .zero else { return "timed out" }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = poll(&p, 1, Int32(clamping: (left.nanoseconds + 999_999) / 1_000_000))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { continue }  // the loop's deadline check says when time is up
            var error: Int32 = 0, size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            return error == 0 ? nil : reason(error)
        }
    }

    /// The address `addr` as NIO's (for the channel's `remoteAddress`: TLS checks a certificate against it when the
    /// host is an IP address).
    private static func address(_ addr: UnsafePointer<sockaddr>, host: String) -> SocketAddress? {
        switch Int32(addr.pointee.sa_family) {
        case AF_INET: addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
        case AF_INET6: addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
        default: nil
        }
    }

    /// Bounds each `send` on `fd` to `timeout` (`SO_SNDTIMEO`): a peer that stops taking bytes (a partition, a hung
    /// host) fails the write instead of holding its thread until TCP gives up.
    static func limitSends(_ fd: Int32, to timeout: TimeAmount) {
        let micros = max(timeout.nanoseconds / 1_000, 1)
        var t = timeval(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes all of `bytes` to `fd` (`MSG_NOSIGNAL`: a peer that closed is an error here, not a SIGPIPE for the
    /// process; an interrupted write is retried).
    public static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                throw Failure(description: e == EAGAIN || e == EWOULDBLOCK ? "send: PostgreSQL took no bytes within the answer deadline" : "send: \(reason(e))")
            }
            off += n
        }
    }

    /// Waits until `fd` has bytes to read (or is closed) or `millis` pass; whether it has.
    static func readable(_ fd: Int32, millis: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let n = poll(&p, 1, millis)
        return n > 0
    }

    /// Reads what waits on `fd` (at most 64 KiB) into `buffer`: the count, 0 when the peer closed.
    static func read(_ fd: Int32, into buffer: inout ByteBuffer) throws -> Int {
        var n = 0, e: Int32 = 0
        repeat {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { p in
                n = Glibc.read(fd, p.baseAddress, p.count)
                e = errno
                return max(n, 0)
            }
        } while n < 0 && e == EINTR
        guard n >= 0 else { throw Failure(description: "read: \(reason(e))") }
        return n
    }

    /// Whether `host` is an IP address (v4 or v6) rather than a name: TLS sends no server name for it (SNI), and
    /// checks the certificate against the address.
    static func isAddress(_ host: String) -> Bool {
        var scratch = [UInt8](repeating: 0, count: 16)  // room for either address
        return inet_pton(AF_INET, host, &scratch) == 1 || inet_pton(AF_INET6, host, &scratch) == 1
    }

    /// `strerror`'s words for `code`.
    static func reason(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
