import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import TallyStore
import TallyTracking

/// The credentials MLflow's client sends, from its variables.
public enum MLflowCredentials {
    /// An `Authorization` value: `Bearer` from `MLFLOW_TRACKING_TOKEN`, else `Basic` from `MLFLOW_TRACKING_USERNAME`
    /// and `MLFLOW_TRACKING_PASSWORD`; `nil` without them.
    public static func fromEnvironment() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let t = env["MLFLOW_TRACKING_TOKEN"], !t.isEmpty { return "Bearer " + t }
        guard let u = env["MLFLOW_TRACKING_USERNAME"], let p = env["MLFLOW_TRACKING_PASSWORD"] else { return nil }
        return "Basic " + Data("\(u):\(p)".utf8).base64EncodedString()
    }
}

/// A blocking client of a running MLflow server's REST API, for the command line (`tally import` from a URL,
/// `tally export`): JSON requests, file downloads streamed to disk and uploads streamed from it, over HTTP or HTTPS
/// (AsyncHTTPClient). Credentials come from the URL (`https://user:password@host`) or, as the MLflow client takes
/// them, from `MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`. Requests MLflow
/// sheds (429, 502–504) and dropped connections are retried with backoff, as MLflow's client does.
///
/// Not for an event loop: every call waits for its answer.
final class MLflowHTTPClient: Sendable {
    /// The server's URL without credentials or a trailing slash: what messages and journals name.
    let base: String
    private let client: HTTPClient
    private let authorization: String?
    /// Attempts per request (the first and its retries).
    static let attempts = 6

