import Hummingbird
import NIOCore
import TallyTracking

/// The request side of ``BrowserSecurity``: refuses a `Host` that is not allowed and a cross-site write (403, MLflow's
/// error JSON), and answers CORS preflights. Requests another server of the cluster forwarded (signature checked by
/// ``ForwardedRequestMiddleware``, which runs before) were checked by the server they came in through.
struct BrowserGuardMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let security: BrowserSecurity
    /// The paths answered whatever the `Host`, under the server's `--static-prefix`.
    let hostExempt: Set<String>
    /// The scheme the server speaks itself (a proxy in front may name another in `X-Forwarded-Proto`).
    let scheme: String

    init(security: BrowserSecurity, under prefix: String, tls: Bool) {
        self.security = security
        hostExempt = Set(BrowserSecurity.hostExemptPaths.map { prefix + $0 })
        scheme = tls ? "https" : "http"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.forwarded == nil else { return try await next(request, context) }
        let host = request.head.authority  // HTTP/1's Host header; a second one stays among the headers
        if request.headers[BrowserHeaderNames.host] != nil { throw MLflowError(BrowserSecurity.duplicateHost) }
        if !hostExempt.contains(request.uri.path), !security.allowsHost(host) {
            throw MLflowError(BrowserSecurity.invalidHost(host))
        }
        let origin = request.headers[.origin]
        if request.method == .options, let origin, let asked = request.headers[.accessControlRequestMethod] {
            return try preflight(request, origin: origin, method: asked)
        }
        if let origin {
            // A proxy's X-Forwarded-Proto: a cross-site page cannot set it without a preflight, which is refused.
            let proto = request.headers[BrowserHeaderNames.forwardedProto].map { String(($0.split(separator: ",").first ?? "").filter { $0 != " " }) }
            if security.refusesStateChange(method: request.method.rawValue, origin: origin, host: host, scheme: proto ?? scheme) {
                throw MLflowError(BrowserSecurity.crossOrigin(origin))
            }
        }
        return try await next(request, context)
    }

    /// A CORS preflight: 204 with what the origin may send, or 403 (the headers ``BrowserHeadersMiddleware`` adds
    /// name the origin only when it is allowed).
    func preflight(_ request: Request, origin: String, method: String) throws -> Response {
        guard security.cors(origin) != nil else { throw MLflowError(BrowserSecurity.crossOrigin(origin)) }
        guard BrowserSecurity.corsAllows(method: method) else { throw MLflowError(BrowserSecurity.preflightMethod(method)) }
        var headers: HTTPFields = [.accessControlAllowMethods: BrowserSecurity.corsMethods,
                                   .accessControlMaxAge: String(BrowserSecurity.preflightMaxAge)]
        if let asked = request.headers[.accessControlRequestHeaders] { headers[.accessControlAllowHeaders] = asked }
        return Response(status: .noContent, headers: headers)
    }
}

/// The answer side of ``BrowserSecurity``, outside every other middleware so that errors get it too:
/// `X-Content-Type-Options`, `X-Frame-Options`, and for an allowed origin the CORS headers.
struct BrowserHeadersMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let security: BrowserSecurity

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let e as any HTTPResponseError {  // MLflowErrorMiddleware, inside, turns every error into one
            response = try e.response(from: request, context: context)
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        if let frame = security.frameOptions { response.headers[BrowserHeaderNames.frameOptions] = frame.rawValue }
        response.headers[.vary] = "Origin"
        if let (allow, credentials) = security.cors(request.headers[.origin]) {
            response.headers[.accessControlAllowOrigin] = allow
            if credentials { response.headers[.accessControlAllowCredentials] = "true" }
            response.headers[.accessControlExposeHeaders] = BrowserSecurity.exposedHeaders
        }
        return response
    }
}

/// Header names the defences read or write that HTTPTypes does not name, made once (a name is checked when made).
enum BrowserHeaderNames {
    /// A second `Host` header (the first is the request's authority).
    static let host = HTTPFields.Element.Name("Host")!
    /// The scheme a proxy in front received the request over.
    static let forwardedProto = HTTPFields.Element.Name("X-Forwarded-Proto")!
    /// Who may frame the answer.
    static let frameOptions = HTTPFields.Element.Name("X-Frame-Options")!
}
