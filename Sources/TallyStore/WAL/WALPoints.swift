/// The payload of a `points` record: column data first, then a trailer naming series, counts and batch id, so the
/// writer can compress and checksum the columns before it takes the log's lock.
///
/// ```
/// columns   (lz4-compressed when flagged): per series, count × i64 steps, count × i64 timestamps, count × u64 values
/// trailer   u32 seriesCount, seriesCount × (u32 seriesID, u32 count), u16 batchIDLength, batchID,
///           u8 compression (0 raw, 1 lz4), u32 columnsRawLength, u32 columnsStoredLength
/// u32       trailerLength (bytes of the trailer before this field)
/// ```
struct WALPoints {
    /// Encoded columns of a batch, ready to be framed: bytes, their CRC32C, and the per-series counts.
    struct Columns: Sendable {
        var stored: [UInt8]
        var rawLength: Int
        var compressed: Bool
        var crc: UInt32
        var counts: [Int]
    }

    /// Encodes the columns of `series` (compressing with lz4 when `compress` and it saves at least 1/8).
    static func encodeColumns(_ series: SeriesColumns, compress: Bool) -> Columns {
        let total = series.pointCount
        var raw = [UInt8](unsafeUninitializedCapacity: total * 24) { _, n in n = total * 24 }
        raw.withUnsafeMutableBytes { out in
            var at = 0
            series.forEach { _, _, st, ts, vs in
                let n = st.count * 8
                guard n > 0 else { return }
                out.baseAddress!.advanced(by: at).copyMemory(from: st.baseAddress!, byteCount: n)
                out.baseAddress!.advanced(by: at + n).copyMemory(from: ts.baseAddress!, byteCount: n)
                out.baseAddress!.advanced(by: at + 2 * n).copyMemory(from: vs.baseAddress!, byteCount: n)
                at += 3 * n
            }
        }
        var stored = raw
        var compressed = false
        if compress, raw.count >= 512, let c = LZ4Block.compress(raw), c.count < raw.count - raw.count / 8 {
            stored = c
            compressed = true
        }
        return Columns(stored: stored, rawLength: raw.count, compressed: compressed, crc: CRC32C.checksum(stored),
                       counts: (0..<series.count).map { series.pointCount($0) })
    }

    /// The trailer for `columns` with segment-local series ids.
    static func trailer(_ columns: Columns, seriesIDs: [UInt32], batchID: String?) -> [UInt8] {
        var w = ByteWriter(capacity: 32 + seriesIDs.count * 8)
        w.write(UInt32(seriesIDs.count))
        for (id, n) in zip(seriesIDs, columns.counts) {
            w.write(id)
            w.write(UInt32(n))
        }
        w.writeString16(batchID ?? "")
        w.write(UInt8(columns.compressed ? 1 : 0))
        w.write(UInt32(columns.rawLength))
        w.write(UInt32(columns.stored.count))
        w.write(UInt32(w.count))
        return w.bytes
    }

    /// A decoded points record: the columns of all series in one aligned buffer.
    var batchID: String?
    /// Per series: segment-local id, point count and byte offset of its steps in ``columns``.
    var series: [(id: UInt32, count: Int, offset: Int)]
    /// `count × i64 steps, count × i64 timestamps, count × u64 values` per series, back to back (8-byte aligned).
    var columns: [UInt8]

