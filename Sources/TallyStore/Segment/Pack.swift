/// Index entry of one pack (format version 2): many short series sharing one chunk, so a series of a few points
/// costs a few bytes instead of a block's index entry and column headers.
///
/// The step and timestamp ranges cover every point of the pack; a writer that must know whether new points
/// overlap sealed ones (out-of-order or concurrent logging) can skip a pack by them without decoding it.
struct PackMeta: Sendable, Equatable {
    /// Size in bytes of one encoded entry.
    static let size = 8 + 4 + 4 + 4 + 8 * 4
    /// The chunk: counts, steps, timestamps and values columns, then a CRC32C.
    var chunk: ChunkRef
    /// Series in the pack.
    var seriesCount: Int
    /// Points of all its series together.
    var pointCount: Int
    var minStep: Int64
    var maxStep: Int64
    var minTimestamp: Int64
    var maxTimestamp: Int64

    func write(into w: inout ByteWriter) {
        w.write(UInt64(chunk.offset)); w.write(UInt32(chunk.length))
        w.write(UInt32(seriesCount)); w.write(UInt32(pointCount))
        w.write(minStep); w.write(maxStep); w.write(minTimestamp); w.write(maxTimestamp)
    }

    static func read(_ r: inout ByteReader, chunkLimit: Int64) throws -> PackMeta {
        let at = r.offset
        let offset = Int64(exactly: try r.read(UInt64.self, "pack offset")) ?? -1
        let length = Int(try r.read(UInt32.self, "pack length"))
        let series = Int(try r.read(UInt32.self, "pack series count"))
        let points = Int(try r.read(UInt32.self, "pack point count"))
        let m = PackMeta(chunk: ChunkRef(offset: offset, length: length), seriesCount: series, pointCount: points,
                         minStep: try r.read(), maxStep: try r.read(), minTimestamp: try r.read(), maxTimestamp: try r.read())
        guard m.chunk.isInside(chunkLimit: chunkLimit) else {
            throw StorageError(.corrupt, "pack points outside the data area", offset: r.baseOffset + Int64(at))
        }
        guard series > 0, points >= series, points <= SegmentFormat.maxPackPoints, m.minStep <= m.maxStep, m.minTimestamp <= m.maxTimestamp else {
            throw StorageError(.corrupt, "malformed pack index entry (\(series) series, \(points) points)", offset: r.baseOffset + Int64(at))
        }
        return m
    }

    /// The entry for `series` written as `chunk`.
    static func describing(_ series: [SealColumns], chunk: ChunkRef) -> PackMeta {
        var m = PackMeta(chunk: chunk, seriesCount: series.count, pointCount: 0, minStep: .max, maxStep: .min, minTimestamp: .max, maxTimestamp: .min)
        for s in series {
            m.pointCount += s.count
            m.minStep = min(m.minStep, s.steps.first!)
            m.maxStep = max(m.maxStep, s.steps.last!)
            for t in s.timestamps {
                m.minTimestamp = min(m.minTimestamp, t)
                m.maxTimestamp = max(m.maxTimestamp, t)
            }
        }
        return m
    }
}

/// Where a packed series sits: its pack and its position among the pack's series.
struct PackSlot: Sendable, Equatable {
    var pack: Int
    var ordinal: Int
}

/// The series of one pack, decoded: the points of series `i` are `starts[i]..<starts[i + 1]` of the columns, in
/// step order with ties in arrival order.
final class DecodedPack: Sendable {
    let starts: [Int]
    let steps: [Int64]
    let timestamps: [Int64]
    /// Double bit patterns.
    let values: [UInt64]

    /// Memory held, for the cache budget.
    var bytes: Int { 64 + starts.count * 8 + steps.count * 24 }

    init(starts: [Int], steps: [Int64], timestamps: [Int64], values: [UInt64]) {
        self.starts = starts
        self.steps = steps
        self.timestamps = timestamps
        self.values = values
    }

    /// The points of series `ordinal`.
    func columns(_ ordinal: Int, key: String) -> SealColumns {
        let r = starts[ordinal]..<starts[ordinal + 1]
        return SealColumns(key: key, steps: Array(steps[r]), timestamps: Array(timestamps[r]), values: Array(values[r]))
    }

    /// Writes the pack chunk's body: a counts column (points per series), then the steps, timestamps and values
    /// of every series one after the other.
    static func encode(_ series: [SealColumns], compression: Compression, planes: PlaneCodec, into w: inout ByteWriter) throws {
        let counts = series.map { Int64($0.count) }
        let steps = series.flatMap(\.steps), timestamps = series.flatMap(\.timestamps), values = series.flatMap(\.values)
        for column in [counts, steps, timestamps] {
            try column.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: compression, planes: planes, into: &w) }
        }
        try values.withUnsafeBufferPointer { _ = try FloatColumnCodec.encode($0, compression: compression, planes: planes, into: &w, segment: true) }
    }

    /// Parses a pack chunk's body (without its CRC) against its index entry.
    static func decode(_ bytes: [UInt8], meta: PackMeta, planes: PlaneCodec) throws -> DecodedPack {
        var r = ByteReader(bytes, baseOffset: meta.chunk.offset)
        func ints(_ n: Int) throws -> [Int64] {
            try [Int64](unsafeUninitializedCapacity: n) { buf, c in
                try IntColumnCodec.decode(&r, expectedCount: n, planes: planes, into: buf)
                c = n
            }
        }
        let counts = try ints(meta.seriesCount)
        var starts = [Int](repeating: 0, count: meta.seriesCount + 1)
        for (i, n) in counts.enumerated() {
            guard n > 0, n <= Int64(meta.pointCount) - Int64(starts[i]) else {
                throw StorageError(.corrupt, "pack series \(i) claims \(n) points", offset: meta.chunk.offset)
            }
            starts[i + 1] = starts[i] + Int(n)
        }
        guard starts[meta.seriesCount] == meta.pointCount else {
            throw StorageError(.corrupt, "pack series hold \(starts[meta.seriesCount]) points, the index says \(meta.pointCount)", offset: meta.chunk.offset)
        }
        let steps = try ints(meta.pointCount)
        let timestamps = try ints(meta.pointCount)
        let values = try [UInt64](unsafeUninitializedCapacity: meta.pointCount) { buf, c in
            try FloatColumnCodec.decode(&r, expectedCount: meta.pointCount, planes: planes, into: buf)
            c = meta.pointCount
        }
        guard r.remaining == 0 else { throw r.corrupt("\(r.remaining) unexpected bytes after the pack's columns") }
        for i in 0..<meta.seriesCount {
            for j in (starts[i] + 1)..<max(starts[i] + 1, starts[i + 1]) where steps[j] < steps[j - 1] {
                throw StorageError(.corrupt, "pack series \(i) is not in step order", offset: meta.chunk.offset)
            }
        }
        return DecodedPack(starts: starts, steps: steps, timestamps: timestamps, values: values)
    }
}
