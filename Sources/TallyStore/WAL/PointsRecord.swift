/// One stored append as a self-contained record: what a cluster's shared log keeps for each acknowledged batch
/// (docs/scale-out.md). Version 2 (written) holds each series' columns in the segment format's encodings (about
/// 2 bytes a point on training curves, against 10–24 for the local log's lz4 of raw columns):
///
/// ```
/// u8        version (2)
/// u32       seriesCount
/// per series: u16 keyLength, key, u32 count, steps (integer column), timestamps (integer column),
///             values (float column; docs/storage-format.md, segment column encodings)
/// u16       batchIDLength, batchID (empty: none)
/// u32       CRC32C of every byte before it
/// ```
///
/// Version 1 (read): `u8 1, u32 seriesCount, seriesCount × (u16 keyLength, key)`, then a local-log `points` payload
/// whose series ids are 0 ..< seriesCount, then the CRC32C.
public enum PointsRecord {
    /// The format version written.
    public static let version: UInt8 = 2

    /// Compression of the columns' byte planes (the segments' default).
    static let compression = Compression.default

    /// The record of `series` (as stored) and its batch id, in the segment format's column encodings.
    public static func encode(_ series: SeriesColumns, batchID: String?) throws -> [UInt8] {
        let planes = PlaneCodec()
        var w = ByteWriter(capacity: 16 + series.pointCount * 3 + series.keys.reduce(0) { $0 + 8 + $1.utf8.count })
        w.write(version)
        w.write(UInt32(series.count))
        try series.forEach { _, key, st, ts, vs in
            w.writeString16(key)
            w.write(UInt32(st.count))
            try IntColumnCodec.encode(st, compression: compression, planes: planes, into: &w)
            try IntColumnCodec.encode(ts, compression: compression, planes: planes, into: &w)
            try vs.withMemoryRebound(to: UInt64.self) { _ = try FloatColumnCodec.encode($0, compression: compression, planes: planes, into: &w, segment: true) }
        }
        w.writeString16(batchID ?? "")
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// A version 1 record of columns encoded for the local log (kept to test that old records still read).
    static func encodeVersion1(_ columns: WALPoints.Columns, keys: [String], batchID: String?) -> [UInt8] {
        let trailer = WALPoints.trailer(columns, seriesIDs: (0..<UInt32(keys.count)).map { $0 }, batchID: batchID)
        var w = ByteWriter(capacity: 9 + keys.reduce(0) { $0 + 2 + $1.utf8.count } + columns.stored.count + trailer.count)
        w.write(UInt8(1))
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
        switch v {
        case 1: return try decodeVersion1(bytes, &r)
        case 2: break
        default: throw StorageError(.corrupt, "points record: unknown version \(v)", offset: 0)
        }
        let n = Int(try r.read(UInt32.self, "series count"))
        guard n <= bytes.count / 6 else { throw StorageError(.corrupt, "points record: \(n) series", offset: 1) }
        let planes = PlaneCodec()
        var out = SeriesColumns()
        for _ in 0..<n {
            let key = try r.readString16("metric key")
            let count = Int(try r.read(UInt32.self, "point count"))
            // A constant column takes a few bytes for any count: bounded by the largest request instead (256 MiB
            // native bodies hold at most 11 M points), so damage cannot ask for an absurd allocation.
            guard count <= 1 << 27 else { throw StorageError(.corrupt, "points record: \(count) points", offset: Int64(bytes.count - r.remaining)) }
            let steps: [Int64] = try column(count) { try IntColumnCodec.decode(&r, expectedCount: count, planes: planes, into: $0) }
            let timestamps: [Int64] = try column(count) { try IntColumnCodec.decode(&r, expectedCount: count, planes: planes, into: $0) }
            let bits: [UInt64] = try column(count) { try FloatColumnCodec.decode(&r, expectedCount: count, planes: planes, into: $0) }
            let values = bits.map { Double(bitPattern: $0) }
            out.append(key: key, steps: steps, timestamps: timestamps, values: values)
        }
        let batch = try r.readString16("batch id")
        guard r.remaining == 4 else { throw StorageError(.corrupt, "points record: \(r.remaining - 4) bytes after its batch id", offset: Int64(bytes.count - r.remaining)) }
        return (out, batch.isEmpty ? nil : batch)
    }

    /// A column of `count` values that `decode` writes whole.
    static func column<T>(_ count: Int, _ decode: (UnsafeMutableBufferPointer<T>) throws -> Void) throws -> [T] {
        try [T](unsafeUninitializedCapacity: count) { b, c in
            try decode(b)
            c = count
        }
    }

    /// The rest of a version 1 record, after its version byte.
    static func decodeVersion1(_ bytes: [UInt8], _ r: inout ByteReader) throws -> (series: SeriesColumns, batchID: String?) {
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