    /// Decodes a points payload (`bytes[range]`), throwing ``StorageError/Code/corrupt`` on any inconsistency.
    init(_ bytes: [UInt8], _ range: Range<Int>, offset: Int64) throws {
        func bad(_ why: String) -> StorageError { StorageError(.corrupt, "points record: \(why)", offset: offset) }
        guard range.count >= 4 else { throw bad("too short") }
        var tail = ByteReader(bytes, offset: range.upperBound - 4, baseOffset: 0)
        let trailerLength = Int(try tail.read(UInt32.self))
        guard trailerLength + 4 <= range.count else { throw bad("trailer length \(trailerLength)") }
        var r = ByteReader(Array(bytes[(range.upperBound - 4 - trailerLength)..<(range.upperBound - 4)]), baseOffset: offset)
        let n = Int(try r.read(UInt32.self, "series count"))
        guard n <= trailerLength / 8 else { throw bad("\(n) series") }
        var entries: [(id: UInt32, count: Int, offset: Int)] = []
        var at = 0
        for _ in 0..<n {
            let id = try r.read(UInt32.self)
            let count = Int(try r.read(UInt32.self))
            entries.append((id, count, at))
            at += count * 24
        }
        let batch = try r.readString16("batch id")
        let compression = try r.read(UInt8.self)
        let rawLength = Int(try r.read(UInt32.self))
        let storedLength = Int(try r.read(UInt32.self))
        let columnsEnd = range.upperBound - 4 - trailerLength
        guard storedLength == columnsEnd - range.lowerBound, compression <= 1, rawLength == at else {
            throw bad("column lengths do not match the counts")
        }
        let stored = bytes[range.lowerBound..<columnsEnd]
        if compression == 1 {
            guard rawLength > 0, let d = LZ4Block.decompress(stored, rawLength: rawLength) else { throw bad("lz4 columns do not decode") }
            columns = d
        } else {
            guard storedLength == rawLength else { throw bad("raw column length mismatch") }
            columns = Array(stored)  // a fresh array is aligned for typed access
        }
        batchID = batch.isEmpty ? nil : batch
        series = entries
    }

    /// The (series id, count) pairs of a points payload, read from its trailer alone (no decompression);
    /// `nil` when the trailer is malformed (full decoding then reports it).
    static func counts(_ bytes: [UInt8], _ range: Range<Int>) -> [(id: UInt32, count: Int)]? {
        guard range.count >= 4 else { return nil }
        var tail = ByteReader(bytes, offset: range.upperBound - 4)
        guard let trailerLength = try? Int(tail.read(UInt32.self)), trailerLength + 4 <= range.count else { return nil }
        var r = ByteReader(bytes, offset: range.upperBound - 4 - trailerLength)
        guard let n = try? Int(r.read(UInt32.self)), n <= trailerLength / 8 else { return nil }
        var out: [(id: UInt32, count: Int)] = []
        for _ in 0..<n {
            guard let id = try? r.read(UInt32.self), let c = try? r.read(UInt32.self) else { return nil }
            out.append((id, Int(c)))
        }
        return out
    }

    /// Calls `body` with the steps, timestamps and values of series `i`.
    func withColumns<R>(_ i: Int, _ body: (UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Double>) throws -> R) rethrows -> R {
        let e = series[i]
        return try columns.withUnsafeBytes { raw in
            let base = raw.baseAddress.map { $0 + e.offset }
            func col<T>(_ k: Int, _: T.Type) -> UnsafeBufferPointer<T> {
                guard let base, e.count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
                return UnsafeBufferPointer(start: (base + k * e.count * 8).assumingMemoryBound(to: T.self), count: e.count)
            }
            return try body(col(0, Int64.self), col(1, Int64.self), col(2, Double.self))
        }
    }
}

/// The payload of a `series` record.
struct WALSeries {
    var id: UInt32
    var run: String
    var key: String

    /// The payload, appended to `w`.
    func write(into w: inout ByteWriter) {
        w.write(id)
        w.writeString16(run)
        w.writeString16(key)
    }

    init(id: UInt32, run: String, key: String) {
        self.id = id
        self.run = run
        self.key = key
    }

    init(_ bytes: [UInt8], _ range: Range<Int>, offset: Int64) throws {
        var r = ByteReader(Array(bytes[range]), baseOffset: offset)
        id = try r.read(UInt32.self, "series id")
        run = try r.readString16("run id")
        key = try r.readString16("metric key")
        guard r.remaining == 0 else { throw StorageError(.corrupt, "series record has trailing bytes", offset: offset) }
    }
}
