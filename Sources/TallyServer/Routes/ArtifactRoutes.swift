import Hummingbird
import NIOCore
import TallyTracking

/// Artifacts: the proxied `mlflow-artifacts` API (mounted at `/api/2.0/mlflow-artifacts`), the tracking API's
/// `artifacts/list` (under each MLflow prefix), and the UI's `upload-artifact` (ajax) and `/get-artifact`. Paths
/// are checked by TallyTracking (MLflow's `validate_path_is_safe`); bodies are streamed, never held whole.
struct ArtifactRoutes {
    let endpoints: Endpoints

    /// `artifacts` and `artifacts/**` of the proxied API.
    func addProxied(to t: RouteTable) {
        let s = endpoints.service, pool = endpoints.pool
        t.on("artifacts/**", .put, access: .needs(.update, .artifactPath)) { request, _ in
            let path = Self.proxiedPath(request)
            let up = try await pool.run { try s.uploadProxiedArtifact(path: path) }
            _ = try await Self.stream(request, into: up, pool: pool, limit: nil)
            return Response(status: .ok)
        }
        t.on("artifacts/**", .get, access: .needs(.read, .artifactPath)) { request, _ in
            let path = Self.proxiedPath(request)
            return try await Self.download(try await pool.run { try s.openProxiedArtifact(path: path) }, name: path, pool: pool)
        }
        t.on("artifacts/**", .delete, access: .needs(.delete, .artifactPath)) { request, _ in
            let path = Self.proxiedPath(request)
            try await pool.run { try s.deleteProxiedArtifact(path: path) }
            return Endpoints.ok(Endpoints.empty)
        }
        // The router folds empty path components: `artifacts//etc` arrives at `artifacts`, and is the absolute `/etc`,
        // which TallyTracking refuses ("Invalid path"), as MLflow does.
        t.on("artifacts", .put, .delete, access: .user) { request, _ in
            try ArtifactStore.checkPath(Self.proxiedPath(request))
            throw MLflowError.methodNotAllowed(request, allowed: [.get, .head])
        }
        t.on("artifacts", .get, access: .needs(.read, .artifactPath)) { request, _ in
            let extra = Self.proxiedPath(request)
            if !extra.isEmpty { try ArtifactStore.checkPath(extra) }
            let path = PercentDecoding.query(request.uri.query ?? "")["path"]?.last
            return Endpoints.ok(try await pool.run { Self.listing(try s.listProxiedArtifacts(path: path)) })
        }
    }

    /// Uploads in parts and presigned downloads of the proxied API (MLflow's `mpu/create`, `mpu/complete`,
    /// `mpu/abort` and `presigned`): the bytes go between the client and S3, the server signs. Starting, completing
    /// and aborting need the experiment's update permission, as uploads do; a presigned download its read permission.
    func addParts(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("mpu/create/**", .post, access: .needs(.update, .artifactPath)) { request, context in
            let path = Self.proxiedPath(request)
            return try await e.json { r in
                Self.multipartStart(try s.startProxiedMultipartUpload(path: path, file: try r.string("path", required: true)!, parts: try r.int64("num_parts")))
            }(request, context)
        }
        t.on("mpu/complete/**", .post, access: .needs(.update, .artifactPath)) { request, context in
            let path = Self.proxiedPath(request)
            // MLflow's client sends each part's presigned URL back: ~0.6 KB a part, several with session tokens.
            return try await e.json(limit: max(e.largeBody, S3Client.maxParts * 4096)) { r in
                let parts = try r.objects("parts").enumerated().map { i, o in
                    let part = MLflowRequest(body: o, query: [:])
                    return (number: try part.int64("part_number") ?? 0, etag: try part.string("etag") ?? "")
                }
                try s.completeProxiedMultipartUpload(path: path, file: try r.string("path", required: true)!, uploadID: try r.string("upload_id") ?? "",
                                                     parts: parts)
                return Endpoints.empty
            }(request, context)
        }
        t.on("mpu/abort/**", .post, access: .needs(.update, .artifactPath)) { request, context in
            let path = Self.proxiedPath(request)
            return try await e.json { r in
                try s.abortProxiedMultipartUpload(path: path, file: try r.string("path", required: true)!, uploadID: try r.string("upload_id") ?? "")
                return Endpoints.empty
            }(request, context)
        }
        t.on("presigned/**", .get, access: .needs(.read, .artifactPath)) { request, context in
            let path = Self.proxiedPath(request)
            return try await e.json { _ in
                let (url, size) = try s.presignedProxiedDownload(path: path)
                return "{\"url\": \(JSONText.quote(url)), \"headers\": {}, \"file_size\": \(size)}"
            }(request, context)
        }
    }

