import AsyncHTTPClient
import Hummingbird
import NIOCore
import NIOHTTP1
import TallyTracking

/// Sends a write this server does not own to the run's owner (docs/scale-out.md): the same method, target and body,
/// signed with the cluster secret for the caller this server authenticated, and answers with the owner's answer.
struct ClusterForwarder: Sendable {
    let auth: ClusterAuth
    /// This server's id (the signature names it).
    let node: String

    /// One client for every forward, kept for the process's life (connections to the other servers are reused).
    static let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                   configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(2), read: .seconds(120))))

    /// The owner's answer to `request` (whose body was `body`), forwarded for `context`'s caller. A request that
    /// was itself forwarded is not forwarded again (ownership moved on the way): 503, which clients retry.
    func forward(_ request: Request, body: ByteBuffer, context: TallyRequestContext, to owner: OwnedElsewhere) async throws -> Response {
        guard context.forwarded == nil else {
            throw MLflowError(TrackingError(.temporarilyUnavailable, "The writes of run \(owner.run) moved to server \(owner.node) while this "
                                            + "request was forwarded: send it again"))
        }
        let target = request.uri.description
        var out = HTTPClientRequest(url: owner.url + target)
        out.method = HTTPMethod(rawValue: request.method.rawValue)
        out.headers.add(name: "Content-Type", value: request.headers[.contentType] ?? "application/json")
        for (name, value) in auth.sign(method: request.method.rawValue, target: target, body: body.readableBytesView, node: node,
                                       user: context.caller.username) {
            out.headers.add(name: name, value: value)
        }
        out.body = .bytes(body)
        let answer: HTTPClientResponse, bytes: ByteBuffer
        do {
            answer = try await Self.client.execute(out, timeout: .seconds(120))
            bytes = try await answer.body.collect(upTo: 64 << 20)
        } catch {
            throw MLflowError(TrackingError(.temporarilyUnavailable, "The writes of run \(owner.run) belong to server \(owner.node) (\(owner.url)), "
                                            + "which did not answer (\(error)); another server takes them over when its lease lapses: send the request again"))
        }
        return Response(status: HTTPResponse.Status(code: Int(answer.status.code)),
                        headers: [.contentType: answer.headers.first(name: "Content-Type") ?? "application/json"],
                        body: .init(byteBuffer: bytes))
    }
}

/// Verifies the signature of a request another server of the cluster forwarded (its whole body is read here, within
/// `limit`), and hands the vouched-for caller to the access gate (``TallyRequestContext/forwarded``). A request
/// without the signature header passes untouched; one with a wrong signature, or reaching a server outside a
/// cluster, is refused (401).
struct ForwardedRequestMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let auth: ClusterAuth?
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.init(ClusterAuth.Header.signature)!] != nil else { return try await next(request, context) }
        guard let auth else { throw MLflowError(TrackingError(.unauthenticated, "Refused a forwarded request: this server is not in a cluster")) }
        // The signed headers first: nothing is read of a body whose sender does not hold the secret.
        let headers = request.headers
        guard let vouched = try auth.verifyHeaders(method: request.method.rawValue, target: request.uri.description,
                                                   header: { name in headers[.init(name)!] }) else {  // names of ClusterAuth.Header
            return try await next(request, context)
        }
        var r = request
        let body: ByteBuffer
        do {
            body = try await r.collectBody(upTo: limit)
        } catch {
            throw MLflowError(RequestRules.unreadableBody("\(error)"))
        }
        try vouched.check(body: body.readableBytesView)
        var ctx = context
        ctx.forwarded = vouched.forwarded
        return try await next(r, ctx)
    }
}
