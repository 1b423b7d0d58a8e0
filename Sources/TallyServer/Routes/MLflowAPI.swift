import Hummingbird
import NIOCore
import NIOPosix
import TallyStore
import TallyTracking

/// The MLflow REST API 2.0 routes. Handlers only translate: request fields in, `TrackingService` call, MLflow JSON out.
struct MLflowAPI: Sendable {
    let service: TrackingService
    /// Largest body of the data-carrying endpoints (MLflow's nominal log-batch limit is 1 MB but not enforced).
    let maxBody: Int
    /// Largest body of the other endpoints.
    let maxSmallBody: Int
    /// The endpoints that take `maxBody`.
    static let largeBodies: Set<String> = ["/runs/log-batch", "/runs/log-inputs"]
    /// Threads for the blocking store work (fsync, SQLite), so concurrent appends can share group commits.
    let pool: NIOThreadPool

    typealias Handler = @Sendable (MLflowRequest) throws -> String
    /// A handler of a large answer, written as bytes.
    typealias BufferHandler = @Sendable (MLflowRequest) throws -> ByteBuffer
    /// Reads a body without building a JSON tree, returning the work to run, or `nil` to take the general path.
    typealias FastPath = @Sendable (UnsafeRawBufferPointer) -> (@Sendable () throws -> String)?

    func register(on router: Router<BasicRequestContext>) {
        let text: [(String, [HTTPRequest.Method], Handler)] = experimentRoutes() + runRoutes()
        let routes = text.map { path, methods, handler -> (String, [HTTPRequest.Method], BufferHandler) in
            (path, methods, { r in ByteBuffer(string: try handler(r)) })
        } + historyRoutes()
        let bulk: BufferHandler = { r in try self.historyBulk(r) }
        router.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk") { request, _ in try await self.respond(request, bulk) }
        for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
            for (path, methods, handler) in routes {
                let fast = fastPaths[path]
                let limit = Self.largeBodies.contains(path) ? maxBody : maxSmallBody
                for m in methods {
                    router.on(RouterPath(prefix + path), method: m) { request, _ in
                        try await self.respond(request, handler, limit: limit, fast: fast)
                    }
                }
            }
        }
    }

    /// Parses the request, runs the handler on the blocking thread pool, renders the answer or the MLflow error.
    func respond(_ request: Request, _ handler: @escaping BufferHandler, limit: Int? = nil, fast: FastPath? = nil) async throws -> Response {
        do {
            let parsed: MLflowRequest
            if request.method == .get || request.method == .delete && request.uri.query != nil {
                parsed = MLflowRequest(body: nil, query: Self.parseQuery(request.uri.query ?? ""))
            } else {
                let limit = limit ?? maxSmallBody
                let buffer: ByteBuffer
                do {
                    buffer = try await request.body.collect(upTo: limit)
                } catch is NIOTooManyBytesError {
                    // 413 with a code the client does not retry (BAD_REQUEST), so it fails at once with this message.
                    throw MLflowError(code: "BAD_REQUEST", message: "The request body exceeds the limit of \(limit) bytes for \(request.uri.path)",
                                      status: .contentTooLarge)
                }
                if let fast, let work = buffer.withUnsafeReadableBytes(fast) {
                    let json = try await pool.runIfActive(work)
                    return Self.ok(ByteBuffer(string: json))
                }
                let bytes = Array(buffer.readableBytesView)
                let allSpace = bytes.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
                let body: JSONValue = allSpace ? .object([]) : try JSONParser.parse(bytes)
                guard case .object = body else {
                    throw MLflowError(code: "MALFORMED_REQUEST", message: "The request body must be a JSON object", status: .badRequest)
                }
                parsed = MLflowRequest(body: body, query: [:])
            }
            return Self.ok(try await pool.runIfActive { try handler(parsed) })
        } catch {
            throw MLflowError.from(error)
        }
    }

    static func ok(_ json: ByteBuffer) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: json))
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
