/// Artifacts under a prefix in S3 (an MLflow server's `s3://` artifact root), read with ``S3Client``.
public struct S3ArtifactTree: ArtifactTree {
    /// The client (its endpoint and credentials from the environment, as MLflow's own S3 artifact store takes them).
    public let client: S3Client
    /// The root.
    public let location: S3Location

    /// The tree under `location`.
    public init(client: S3Client, location: S3Location) {
        self.client = client
        self.location = location
    }

    public func walk(_ body: (String, Int) throws -> Void) throws -> [String] {
        let prefix = ArtifactStore.under(location.prefix)
        var skipped: [String] = []
        try client.list(bucket: location.bucket, prefix: prefix, delimiter: nil) { page in
            for o in page.objects {
                let rel = String(o.key.dropFirst(prefix.count))
                if rel.isEmpty || rel.hasSuffix("/") { continue }  // directory markers
                if rel.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                    skipped.append("s3://\(location.bucket)/\(o.key): not a file path")
                    continue
                }
                try body(rel, o.size)
            }
        }
        return skipped
    }

    public func read(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let key = location.key(path)
        guard let size = try client.size(bucket: location.bucket, key: key) else {
            throw TrackingError(.internalError, "Cannot read artifact s3://\(location.bucket)/\(key): it is gone")
        }
        var offset = 0
        repeat {
            let end = min(size, offset + (8 << 20))
            guard let bytes = try client.get(bucket: location.bucket, key: key, range: offset..<end), bytes.count == end - offset else {
                throw TrackingError(.internalError, "Cannot read artifact s3://\(location.bucket)/\(key): it changed while being read")
            }
            try bytes.withUnsafeBytes(body)
            offset = end
        } while offset < size
    }
}
