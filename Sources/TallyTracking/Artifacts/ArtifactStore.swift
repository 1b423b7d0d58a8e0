import Foundation
import TallyStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Proxied artifacts (`--artifacts-destination`): a directory on this machine, or a bucket prefix in S3
/// (`s3://bucket/prefix`, ``S3Client``). Every path is checked the same way whatever the backend
/// (``checkPath(_:)``); on disk it is also confined to the root: `..`, absolute paths, empty components and symlinks
/// leading out are refused.
public struct ArtifactStore: Sendable {
    /// Where the files are.
    enum Backend: Sendable {
        /// Under a directory (its real path).
        case local(String)
        /// Under a bucket prefix; uploads are spooled in the directory `spool` first.
        case s3(S3Client, S3Location, spool: String, directories: DirectoryKeys)
    }

    let backend: Backend
    /// Whether presigned URLs of an S3 store may be handed to clients (``presigns``): off when clients cannot reach
    /// the bucket, so every byte goes through the proxy.
    public var presignedURLs = true
    /// Seconds a presigned download URL is valid (MLflow's `MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS`; within
    /// ``presignedLifetimes``).
    public var downloadURLSeconds = Self.defaultDownloadURLSeconds
    /// MLflow's default lifetime of a presigned download URL, in seconds.
    public static let defaultDownloadURLSeconds = 300
    /// The lifetimes a presigned URL may have, in seconds: S3 refuses more than 7 days when the URL is used.
    public static let presignedLifetimes = 1...604_800

    /// The root directory, or the `s3://` URI of the root.
    public var root: String {
        switch backend {
        case .local(let dir): dir
        case .s3(_, let location, _, _): location.description
        }
    }

    /// The root directory when the files are on this machine's disk; `nil` in object storage.
    public var localRoot: String? {
        if case .local(let dir) = backend { return dir }
        return nil
    }

    /// Opens (creating) the root directory.
    public init(root: String) throws {
        try Self.mkdirs(root)
        guard let real = realpath(root, nil) else { throw TrackingError(.internalError, "artifact root \(root) is not accessible") }
        backend = .local(String(cString: real))
        free(real)
    }

