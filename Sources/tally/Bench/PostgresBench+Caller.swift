import Dispatch
import Logging
import NIOCore
import NIOEmbedded
import PostgresNIO
import Synchronization
import TallyStore
import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

extension PostgresBench {
    /// Statements per second with PostgresNIO's protocol driven by the calling thread, as libpq is: each client's
    /// connection is a `PostgresConnection` over an `EmbeddedChannel` on an `EmbeddedEventLoop` of its thread, and
    /// the thread itself moves the bytes between that channel and a blocking socket (write what the channel wrote,
    /// then block in `read` until PostgreSQL answers). No event loop thread, no hop: a statement's only wake-up is
    /// the caller's own, when its answer arrives.
    func callerRate(_ target: PostgresURI) throws -> Double {
        let clients = clients, per = statements
        // Every client connected and its statement prepared before the clock starts; one that fails stops the others.
        let ready = Atomic<Int>(0), failed = Atomic<Bool>(false)
        let span = Mutex<(start: ContinuousClock.Instant?, end: ContinuousClock.Instant?)>((nil, nil))
        try onThreads(clients) { c in
            var opened: CallerLink?
            defer { opened?.close() }
            let link: CallerLink, connection: PostgresConnection, prepared: PreparedQuery
            do {
                link = try CallerLink(host: target.host, port: target.port)
                opened = link
                let configuration = PostgresConnection.Configuration(establishedChannel: link.channel, username: target.user,
                                                                     password: target.password, database: target.database)
                connection = try link.drive(PostgresConnection.connect(on: link.loop, configuration: configuration, id: c,
                                                                       logger: Logger(label: "tally.bench.postgres")))
                prepared = try link.drive(connection.prepare(query: "SELECT $1::int8"))
                _ = try link.drive(prepared.execute([PostgresData(int64: 0)]))
            } catch {
                failed.store(true, ordering: .relaxed)
                throw error
            }
            ready.add(1, ordering: .relaxed)
            while ready.load(ordering: .relaxed) < clients {
                if failed.load(ordering: .relaxed) { return }  // the failing client's error is the one reported
                usleep(200)
            }
            let start = ContinuousClock.now
            for i in 0..<per { _ = try link.drive(prepared.execute([PostgresData(int64: Int64(i + c))])) }
            let end = ContinuousClock.now
            span.withLock { s in
                s.start = min(s.start ?? start, start)
                s.end = max(s.end ?? end, end)
            }
            _ = try? link.drive(connection.close())
        }
        let (start, end) = span.withLock { ($0.start!, $0.end!) }
        return Double(per * clients) / (end - start).totalSeconds
    }
}

/// One thread's connection to PostgreSQL: an `EmbeddedChannel` (where PostgresNIO's handlers run, on the thread
/// that made it) and the blocking TCP socket its bytes travel on.
private final class CallerLink {
    let loop = EmbeddedEventLoop()
    let channel: EmbeddedChannel
    let fd: Int32
    private var input: ByteBuffer

    /// The longest a read waits for PostgreSQL (as the store's answer deadline does).
    static let readTimeoutSeconds = 120

    init(host: String, port: Int) throws {
        channel = EmbeddedChannel(loop: loop)
        input = channel.allocator.buffer(capacity: 64 * 1024)
        fd = try DrivenSocket.tcp(host: host, port: port, timeoutMillis: 10_000).fd
        var timeout = timeval(tv_sec: Self.readTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        do {
            // the embedded channel active, as a connected socket's is
            channel.connect(to: try SocketAddress.makeAddressResolvingHost(host, port: port), promise: nil)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    func close() {
        _ = try? channel.finish()
        Glibc.close(fd)
    }

    /// Runs the channel until `future` is answered: sends what PostgresNIO wrote, reads what PostgreSQL answers.
    func drive<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let outcome = Mutex<Result<T, any Error>?>(nil)
        future.whenComplete { r in outcome.withLock { $0 = r } }
        while true {
            loop.run()
            while let out = try channel.readOutbound(as: ByteBuffer.self) { try send(out) }
            if let r = outcome.withLock({ $0 }) { return try r.get() }
            input.clear()
            var n = 0, e: Int32 = 0
            repeat {
                input.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { p in
                    n = read(fd, p.baseAddress, p.count)
                    e = errno
                    return max(n, 0)
                }
            } while n < 0 && e == EINTR
            guard n > 0 else {
                throw DrivenSocket.Failure(description: n == 0 ? "PostgreSQL closed the connection"
                             : e == EAGAIN || e == EWOULDBLOCK ? "no answer within \(Self.readTimeoutSeconds) s" : "read: errno \(e)")
            }
            try channel.writeInbound(input)
        }
    }

    private func send(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try DrivenSocket.sendAll(fd, $0) }
    }
}