    /// `{"upload_id": …, "credentials": [{"url": …, "part_number": n}, …]}` (no `headers`: MLflow leaves the empty
    /// map out).
    static func multipartStart(_ m: ArtifactStore.MultipartStart) -> String {
        var o = Obj()
        o.add("upload_id", m.uploadID)
        o.add("credentials", array: m.credentials.map { c in "{\"url\": \(JSONText.quote(c.url)), \"part_number\": \(c.partNumber)}" })
        return o.json
    }

    /// `artifacts/list` of the tracking API, and the presigned URLs of a run's own root in S3.
    func addTracking(to t: RouteTable) {
        let s = endpoints.service
        t.on("artifacts/list", .get, access: .needs(.read, .runField), use: endpoints.json { r in
            Self.listing(try s.listArtifacts(runID: try r.runID(), path: try r.string("path")))
        })
        // A run's or a logged model's: UPDATE on its experiment, checked by the service once it knows which.
        t.on("artifacts/presigned-upload-url", .post, access: .user, use: endpoints.json { r in
            Self.presigned(try s.presignedRunUpload(runID: try r.string("run_id"), modelID: try r.string("model_id"),
                                                    path: try r.string("path", required: true)!, expiration: try r.int64("expiration"), scope: r.grants))
        })
        t.on("artifacts/presigned-download-url", .post, access: .needs(.read, .runField), use: endpoints.json { r in
            Self.presigned(try s.presignedRunDownload(runID: try r.string("run_id", required: true)!, path: try r.string("path", required: true)!,
                                                      expiration: try r.int64("expiration")))
        })
    }

    /// `{"presigned_url": …, "headers": {…}, "file_size": n}` (empty headers and no size left out, as MLflow's proto
    /// JSON leaves them out).
    static func presigned(_ p: TrackingService.PresignedURL) -> String {
        var o = Obj()
        o.add("presigned_url", p.url)
        if !p.headers.isEmpty {
            o.add("headers", raw: "{" + p.headers.map { JSONText.quote($0.0) + ": " + JSONText.quote($0.1) }.joined(separator: ", ") + "}")
        }
        if let size = p.fileSize { o.add("file_size", Int64(size)) }
        return o.json
    }

    /// The UI's `upload-artifact` (ajax prefix): `?run_uuid=…&path=…`, the raw file as the body (at most 10 MB).
    func addUIUpload(to t: RouteTable) {
        let s = endpoints.service, pool = endpoints.pool
        t.on("upload-artifact", .post, access: .needs(.update, .runQuery(["run_uuid"]))) { request, _ in
            let q = PercentDecoding.query(request.uri.query ?? "")
            let length = request.headers[.contentLength].flatMap { Int($0) }
            let up = try await pool.run { try s.uploadRunArtifact(runID: q["run_uuid"]?.last, path: q["path"]?.last, declaredLength: length) }
            let written = try await Self.stream(request, into: up, pool: pool, limit: TrackingService.maxUIUploadBytes)
            guard written > 0 else { throw TrackingService.uploadWithoutData }
            return Endpoints.ok(Endpoints.empty)
        }
    }

    /// The UI's `/get-artifact?run_id=…&path=…` (`run_uuid` also accepted).
    func addUIDownload(to t: RouteTable) {
        let s = endpoints.service, pool = endpoints.pool
        t.on("get-artifact", .get, access: .needs(.read, .runQuery(["run_id", "run_uuid"]))) { request, _ in
            let q = PercentDecoding.query(request.uri.query ?? "")
            let path = q["path"]?.last
            let reader = try await pool.run { try s.openRunArtifact(runID: q["run_id"]?.last, runUUID: q["run_uuid"]?.last, path: path) }
            return try await Self.download(reader, name: path ?? "artifact", pool: pool)
        }
    }

