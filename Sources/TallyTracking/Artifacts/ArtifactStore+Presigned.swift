import NIOHTTP1

/// Artifact bytes that bypass the server: a client uploads a large file in parts straight to S3 through presigned
/// URLs, and downloads through a presigned URL by byte ranges, while the server only starts, completes or aborts the
/// upload and signs. Only object storage can; a store on disk refuses with ``multipartUnsupported`` and
/// ``presignedDownloadUnsupported``, the errors MLflow's client recognises and falls back from (to the proxied API).
extension ArtifactStore {
    /// Whether uploads in parts and presigned downloads are offered: an S3 store whose URLs may be handed out.
    public var presigns: Bool {
        if case .s3 = backend { return presignedURLs }
        return false
    }

    /// One part's upload URL (a presigned `UploadPart`).
    public struct PartCredential: Sendable, Equatable {
        /// The part's number, from 1.
        public var partNumber: Int
        /// The URL to PUT the part's bytes to.
        public var url: String
    }

    /// A started multipart upload: its id and a URL per part.
    public struct MultipartStart: Sendable {
        /// S3's upload id, which completes or aborts it.
        public var uploadID: String
        /// The parts' upload URLs, by part number.
        public var credentials: [PartCredential]
    }

    /// MLflow's refusal of uploads in parts by a store that cannot (its client then uploads through the proxy).
    public static let multipartUnsupported = TrackingError(.notImplemented, "Multipart upload is not supported for the current artifact repository")
    /// MLflow's refusal of a presigned download by a store that cannot.
    public static let presignedDownloadUnsupported = TrackingError(.notImplemented, "Multipart download is not supported for the current artifact repository")

    /// The client of an S3 store (`nil` on disk): the server's S3 endpoint and credentials, for other requests of
    /// the same endpoint too.
    var objectClient: S3Client? {
        if case .s3(let client, _, _, _) = backend { return client }
        return nil
    }

    /// The S3 client and location, when this store may hand out URLs of it; otherwise `unsupported`.
    private func presigning(_ unsupported: TrackingError) throws -> (S3Client, S3Location, DirectoryKeys) {
        guard presignedURLs, case .s3(let client, let location, _, let dirs) = backend else { throw unsupported }
        return (client, location, dirs)
    }

    /// Starts an upload of `relative` (a file name, checked as ``upload(_:)`` checks it) in `parts` parts, each with
    /// a URL valid for `expires` seconds.
    public func startMultipartUpload(_ relative: String, parts: Int, expires: Int) throws -> MultipartStart {
        guard (1...S3Client.maxParts).contains(parts), expires >= 1 else {
            throw TrackingError(.invalidParameterValue, "An upload in parts has 1 to \(S3Client.maxParts) parts and URLs valid for a second or more")
        }
        let (client, location, dirs) = try presigning(Self.multipartUnsupported)
        let key = try Self.objectTarget(client, location, dirs, relative)
        let id = try client.initiateMultipart(bucket: location.bucket, key: key, contentType: Self.contentType(key))
        let credentials = (1...parts).map { n in
            PartCredential(partNumber: n, url: client.presignedURL(.PUT, bucket: location.bucket, key: key,
                                                                   query: [("partNumber", String(n)), ("uploadId", id)], expires: expires))
        }
        return MultipartStart(uploadID: id, credentials: credentials)
    }

    /// Completes the upload `uploadID` of `relative` from the parts the client sent (number and ETag, in order).
    public func completeMultipartUpload(_ relative: String, uploadID: String, parts: [(number: Int, etag: String)]) throws {
        let (client, location, dirs) = try presigning(Self.multipartUnsupported)
        let key = try Self.objectKey(location, relative)
        try client.completeClientMultipart(bucket: location.bucket, key: key, uploadID: uploadID, parts: parts)
        dirs.forget(key)
    }

    /// Abandons the upload `uploadID` of `relative`: S3 drops the parts it holds.
    public func abortMultipartUpload(_ relative: String, uploadID: String) throws {
        let (client, location, _) = try presigning(Self.multipartUnsupported)
        try client.abortClientMultipart(bucket: location.bucket, key: try Self.objectKey(location, relative), uploadID: uploadID)
    }

    /// A URL that downloads the file `relative` (as an attachment named after it) for `expires` seconds, and the
    /// file's size; the errors of ``open(_:)`` for a missing file or a directory.
    public func presignedDownload(_ relative: String, expires: Int) throws -> (url: String, size: Int) {
        let (client, location, _) = try presigning(Self.presignedDownloadUnsupported)
        let reader = try Self.objectOpen(client, location, relative)
        guard case .object(_, let bucket, let key) = reader.source else { throw Self.presignedDownloadUnsupported }
        let url = client.presignedURL(.GET, bucket: bucket, key: key, query: [("response-content-disposition", Self.contentDisposition(key))],
                                      expires: expires)
        return (url, reader.size)
    }
}