    /// A store under `location` in S3, uploads spooled under `spool` (created; leftovers of an earlier process
    /// removed). The bucket must exist: the error names it if not.
    public init(s3 client: S3Client, location: S3Location, spool: String) throws {
        try client.checkBucket(location.bucket)
        try Self.mkdirs(spool)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] where name.contains(".upload-") { unlink(spool + "/" + name) }
        backend = .s3(client, location, spool: spool, directories: DirectoryKeys())
    }

    /// The store `destination` names: an `s3://bucket/prefix` URI (endpoint and credentials from the environment,
    /// ``S3Endpoint/fromEnvironment(_:)``; uploads spooled under `dataDirectory/tmp`) or a directory.
    public static func open(destination: String, dataDirectory: String) throws -> ArtifactStore {
        if destination.lowercased().hasPrefix("s3://") {
            guard let location = S3Location(uri: destination) else {
                throw TrackingError(.invalidParameterValue, "'\(destination)' is not an S3 URI: use s3://bucket/prefix")
            }
            return try ArtifactStore(s3: S3Client(), location: location, spool: dataDirectory + "/tmp/artifact-uploads")
        }
        if destination.contains("://") {
            throw TrackingError(.invalidParameterValue, "Unsupported artifact destination '\(destination)': use a directory or s3://bucket/prefix")
        }
        return try ArtifactStore(root: destination)
    }

    static func invalidPath() -> TrackingError { TrackingError(.invalidParameterValue, "Invalid path") }

    /// An upload to a directory-like path.
    static let filenameRequired = TrackingError(.invalidParameterValue, "Artifact path must include a filename (cannot end with '/').")

    /// MLflow's `validate_path_is_safe`, the one check of a client's artifact path: percent-decoded until stable, it
    /// may not hold `#`, a backslash (stricter than MLflow on Linux) or NUL, a `..` component, or be absolute (POSIX,
    /// Windows drive, or a `file:` URI).
    public static func checkPath(_ path: String) throws {
        var decoded = path
        for _ in 0..<10 {
            let next = PercentDecoding.decode(Substring(decoded), plusIsSpace: false)
            if next == decoded { break }
            decoded = next
        }
        guard !decoded.lowercased().hasPrefix("file:"), !decoded.contains("#"), !decoded.contains("\\"), !decoded.contains("\0"),
            !decoded.hasPrefix("/"), !decoded.split(separator: "/", omittingEmptySubsequences: false).contains("..")
        else { throw invalidPath() }
        let scalars = Array(decoded.unicodeScalars.prefix(2))
        if scalars.count == 2, scalars[1] == ":", scalars[0].properties.isAlphabetic { throw invalidPath() }  // C: and C:\
    }

    /// Checks a root-relative path (``checkPath(_:)``) and returns its components; `.` components are dropped
    /// (MLflow accepts `./a.txt`).
    /// A name longer than file systems take (`NAME_MAX`) is refused on every backend alike.
    static func components(_ path: String) throws -> [String] {
        try checkPath(path)
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard parts.allSatisfy({ $0.utf8.count <= 255 }) else { throw invalidPath() }
        return parts
    }

    /// One directory entry.
    public struct Entry: Sendable {
        /// The base name.
        public var name: String
        /// Whether it is a directory.
        public var isDir: Bool
        /// Size in bytes (files).
        public var size: Int64
    }

    /// Starts an upload of `relative` (which must name a file).
    public func upload(_ relative: String) throws -> Upload {
        guard !relative.isEmpty else { throw Self.invalidPath() }
        switch backend {
        case .local(let root): return try Self.localUpload(root: root, relative)
        case .s3(let client, let location, let spool, let dirs): return try Self.objectUpload(client, location, spool: spool, dirs, relative)
        }
    }

    /// Entries of a directory, by name (empty when it is missing or a file).
    public func list(_ relative: String) throws -> [Entry] {
        switch backend {
        case .local(let root): try Self.localList(root: root, relative)
        case .s3(let client, let location, _, _): try Self.objectList(client, location, relative)
        }
    }

    /// Deletes a file or a directory tree.
    public func delete(_ relative: String) throws {
        switch backend {
        case .local(let root): try Self.localDelete(root: root, relative)
        case .s3(let client, let location, _, let dirs): try Self.objectDelete(client, location, dirs, relative)
        }
    }

    /// Opens a file for download: `RESOURCE_DOES_NOT_EXIST` when missing, `INVALID_PARAMETER_VALUE` for a directory.
    public func open(_ relative: String) throws -> Reader {
        switch backend {
        case .local(let root): try Self.localOpen(root: root, relative)
        case .s3(let client, let location, _, _): try Self.objectOpen(client, location, relative)
        }
    }

    /// Every file under the directory `relative` (paths relative to it, sizes), in path order; empty when there is
    /// no such directory. Links and other non-files on disk are left out.
    public func files(under relative: String) throws -> [(path: String, size: Int)] {
        switch backend {
        case .local(let root):
            let dir = try Self.resolve(root: root, relative)
            var out: [(path: String, size: Int)] = []
            TrackingService.walkFiles(dir) { out.append(($0, $1)) }
            return out.filter { !Self.isSpooled($0.path) }
        case .s3(let client, let location, _, _):
            let prefix = Self.under(try Self.objectKey(location, relative))
            return try client.list(bucket: location.bucket, prefix: prefix, delimiter: nil).objects
                .map { (String($0.key.dropFirst(prefix.count)), $0.size) }.filter { !$0.path.isEmpty && !$0.path.hasSuffix("/") }
        }
    }

    /// Calls `body` with a local file holding the artifact `relative`: the file itself on disk; a temporary copy
    /// (under `scratch`, removed afterwards) of an object.
    public func withLocalFile<R>(_ relative: String, scratch: String, _ body: (String) throws -> R) throws -> R {
        switch backend {
        case .local(let root):
            return try body(try Self.resolve(root: root, relative))
        case .s3(let client, let location, _, _):
            let temp = scratch + "/.download-\(UInt64.random(in: 0...UInt64.max))"
            defer { unlink(temp) }
            guard try client.download(bucket: location.bucket, key: try Self.objectKey(location, relative), to: temp) != nil else {
                throw Self.missing(relative)
            }
            return try body(temp)
        }
    }

    static func missing(_ relative: String) -> TrackingError { TrackingError(.resourceDoesNotExist, "No such artifact: '\(relative)'") }
    static func directory(_ relative: String) -> TrackingError {
        TrackingError(.invalidParameterValue, "Artifact path refers to a directory, not a file: '\(relative)'")
    }

    /// An open upload: chunks go to a temporary file, which ``finish()`` renames into place (on disk); for object
    /// storage each full part is sent while later chunks arrive, and ``finish()`` sends the rest.
    public final class Upload: @unchecked Sendable {  // used by one request task at a time
        /// Where the finished file goes.
        enum Target {
            case file(String)
            case object(S3Client, bucket: String, key: String)
        }
        let target: Target
        let temp: String
        let fd: Int32
        /// An object's parts on their way to S3 while the rest arrives.
        let streaming: S3Client.StreamingUpload?
        /// Bytes written so far.
        private var written = 0

        /// Set once the descriptor is closed (by `finish` or `abort`), so it is never closed twice.
        private var closed = false

        init(target: Target, temp: String) throws {
            self.target = target
            self.temp = temp
            fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                if ArtifactStore.clientPathError(errno) { throw ArtifactStore.invalidPath() }
                throw TrackingError(.internalError, "cannot create \(temp) (errno \(errno))")
            }
            if case .object(let client, let bucket, let key) = target {
                do {
                    streaming = try S3Client.StreamingUpload(client: client, bucket: bucket, key: key, contentType: ArtifactStore.contentType(key), file: temp)
                } catch {
                    close(fd)
                    unlink(temp)
                    throw error
                }
            } else {
                streaming = nil
            }
        }

        /// Appends bytes.
        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TrackingError(.internalError, "artifact write failed (errno \(errno))")
                }
                done += n
            }
            written += bytes.count
            streaming?.advance(to: written)
        }

        /// Puts the file in place: fsynced and renamed on disk, uploaded to object storage.
        public func finish() throws {
            defer {
                close(fd)
                closed = true
            }
            switch target {
            case .file(let path):
                guard fsync(fd) == 0, rename(temp, path) == 0 else {
                    let e = errno
                    unlink(temp)
                    if ArtifactStore.clientPathError(e) { throw ArtifactStore.invalidPath() }
                    throw TrackingError(.internalError, "cannot store artifact \(path) (errno \(e))")
                }
            case .object:
                defer { unlink(temp) }
                try streaming!.finish(size: written)
            }
        }

        /// Drops the partial file (a no-op after `finish`).
        public func abort() {
            guard !closed else { return }
            closed = true
            close(fd)
            unlink(temp)
            // Parts in flight end on their own; S3 is told to drop the rest, off the caller's thread.
            if let streaming { DispatchQueue.global().async { streaming.abort() } }
        }
    }

    /// An artifact opened for reading.
    public final class Reader: @unchecked Sendable {  // used by one response writer at a time
        enum Source {
            case file(Int32)
            case object(S3Client, bucket: String, key: String)
        }
        let source: Source
        /// Size in bytes.
        public let size: Int
        /// An object's bytes fetched ahead: ranged GETs of ``window`` bytes serve many small reads.
        private var cached: (offset: Int, bytes: [UInt8]) = (0, [])
        static let window = 8 << 20

        init(source: Source, size: Int) {
            self.source = source
            self.size = size
        }

        deinit { if case .file(let fd) = source { close(fd) } }

        /// Up to `count` bytes at `offset` (empty at the end).
        public func read(at offset: Int, count: Int) throws -> [UInt8] {
            switch source {
            case .file(let fd):
                return try [UInt8](unsafeUninitializedCapacity: count) { buf, n in
                    let got = pread(fd, buf.baseAddress, count, off_t(offset))
                    guard got >= 0 else { throw TrackingError(.internalError, "artifact read failed (errno \(errno))") }
                    n = got
                }
            case .object(let client, let bucket, let key):
                let end = min(offset + count, size)
                guard offset < end else { return [] }
                if offset < cached.offset || end > cached.offset + cached.bytes.count {
                    let upTo = min(size, offset + max(count, Self.window))
                    guard let bytes = try client.get(bucket: bucket, key: key, range: offset..<upTo) else {
                        throw TrackingError(.internalError, "artifact s3://\(bucket)/\(key) vanished while being read")
                    }
                    cached = (offset, bytes)
                }
                let from = offset - cached.offset
                return Array(cached.bytes[from..<min(cached.bytes.count, from + (end - offset))])
            }
        }
    }
}
