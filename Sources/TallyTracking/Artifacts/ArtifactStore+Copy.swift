/// Copying a whole store: moving a single server's artifacts into object storage (`tally artifacts migrate`).
extension ArtifactStore {
    /// What ``copyAll(to:progress:)`` did.
    public struct CopySummary: Sendable, Equatable {
        /// Files copied.
        public var copied = 0
        /// Bytes copied.
        public var bytes: Int64 = 0
        /// Files the target already held with the same size (a rerun's finished work).
        public var present = 0
        /// Files in the source.
        public var total = 0
        /// Files listed that were deleted before they were copied (a store in use).
        public var vanished = 0

        /// Nothing copied yet.
        public init() {}
    }

    /// Copies every file of this store into `target` under the same path, skipping those `target` already holds
    /// with the same size, so an interrupted copy rerun finishes it and a later one catches up. `progress` is called
    /// after each file with the summary so far.
    public func copyAll(to target: ArtifactStore, progress: (CopySummary) -> Void = { _ in }) throws -> CopySummary {
        let have = Dictionary(try target.files(under: "").map { ($0.path, $0.size) }, uniquingKeysWith: { a, _ in a })
        var s = CopySummary()
        let files = try self.files(under: "")
        s.total = files.count
        for (path, size) in files {
            if have[path] == size {
                s.present += 1
            } else {
                let reader: Reader
                do {
                    reader = try open(path)
                } catch let e as TrackingError where e.code == .resourceDoesNotExist {
                    s.vanished += 1  // deleted since the listing: nothing to copy
                    progress(s)
                    continue
                }
                let up = try target.upload(path)
                do {
                    var offset = 0
                    while offset < reader.size {
                        let chunk = try reader.read(at: offset, count: min(1 << 20, reader.size - offset))
                        guard !chunk.isEmpty else { throw TrackingError(.internalError, "artifact \(path) shrank while being copied") }
                        try chunk.withUnsafeBytes { try up.write($0) }
                        offset += chunk.count
                    }
                    try up.finish()
                } catch {
                    up.abort()
                    throw error
                }
                s.copied += 1
                s.bytes += Int64(size)
            }
            progress(s)
        }
        return s
    }
}