    /// The route families of the proxied API whose paths end in a store-relative path, by path component.
    static let families: [[Substring]] = [["artifacts"], ["mpu", "create"], ["mpu", "complete"], ["mpu", "abort"], ["presigned"]]

    /// The store-relative path of a proxied artifact request (``proxiedTarget(_:)``; empty when it names none).
    static func proxiedPath(_ request: Request) -> String { proxiedTarget(request) ?? "" }

    /// The store-relative path of a proxied artifact request, `nil` for a path outside the families (the listing's
    /// `artifacts`): the raw request path after `/mlflow-artifacts/` and its family (`artifacts`, `mpu/create`, …),
    /// percent-decoded. The family's components are matched as the router matches them, skipping empty ones (so
    /// `mpu//create/1/x` is the path `1/x` here, as it is to the router); after it, empty components are kept (so
    /// `artifacts//etc` is the absolute `/etc` that TallyTracking refuses, as MLflow does), and a trailing `/` is
    /// kept (it makes uploads fail).
    static func proxiedTarget(_ request: Request) -> String? {
        let raw = request.uri.path
        guard let r = raw.firstRange(of: "/mlflow-artifacts/") else { return nil }
        let parts = raw[r.upperBound...].split(separator: "/", omittingEmptySubsequences: false)
        for family in families {
            var i = 0
            var matched = true
            for name in family {
                while i < parts.count, parts[i].isEmpty { i += 1 }
                guard i < parts.count, parts[i] == name else {
                    matched = false
                    break
                }
                i += 1
            }
            // The family must be followed by a `/` (the listing's bare `artifacts` is not a path).
            guard matched, i < parts.count else { continue }
            return PercentDecoding.decode(Substring(parts[i...].joined(separator: "/")), plusIsSpace: false)
        }
        return nil
    }

    /// Streams a request body into an upload (aborted on any error); returns the bytes written. Over `limit`, the
    /// upload is refused with MLflow's size message.
    static func stream(_ request: Request, into up: ArtifactStore.Upload, pool: BlockingPool, limit: Int?) async throws -> Int {
        var written = 0
        do {
            var body = request.body.makeAsyncIterator()
            while true {
                let chunk: ByteBuffer?
                do {
                    chunk = try await body.next()
                } catch {
                    throw MLflowError(RequestRules.unreadableBody("\(error)"))  // the client's broken body: a 400
                }
                guard let chunk else { break }
                written += chunk.readableBytes
                if let limit, written > limit { throw TrackingService.uploadTooLarge }
                try chunk.withUnsafeReadableBytes { try up.write($0) }
            }
            if written == 0 && limit != nil {
                up.abort()
                return 0
            }
            try await pool.run { try up.finish() }
        } catch {
            up.abort()
            throw error
        }
        return written
    }

    /// A file as an attachment, streamed in 256 KiB reads.
    static func download(_ reader: ArtifactStore.Reader, name path: String, pool: BlockingPool) async throws -> Response {
        let size = reader.size
        let body = ResponseBody(contentLength: size) { writer in
            var offset = 0
            while offset < size {
                let at = offset
                let bytes = try await pool.run { try reader.read(at: at, count: min(256 << 10, size - at)) }
                guard !bytes.isEmpty else { throw TrackingError(.internalError, "artifact \(path) shrank while being read") }
                offset += bytes.count
                try await writer.write(ByteBuffer(bytes: bytes))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: ArtifactStore.contentType(path), .contentDisposition: ArtifactStore.contentDisposition(path),
                                               .init("X-Content-Type-Options")!: "nosniff"], body: body)
    }

    /// `{"root_uri": …, "files": [...]}` (each part omitted when absent or empty, as MLflow does).
    static func listing(_ l: ArtifactListing) -> String {
        var o = Obj()
        o.add("root_uri", l.rootURI)
        o.add("files", array: l.files.map { e in
            e.isDir ? "{\"path\": \(JSONText.quote(e.name)), \"is_dir\": true}"
                : "{\"path\": \(JSONText.quote(e.name)), \"is_dir\": false, \"file_size\": \(e.size)}"
        })
        return o.json
    }
}
