import Foundation
import NIOHTTP1
import Synchronization
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
/// (``BlockingHTTPClient``). Credentials come from the URL (`https://user:password@host`) or, as the MLflow client
/// takes them, from `MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`. Requests MLflow
/// sheds (429, 502–504) and dropped connections are retried with backoff, as MLflow's client does.
///
/// Not for an event loop: every call waits for its answer.
final class MLflowHTTPClient: Sendable {
    /// The server's URL without credentials or a trailing slash: what messages and journals name.
    let base: String
    private let http: BlockingHTTPClient
    private let authorization: String?
    /// The MLflow workspace every request names (``RequestRules/workspaceHeader``), `nil` for none.
    let workspace: String?

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
        http = BlockingHTTPClient(service: "MLflow at \(base)")
        workspace = nil
    }

    private init(base: String, authorization: String?, workspace: String) {
        self.base = base
        self.authorization = authorization
        self.workspace = workspace
        http = BlockingHTTPClient(service: "MLflow at \(base), workspace \(workspace)")
    }

    /// A client of the same server, with the same credentials, whose requests are for `workspace`.
    func inWorkspace(_ workspace: String) -> MLflowHTTPClient {
        MLflowHTTPClient(base: base, authorization: authorization, workspace: workspace)
    }

    /// Ends the client's connections.
    func close() { http.close() }

    /// `body` over `items`, at most `limit` at a time (``BlockingHTTPClient/concurrently(_:limit:_:)``).
    func concurrently<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) throws -> R) throws -> [R] {
        try BlockingHTTPClient.concurrently(items, limit: limit, body)
    }

    /// `path` (absolute, from the server's root) with `query` percent-encoded (everything but RFC 3986's unreserved
    /// characters, so `+` and `&` in a value arrive as themselves).
    func url(_ path: String, _ query: [(String, String)] = []) -> String {
        guard !query.isEmpty else { return base + path }
        return base + path + "?" + query.map { Self.encode($0.0) + "=" + Self.encode($0.1) }.joined(separator: "&")
    }

    static func encode(_ s: String) -> String { s.uriEncoded() }

    /// Percent-encodes each segment of an artifact path, keeping its slashes.
    static func encodePath(_ path: String) -> String { path.uriEncoded(keepingSlashes: true) }

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
            return try JSONParser.parse(Self.nulEscapesReplaced(bytes, counting: textsWithNUL))
        } catch let e as JSONSyntaxError {
            throw TrackingError(.internalError, "\(base)\(path) answered what is not JSON (\(e.message) at byte \(e.offset))")
        }
    }

    /// Escapes `\u0000` in MLflow's answers (MLflow on SQLite keeps NUL) read as U+FFFD (``ImportText``), counted.
    let textsWithNUL = Atomic<Int>(0)

    /// `json` with each `\u0000` escape as `\ufffd` (an escaped backslash before `u0000` is text, left alone), and
    /// their count added to `counter`.
    static func nulEscapesReplaced(_ json: [UInt8], counting counter: borrowing Atomic<Int>) -> [UInt8] {
        guard json.contains(UInt8(ascii: "\\")) else { return json }
        var out = json, i = 0, found = 0
        while i + 1 < out.count {
            guard out[i] == UInt8(ascii: "\\") else { i += 1; continue }
            if out[i + 1] == UInt8(ascii: "u"), i + 5 < out.count, out[(i + 2)...(i + 5)].allSatisfy({ $0 == UInt8(ascii: "0") }) {
                out.replaceSubrange((i + 2)...(i + 5), with: Array("fffd".utf8))
                found += 1
            }
            i += 2  // the escaped character is never the start of another escape
        }
        if found > 0 { counter.add(found, ordering: .relaxed) }
        return out
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

    /// The retries of a request to MLflow: what it sheds (429, 502–504) and dropped connections, when the request may
    /// run twice; 429 alone otherwise. A `Retry-After` is waited for, up to a minute (an import or export is a batch
    /// job: waiting as asked is kinder to the server than hammering it).
    private static func retry(idempotent: Bool) -> BlockingHTTPClient.Retry {
        idempotent ? .init(statuses: [429, 502, 503, 504], dropped: true, retryAfterCap: 60) : .init(statuses: [429], dropped: false, retryAfterCap: 60)
    }

    /// One request with retries: (status, body).
    func send(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String? = nil, idempotent: Bool = true) throws -> (UInt, [UInt8]) {
        let a = try http.send(method, url, headers: headers(contentType: body == nil ? nil : contentType), body: body, retry: Self.retry(idempotent: idempotent))
        return (a.status, a.body)
    }

    /// Downloads `url` into the file at `file` (created or truncated), streamed: the file's size, or `nil` for 404.
    func download(_ url: String, to file: String) throws -> Int? {
        let (answer, size) = try http.download(url, headers: headers(contentType: nil), to: file, retry: Self.retry(idempotent: true))
        if answer.status == 404 { return nil }
        guard (200..<300).contains(answer.status) else { throw failure(.GET, url, answer.status, answer.body) }
        return size
    }

    /// Uploads the file at `file` (`size` bytes) to `url` with `method` (MLflow's artifact proxy takes a `PUT` of
    /// the raw bytes), streamed from disk.
    func upload(_ method: HTTPMethod, _ url: String, file: String, size: Int) throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot read \(file): errno \(errno)") }
        defer { Glibc.close(fd) }
        let a = try http.upload(method, url, headers: headers(contentType: "application/octet-stream"), fd: fd, count: size,
                                retry: Self.retry(idempotent: true))
        guard (200..<300).contains(a.status) else { throw failure(method, url, a.status, a.body) }
    }

    private func headers(contentType: String?) -> HTTPHeaders {
        var h = HTTPHeaders()
        if let authorization { h.add(name: "Authorization", value: authorization) }
        if let contentType { h.add(name: "Content-Type", value: contentType) }
        h.add(name: "User-Agent", value: "tally")
        if let workspace { h.add(name: RequestRules.workspaceHeader, value: workspace) }
        return h
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
