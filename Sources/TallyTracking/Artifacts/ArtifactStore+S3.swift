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

    static func objectUpload(_ client: S3Client, _ location: S3Location, spool: String, _ relative: String) throws -> Upload {
        let key = try objectKey(location, relative)
        guard !relative.hasSuffix("/") else { throw filenameRequired }
        guard key != location.prefix else { throw invalidPath() }
        // As on disk: a file cannot replace a directory.
        if try client.hasKeys(bucket: location.bucket, prefix: under(key)) { throw invalidPath() }
        return try Upload(target: .object(client, bucket: location.bucket, key: key),
                          temp: spool + "/.upload-\(UInt64.random(in: 0...UInt64.max))")
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

    static func objectDelete(_ client: S3Client, _ location: S3Location, _ relative: String) throws {
        let key = try objectKey(location, relative)
        guard key != location.prefix else { throw invalidPath() }
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
