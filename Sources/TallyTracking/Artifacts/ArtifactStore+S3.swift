import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The S3 backend: files as objects under a bucket prefix, `/` as the directory separator. Paths are checked as on
/// disk (``ArtifactStore/checkPath(_:)``); what a directory is comes from the keys: a directory exists while some
/// key lies under it.
extension ArtifactStore {
    /// The key of `relative` under `location`, its path checked.
    static func objectKey(_ location: S3Location, _ relative: String) throws -> String {
        location.key(try components(relative).joined(separator: "/"))
    }

    /// The prefix of everything under the key `key` ("directory" `key`).
    static func under(_ key: String) -> String { key.isEmpty ? "" : key + "/" }

    static func objectUpload(_ client: S3Client, _ location: S3Location, spool: String, _ dirs: DirectoryKeys, _ relative: String) throws -> Upload {
        let key = try objectTarget(client, location, dirs, relative)
        return try Upload(target: .object(client, bucket: location.bucket, key: key),
                          temp: spool + "/.upload-\(UInt64.random(in: 0...UInt64.max))")
    }

    /// The key a file uploaded to `relative` is written at, once checked: a file name, not the root, and no file
    /// where one of its directories must be.
    static func objectTarget(_ client: S3Client, _ location: S3Location, _ dirs: DirectoryKeys, _ relative: String) throws -> String {
        let parts = try components(relative)
        let key = location.key(parts.joined(separator: "/"))
        guard !relative.hasSuffix("/") else { throw filenameRequired }
        guard key != location.prefix else { throw invalidPath() }
        // As on disk: a file cannot stand where a directory is needed (S3 would keep both `a` and `a/b`, and a
        // download of the tree could not write them): each ancestor is checked once (a HEAD), then remembered. Nor
        // can a file replace a directory this server has written into; one it has not seen is not looked for — a
        // LIST per upload costs a request more per file (measured on SeaweedFS, 8 clients: 212 → 290 uploads/s).
        if dirs.known(key) { throw invalidPath() }
        for i in 1..<max(1, parts.count) {
            let ancestor = location.key(parts[0..<i].joined(separator: "/"))
            guard !dirs.known(ancestor) else { continue }
            if try client.size(bucket: location.bucket, key: ancestor) != nil { throw invalidPath() }
            dirs.insert(ancestor)
        }
        dirs.forget(key)  // a file now stands here
        return key
    }

    static func objectList(_ client: S3Client, _ location: S3Location, _ relative: String) throws -> [Entry] {
        let prefix = under(try objectKey(location, relative))
        let listing = try client.list(bucket: location.bucket, prefix: prefix, delimiter: "/")
        var out: [Entry] = []
        for p in listing.prefixes {
            let name = String(p.dropFirst(prefix.count).dropLast())
            if !name.isEmpty { out.append(Entry(name: name, isDir: true, size: 0)) }
        }
        for o in listing.objects {
            let name = String(o.key.dropFirst(prefix.count))
            if !name.isEmpty { out.append(Entry(name: name, isDir: false, size: Int64(o.size))) }  // "" is a directory marker
        }
        return out.sorted { $0.name < $1.name }
    }

    static func objectDelete(_ client: S3Client, _ location: S3Location, _ dirs: DirectoryKeys, _ relative: String) throws {
        let key = try objectKey(location, relative)
        guard key != location.prefix else { throw invalidPath() }
        dirs.forget(key)
        try client.delete(bucket: location.bucket, key: key)
        let prefix = under(key)
        let keys = try client.list(bucket: location.bucket, prefix: prefix, delimiter: nil).objects.map(\.key)
        _ = try BlockingHTTPClient.concurrently(keys, limit: 8) { try client.delete(bucket: location.bucket, key: $0) }
        // Stores built on a file system (SeaweedFS) keep the emptied directories, and list them, until their `dir/`
        // keys are deleted too: deepest first, then the directory itself. On S3 these are no-ops.
        var dirs = Set<String>()
        for k in keys {
            var parts = k.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).dropLast()
            while !parts.isEmpty {
                dirs.insert(prefix + parts.joined(separator: "/") + "/")
                parts = parts.dropLast()
            }
        }
        for d in dirs.sorted(by: { $0.count > $1.count }) + [prefix] { try client.delete(bucket: location.bucket, key: d) }
    }

    static func objectOpen(_ client: S3Client, _ location: S3Location, _ relative: String) throws -> Reader {
        let key = try objectKey(location, relative)
        guard key != location.prefix else { throw directory(relative) }
        guard let size = try client.size(bucket: location.bucket, key: key) else {
            if try client.hasKeys(bucket: location.bucket, prefix: under(key)) { throw directory(relative) }
            throw missing(relative)
        }
        return Reader(source: .object(client, bucket: location.bucket, key: key), size: size)
    }
}

/// Keys already found not to be files, so an upload into a known directory checks its ancestors without a request.
/// Bounded: emptied when it reaches 100,000 entries. (A file can only appear at such a key if an upload races the
/// one under it; the check is for a client's mistake, not a lock.)
final class DirectoryKeys: Sendable {
    private let keys = Mutex(Set<String>())

    func known(_ key: String) -> Bool { keys.withLock { $0.contains(key) } }

    /// Forgets `key` and every key under it.
    func forget(_ key: String) {
        keys.withLock { set in set = set.filter { $0 != key && !$0.hasPrefix(key + "/") } }
    }

    func insert(_ key: String) {
        keys.withLock {
            if $0.count >= 100_000 { $0.removeAll() }
            $0.insert(key)
        }
    }
}
