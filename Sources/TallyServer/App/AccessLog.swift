import Hummingbird
import Logging

/// One line per answered request at `info` (`tally server --access-log`), as MLflow's uvicorn writes by default:
/// the client's address, the method, the target as sent (path and query), the status, the body's size when known
/// and the time to the answer's head. The outermost middleware, so every answer is logged as sent, the error
/// middleware's and the browser defences' included. Off by default: an ingest at thousands of requests a second
/// would write as many lines.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, context, status: response.status.code, bytes: response.body.contentLength, since: start)
            return response
        } catch {
            log(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, bytes: nil, since: start)
            throw error
        }
    }

    private func log(_ request: Request, _ context: Context, status: Int, bytes: Int?, since start: ContinuousClock.Instant) {
        let ms = Double(RequestMetricsMiddleware.nanos(since: start)) / 1e6
        var metadata: Logger.Metadata = ["client": "\(context.remoteAddress ?? "-")", "method": "\(request.method.rawValue)",
                                         "target": "\(request.uri.description)", "status": "\(status)",
                                         "ms": "\((ms * 1000).rounded() / 1000)"]
        if let bytes { metadata["bytes"] = "\(bytes)" }
        logger.info("request", metadata: metadata)
    }
}
