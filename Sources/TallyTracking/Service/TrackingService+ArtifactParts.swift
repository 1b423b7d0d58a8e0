/// MLflow's multipart-upload and presigned-download API of proxied artifacts (`mlflow-artifacts/mpu/…`,
/// `mlflow-artifacts/presigned/…`): what a request may ask and where the file goes. The bytes move between the
/// client and S3 (``ArtifactStore/startMultipartUpload(_:parts:expires:)``); a store on disk answers MLflow's
/// `NOT_IMPLEMENTED`, from which MLflow's client falls back to the proxied API.
extension TrackingService {
    /// Seconds a part's upload URL is valid (boto3's default, which MLflow's server uses).
    public static let partURLSeconds = 3600
    /// The proxied path of an upload in parts: the base name of the client's local `file` (after its last `/` or
    /// `\`, so a Windows client's path works too) under the directory `path`, as MLflow joins them.
    /// `path` may not be empty: a file at the store's root would stand outside every experiment.
    static func partsTarget(path: String, file: String) throws -> String {
        try ArtifactStore.checkPath(path)
        guard !path.isEmpty else { throw ArtifactStore.invalidPath() }
        let base = file.split(separator: "/", omittingEmptySubsequences: false).last!
            .split(separator: "\\", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        guard !base.isEmpty, base != ".", base != ".." else { throw ArtifactStore.filenameRequired }
        return (path.hasSuffix("/") ? path : path + "/") + base
    }

    /// The proxied store and the target of an upload in parts (``partsTarget(path:file:)``), or MLflow's
    /// `NOT_IMPLEMENTED` when the store cannot take parts: the path is checked first, as MLflow checks it.
    func partsStore(path: String, file: String) throws -> (store: ArtifactStore, target: String) {
        let target = try Self.partsTarget(path: path, file: file)
        let store = try proxiedStore()
        guard store.presigns else { throw ArtifactStore.multipartUnsupported }
        return (store, target)
    }

    /// `mpu/create/<path>`: starts an upload of the file `file` into the directory `path` in `parts` parts
    /// (1 to 10,000, S3's bounds), with a presigned URL per part.
    public func startProxiedMultipartUpload(path: String, file: String, parts: Int64?) throws -> ArtifactStore.MultipartStart {
        let (store, target) = try partsStore(path: path, file: file)
        guard let parts, (1...Int64(S3Client.maxParts)).contains(parts) else {
            throw TrackingError.invalid("num_parts must be between 1 and \(S3Client.maxParts), got \(parts.map(String.init) ?? "none")")
        }
        return try store.startMultipartUpload(target, parts: Int(parts), expires: Self.partURLSeconds)
    }

    /// `mpu/complete/<path>`: completes the upload `uploadID` from the parts the client sent, each a number
    /// (1 to 10,000) and the ETag S3 gave it, in ascending order.
    public func completeProxiedMultipartUpload(path: String, file: String, uploadID: String, parts: [(number: Int64, etag: String)]) throws {
        let (store, target) = try partsStore(path: path, file: file)
        guard !uploadID.isEmpty else { throw Validation.missing("upload_id") }
        guard !parts.isEmpty else { throw Validation.missing("parts") }
        var last: Int64 = 0
        for (i, p) in parts.enumerated() {
            guard (1...Int64(S3Client.maxParts)).contains(p.number), p.number > last else {
                throw TrackingError.invalid("parts[\(i)].part_number must be between 1 and \(S3Client.maxParts) and ascending, got \(p.number)")
            }
            guard !p.etag.isEmpty else { throw Validation.missing("parts[\(i)].etag") }
            last = p.number
        }
        try store.completeMultipartUpload(target, uploadID: uploadID, parts: parts.map { (Int($0.number), $0.etag) })
    }

    /// `mpu/abort/<path>`: abandons the upload `uploadID`, so S3 drops its parts.
    public func abortProxiedMultipartUpload(path: String, file: String, uploadID: String) throws {
        let (store, target) = try partsStore(path: path, file: file)
        guard !uploadID.isEmpty else { throw Validation.missing("upload_id") }
        try store.abortMultipartUpload(target, uploadID: uploadID)
    }

    /// `presigned/<path>`: a URL the client downloads the file from directly (by byte ranges), and its size.
    public func presignedProxiedDownload(path: String) throws -> (url: String, size: Int) {
        try ArtifactStore.checkPath(path)
        let store = try proxiedStore()
        guard store.presigns else { throw ArtifactStore.presignedDownloadUnsupported }
        return try store.presignedDownload(path, expires: store.downloadURLSeconds)
    }
}
