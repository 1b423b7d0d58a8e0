import NIOHTTP1

/// MLflow's presigned URLs of a run's (or a logged model's) own artifact root (`artifacts/presigned-upload-url`,
/// `artifacts/presigned-download-url`, which AWS's SageMaker client calls): only for roots in object storage the
/// server can sign for (`s3://`, with the server's S3 endpoint and credentials). A proxied root (`mlflow-artifacts:`)
/// is refused with MLflow's message, since its bytes go through the proxy's own API; any other root with MLflow's
/// `NOT_IMPLEMENTED`.
extension TrackingService {
    /// Seconds a presigned upload URL is valid unless the request says (MLflow's default).
    public static let uploadURLSeconds: Int64 = 900

    /// A presigned URL and the headers its user must send with it.
    public struct PresignedURL: Sendable {
        /// The URL.
        public var url: String
        /// Headers signed with it (`Content-Type` of an upload).
        public var headers: [(String, String)]
        /// The file's size (downloads).
        public var fileSize: Int?
    }

    /// `artifacts/presigned-upload-url`: a URL that PUTs `path` under the artifact root of the run `runID` or of the
    /// logged model `modelID` (exactly one), valid `expiration` seconds (default 900). UPDATE on its experiment.
    public func presignedRunUpload(runID: String?, modelID: String?, path: String, expiration: Int64?, scope: Grants = .unrestricted) throws
        -> PresignedURL {
        let run = runID.flatMap { $0.isEmpty ? nil : $0 }, model = modelID.flatMap { $0.isEmpty ? nil : $0 }
        guard (run == nil) != (model == nil) else { throw TrackingError.invalid("Exactly one of run_id and model_id must be provided.") }
        try ArtifactStore.checkPath(path)
        let seconds = try Self.presignedSeconds(expiration ?? Self.uploadURLSeconds)
        let root: String, experiment: String
        if let run {
            let info = try self.run(id: run).info
            (root, experiment) = (info.artifactURI, info.experimentID)
        } else {
            let m = try loggedModel(id: model!)
            (root, experiment) = (m.artifactURI, m.experimentID)
        }
        try scope.require(.update, on: .experiment(experiment))
        let (client, location, owned) = try directRoot(root, proxied: "Presigned upload is not supported for proxied artifact storage",
                                                       unsupported: "Presigned upload is not supported for the current artifact repository")
        defer { if owned { client.close() } }
        let key = try ArtifactStore.objectKey(location, path)
        let headers = [("Content-Type", ArtifactStore.contentType(path))]
        return PresignedURL(url: client.presignedURL(.PUT, bucket: location.bucket, key: key, headers: headers, expires: seconds), headers: headers)
    }

    /// `artifacts/presigned-download-url`: a URL that GETs `path` of the run's artifact root (as an attachment named
    /// after it), valid `expiration` seconds (default: the proxy's download lifetime), and the file's size. READ on
    /// the run's experiment (checked by the route).
    public func presignedRunDownload(runID: String, path: String, expiration: Int64?) throws -> PresignedURL {
        try ArtifactStore.checkPath(path)
        let seconds = try Self.presignedSeconds(expiration ?? Int64(artifacts?.downloadURLSeconds ?? ArtifactStore.defaultDownloadURLSeconds))
        let root = try run(id: runID).info.artifactURI
        let (client, location, owned) = try directRoot(root, proxied: "Presigned download is not supported for runs with proxied artifact storage",
                                                       unsupported: "Presigned download is not supported for the current artifact repository",
                                                       run: true)
        defer { if owned { client.close() } }
        let key = try ArtifactStore.objectKey(location, path)
        guard let size = try client.size(bucket: location.bucket, key: key) else { throw ArtifactStore.missing(path) }
        let url = client.presignedURL(.GET, bucket: location.bucket, key: key,
                                      query: [("response-content-disposition", ArtifactStore.contentDisposition(key))], expires: seconds)
        return PresignedURL(url: url, headers: [], fileSize: size)
    }

    /// MLflow's bounds of a presigned URL's lifetime: S3 refuses more than 7 days when the URL is used.
    static func presignedSeconds(_ s: Int64) throws -> Int {
        let lifetimes = ArtifactStore.presignedLifetimes
        guard let seconds = Int(exactly: s), lifetimes.contains(seconds) else {
            throw TrackingError.invalid("expiration must be between \(lifetimes.lowerBound) and \(lifetimes.upperBound) seconds (got \(s)).")
        }
        return seconds
    }

    /// A client of the server's S3 endpoint for an `s3://` root, and the root's location; MLflow's refusals for a
    /// proxied root (400) and for any other (501). The client is the proxied store's when it has one (the same
    /// endpoint and credentials, from the environment); otherwise one made for the request (`owned`: the caller
    /// closes it).
    func directRoot(_ root: String, proxied: String, unsupported: String, run: Bool = false) throws -> (client: S3Client, location: S3Location, owned: Bool) {
        let scheme = root.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        if root.contains(":"), ["http", "https", "mlflow-artifacts"].contains(scheme) {
            throw TrackingError.invalid("\(proxied) (artifact URI scheme: \(scheme)). This endpoint requires "
                + (run ? "a run with a direct cloud storage artifact URI." : "a direct cloud storage artifact URI."))
        }
        guard let location = S3Location(uri: root) else { throw TrackingError(.notImplemented, unsupported) }
        if let client = artifacts?.objectClient { return (client, location, false) }
        return (try S3Client(), location, true)
    }
}
