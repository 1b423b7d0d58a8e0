import Hummingbird
import NIOCore
import TallyStore
import TallyTracking

/// An error answered in MLflow's format, `{"error_code": …, "message": …}`, with its HTTP status. The code and
/// message come from TallyTracking; the status follows from the code, except for the request-level classes
/// (413, 405) that share MLflow's `BAD_REQUEST` code.
struct MLflowError: HTTPResponseError {
    let error: TrackingError
    let status: HTTPResponse.Status
    /// The methods a path serves, for a 405's `Allow` header.
    var allow: String?
    /// Whether the message is also given as `detail` (the field MLflow's FastAPI routes answer with: OTLP's).
    var detail = false

    /// A tracking error with the status its code implies. Client mistakes are always 4xx.
    init(_ e: TrackingError) {
        error = e
        switch e.code {
        case .invalidParameterValue, .resourceAlreadyExists, .badRequest, .featureDisabled: status = .badRequest
        case .invalidState: status = .badRequest  // MLflow answers 500; a client mistake is 4xx here
        case .resourceDoesNotExist, .endpointNotFound, .notFound: status = .notFound
        case .internalError: status = .internalServerError
        case .unauthenticated: status = .unauthorized
        case .permissionDenied: status = .forbidden
        case .requestLimitExceeded: status = .tooManyRequests
        case .temporarilyUnavailable: status = .serviceUnavailable
        case .notImplemented: status = .notImplemented
        }
    }

    /// A request-level error with its own status.
    init(_ e: TrackingError, status: HTTPResponse.Status) {
        error = e
        self.status = status
    }

    /// 413: the body is over the endpoint's limit.
    static func tooLarge(limit: Int, path: String) -> MLflowError {
        MLflowError(RequestRules.bodyTooLarge(limit: limit, path: path), status: .contentTooLarge)
    }

    /// 405: a known path, another method.
    static func methodNotAllowed(_ request: Request, allowed: [HTTPRequest.Method]) -> MLflowError {
        var e = MLflowError(RequestRules.methodNotAllowed(method: request.method.rawValue, path: request.uri.path), status: .methodNotAllowed)
        e.allow = allowed.map(\.rawValue).joined(separator: ", ")
        return e
    }

    /// The one mapping of everything a route can throw to MLflow's error JSON.
    static func from(_ error: any Error, request: Request) -> MLflowError {
        switch error {
        case let e as MLflowError: return e
        case let e as TrackingError: return MLflowError(e)
        case let e as JSONSyntaxError: return MLflowError(RequestRules.malformedJSON(offset: e.offset, e.message))
        case let e as NativeBodyError: return MLflowError(TrackingError(.invalidParameterValue, e.description))
        case is NIOTooManyBytesError:
            return MLflowError(RequestRules.bodyTooLarge(limit: nil, path: request.uri.path), status: .contentTooLarge)
        case let e as StorageError: return MLflowError(TrackingError(.internalError, "storage error: \(e)"))
        case let e as OwnedElsewhere:  // a write a route could not forward: the client's retry may land on the owner
            return MLflowError(TrackingError(.temporarilyUnavailable, "The writes of run \(e.run) belong to server \(e.node): send the request again"))
        case let e as HTTPError where e.status == .notFound:
            return MLflowError(RequestRules.endpointNotFound(method: request.method.rawValue, path: request.uri.path))
        case let e as HTTPError where e.status.code < 500:
            return MLflowError(TrackingError(.badRequest, e.body ?? e.status.reasonPhrase), status: e.status)
        default:
            return MLflowError(TrackingError(.internalError, "\(error)"))
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var o = Obj()
        o.add("error_code", error.code.rawValue)
        o.add("message", error.message)
        if detail { o.add("detail", error.message) }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let allow { headers[.allow] = allow }
        // The UI has its own login page: no browser prompt for its calls.
        if error.code == .unauthenticated && request.headers[.init("X-Tally-UI")!] == nil { headers[.wwwAuthenticate] = #"Basic realm="mlflow""# }
        if let seconds = AccessRules.retryAfter(error) { headers[.retryAfter] = String(seconds) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: o.json)))
    }
}

/// The checks of a request as a whole, on every route, before any route reads it:
/// - a request naming a workspace (`RequestRules.workspaceHeader`) is refused as MLflow refuses it when it runs without
///   workspaces (`RequestRules.workspaceError`), rather than served from the one space Tally has;
/// - a path or query string holding the NUL character once percent-decoded (`RequestRules.nulText`): the same 400 on
///   both metadata stores, where a lookup by such an id was a 404 on SQLite and a 400 on PostgreSQL. JSON bodies are
///   checked by their parser.
struct RequestChecksMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let workspace = request.headers[.init(RequestRules.workspaceHeader)!],
           let e = RequestRules.workspaceError(header: workspace, path: request.uri.path) { throw MLflowError(e) }
        if request.uri.path.contains("%00") { throw MLflowError(RequestRules.nulInPath) }
        if let query = request.uri.query, query.contains("%00"),
           let bad = PercentDecoding.query(query).first(where: { $0.key.utf8.contains(0) || $0.value.contains { $0.utf8.contains(0) } }) {
            throw MLflowError(RequestRules.nulInQuery(bad.key))
        }
        return try await next(request, context)
    }
}

/// The one place errors become responses: everything a route throws, and unknown paths, as MLflow's error JSON.
struct MLflowErrorMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            throw MLflowError.from(error, request: request)
        }
    }
}
