/// What `GET /api/3.0/mlflow/server-info` reports: the capabilities the MLflow client checks.
public struct ServerInfo: Sendable {
    /// The store type MLflow's client expects of a SQL-backed server.
    public var storeType = "SqlStore"
    /// Workspaces (MLflow 3.x) are not used.
    public var workspacesEnabled = false
    /// Whether large files may go up in parts straight to object storage (`mpu/create`): an S3 store that presigns.
    public var multipartUploadsEnabled = false
    /// Whether downloads may come straight from object storage by presigned URL (`presigned/…`).
    public var multipartDownloadsEnabled = false
    /// Artifacts are proxied (`mlflow-artifacts:`).
    public var artifactServingEnabled = true
    /// Not presigned-only.
    public var artifactsPresignedOnly = false
}

/// An artifact listing: the run's root URI (tracking API only) and the entries, with paths as MLflow returns them.
public struct ArtifactListing: Sendable {
    /// The run's `artifact_uri` (`nil` for the proxied API's listing).
    public var rootURI: String?
    /// Entries: `path` relative to the run root (tracking API) or a bare name (proxied API).
    public var files: [ArtifactStore.Entry]
}

extension TrackingService {
    /// The capabilities `server-info` reports.
    public var serverInfo: ServerInfo {
        var info = ServerInfo()
        info.artifactServingEnabled = artifacts != nil
        info.multipartUploadsEnabled = artifacts?.presigns ?? false
        info.multipartDownloadsEnabled = info.multipartUploadsEnabled
        return info
    }

    /// The scheme of proxied artifact roots (`--default-artifact-root mlflow-artifacts:`).
    public static let proxiedScheme = "mlflow-artifacts:"
    /// Largest body of the UI's `upload-artifact` (MLflow: 10 MB).
    public static let maxUIUploadBytes = 10 * 1024 * 1024

    /// The proxied store, or MLflow's error when the server does not serve artifacts.
    func proxiedStore() throws -> ArtifactStore {
        guard let artifacts else { throw TrackingError(.badRequest, "This server does not serve artifacts (no artifact store configured)") }
        return artifacts
    }

    /// The store-relative directory of a run's proxied artifact root, `nil` when the run's artifacts live elsewhere.
    public static func proxiedRoot(of uri: String) -> String? {
        guard uri.hasPrefix(proxiedScheme) else { return nil }
        return String(uri.dropFirst(proxiedScheme.count).drop { $0 == "/" })
    }

    /// The store-relative path of `path` inside a run's artifacts. The client's path is checked before it is joined
    /// to the run's root (``ArtifactStore/checkPath(_:)``: the joined path would hide an absolute one).
    func runArtifactPath(runID: String, path: String) throws -> String {
        try ArtifactStore.checkPath(path)
        let uri = try run(id: runID).info.artifactURI
        guard let root = Self.proxiedRoot(of: uri) else {
            throw TrackingError.invalid("The artifacts of run \(runID) are not served by this server (artifact URI \(uri))")
        }
        return path.isEmpty ? root : root + "/" + path
    }

    /// The tracking API's `artifacts/list`: entries under `path` of the run's artifacts, paths relative to the run
    /// root. Runs whose artifacts are not proxied answer their root URI only.
    public func listArtifacts(runID: String, path: String?) throws -> ArtifactListing {
        try listArtifacts(root: try run(id: runID).info.artifactURI, path: path)
    }

    /// A logged model's artifacts under `path` (`logged-models/{id}/artifacts/directories`, the UI's listing).
    public func listLoggedModelArtifacts(id: String, path: String?) throws -> ArtifactListing {
        try listArtifacts(root: try loggedModel(id: id).artifactURI, path: path)
    }

    /// The entries under `path` of an artifact root URI (only proxied roots can be listed here).
    func listArtifacts(root uri: String, path: String?) throws -> ArtifactListing {
        if let path { try ArtifactStore.checkPath(path) }
        guard let root = Self.proxiedRoot(of: uri) else { return ArtifactListing(rootURI: uri, files: []) }
        let sub = path ?? ""
        let entries = try proxiedStore().list(sub.isEmpty ? root : root + "/" + sub)
        let prefix = sub.isEmpty ? "" : sub + "/"
        return ArtifactListing(rootURI: uri, files: entries.map { e in
            var e = e
            e.name = prefix + e.name
            return e
        })
    }

    // The proxied API's paths go to the store as they are: every store operation checks its path
    // (``ArtifactStore/checkPath(_:)``) before touching the file system.

    /// The proxied API's listing (`GET /api/2.0/mlflow-artifacts/artifacts?path=`): entries by bare name.
    public func listProxiedArtifacts(path: String?) throws -> ArtifactListing {
        ArtifactListing(rootURI: nil, files: try proxiedStore().list(path ?? ""))
    }

    /// Starts an upload to a proxied path (PUT on the proxied API).
    public func uploadProxiedArtifact(path: String) throws -> ArtifactStore.Upload { try proxiedStore().upload(path) }

    /// Opens a proxied file for download.
    public func openProxiedArtifact(path: String) throws -> ArtifactStore.Reader { try proxiedStore().open(path) }

    /// Deletes a proxied file or directory.
    public func deleteProxiedArtifact(path: String) throws { try proxiedStore().delete(path) }

    /// The UI's `get-artifact`: opens `path` of a run's artifacts (the run from `run_id`, else `run_uuid`).
    public func openRunArtifact(runID: String?, runUUID: String?, path: String?) throws -> ArtifactStore.Reader {
        guard let runID = runID.flatMap({ $0.isEmpty ? nil : $0 }) ?? runUUID, !runID.isEmpty else { throw Validation.missing("run_id") }
        guard let path else { throw Validation.missing("path") }
        return try proxiedStore().open(try runArtifactPath(runID: runID, path: path))
    }

    /// The UI's `upload-artifact` checks (MLflow's order and messages), before the body is read: returns the upload.
    /// `declaredLength` is the request's Content-Length when it has one.
    public func uploadRunArtifact(runID: String?, path: String?, declaredLength: Int?) throws -> ArtifactStore.Upload {
        guard let runID, !runID.isEmpty else { throw TrackingError.invalid("Request must specify run_uuid.") }
        guard let path, !path.isEmpty else { throw TrackingError.invalid("Request must specify path.") }
        try ArtifactStore.checkPath(path)
        if let n = declaredLength, n > Self.maxUIUploadBytes { throw Self.uploadTooLarge }
        if declaredLength == 0 { throw Self.uploadWithoutData }  // MLflow reads the body before looking up the run
        return try proxiedStore().upload(try runArtifactPath(runID: runID, path: path))
    }

    /// `upload-artifact` over its size limit.
    public static let uploadTooLarge = TrackingError.invalid("Artifact size is too large. Max size is 10MB.")
    /// `upload-artifact` without a body.
    public static let uploadWithoutData = TrackingError.invalid("Request must specify data.")
}