    /// A client of the MLflow server at `url` (`http://` or `https://`).
    init(url: String) throws {
        guard var parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), ["http", "https"].contains(scheme),
              parts.host?.isEmpty == false else {
            throw TrackingError(.invalidParameterValue, "'\(MLflowImport.withoutCredentials(url))' is not an MLflow server URL: use http://host:port or https://host")
        }
        if let user = parts.user {
            let password = parts.password ?? ""
            authorization = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()  // URLComponents decodes them
            parts.user = nil
            parts.password = nil
        } else {
            authorization = MLflowCredentials.fromEnvironment()
        }
        parts.query = nil
        parts.fragment = nil
        base = (parts.string ?? url).trimmingTrailing("/")
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(15), read: .seconds(600))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private let closed = NIOLockedValueBox(false)

    /// Ends the client's connections (once; also on deinit, for a client dropped by an error).
    func close() {
        guard !closed.withLockedValue({ was in defer { was = true }; return was }) else { return }
        try? client.syncShutdown()
    }

    /// `body` over `items`, at most `limit` at a time on threads of their own (each waits on its requests), results
    /// in the items' order; the first error is thrown once all have ended.
    func concurrently<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) throws -> R) throws -> [R] {
        guard items.count > 1 else { return try items.map(body) }
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

    deinit { close() }

    /// `path` (absolute, from the server's root) with `query` percent-encoded (everything but RFC 3986's unreserved
    /// characters, so `+` and `&` in a value arrive as themselves).
    func url(_ path: String, _ query: [(String, String)] = []) -> String {
        guard !query.isEmpty else { return base + path }
        return base + path + "?" + query.map { Self.encode($0.0) + "=" + Self.encode($0.1) }.joined(separator: "&")
    }

    static func encode(_ s: String) -> String {
        s.percentEncoded { b in
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
            default: false
            }
        }
    }

    /// Percent-encodes each segment of an artifact path, keeping its slashes.
    static func encodePath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { encode(String($0)) }.joined(separator: "/")
    }

    /// Sends a JSON request (`body`, for POST/PATCH/DELETE) and parses the JSON answer; a non-2xx answer is an error
    /// quoting MLflow's message. `allowing` lists statuses answered with `nil` instead (404 for an endpoint an older
    /// MLflow lacks).
    ///
    /// A request that is not `idempotent` (a create: sent twice, it makes two) is retried only on 429, which says
    /// it was not taken; a timeout or a 502–504 may have come after the server acted.
    func json(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: String? = nil,
              allowing: Set<UInt> = [], idempotent: Bool = true) throws -> JSONValue? {
        let (status, bytes) = try send(method, url(path, query), body: body.map { Array($0.utf8) }, contentType: "application/json",
                                       idempotent: idempotent)
        if allowing.contains(status) { return nil }
        guard (200..<300).contains(status) else { throw failure(method, path, status, bytes) }
        guard !bytes.isEmpty else { return .object([]) }
        do {
            return try JSONParser.parse(bytes)
        } catch let e as JSONSyntaxError {
            throw TrackingError(.internalError, "\(base)\(path) answered what is not JSON (\(e.message) at byte \(e.offset))")
        }
    }

    /// The error for a non-2xx answer: MLflow's `error_code: message` when the body is its error JSON.
    func failure(_ method: HTTPMethod, _ path: String, _ status: UInt, _ bytes: [UInt8]) -> TrackingError {
        var detail = String(decoding: bytes.prefix(500), as: UTF8.self)
        if let e = try? JSONParser.parse(bytes), let message = e["message"]?.text {
            detail = (e["error_code"]?.text.map { $0 + ": " } ?? "") + message
        }
        let code: TrackingError.Code = switch status {
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .resourceDoesNotExist
        default: .invalidParameterValue
        }
        return TrackingError(code, "MLflow at \(base) answered \(status) to \(method.rawValue) \(path): \(detail)")
    }

    /// One request with retries: (status, body).
    func send(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String? = nil, idempotent: Bool = true) throws -> (UInt, [UInt8]) {
        try retrying(method, url, idempotent: idempotent) {
            var request = try HTTPClient.Request(url: url, method: method)
            headers(&request.headers, contentType: body == nil ? nil : contentType)
            if let body { request.body = .bytes(body) }
            let response = try client.execute(request: request).wait()
            return (response.status.code, response.body.map { Array($0.readableBytesView) } ?? [])
        }
    }

    /// Downloads `url` into the file at `file` (created or truncated), streamed: the file's size, or `nil` for 404.
    func download(_ url: String, to file: String) throws -> Int? {
        let (status, (size, errorBody)) = try retrying(.GET, url) {
            var request = try HTTPClient.Request(url: url, method: .GET)
            headers(&request.headers, contentType: nil)
            let (status, size, errorBody) = try client.execute(request: request, delegate: try FileSink(path: file)).wait()
            return (status, (size, errorBody))
        }
        if status == 404 { return nil }
        guard (200..<300).contains(status) else { throw failure(.GET, url, status, errorBody) }
        return size
    }

    /// Uploads the file at `file` (`size` bytes) to `url` with `method` (MLflow's artifact proxy takes a `PUT` of
    /// the raw bytes), streamed from disk.
    func upload(_ method: HTTPMethod, _ url: String, file: String, size: Int) throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot read \(file): errno \(errno)") }
        defer { Glibc.close(fd) }
        let (status, bytes) = try retrying(method, url) {
            var request = try HTTPClient.Request(url: url, method: method)
            headers(&request.headers, contentType: "application/octet-stream")
            let loop = client.eventLoopGroup.any()
            request.body = .stream(contentLength: Int64(size)) { writer in Self.stream(fd, from: 0, size: size, to: writer, on: loop) }
            let response = try client.execute(request: request).wait()
            return (response.status.code, response.body.map { Array($0.readableBytesView) } ?? [])
        }
        guard (200..<300).contains(status) else { throw failure(method, url, status, bytes) }
    }

    /// Writes bytes `offset..<size` of the file `fd` to a request body in chunks of 1 MiB, each once the one before
    /// is written (a task per chunk, so a long file never deepens the stack).
    private static func stream(_ fd: Int32, from offset: Int, size: Int, to writer: HTTPClient.Body.StreamWriter,
                               on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard offset < size else { return loop.makeSucceededVoidFuture() }
        var chunk = [UInt8](repeating: 0, count: min(1 << 20, size - offset))
        let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n > 0 else { return loop.makeFailedFuture(TrackingError(.internalError, "Cannot read an artifact being uploaded: errno \(errno)")) }
        return writer.write(.byteBuffer(ByteBuffer(bytes: chunk[0..<n]))).flatMap {
            loop.flatSubmit { stream(fd, from: offset + n, size: size, to: writer, on: loop) }
        }
    }

    private func headers(_ h: inout HTTPHeaders, contentType: String?) {
        if let authorization { h.add(name: "Authorization", value: authorization) }
        if let contentType { h.add(name: "Content-Type", value: contentType) }
        h.add(name: "User-Agent", value: "tally")
    }

    /// Runs `attempt` until it answers other than 429/502/503/504 or fails otherwise than by a dropped connection,
    /// at most ``attempts`` times, waiting 0.5 s, 1 s, 2 s … between tries.
    private func retrying<R>(_ method: HTTPMethod, _ url: String, idempotent: Bool = true, _ attempt: () throws -> (UInt, R)) throws -> (UInt, R) {
        var delay = 0.5
        let retried: Set<UInt> = idempotent ? [429, 502, 503, 504] : [429]
        for n in 1...Self.attempts {
            do {
                let answer = try attempt()
                guard retried.contains(answer.0), n < Self.attempts else { return answer }
            } catch let e as HTTPClientError where idempotent && n < Self.attempts && [.remoteConnectionClosed, .readTimeout].contains(e) {
                // a dropped connection: tried again
            } catch let e as HTTPClientError {
                throw TrackingError(.internalError, "\(method.rawValue) \(url): \(e)")
            } catch let e as NIOConnectionError {
                throw TrackingError(.internalError, "Cannot reach MLflow at \(base): \(e.connectionErrors.first.map { "\($0.error)" } ?? "\(e)")")
            }
            usleep(UInt32(delay * 1_000_000))
            delay *= 2
        }
        throw TrackingError(.internalError, "\(method.rawValue) \(url): no answer after \(Self.attempts) attempts")
    }
}

/// Streams a response body into a file; answers (status, bytes written, the body of a non-2xx answer). Calls come
/// one at a time on the task's event loop; the state is locked all the same.
private final class FileSink: HTTPClientResponseDelegate {
    typealias Response = (UInt, Int, [UInt8])
    private struct State {
        var status: UInt = 0
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
        state.withLockedValue { $0.status = head.status.code }
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
        state.withLockedValue { ($0.status, $0.written, $0.errorBody) }
    }
}

extension String {
    /// The string without trailing `c` characters.
    func trimmingTrailing(_ c: Character) -> String {
        var s = self
        while s.last == c { s.removeLast() }
        return s
    }
}
