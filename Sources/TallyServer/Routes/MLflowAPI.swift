import Hummingbird
import NIOCore
import NIOPosix
import TallyStore
import TallyTracking

/// The MLflow REST API 2.0 routes. Handlers only translate: request fields in, `TrackingService` call, MLflow JSON out.
struct MLflowAPI: Sendable {
    let service: TrackingService
    /// Largest request body accepted (MLflow's nominal log-batch limit is 1 MB; bodies up to this are parsed).
    let maxBody: Int
    /// Threads for the blocking store work (fsync, SQLite), so concurrent appends can share group commits.
    let pool: NIOThreadPool

    typealias Handler = @Sendable (MLflowRequest) throws -> String

    func register(on router: Router<BasicRequestContext>) {
        let routes: [(String, [HTTPRequest.Method], Handler)] = experimentRoutes() + runRoutes() + metricRoutes()
        let bulk: Handler = { r in try self.historyBulk(r) }
        router.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk") { request, _ in try await self.respond(request, bulk) }
        for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
            for (path, methods, handler) in routes {
                for m in methods {
                    router.on(RouterPath(prefix + path), method: m) { request, _ in try await self.respond(request, handler) }
                }
            }
        }
    }

    /// Parses the request, runs the handler on the blocking thread pool, renders the answer or the MLflow error.
    func respond(_ request: Request, _ handler: @escaping Handler) async throws -> Response {
        do {
            let parsed: MLflowRequest
            if request.method == .get || request.method == .delete && request.uri.query != nil {
                parsed = MLflowRequest(body: nil, query: Self.parseQuery(request.uri.query ?? ""))
            } else {
                let buffer = try await request.body.collect(upTo: maxBody)
                let bytes = Array(buffer.readableBytesView)
                let allSpace = bytes.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
                let body: JSONValue = allSpace ? .object([]) : try JSONParser.parse(bytes)
                guard case .object = body else {
                    throw MLflowError(code: "MALFORMED_REQUEST", message: "The request body must be a JSON object", status: .badRequest)
                }
                parsed = MLflowRequest(body: body, query: [:])
            }
            let json = try await pool.runIfActive { try handler(parsed) }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
        } catch {
            throw MLflowError.from(error)
        }
    }

    /// `a=1&b=x+y&b=%2F` → `["a": ["1"], "b": ["x y", "/"]]` (form encoding: `+` is a space).
    static func parseQuery(_ q: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for pair in q.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = decode(parts[0]), v = parts.count > 1 ? decode(parts[1]) : ""
            out[k, default: []].append(v)
        }
        return out
    }

    /// Query form decoding: `+` is a space.
    static func decode(_ s: Substring) -> String { percentDecode(s, plusIsSpace: true) }

    /// `%XX` decoding (`plusIsSpace` for query strings; a `+` in a path is a plus).
    static func percentDecode(_ s: Substring, plusIsSpace: Bool) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if plusIsSpace && c == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func viewType(_ r: MLflowRequest, _ name: String) throws -> ViewType {
        guard let v = try r.enumName(name, numbers: [1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"]) else { return .activeOnly }
        return ViewType(rawValue: v) ?? .activeOnly
    }

    static let empty = "{}"
}
