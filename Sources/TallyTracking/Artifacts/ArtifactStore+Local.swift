#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The local backend: files under a directory, every path confined to it.
extension ArtifactStore {
    /// The absolute path of `relative` under the local root `root`, after checking that no existing ancestor leads
    /// outside it.
    static func resolve(root: String, _ relative: String) throws -> String {
        let parts = try components(relative)
        var path = root
        for p in parts {
            path += "/" + p
            var st = stat()
            if lstat(path, &st) == 0 {
                // An existing component: its real location must stay inside the root.
                guard let real = realpath(path, nil) else { throw invalidPath() }
                let r = String(cString: real)
                free(real)
                guard r == root || r.hasPrefix(root + "/") else { throw invalidPath() }
            }
        }
        return path
    }

    /// The local file of `relative` (``resolve(root:_:)``), `nil` when the store is not on this machine.
    public func localPath(_ relative: String) throws -> String? {
        guard case .local(let root) = backend else { return nil }
        return try Self.resolve(root: root, relative)
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

    /// Whether `name` is an upload in progress (`<name>.upload-<digits>`, ``localUpload(root:_:)``'s temporary
    /// file), which listings leave out; a client's own name holding `.upload-` is listed.
    static func isSpooled(_ name: String) -> Bool {
        guard let r = name.ranges(of: ".upload-").last else { return false }
        let tail = name[r.upperBound...]
        return !tail.isEmpty && tail.count <= 20 && tail.allSatisfy(\.isASCII) && tail.allSatisfy(\.isNumber)
    }

    static func clientPathError(_ e: Int32) -> Bool { e == ENOTDIR || e == EISDIR || e == ENAMETOOLONG || e == ENOENT }

    static func localUpload(root: String, _ relative: String) throws -> Upload {
        let target = try resolve(root: root, relative)  // an unsafe path is refused before anything else is said of it
        guard !relative.hasSuffix("/") else { throw filenameRequired }
        let parent = String(target[..<target.lastIndex(of: "/")!])
        try mkdirs(parent)
        _ = try resolve(root: root, relative)  // the parents now exist: check them again for symlinks out of the root
        var st = stat()
        if stat(target, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { throw invalidPath() }
        return try Upload(target: .file(target), temp: target + ".upload-\(UInt64.random(in: 0...UInt64.max))")
    }

    static func localList(root: String, _ relative: String) throws -> [Entry] {
        let dir = try resolve(root: root, relative)
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [Entry] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name == "." || name == ".." || Self.isSpooled(name) { continue }
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { continue }
            out.append(Entry(name: name, isDir: st.st_mode & S_IFMT == S_IFDIR, size: Int64(st.st_size)))
        }
        return out.sorted { $0.name < $1.name }
    }

    static func localDelete(root: String, _ relative: String) throws {
        let path = try resolve(root: root, relative)
        guard path != root else { throw invalidPath() }
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

    static func localOpen(root: String, _ relative: String) throws -> Reader {
        let file = try resolve(root: root, relative)
        var st = stat()
        guard stat(file, &st) == 0 else { throw missing(relative) }
        guard st.st_mode & S_IFMT != S_IFDIR else { throw directory(relative) }
        let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw missing(relative) }
        return Reader(source: .file(fd), size: Int(st.st_size))
    }
}
