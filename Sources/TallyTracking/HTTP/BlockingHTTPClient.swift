import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A blocking HTTP(S) client (AsyncHTTPClient underneath) for the services Tally talks to from threads that may wait:
/// an MLflow server (`tally import`/`tally export`) and S3-compatible object storage. Bodies go to and from files
/// streamed, requests the service sheds are retried with backoff, and every error names the service. A service
/// that cannot be reached, or still sheds the request after the retries, is `TEMPORARILY_UNAVAILABLE` (a 503 when
/// a server request was waiting on it): not the caller's fault, worth trying again.
///
/// Not for an event loop or a Swift concurrency thread: every call waits for its answer.
///
/// Every client runs on one event loop of its own kind (``loop``), never on a group of several. With several, a
/// request's task and its connection could be on different loops, and AsyncHTTPClient 1.37 then told its pool of a
/// connection's release one hop after the answer: when a server answered the moment a streamed body was in and the
/// client was closed right after (`tally cluster migrate`'s copy to S3), the pool had already dropped the connection,
/// and the late release was a fatal error (`HTTPConnectionPool+HTTP1Connections.swift:502`;
/// `BlockingHTTPClientTests.uploadsAnsweredEarlyThenClosed` crashed on every run). On one loop the release comes in the
/// same turn of the loop as the answer, before anything else can close the connection.
public final class BlockingHTTPClient: Sendable {
    /// The one event loop every blocking client's requests, connections and body streams run on: its thread does the
    /// sockets' work and reads and writes the files that bodies stream from and to, 1 MiB at a time.
    static let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The service in messages: `MLflow at http://host:5000`, `S3 at http://127.0.0.1:8333`.
    public let service: String
    private let client: HTTPClient
    private let closed = NIOLockedValueBox(false)
    /// Attempts per request by default (the first and its retries).
    public static let attempts = 6
    /// This client's attempts per request.
    public let attempts: Int

    /// Which answers are tried again: `statuses`, dropped connections and read timeouts when `dropped`, and
    /// connections that could not be made when `unreachable`.
    public struct Retry: Sendable {
        /// Statuses that say the request was not taken (or may be taken again without harm).
        public var statuses: Set<UInt>
        /// Whether a dropped connection or a read timeout is tried again (not for a request that must not run twice).
        public var dropped: Bool
        /// Whether a connection refused or timed out is tried again (a receiver restarting).
        public var unreachable: Bool
        /// The longest pause an answer's `Retry-After` may ask for before the next try (a longer one is cut to it);
        /// `nil`: the header is not read, the client's own backoff is kept (S3: boto3 does not read it either, and
        /// its callers hold locks and threads that a minute's sleep would stall).
        public var retryAfterCap: Double?

        /// A retry policy.
        public init(statuses: Set<UInt>, dropped: Bool, unreachable: Bool = false, retryAfterCap: Double? = nil) {
            self.statuses = statuses
            self.dropped = dropped
            self.unreachable = unreachable
            self.retryAfterCap = retryAfterCap
        }

        /// A request that must not run twice: only 429, which says it was not taken.
        public static let once = Retry(statuses: [429], dropped: false)
    }

    /// An answer: status, headers, body (the whole body; for a download, at most 4 KiB of a non-2xx one).
    public struct Answer: Sendable {
        /// The HTTP status code.
        public var status: UInt
        /// The response headers.
        public var headers: HTTPHeaders
        /// The body.
        public var body: [UInt8]
    }

