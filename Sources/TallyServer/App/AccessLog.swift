import Hummingbird
import Logging

/// One line per answered request at `info` (`tally server --access-log`), as MLflow's uvicorn writes by default:
/// the client's address, the method, the path and query (as uvicorn logs them: an absolute-form target's scheme,
/// host and user information are left out), the status, the body's size when one is sent and the time to the
/// answer's head. The outermost middleware, so every answer is logged as sent, the error
/// middleware's and the browser defences' included. Off by default: an ingest at thousands of requests a second
/// would write as many lines.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    /// Where the lines go (at `info`).
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            // A HEAD answer's body is dropped after the middlewares: none is sent.
            log(request, context, status: response.status.code, bytes: request.method == .head ? nil : response.body.contentLength, since: start)
            return response
        } catch {
            log(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, bytes: nil, since: start)
            throw error
        }
    }

    /// Logs one request's line.
    private func log(_ request: Request, _ context: Context, status: Int, bytes: Int?, since start: ContinuousClock.Instant) {
        let ms = Double(RequestMetricsMiddleware.nanos(since: start)) / 1e6
        let target = request.uri.query.map { request.uri.path + "?" + $0 } ?? request.uri.path
        var metadata: Logger.Metadata = ["client": "\(context.remoteAddress ?? "-")", "method": "\(request.method.rawValue)",
                                         "target": "\(target)", "status": "\(status)",
                                         "ms": "\((ms * 1000).rounded() / 1000)"]
        if let bytes { metadata["bytes"] = "\(bytes)" }
        logger.info("request", metadata: metadata)
    }
}
