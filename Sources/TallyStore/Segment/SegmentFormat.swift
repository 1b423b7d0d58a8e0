/// Constants and index structures of the segment file format (see `docs/storage-format.md`).
enum SegmentFormat {
    /// `TALLYSEG`, the first 8 bytes of every segment.
    static let headerMagic: [UInt8] = Array("TALLYSEG".utf8)
    /// `TALLYEND`, the last 8 bytes of every segment.
    static let trailerMagic: [UInt8] = Array("TALLYEND".utf8)
    /// The format version written: 2 adds packs of short series and a compressed, columnar footer; 3 adds value
    /// columns stored as scaled integers (`FloatColumnCodec` transform 3), which a version-2 reader cannot decode; 4
    /// adds zigzag deltas (transform 4) and lists in each footer only the batch ids appended since the segment before;
    /// 5 adds value columns predicted from another value column of the same rows (transform 5).
    static let version: UInt16 = 5
    /// Versions this build reads.
    static let readableVersions: ClosedRange<UInt16> = 1...5
    /// Most points one pack holds (so reading one packed series decodes a bounded amount).
    static let maxPackPoints = 1 << 16
    /// In a version-2 footer, the block count that marks a packed series.
    static let packedMark: UInt32 = 0xFFFF_FFFF
    static let headerSize = 16
    static let trailerSize = 32
    /// Size in bytes of one encoded ``BlockMeta``.
    static let blockMetaSize = 4 + 4 + 8 * 4 + 8 * 8 + 8 + 4 * 4 + 8 * 3 + 12 * 4
    /// File name of segment `seq`: 16 lowercase hex digits and `.seg`.
    static func fileName(seq: UInt64) -> String {
        let hex = String(seq, radix: 16)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex + ".seg"
    }

    /// The sequence number in a segment file name, or `nil` for other names.
    /// Sequence numbers stay below 2^39 so that `seq << 24 | block` ranks fit an Int64.
    static let maxSeq: UInt64 = 1 << 39
    /// Blocks per series in one segment stay below 2^24 (see ``maxSeq``).
    static let maxBlocksPerSeries = 1 << 24

    static func seq(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".seg"), name.count == 20, let seq = UInt64(name.prefix(16), radix: 16), seq < maxSeq else { return nil }
        return seq
    }
}

/// Where a chunk sits in its file: `length` includes the trailing 4-byte CRC32C.
struct ChunkRef: Sendable, Equatable {
    var offset: Int64
    var length: Int

    static let none = ChunkRef(offset: 0, length: 0)
    var isNone: Bool { length == 0 }

    /// Whether the chunk (data and CRC) lies between the header and `chunkLimit` (the footer's offset).
    func isInside(chunkLimit: Int64) -> Bool {
        offset >= Int64(SegmentFormat.headerSize) && length >= 4 && offset <= chunkLimit - Int64(length)
    }
}

/// Index entry of one block of one series, kept in the segment footer and in memory.
struct BlockMeta: Sendable {
    /// Flag: the block's (timestamp, step) pairs strictly increase in its (step) order, so it is already in MLflow's
    /// history order (timestamp, step, value) with no ties.
    static let timeOrdered: UInt32 = 1

    var count: Int
    var flags: UInt32 = 0
    var minStep: Int64
    var maxStep: Int64
    var minTimestamp: Int64
    var maxTimestamp: Int64
    /// Aggregates of the whole block (order fields unset).
    var summary: Aggregate
    /// The latest point by MLflow's rule: largest step, then largest timestamp, then largest value.
    var latest: MetricPoint
    var steps: ChunkRef
    var timestamps: ChunkRef
    var values: ChunkRef
    var rollup: ChunkRef

