import Hummingbird
import NIOCore
import NIOPosix
import TallyTracking

/// Proxied artifacts (`mlflow-artifacts:` URIs), the tracking API's `artifacts/list`, `server-info` and the
/// minimal `logged-models/search` the client needs before downloads.
struct ArtifactRoutes: Sendable {
    let store: ArtifactStore
    let service: TrackingService
    let pool: NIOThreadPool

    static func json(_ s: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    func register(on router: Router<BasicRequestContext>) {
        let base = "/api/2.0/mlflow-artifacts/artifacts"
        router.put(RouterPath(base + "/**")) { request, context in
            try await self.guarded { try await self.upload(request, self.path(context, raw: request.uri.path, base: base)) }
        }
        router.get(RouterPath(base + "/**")) { request, context in
            try await self.guarded { try await self.download(self.path(context, raw: request.uri.path, base: base)) }
        }
        router.delete(RouterPath(base + "/**")) { request, context in
            try await self.guarded {
                let p = try self.path(context, raw: request.uri.path, base: base)
                try await pool.runIfActive { try self.store.delete(p) }
                return Self.json("{}")
            }
        }
        router.get(RouterPath(base)) { request, _ in
            try await self.guarded {
                let q = MLflowAPI.parseQuery(request.uri.query ?? "")
                return Self.json(try await self.listing(q["path"]?.last ?? "", relativeTo: nil))
            }
        }
        for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
            router.get(RouterPath(prefix + "/artifacts/list")) { request, _ in
                try await self.guarded {
                    let q = MLflowAPI.parseQuery(request.uri.query ?? "")
                    let r = MLflowRequest(body: nil, query: q)
                    let run = try self.service.run(id: try r.runID())
                    let uri = run.info.artifactURI
                    guard uri.hasPrefix("mlflow-artifacts:") else { return Self.json("{\"root_uri\": \(JSONText.quote(uri))}") }
                    let root = String(uri.dropFirst("mlflow-artifacts:".count).drop { $0 == "/" })
                    let sub = q["path"]?.last ?? ""
                    let dir = sub.isEmpty ? root : root + "/" + sub
                    var body = try await self.listing(dir, relativeTo: sub.isEmpty ? "" : sub)
                    body = "{\"root_uri\": \(JSONText.quote(uri))" + (body == "{}" ? "}" : ", " + body.dropFirst())
                    return Self.json(body)
                }
            }
            router.post(RouterPath(prefix + "/logged-models/search")) { _, _ in Self.json("{}") }
        }
        router.get("/api/3.0/mlflow/server-info") { _, _ in
            Self.json("{\"store_type\": \"SqlStore\", \"workspaces_enabled\": false, \"multipart_uploads_enabled\": false, "
                + "\"multipart_downloads_enabled\": false, \"artifact_serving_enabled\": true, \"artifacts_presigned_only\": false}")
        }
    }

    /// The root-relative path of a catch-all route, percent-decoded; a trailing `/` is kept (it makes uploads fail).
    func path(_ context: BasicRequestContext, raw: String, base: String) throws -> String {
        let joined = context.parameters.getCatchAll().map { MLflowAPI.percentDecode($0, plusIsSpace: false) }.joined(separator: "/")
        return raw.hasSuffix("/") ? joined + "/" : joined
    }

    func guarded(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch { throw MLflowError.from(error) }
    }

    func upload(_ request: Request, _ path: String) async throws -> Response {
        if path.hasSuffix("/") {
            return Self.json("{\"detail\": \"Artifact path must include a filename (cannot end with '/').\"}", status: .badRequest)
        }
        let up = try await pool.runIfActive { try self.store.upload(path) }
        do {
            for try await chunk in request.body {  // streamed: never the whole file in memory
                try chunk.withUnsafeReadableBytes { try up.write($0) }
            }
            try await pool.runIfActive { try up.finish() }
        } catch {
            up.abort()
            throw error
        }
        return Response(status: .ok)
    }

    func download(_ path: String) async throws -> Response {
        let reader = try await pool.runIfActive { try self.store.open(path) }
        let name = String(path.split(separator: "/").last ?? "artifact")
        let size = reader.size
        let body = ResponseBody(contentLength: size) { writer in
            var offset = 0
            while offset < size {
                let at = offset
                let bytes = try await self.pool.runIfActive { try reader.read(at: at, count: min(256 << 10, size - at)) }
                guard !bytes.isEmpty else { throw TrackingError(.internalError, "artifact \(path) shrank while being read") }
                offset += bytes.count
                try await writer.write(ByteBuffer(bytes: bytes))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: Self.contentType(name), .contentDisposition: "attachment; filename=\(name)",
                                               .init("X-Content-Type-Options")!: "nosniff"], body: body)
    }

    static func contentType(_ name: String) -> String {
        switch name.split(separator: ".").last.map({ $0.lowercased() }) {
        case "txt", "log", "md", "py", "yaml", "yml": "text/plain"
        case "json": "application/json"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "html": "text/html"
        case "csv": "text/csv"
        default: "application/octet-stream"
        }
    }

    /// `{"files": [...]}` for a directory (`{}` when missing, empty or a file). Paths are basenames, or
    /// `relativeTo`-prefixed for the tracking API's run-relative listing.
    func listing(_ dir: String, relativeTo: String?) async throws -> String {
        let entries = try await pool.runIfActive { try self.store.list(dir) }
        guard !entries.isEmpty else { return "{}" }
        let files = entries.map { e -> String in
            let p = (relativeTo.map { $0.isEmpty ? "" : $0 + "/" } ?? "") + e.name
            return e.isDir ? "{\"path\": \(JSONText.quote(p)), \"is_dir\": true}"
                : "{\"path\": \(JSONText.quote(p)), \"is_dir\": false, \"file_size\": \(e.size)}"
        }
        return "{\"files\": [" + files.joined(separator: ", ") + "]}"
    }
}
