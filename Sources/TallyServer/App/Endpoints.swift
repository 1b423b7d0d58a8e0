import Hummingbird
import Logging
import NIOCore
import TallyTracking

/// What every route area shares: the service, the blocking pool and the body limits, and the one way an MLflow
/// JSON endpoint reads its request and answers.
struct Endpoints: Sendable {
    let service: TrackingService
    let pool: BlockingPool
    /// Body limit of the data-carrying endpoints (`runs/log-batch`, `runs/log-inputs`).
    let largeBody: Int
    /// Body limit of every other JSON endpoint.
    let smallBody: Int
    /// Body limit of the native ingest endpoint.
    let nativeBody: Int
    /// The access check.
    let gate: AccessGate
    /// Whether the server speaks HTTPS itself (session cookies are then `Secure`).
    var secureCookies = false
    /// Forwards writes of runs another server owns (cluster mode), `nil` for a single server.
    var forwarder: ClusterForwarder?
    /// The defences against cross-site requests and DNS rebinding, `nil` when turned off.
    var browserSecurity: BrowserSecurity?
    /// The path every route is served under (`--static-prefix`), empty for none.
    var staticPrefix = ""
    /// The Prometheus metrics (`--expose-prometheus`), `nil` when off.
    var metrics: ServerMetrics?
    /// Where every request is logged (`--access-log`), `nil` when off.
    var accessLog: Logger?
    /// `GET /ready`'s checks (`nil`: made by the router, logging under the default logger).
    var readiness: ReadinessProbe?

    /// Access control, `nil` when off.
    var access: AccessControl? { gate.control }

    /// Reads a body hand-written code can take without a JSON tree, returning the work to run, or `nil` for the
    /// general path.
    typealias FastPath = @Sendable (UnsafeRawBufferPointer) -> (@Sendable () throws -> ByteBuffer)?