    /// A client; `readTimeout` bounds the wait for each part of an answer.
    /// - Parameters:
    ///   - attempts: tries per request (the first and its retries).
    ///   - connectTo: addresses to connect to instead of resolving a host again (TLS still verifies the host's name).
    ///   - redirects: whether redirects are followed (not where every address must be checked first).
    public init(service: String, connectTimeout: TimeAmount = .seconds(15), readTimeout: TimeAmount = .seconds(600),
                attempts: Int = BlockingHTTPClient.attempts, connectTo: [String: String] = [:], redirects: Bool = true) {
        precondition(attempts >= 1, "a request is tried at least once")
        self.service = service
        self.attempts = attempts
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: connectTimeout, read: readTimeout)
        configuration.dnsOverride = connectTo
        if !redirects { configuration.redirectConfiguration = .disallow }
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        client = HTTPClient(eventLoopGroupProvider: .shared(Self.loop), configuration: configuration)
    }

    /// Ends the client's connections (once; also on deinit, for a client dropped by an error).
    public func close() {
        guard !closed.withLockedValue({ was in defer { was = true }; return was }) else { return }
        try? client.syncShutdown()
    }

    deinit { close() }

    /// One request with retries; `body` is sent whole.
    /// - Parameters:
    ///   - within: the longest each try may take, answer included (a receiver trickling an endless answer is cut
    ///     off); `nil`: only the client's timeouts between reads.
    ///   - answerLimit: the most bytes of an answer's body kept; the rest is read and dropped.
    public func send(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders, body: [UInt8]? = nil, retry: Retry,
                     within: TimeAmount? = nil, answerLimit: Int = Int(UInt32.max)) throws -> Answer {
        try retrying(method, url, retry) {
            var request = try HTTPClient.Request(url: url, method: method, headers: headers)
            if let body { request.body = .bytes(body) }
            return try client.execute(request: request, delegate: CappedAnswer(limit: answerLimit), deadline: within.map { .now() + $0 }).wait()
        }
    }

    /// Downloads `url` into the file at `file` (created or truncated), streamed. A non-2xx answer leaves the file
    /// empty and carries the first 4 KiB of its body; a 2xx one has the bytes written as its body's count in
    /// ``Answer/headers`` untouched and an empty body: the size is returned beside it.
    public func download(_ url: String, headers: HTTPHeaders, to file: String, retry: Retry) throws -> (answer: Answer, size: Int) {
        let (answer, size) = try retryingPair(.GET, url, retry) {
            var request = try HTTPClient.Request(url: url, method: .GET, headers: headers)
            request.headers.replaceOrAdd(name: "Accept-Encoding", value: "identity")
            let sink = try FileSink(path: file)
            let (status, head, size, errorBody) = try client.execute(request: request, delegate: sink).wait()
            return (Answer(status: status, headers: head, body: errorBody), size)
        }
        return (answer, size)
    }

    /// Sends bytes `offset..<offset+count` of the file `fd` as the body of `method url`, streamed from disk in chunks
    /// of 1 MiB.
    public func upload(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders, fd: Int32, offset: Int = 0, count: Int, retry: Retry) throws -> Answer {
        try retrying(method, url, retry) {
            var request = try HTTPClient.Request(url: url, method: method, headers: headers)
            let loop = client.eventLoopGroup.any()
            request.body = .stream(contentLength: Int64(count)) { writer in Self.stream(fd, from: offset, to: offset + count, to: writer, on: loop) }
            let response = try client.execute(request: request).wait()
            return Answer(status: response.status.code, headers: response.headers, body: response.body.map { Array($0.readableBytesView) } ?? [])
        }
    }

    /// `body` over `items`, at most `limit` at a time on threads of their own (each waits on its requests), results
    /// in the items' order; the first error is thrown once all have ended.
    public static func concurrently<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) throws -> R) throws -> [R] {
        guard items.count > 1, limit > 1 else { return try items.map(body) }
        let results = NIOLockedValueBox([Result<R, any Error>?](repeating: nil, count: items.count))
        let slots = DispatchSemaphore(value: limit)
        let group = DispatchGroup()
        for (i, item) in items.enumerated() {
            slots.wait()
            group.enter()
            Thread.detachNewThread {
                let r = Result { try body(item) }
                results.withLockedValue { $0[i] = r }
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return try results.withLockedValue { $0 }.map { try $0!.get() }
    }

    /// Writes bytes `offset..<end` of the file `fd` to a request body in chunks of 1 MiB, each once the one before
    /// is written (a task per chunk, so a long file never deepens the stack).
    private static func stream(_ fd: Int32, from offset: Int, to end: Int, to writer: HTTPClient.Body.StreamWriter,
                               on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard offset < end else { return loop.makeSucceededVoidFuture() }
        var chunk = [UInt8](repeating: 0, count: min(1 << 20, end - offset))
        let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n > 0 else { return loop.makeFailedFuture(TrackingError(.internalError, "Cannot read a file being uploaded: errno \(errno)")) }
        return writer.write(.byteBuffer(ByteBuffer(bytes: chunk[0..<n]))).flatMap {
            loop.flatSubmit { stream(fd, from: offset + n, to: end, to: writer, on: loop) }
        }
    }

    /// How long an answer asks to be left before it is tried again: its `Retry-After` in seconds, or until the HTTP
    /// date it names (RFC 9110's three forms), as urllib3 reads it for MLflow's clients; `nil` when it asks nothing
    /// readable, or no pause (0, a date past: urllib3 then keeps its own backoff, and so does the caller). Read for any
    /// status the caller retries; the caller caps it (``Retry/retryAfterCap``).
    static func retryAfter(_ a: Answer, now: Date = Date()) -> Double? {
        guard let v = a.headers.first(name: "Retry-After")?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        let seconds: Double
        if v.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            seconds = Double(v) ?? .infinity
        } else {
            guard let date = httpDate(v) else { return nil }
            seconds = date.timeIntervalSince(now)
        }
        return seconds > 0 ? seconds : nil
    }

    /// An HTTP date in any of RFC 9110's forms: `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
    /// `Sun Nov  6 08:49:37 1994`.
    static func httpDate(_ text: String) -> Date? {
        let collapsed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(secondsFromGMT: 0)
        for format in ["EEE, dd MMM yyyy HH:mm:ss 'GMT'", "EEEE, dd-MMM-yy HH:mm:ss 'GMT'", "EEE MMM d HH:mm:ss yyyy"] {
            f.dateFormat = format
            if let d = f.date(from: collapsed) { return d }
        }
        return nil
    }

    private func retrying(_ method: HTTPMethod, _ url: String, _ retry: Retry, _ attempt: () throws -> Answer) throws -> Answer {
        try retryingPair(method, url, retry) { (try attempt(), 0) }.0
    }

    /// Runs `attempt` until it answers other than a status `retry` names or fails otherwise than by a dropped
    /// connection, at most ``attempts`` times, waiting 0.5 s, 1 s, 2 s … (with jitter) between tries, or what an
    /// answer's `Retry-After` asks (``retryAfter(_:now:)``), as urllib3 does for MLflow's clients.
    private func retryingPair<R>(_ method: HTTPMethod, _ url: String, _ retry: Retry, _ attempt: () throws -> (Answer, R)) throws -> (Answer, R) {
        var delay = 0.5
        for n in 1...attempts {
            var pause = delay * Double.random(in: 0.8...1.2)
            do {
                let answer = try attempt()
                guard retry.statuses.contains(answer.0.status), n < attempts else { return answer }
                if let cap = retry.retryAfterCap, let asked = Self.retryAfter(answer.0) { pause = min(asked, cap) }
            } catch let e as HTTPClientError where retry.dropped && n < attempts && [.remoteConnectionClosed, .readTimeout, .deadlineExceeded].contains(e) {
                // a dropped connection, or no answer in time: tried again
            } catch let e as HTTPClientError where retry.unreachable && n < attempts && e == .connectTimeout {
                // no connection made in time: tried again
            } catch is NIOConnectionError where retry.unreachable && n < attempts {
                // refused: tried again
            } catch let e as HTTPClientError {
                throw TrackingError(.temporarilyUnavailable, "\(method.rawValue) \(url): \(e)")
            } catch let e as NIOConnectionError {
                throw TrackingError(.temporarilyUnavailable, "Cannot reach \(service): \(e.connectionErrors.first.map { "\($0.error)" } ?? "\(e)")")
            } catch let e as TrackingError {
                throw e
            } catch {
                throw TrackingError(.temporarilyUnavailable, "Cannot reach \(service): \(error)")  // refused until the connect timeout
            }
            usleep(UInt32(pause * 1_000_000))
            delay *= 2
        }
        throw TrackingError(.temporarilyUnavailable, "\(method.rawValue) \(url): no answer after \(attempts) attempts")
    }
}