    func write(into w: inout ByteWriter) {
        w.write(UInt32(count)); w.write(flags)
        w.write(minStep); w.write(maxStep); w.write(minTimestamp); w.write(maxTimestamp)
        let s = summary
        w.write(s.firstStep); w.write(s.firstValue); w.write(s.lastStep); w.write(s.lastValue)
        w.write(s.minStep); w.write(s.minValue.bitPattern); w.write(s.maxStep); w.write(s.maxValue.bitPattern)
        w.write(s.sum.bitPattern)
        w.write(UInt32(s.nan)); w.write(UInt32(s.posInf)); w.write(UInt32(s.negInf)); w.write(UInt32(0))
        w.write(latest.step); w.write(latest.timestamp); w.write(latest.value.bitPattern)
        for c in [steps, timestamps, values, rollup] {
            w.write(UInt64(c.offset)); w.write(UInt32(c.length))
        }
    }

    static func read(_ r: inout ByteReader) throws -> BlockMeta {
        let count = Int(try r.read(UInt32.self, "block count"))
        let flags = try r.read(UInt32.self, "block flags")
        let minStep = try r.read(Int64.self), maxStep = try r.read(Int64.self)
        let minTs = try r.read(Int64.self), maxTs = try r.read(Int64.self)
        var s = Aggregate()
        s.count = Int64(count)
        s.firstStep = try r.read(); s.firstValue = try r.read(); s.lastStep = try r.read(); s.lastValue = try r.read()
        s.minStep = try r.read(); s.minValue = Double(bitPattern: try r.read()); s.maxStep = try r.read()
        s.maxValue = Double(bitPattern: try r.read())
        s.sum = Double(bitPattern: try r.read())
        s.nan = Int64(try r.read(UInt32.self)); s.posInf = Int64(try r.read(UInt32.self)); s.negInf = Int64(try r.read(UInt32.self))
        _ = try r.read(UInt32.self)
        let latest = MetricPoint(step: try r.read(), timestamp: try r.read(), value: Double(bitPattern: try r.read()))
        var refs: [ChunkRef] = []
        for _ in 0..<4 {
            let off = try r.read(UInt64.self, "chunk offset")
            let len = try r.read(UInt32.self, "chunk length")
            refs.append(ChunkRef(offset: Int64(exactly: off) ?? -1, length: Int(len)))  // -1 fails the bounds check
        }
        return BlockMeta(count: count, flags: flags, minStep: minStep, maxStep: maxStep, minTimestamp: minTs, maxTimestamp: maxTs,
                         summary: s, latest: latest, steps: refs[0], timestamps: refs[1], values: refs[2], rollup: refs[3])
    }
}

/// A point's place in the write-ahead log: point `index` of this series within record `lsn`. As a seal
/// watermark it names the first point *not* sealed: everything before it is in segments.
public struct WALPosition: Sendable, Hashable, Comparable {
    /// The record.
    public var lsn: UInt64
    /// The point's index among this series' points in the record.
    public var index: UInt32

    /// Creates a position.
    public init(lsn: UInt64, index: UInt32) {
        self.lsn = lsn
        self.index = index
    }

    /// Log order.
    public static func < (a: Self, b: Self) -> Bool { (a.lsn, a.index) < (b.lsn, b.index) }
}

/// Where one series' points sit inside one segment: its blocks in arrival order, or a slot in a pack.
struct SeriesIndex: Sendable {
    var key: String
    var blocks: [BlockMeta]
    /// WAL position of the first point of this series not sealed by this or an earlier segment (`nil`: no WAL).
    var wal: WALPosition? = nil
    /// The series' place in a pack (then `blocks` is empty).
    var packed: PackSlot? = nil
}

/// The parsed footer of a segment.
struct SegmentFooter: Sendable {
    /// Sequence numbers of the segments this one replaces (a compaction's inputs); `nil` for a sealed head.
    var supersedes: ClosedRange<UInt64>?
    /// Sequence number of the run's live segment just before this one (0: none). The chain lets a load notice a
    /// missing segment file.
    var previousSeq: UInt64 = 0
    var series: [SeriesIndex]
    /// Packs of short series (version 2).
    var packs: [PackMeta] = []
    /// The run's most recent client batch ids when this segment was written (for idempotent retries).
    var batchIDs: [String] = []

