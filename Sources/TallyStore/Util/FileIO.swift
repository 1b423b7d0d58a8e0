#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// File-system helpers built on `SystemPackage`: atomic durable writes, positional reads, directory fsync.
enum FileIO {
    /// Wraps a `SystemPackage.Errno` thrown by `body` as a ``StorageError`` naming `path`.
    static func io<R>(_ what: String, path: String, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let e as Errno {
            throw StorageError(.io, "\(what) failed: \(e)", path: path, errno: e.rawValue)
        }
    }

    /// Writes `bytes` to `path` so that the file either has all of them or does not change:
    /// temporary file, `fsync`, `rename`, then `fsync` of the directory.
    /// - Parameters:
    ///   - path: The final path.
    ///   - bytes: The whole content.
    ///   - durable: When `false`, skips both fsyncs (tests and benchmarks only).
    static func writeAtomically(path: String, bytes: [UInt8], durable: Bool = true) throws {
        let file = try AtomicFile(path: path)
        try bytes.withUnsafeBytes { try file.write($0) }
        try file.commit(durable: durable)
    }

    /// Reads exactly `count` bytes at `offset` with `pread`; a file that ends first is ``StorageError/Code/truncated``.
    static func readFully(_ fd: FileDescriptor, at offset: Int64, count: Int, path: String, what: String) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            var done = 0
            while done < count {
                let n = try io("read", path: path) {
                    try fd.read(fromAbsoluteOffset: offset + Int64(done),
                                into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buf)[done...]))
                }
                if n == 0 { throw StorageError(.truncated, "\(what): file shrank while reading", path: path, offset: offset + Int64(done)) }
                done += n
            }
            initialized = count
        }
    }

    /// `fdatasync` (`fsync` where unavailable).
    static func syncData(_ fd: FileDescriptor) throws {
        if failingSyncs.fails(fd) { throw Errno.ioError }
        #if os(Linux)
        if fdatasync(fd.rawValue) != 0 { throw Errno(rawValue: errno) }
        #else
        if fsync(fd.rawValue) != 0 { throw Errno(rawValue: errno) }
        #endif
    }

    /// `fsync` of a directory, making renames and unlinks in it durable.
    static func syncDirectory(_ dir: String) throws {
        try io("fsync directory", path: dir) {
            let fd = try FileDescriptor.open(FilePath(dir), .readOnly, options: [.directory, .closeOnExec])
            try fd.closeAfter { if fsync(fd.rawValue) != 0 { throw Errno(rawValue: errno) } }
        }
    }

    /// Creates `path` and its parents when missing.
    static func makeDirectories(_ path: String) throws {
        var built = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            if built.isEmpty && part.isEmpty { built = "/"; continue }
            built += (built.isEmpty || built.hasSuffix("/") ? "" : "/") + part
            if part.isEmpty { continue }
            if mkdir(built, 0o755) != 0 && errno != EEXIST {
                throw StorageError(.io, "mkdir failed", path: built, errno: errno)
            }
        }
    }

    /// The names in a directory, without `.` and `..`; empty when the directory does not exist.
    static func list(_ path: String) throws -> [String] {
        guard let d = opendir(path) else {
            if errno == ENOENT { return [] }
            throw StorageError(.io, "opendir failed", path: path, errno: errno)
        }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Writes `count` zero bytes at `offset` (with `pwrite`; the descriptor's position does not move).
    static func writeZeros(_ fd: FileDescriptor, at offset: Int64, count: Int) throws {
        let chunk = [UInt8](repeating: 0, count: min(count, 1 << 20))
        var done = 0
        while done < count {
            let n = min(chunk.count, count - done)
            _ = try chunk.withUnsafeBytes { try fd.writeAll(toAbsoluteOffset: offset + Int64(done), UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            done += n
        }
    }

    /// Copies the first `length` bytes of `from` (all of it: `nil`) to `to` (created or truncated), fsynced when
    /// `durable`, and returns the bytes copied; a file shorter than `length` is ``StorageError/Code/truncated``.
    @discardableResult
    static func copy(_ from: String, to: String, length: Int64? = nil, durable: Bool = false) throws -> Int64 {
        let source = try io("open", path: from) { try FileDescriptor.open(FilePath(from), .readOnly, options: [.closeOnExec]) }
        return try source.closeAfter {
            let target = try io("create", path: to) {
                try FileDescriptor.open(FilePath(to), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            }
            return try target.closeAfter {
                // As large as the file, 64 KiB to 1 MiB: a copy of thousands of small segments must not zero a MiB each.
                var st = stat()
                let size = fstat(source.rawValue, &st) == 0 ? Int64(st.st_size) : Int64(1 << 20)
                var buffer = [UInt8](repeating: 0, count: Int(max(64 << 10, min(Int64(1 << 20), length ?? size))))
                var done: Int64 = 0
                while length.map({ done < $0 }) ?? true {
                    let want = length.map { Int(min(Int64(buffer.count), $0 - done)) } ?? buffer.count
                    let n = try io("read", path: from) { try buffer.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) } }
                    if n == 0 {
                        guard length == nil else { throw StorageError(.truncated, "copy: the file ends before \(length!) bytes", path: from, offset: done) }
                        break
                    }
                    _ = try io("write", path: to) { try buffer.withUnsafeBytes { try target.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
                    done += Int64(n)
                }
                if durable { try io("fsync", path: to) { try syncData(target) } }
                return done
            }
        }
    }

    /// The size of the file at `path`, `nil` when there is none.
    static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// Whether `b` is a copy of the immutable file `a`: the same size and the same last 64 bytes (for a segment, its
    /// trailer: the footer's offset, length and checksum). `false` when `b` does not exist.
    static func sameFile(_ a: String, _ b: String) throws -> Bool {
        guard let size = size(a), size == FileIO.size(b) else { return false }
        let n = Int(min(size, 64))
        func tail(_ p: String) throws -> [UInt8] {
            let fd = try io("open", path: p) { try FileDescriptor.open(FilePath(p), .readOnly, options: [.closeOnExec]) }
            return try fd.closeAfter { try readFully(fd, at: size - Int64(n), count: n, path: p, what: "file tail") }
        }
        return try tail(a) == tail(b)
    }

    /// A hard link to `from` at `to`, or a copy where no link can be made (another file system, one without links).
    static func linkOrCopy(_ from: String, to: String) throws {
        if link(from, to) != 0 { try copy(from, to: to) }
    }

    /// Whether `path` names a directory.
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Removes a file, ignoring a missing one.
    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw StorageError(.io, "unlink failed", path: path, errno: errno)
        }
    }

    /// Removes a directory tree.
    static func removeTree(_ path: String) throws {
        for name in try list(path) {
            let child = path + "/" + name
            if isDirectory(child) { try removeTree(child) } else { try remove(child) }
        }
        if rmdir(path) != 0 && errno != ENOENT {
            throw StorageError(.io, "rmdir failed", path: path, errno: errno)
        }
    }

    /// Raises the soft limit on open files to the hard limit (segments keep their descriptors open).
    static func raiseOpenFileLimit() {
        #if os(Linux)
        let rlimitNoFile = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let rlimitNoFile = RLIMIT_NOFILE
        #endif
        var lim = rlimit()
        if getrlimit(rlimitNoFile, &lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max
            _ = setrlimit(rlimitNoFile, &lim)
        }
    }
}

/// A file written in pieces under a temporary name (`.NAME.tmp` beside it) and renamed into place by
/// ``commit(durable:)``, so `path` either has all of the content or does not change. Released uncommitted, the
/// temporary file is removed.
final class AtomicFile {
    /// The final path.
    let path: String
    /// The temporary file written until the commit.
    let temporary: String
    /// Bytes written so far (the next write's offset).
    private(set) var size: Int64 = 0
    private var fd: FileDescriptor?

    init(path: String) throws {
        let fp = FilePath(path)
        self.path = path
        temporary = fp.removingLastComponent().appending("." + (fp.lastComponent?.string ?? "file") + ".tmp").string
        let tmp = temporary
        fd = try FileIO.io("create", path: tmp) {
            try FileDescriptor.open(FilePath(tmp), .readWrite, options: [.create, .truncate, .closeOnExec],
                                    permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
    }

    deinit { abandon() }

    /// Appends `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let fd else { throw StorageError(.io, "write after commit", path: temporary) }
        _ = try FileIO.io("write", path: temporary) { try fd.writeAll(bytes) }
        size += Int64(bytes.count)
    }

    /// Reads back `count` bytes written at `offset` (which must lie within what was written).
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        precondition(offset >= 0 && offset + Int64(count) <= size, "read back past what was written")
        guard let fd else { throw StorageError(.io, "read after commit", path: temporary) }
        return try FileIO.readFully(fd, at: offset, count: count, path: temporary, what: "temporary file")
    }

    /// Makes the content the file at ``path``: `fsync`, `rename`, then `fsync` of the directory.
    /// - Parameter durable: When `false`, skips both fsyncs (tests and benchmarks only).
    func commit(durable: Bool) throws {
        guard let fd else { throw StorageError(.io, "committed twice", path: path) }
        self.fd = nil
        do {
            try FileIO.io("fsync", path: temporary) {
                try fd.closeAfter { if durable { try FileIO.syncData(fd) } }
            }
            try FileIO.io("rename", path: path) {
                if rename(temporary, path) != 0 { throw Errno(rawValue: errno) }
            }
        } catch {
            unlink(temporary)
            throw error
        }
        if durable { try FileIO.syncDirectory(FilePath(path).removingLastComponent().string) }
    }

    /// Closes and removes the temporary file (nothing when already committed).
    func abandon() {
        guard let fd else { return }
        self.fd = nil
        try? fd.close()
        unlink(temporary)
    }
}

/// An open, read-only file read with `pread`; closed when released.
final class ReadOnlyFile: Sendable {
    let fd: FileDescriptor
    /// The file's path, for error messages.
    let path: String
    /// The file's size when it was opened.
    let size: Int64

    init(path: String) throws {
        self.path = path
        let fd = try FileIO.io("open", path: path) { try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) }
        self.fd = fd
        do {
            size = try FileIO.io("seek", path: path) { try fd.seek(offset: 0, from: .end) }
        } catch {
            try? fd.close()
            throw error
        }
    }

    deinit { try? fd.close() }

    /// Reads exactly `count` bytes at `offset`, or throws ``StorageError/Code/truncated`` naming the file.
    func read(at offset: Int64, count: Int, what: String) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset + Int64(count) <= size else {
            throw StorageError(.truncated, "\(what): \(count) bytes at offset \(offset) run past the end of the \(size)-byte file",
                               path: path, offset: offset)
        }
        return try FileIO.readFully(fd, at: offset, count: count, path: path, what: what)
    }
}
