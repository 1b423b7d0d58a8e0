import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `<data-dir>/MANIFEST`: each run's newest segment as of the last WAL checkpoint.
///
/// Written (atomically, durably) before WAL segments are removed, i.e. whenever segments become the only copy of
/// data. On open, a run whose newest segment is older than its manifest entry, or a listed run whose directory is
/// gone (and whose deletion is not in the WAL), is reported as a missing segment instead of silently losing data.
///
/// Layout: `TALLYMAN`, `u32 count`, `count × (u16 runLength, run, u64 seq)`, `u32 CRC32C` of everything before it.
enum StoreManifest {
    static let magic: [UInt8] = Array("TALLYMAN".utf8)

    static func path(_ directory: String) -> String { directory + "/MANIFEST" }

    static func encode(_ entries: [String: UInt64]) -> [UInt8] {
        var w = ByteWriter(capacity: 16 + entries.count * 48)
        w.write(bytes: magic)
        w.write(UInt32(entries.count))
        for (run, seq) in entries.sorted(by: { $0.key < $1.key }) {
            w.writeString16(run)
            w.write(seq)
        }
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// The entries, or empty when there is no manifest yet.
    static func read(_ directory: String) throws -> [String: UInt64] {
        let p = path(directory)
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path: p) } catch let e as StorageError where e.errno == ENOENT { return [:] }
        let bytes = try file.read(at: 0, count: Int(file.size), what: "manifest")
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { throw StorageError(.corrupt, "bad manifest header", path: p, offset: 0) }
        let stored = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self) }.littleEndian
        guard CRC32C.checksum(bytes[0..<(bytes.count - 4)]) == stored else {
            throw StorageError(.corrupt, "manifest checksum mismatch", path: p, offset: Int64(bytes.count - 4))
        }
        var r = ByteReader(Array(bytes[0..<(bytes.count - 4)]), offset: 8)
        var out: [String: UInt64] = [:]
        do {
            for _ in 0..<Int(try r.read(UInt32.self, "manifest count")) {
                let run = try r.readString16("run id")
                out[run] = try r.read(UInt64.self, "segment")
            }
        } catch let e as StorageError {
            throw e.at(path: p)
        }
        return out
    }
}

extension MetricStore {
    /// Records every run's newest segment (before WAL segments that may hold the only other copy are removed).
    func writeManifest() throws {
        try manifestLock.withLock { _ in try writeManifestLocked() }
    }

    /// ``writeManifest()`` for a caller holding ``manifestLock``.
    func writeManifestLocked() throws {
        var entries: [String: UInt64] = [:]
        for run in runs.withLock({ Array($0.values) }) {
            if let seq = try run.newestSegmentSeq() { entries[run.id] = seq }
        }
        try FileIO.writeAtomically(path: StoreManifest.path(directory), bytes: StoreManifest.encode(entries),
                                   durable: configuration.durableSegments)
    }
}