/// An answer with at most `limit` bytes of its body kept (the rest read and dropped): a receiver's long answer costs
/// no memory, and its status still counts.
private final class CappedAnswer: HTTPClientResponseDelegate {
    typealias Response = BlockingHTTPClient.Answer
    private let limit: Int
    private let state = NIOLockedValueBox(BlockingHTTPClient.Answer(status: 0, headers: HTTPHeaders(), body: []))

    init(limit: Int) { self.limit = limit }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLockedValue {
            $0.status = head.status.code
            $0.headers = head.headers
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        state.withLockedValue { a in
            let room = limit - a.body.count
            if room > 0 { a.body.append(contentsOf: buffer.readableBytesView.prefix(room)) }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response { state.withLockedValue { $0 } }
}

/// Streams a response body into a file; answers (status, headers, bytes written, the body of a non-2xx answer).
/// Calls come one at a time on the task's event loop; the state is locked all the same.
private final class FileSink: HTTPClientResponseDelegate {
    typealias Response = (UInt, HTTPHeaders, Int, [UInt8])
    private struct State {
        var status: UInt = 0
        var headers = HTTPHeaders()
        var written = 0
        var errorBody: [UInt8] = []
    }
    private let fd: Int32
    private let path: String
    private let state = NIOLockedValueBox(State())

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot write \(path): errno \(errno)") }
        self.path = path
    }

    deinit { close(fd) }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLockedValue {
            $0.status = head.status.code
            $0.headers = head.headers
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let ok = state.withLockedValue { s -> Bool in
            guard (200..<300).contains(s.status) else {
                s.errorBody += buffer.readableBytesView.prefix(4096 - s.errorBody.count)
                return true
            }
            let n = buffer.withUnsafeReadableBytes { b -> Int in
                var off = 0
                while off < b.count {
                    let w = write(fd, b.baseAddress! + off, b.count - off)
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { return -1 }
                    off += w
                }
                return off
            }
            guard n >= 0 else { return false }
            s.written += n
            return true
        }
        return ok ? task.eventLoop.makeSucceededVoidFuture()
            : task.eventLoop.makeFailedFuture(TrackingError(.internalError, "Cannot write \(path): errno \(errno)"))
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        state.withLockedValue { ($0.status, $0.headers, $0.written, $0.errorBody) }
    }
}
