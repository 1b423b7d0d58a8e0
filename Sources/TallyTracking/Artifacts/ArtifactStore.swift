#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Proxied artifacts on the local file system under one root (`--artifacts-destination`). Every path is
/// confined to the root: `..`, absolute paths, empty components and symlinks leading out are refused.
public struct ArtifactStore: Sendable {
    /// The root directory (created when missing).
    public let root: String

    /// Opens (creating) the root.
    public init(root: String) throws {
        try Self.mkdirs(root)
        guard let real = realpath(root, nil) else { throw TrackingError(.internalError, "artifact root \(root) is not accessible") }
        self.root = String(cString: real)
        free(real)
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
    static func components(_ path: String) throws -> [String] {
        try checkPath(path)
        return path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
    }

    /// The absolute path of `relative`, after checking that no existing ancestor leads outside the root.
    public func resolve(_ relative: String) throws -> String {
        let parts = try Self.components(relative)
        var path = root
        for p in parts {
            path += "/" + p
            var st = stat()
            if lstat(path, &st) == 0 {
                // An existing component: its real location must stay inside the root.
                guard let real = realpath(path, nil) else { throw Self.invalidPath() }
                let r = String(cString: real)
                free(real)
                guard r == root || r.hasPrefix(root + "/") else { throw Self.invalidPath() }
            }
        }
        return path
    }

    static func mkdirs(_ path: String) throws {
        var built = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            built += built.isEmpty && part.isEmpty ? "/" : (built.hasSuffix("/") || built.isEmpty ? "" : "/") + part
            if part.isEmpty { continue }
            if mkdir(built, 0o755) != 0 {
                let e = errno
                var st = stat()
                if e == EEXIST, stat(built, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { continue }
                // A file where a directory is needed, or a name too long: the client's path is at fault.
                if e == EEXIST || e == ENOTDIR || e == ENAMETOOLONG { throw invalidPath() }
                throw TrackingError(.internalError, "cannot create directory \(built) (errno \(e))")
            }
        }
    }

    static func clientPathError(_ e: Int32) -> Bool { e == ENOTDIR || e == EISDIR || e == ENAMETOOLONG || e == ENOENT }

    /// An open upload: chunks go to a temporary file, renamed into place by ``finish()``.
    public final class Upload: @unchecked Sendable {  // used by one request task at a time
        let target: String
        let temp: String
        let fd: Int32

        /// Set once the descriptor is closed (by `finish` or `abort`), so it is never closed twice.
        private var closed = false

        init(target: String) throws {
            self.target = target
            temp = target + ".upload-\(UInt64.random(in: 0...UInt64.max))"
            fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else {
                if ArtifactStore.clientPathError(errno) { throw ArtifactStore.invalidPath() }
                throw TrackingError(.internalError, "cannot create \(temp) (errno \(errno))")
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
        }

        /// Fsyncs and renames the file into place.
        public func finish() throws {
            defer {
                close(fd)
                closed = true
            }
            guard fsync(fd) == 0, rename(temp, target) == 0 else {
                let e = errno
                unlink(temp)
                if ArtifactStore.clientPathError(e) { throw ArtifactStore.invalidPath() }
                throw TrackingError(.internalError, "cannot store artifact \(target) (errno \(e))")
            }
        }

        /// Drops the partial file (a no-op after `finish`).
        public func abort() {
            guard !closed else { return }
            closed = true
            close(fd)
            unlink(temp)
        }
    }

    /// Starts an upload of `relative` (which must name a file).
    public func upload(_ relative: String) throws -> Upload {
        guard !relative.isEmpty else { throw Self.invalidPath() }
        let target = try resolve(relative)  // an unsafe path is refused before anything else is said of it
        guard !relative.hasSuffix("/") else { throw Self.filenameRequired }
        let parent = String(target[..<target.lastIndex(of: "/")!])
        try Self.mkdirs(parent)
        _ = try resolve(relative)  // the parents now exist: check them again for symlinks out of the root
        var st = stat()
        if stat(target, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { throw Self.invalidPath() }
        return try Upload(target: target)
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

    /// Entries of a directory (empty when it is missing or a file).
    public func list(_ relative: String) throws -> [Entry] {
        let dir = try resolve(relative)
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [Entry] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name == "." || name == ".." || name.contains(".upload-") { continue }
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { continue }
            out.append(Entry(name: name, isDir: st.st_mode & S_IFMT == S_IFDIR, size: Int64(st.st_size)))
        }
        return out.sorted { $0.name < $1.name }
    }

    /// Deletes a file or a directory tree.
    public func delete(_ relative: String) throws {
        let path = try resolve(relative)
        guard path != root else { throw Self.invalidPath() }
        func remove(_ p: String) {
            var st = stat()
            guard lstat(p, &st) == 0 else { return }
            if st.st_mode & S_IFMT == S_IFDIR, let d = opendir(p) {
                var names: [String] = []
                while let e = readdir(d) {
                    let n = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
                    if n != "." && n != ".." { names.append(n) }
                }
                closedir(d)
                for n in names { remove(p + "/" + n) }
                rmdir(p)
            } else {
                unlink(p)
            }
        }
        remove(path)
    }

    /// An artifact opened for reading.
    public final class Reader: @unchecked Sendable {  // used by one response writer at a time
        let fd: Int32
        /// Size in bytes.
        public let size: Int

        init(fd: Int32, size: Int) {
            self.fd = fd
            self.size = size
        }

        deinit { close(fd) }

        /// Up to `count` bytes at `offset` (empty at the end).
        public func read(at offset: Int, count: Int) throws -> [UInt8] {
            try [UInt8](unsafeUninitializedCapacity: count) { buf, n in
                let got = pread(fd, buf.baseAddress, count, off_t(offset))
                guard got >= 0 else { throw TrackingError(.internalError, "artifact read failed (errno \(errno))") }
                n = got
            }
        }
    }

    /// Opens a file for download: `RESOURCE_DOES_NOT_EXIST` when missing, `INVALID_PARAMETER_VALUE` for a directory.
    public func open(_ relative: String) throws -> Reader {
        let file = try resolve(relative)
        var st = stat()
        guard stat(file, &st) == 0 else { throw TrackingError(.resourceDoesNotExist, "No such artifact: '\(relative)'") }
        guard st.st_mode & S_IFMT != S_IFDIR else { throw TrackingError(.invalidParameterValue, "Artifact path refers to a directory, not a file: '\(relative)'") }
        let fd = Glibc.open(file, O_RDONLY)
        guard fd >= 0 else { throw TrackingError(.resourceDoesNotExist, "No such artifact: '\(relative)'") }
        return Reader(fd: fd, size: Int(st.st_size))
    }
}
