/// One stored append as a self-contained record: what a cluster's shared log keeps for each acknowledged batch
/// (docs/scale-out.md). It is the local log's `points` payload (columns, lz4-compressed when that saves an eighth,
/// then the trailer) with the series named by key instead of by segment-local ids, and a checksum of everything.
///
/// ```
/// u8        version (1)
/// u32       seriesCount; seriesCount × (u16 keyLength, key)
/// payload   a `points` payload (docs/storage-format.md) whose series ids are 0 ..< seriesCount
/// u32       CRC32C of every byte before it
/// ```
public enum PointsRecord {
    /// The format version written.
    public static let version: UInt8 = 1

    /// The record of `series` (as stored) and its batch id.
    public static func encode(_ series: SeriesColumns, batchID: String?) -> [UInt8] {
        encode(WALPoints.encodeColumns(series, compress: true), keys: series.keys, batchID: batchID)
    }

    /// The record of columns already encoded for the local log.
    static func encode(_ columns: WALPoints.Columns, keys: [String], batchID: String?) -> [UInt8] {
        let trailer = WALPoints.trailer(columns, seriesIDs: (0..<UInt32(keys.count)).map { $0 }, batchID: batchID)
        var w = ByteWriter(capacity: 9 + keys.reduce(0) { $0 + 2 + $1.utf8.count } + columns.stored.count + trailer.count)
        w.write(version)
        w.write(UInt32(keys.count))
        for k in keys { w.writeString16(k) }
        w.write(bytes: columns.stored)
        w.write(bytes: trailer)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// The series and batch id of a record.
    /// - Throws: ``StorageError/Code/corrupt`` naming the offset when the bytes are not a whole, intact record.
    public static func decode(_ bytes: [UInt8]) throws -> (series: SeriesColumns, batchID: String?) {
        guard bytes.count >= 9 else { throw StorageError(.corrupt, "points record: \(bytes.count) bytes is too short", offset: 0) }
        var tail = ByteReader(bytes, offset: bytes.count - 4)
        let crc = try tail.read(UInt32.self, "checksum")
        guard CRC32C.checksum(bytes[0..<(bytes.count - 4)]) == crc else {
            throw StorageError(.corrupt, "points record: checksum mismatch", offset: Int64(bytes.count - 4))
        }
        var r = ByteReader(bytes)
        let v = try r.read(UInt8.self, "version")
        guard v == version else { throw StorageError(.corrupt, "points record: unknown version \(v)", offset: 0) }
        let n = Int(try r.read(UInt32.self, "series count"))
        guard n <= bytes.count / 2 else { throw StorageError(.corrupt, "points record: \(n) series", offset: 1) }
        var keys: [String] = []
        keys.reserveCapacity(n)
        for _ in 0..<n { keys.append(try r.readString16("metric key")) }
        let start = bytes.count - r.remaining
        let points = try WALPoints(bytes, start..<(bytes.count - 4), offset: Int64(start))
        guard points.series.count == n, points.series.enumerated().allSatisfy({ $0.element.id == UInt32($0.offset) }) else {
            throw StorageError(.corrupt, "points record: its payload names other series than its keys", offset: Int64(start))
        }
        var out = SeriesColumns(series: n, points: points.series.reduce(0) { $0 + $1.count })
        for i in 0..<n {
            points.withColumns(i) { st, ts, vs in out.append(key: keys[i], steps: st, timestamps: ts, values: vs) }
        }
        return (out, points.batchID)
    }
}