    /// The version-2 footer: one compressed blob (see `docs/storage-format.md`) holding the pack index, the series
    /// fields as columns, then the dense series' block index and the batch ids.
    func encode(planes: PlaneCodec) throws -> [UInt8] {
        var w = ByteWriter(capacity: 64 + packs.count * PackMeta.size + series.count * 32)
        w.write(UInt32(series.count))
        w.write(supersedes?.lowerBound ?? 0)
        w.write(supersedes?.upperBound ?? 0)
        w.write(previousSeq)
        w.write(UInt32(packs.count))
        for p in packs { p.write(into: &w) }
        let columns: [[Int64]] = [
            series.map { Int64($0.key.utf8.count) },
            series.map { Int64(bitPattern: $0.wal?.lsn ?? 0) },
            series.map { Int64($0.wal?.index ?? 0) },
            series.map { $0.packed == nil ? Int64($0.blocks.count) : Int64(SegmentFormat.packedMark) },
            series.map { Int64($0.packed?.pack ?? 0) },
            series.map { Int64($0.packed?.ordinal ?? 0) },
        ]
        for c in columns { try c.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: .none, planes: planes, into: &w) } }
        for s in series { w.write(bytes: Array(s.key.utf8)) }
        for s in series { for b in s.blocks { b.write(into: &w) } }
        w.write(UInt32(batchIDs.count))
        for id in batchIDs { w.writeString16(id) }
        return try Blob.pack(w.bytes)
    }

    static func decode(_ bytes: [UInt8], version: UInt16, baseOffset: Int64, chunkLimit: Int64) throws -> SegmentFooter {
        if version == 1 { return try decodeVersion1(bytes, baseOffset: baseOffset, chunkLimit: chunkLimit) }
        let raw = try Blob.unpack(bytes, baseOffset: baseOffset)
        var r = ByteReader(raw, baseOffset: baseOffset)
        let n = Int(try r.read(UInt32.self, "series count"))
        let supersedes = try readSupersedes(&r)
        let previousSeq = try r.read(UInt64.self, "previous segment")
        let packCount = Int(try r.read(UInt32.self, "pack count"))
        guard packCount <= r.remaining / PackMeta.size, n <= r.remaining else { throw r.truncated("pack and series index") }
        var packs: [PackMeta] = []
        packs.reserveCapacity(packCount)
        for _ in 0..<packCount { packs.append(try PackMeta.read(&r, chunkLimit: chunkLimit)) }
        let planes = PlaneCodec()
        var columns: [[Int64]] = []
        for _ in 0..<6 {
            columns.append(try [Int64](unsafeUninitializedCapacity: n) { buf, c in
                try IntColumnCodec.decode(&r, expectedCount: n, planes: planes, into: buf)
                c = n
            })
        }
        var series: [SeriesIndex] = []
        series.reserveCapacity(n)
        var packed = [Int](repeating: 0, count: packCount)  // series seen per pack
        for i in 0..<n {
            let length = columns[0][i]
            guard length >= 0, length <= Int64(UInt16.max) else { throw r.corrupt("series key of \(length) bytes") }
            let range = try r.skip(Int(length), "series key")
            guard let key = String(validating: raw[range], as: UTF8.self) else { throw r.corrupt("series key is not UTF-8") }
            let lsn = UInt64(bitPattern: columns[1][i])
            guard let walIndex = UInt32(exactly: columns[2][i]) else { throw r.corrupt("WAL position of \(key)") }
            var s = SeriesIndex(key: key, blocks: [], wal: lsn == 0 ? nil : WALPosition(lsn: lsn, index: walIndex))
            if columns[3][i] == Int64(SegmentFormat.packedMark) {
                let p = Int(truncatingIfNeeded: columns[4][i]), o = Int(truncatingIfNeeded: columns[5][i])
                guard p >= 0, p < packCount, o == packed[p], o < packs[p].seriesCount else {
                    throw r.corrupt("series \(key) names slot \(o) of pack \(p)")
                }
                packed[p] += 1
                s.packed = PackSlot(pack: p, ordinal: o)
            } else {
                guard columns[3][i] >= 1, columns[3][i] <= Int64(SegmentFormat.maxBlocksPerSeries) else { throw r.corrupt("block count of \(key)") }
            }
            series.append(s)
        }
        guard zip(packed, packs).allSatisfy({ $0 == $1.seriesCount }) else { throw r.corrupt("a pack holds series no index entry names") }
        for i in series.indices where series[i].packed == nil {
            let bc = Int(columns[3][i])
            guard bc <= r.remaining / SegmentFormat.blockMetaSize else { throw r.truncated("block index of \(series[i].key)") }
            series[i].blocks = try readBlocks(&r, count: bc, key: series[i].key, chunkLimit: chunkLimit)
        }
        let ids = try readBatchIDs(&r)
        return SegmentFooter(supersedes: supersedes, previousSeq: previousSeq, series: series, packs: packs, batchIDs: ids)
    }

    static func decodeVersion1(_ bytes: [UInt8], baseOffset: Int64, chunkLimit: Int64) throws -> SegmentFooter {
        var r = ByteReader(bytes, baseOffset: baseOffset)
        let n = Int(try r.read(UInt32.self, "series count"))
        let supersedes = try readSupersedes(&r)
        let previousSeq = try r.read(UInt64.self, "previous segment")
        var series: [SeriesIndex] = []
        series.reserveCapacity(min(n, 1 << 16))
        for _ in 0..<n {
            let key = try r.readString16("series key")
            let walLSN = try r.read(UInt64.self, "series WAL position")
            let walIndex = try r.read(UInt32.self, "series WAL position")
            let bc = Int(try r.read(UInt32.self, "block count"))
            guard bc <= r.remaining / SegmentFormat.blockMetaSize else { throw r.truncated("block index of \(key)") }
            let blocks = try readBlocks(&r, count: bc, key: key, chunkLimit: chunkLimit)
            series.append(SeriesIndex(key: key, blocks: blocks, wal: walLSN == 0 ? nil : WALPosition(lsn: walLSN, index: walIndex)))
        }
        let ids = try readBatchIDs(&r)
        return SegmentFooter(supersedes: supersedes, previousSeq: previousSeq, series: series, batchIDs: ids)
    }

    private static func readSupersedes(_ r: inout ByteReader) throws -> ClosedRange<UInt64>? {
        let from = try r.read(UInt64.self, "supersedes from")
        let to = try r.read(UInt64.self, "supersedes to")
        guard from <= to else { throw r.corrupt("supersedes range \(from)...\(to)") }
        return to == 0 ? nil : from...to
    }

    private static func readBlocks(_ r: inout ByteReader, count bc: Int, key: String, chunkLimit: Int64) throws -> [BlockMeta] {
        var blocks: [BlockMeta] = []
        blocks.reserveCapacity(bc)
        for _ in 0..<bc {
            let at = r.offset
            let b = try BlockMeta.read(&r)
            for c in [b.steps, b.timestamps, b.values, b.rollup] where !c.isNone {
                guard c.isInside(chunkLimit: chunkLimit) else {
                    throw StorageError(.corrupt, "block of \(key) points outside the data area", offset: r.baseOffset + Int64(at))
                }
            }
            guard b.count > 0, b.count <= 1 << 20, b.flags & ~BlockMeta.timeOrdered == 0, b.minStep <= b.maxStep, !b.values.isNone, !b.steps.isNone,
                !b.timestamps.isNone
            else {
                throw StorageError(.corrupt, "malformed block index entry for \(key)", offset: r.baseOffset + Int64(at))
            }
            blocks.append(b)
        }
        return blocks
    }

    private static func readBatchIDs(_ r: inout ByteReader) throws -> [String] {
        let idCount = Int(try r.read(UInt32.self, "batch id count"))
        guard idCount <= r.remaining / 2 else { throw r.truncated("batch ids") }
        var ids: [String] = []
        for _ in 0..<idCount { ids.append(try r.readString16("batch id")) }
        guard r.remaining == 0 else { throw r.corrupt("\(r.remaining) unexpected bytes after the footer") }
        return ids
    }
}