    /// Collects a body of at most `limit` bytes: 413 over it, 400 when the client breaks off or garbles it.
    func body(_ request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw MLflowError.tooLarge(limit: limit, path: request.uri.path)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw MLflowError(RequestRules.unreadableBody("\(error)"))
        }
    }

    /// An MLflow JSON endpoint: GET (and DELETE with a query) read the query string; other methods need
    /// `Content-Type: application/json` (POST and PUT, as MLflow checks) and a JSON object body within `limit`
    /// (an empty body is `{}`). `work` runs on the blocking pool; its JSON is the answer.
    func json(limit: Int? = nil, fast: FastPath? = nil, _ work: @escaping @Sendable (MLflowRequest) throws -> ByteBuffer) -> RouteTable.Handler {
        answer(limit: limit, fast: fast, work, Self.ok)
    }

    /// A JSON endpoint whose answer comes in parts, sent one after the other (large answers rendered in parallel
    /// pieces are not joined into one buffer first).
    func json(limit: Int? = nil, parts work: @escaping @Sendable (MLflowRequest) throws -> [ByteBuffer]) -> RouteTable.Handler {
        answer(limit: limit, fast: nil, work, Self.ok)
    }

    /// The request handling of ``json(limit:fast:_:)``: parse, run `work` on the blocking pool, `respond`.
    private func answer<A: Sendable>(limit: Int?, fast: FastPath?, _ work: @escaping @Sendable (MLflowRequest) throws -> A,
                                     _ respond: @escaping @Sendable (A) -> Response) -> RouteTable.Handler {
        let limit = limit ?? smallBody
        let gate = gate
        /// Parses, checks and runs the request; the body read is left in `collected` (for a forward).
        @Sendable func handle(_ request: Request, _ context: TallyRequestContext, _ collected: inout ByteBuffer) async throws -> Response {
            var parsed: MLflowRequest
            if request.method == .get || request.method == .head || (request.method == .delete && request.uri.query != nil) {
                parsed = MLflowRequest(body: nil, query: PercentDecoding.query(request.uri.query ?? ""))  // NUL refused before (RequestChecksMiddleware)
            } else {
                if request.method == .post || request.method == .put, let e = RequestRules.contentTypeError(request.headers[.contentType]) {
                    throw MLflowError(e)
                }
                let buffer = try await body(request, limit: limit)
                collected = buffer
                // The fast path reads the body itself: a pending check needs the run id first, which it peeks at
                // (the general path takes over when it is not the body's first field).
                let pending = context.pending, grants = context.grants
                let leading = pending == nil || fast == nil ? nil : buffer.withUnsafeReadableBytes(LogBatchParser.leadingRunID)
                if let fast, pending == nil || leading != nil, let work = buffer.withUnsafeReadableBytes(fast) {
                    return Self.ok(try await pool.run {
                        if let pending, let id = leading {
                            var r = MLflowRequest(body: .object([("run_id", .string(id))]), query: [:])
                            r.grants = grants
                            try gate.check(pending, r)
                        }
                        return try work()
                    })
                }
                parsed = MLflowRequest(body: try Self.object(buffer), query: [:])
            }
            parsed.caller = context.caller
            parsed.grants = context.grants
            let checked = parsed, pending = context.pending
            return respond(try await pool.run {
                try gate.check(pending, checked)
                return try work(checked)
            })
        }
        return { request, context in
            var collected = ByteBuffer()
            do {
                return try await handle(request, context, &collected)
            } catch let owner as OwnedElsewhere {
                return try await forward(owner, request, body: collected, context: context)
            }
        }
    }

    /// A write another server owns, forwarded to it (cluster mode); without a cluster the error goes on (a 503).
    func forward(_ owner: OwnedElsewhere, _ request: Request, body: ByteBuffer, context: TallyRequestContext) async throws -> Response {
        guard let forwarder else { throw owner }
        return try await forwarder.forward(request, body: body, context: context, to: owner)
    }

    /// A JSON endpoint whose answer is built as a `String` (the small ones).
    func json(limit: Int? = nil, _ work: @escaping @Sendable (MLflowRequest) throws -> String) -> RouteTable.Handler {
        json(limit: limit, fast: nil) { r in ByteBuffer(string: try work(r)) }
    }

    /// A JSON endpoint whose path carries parameters (`logged-models/{model_id}`): `work` gets their values
    /// (percent-decoded, in the order of `names`) and the request's method.
    func json(limit: Int? = nil, path names: [String], _ work: @escaping @Sendable (MLflowRequest, [String], HTTPRequest.Method) throws -> ByteBuffer)
        -> RouteTable.Handler {
        { request, context in
            let values = names.map { Self.parameter($0, context) }
            let method = request.method
            return try await json(limit: limit) { r in try work(r, values, method) }(request, context)
        }
    }

    /// A path parameter (`:run_id`, `{model_id}`), percent-decoded; empty when absent.
    static func parameter(_ name: String, _ context: TallyRequestContext) -> String {
        PercentDecoding.decode(Substring(context.parameters.get(name) ?? ""), plusIsSpace: false)
    }

    /// A JSON object body of Tally's own query endpoints (any content type, the small limit), read and handed to
    /// `work` on the blocking pool.
    func object<T: Sendable>(_ request: Request, _ context: TallyRequestContext, _ work: @escaping @Sendable (MLflowRequest) throws -> T) async throws -> T {
        let buffer = try await body(request, limit: smallBody)
        let caller = context.caller, grants = context.grants
        return try await pool.run {
            var r = MLflowRequest(body: try Self.object(buffer), query: [:])
            r.caller = caller
            r.grants = grants
            return try work(r)
        }
    }

    /// A body as a JSON object (all-whitespace is `{}`).
    static func object(_ buffer: ByteBuffer) throws -> JSONValue {
        let bytes = Array(buffer.readableBytesView)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([]) }
        let body = try JSONParser.parse(bytes, refusingNUL: true)
        guard case .object = body else { throw MLflowError(RequestRules.bodyNotObject) }
        return body
    }

    /// 200 with a JSON body.
    static func ok(_ json: ByteBuffer) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: json))
    }

    /// 200 with a JSON body.
    static func ok(_ json: String) -> Response { ok(ByteBuffer(string: json)) }

    /// 200 with a JSON body in parts.
    static func ok(_ parts: [ByteBuffer]) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(contentsOf: parts))
    }

    /// `{}`.
    static let empty = "{}"
}
