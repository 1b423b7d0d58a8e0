/// Constants and index structures of the segment file format (see `docs/storage-format.md`).
enum SegmentFormat {
    /// `TALLYSEG`, the first 8 bytes of every segment.
    static let headerMagic: [UInt8] = Array("TALLYSEG".utf8)
    /// `TALLYEND`, the last 8 bytes of every segment.
    static let trailerMagic: [UInt8] = Array("TALLYEND".utf8)
    /// The only format version written so far.
    static let version: UInt16 = 1
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

/// The blocks of one series inside one segment, in arrival order.
struct SeriesIndex: Sendable {
    var key: String
    var blocks: [BlockMeta]
    /// WAL position of the first point of this series not sealed by this or an earlier segment (`nil`: no WAL).
    var wal: WALPosition? = nil
}

/// The parsed footer of a segment.
struct SegmentFooter: Sendable {
    /// Sequence numbers of the segments this one replaces (a compaction's inputs); `nil` for a sealed head.
    var supersedes: ClosedRange<UInt64>?
    /// Sequence number of the run's live segment just before this one (0: none). The chain lets a load notice a
    /// missing segment file.
    var previousSeq: UInt64 = 0
    var series: [SeriesIndex]
    /// The run's most recent client batch ids when this segment was written (for idempotent retries).
    var batchIDs: [String] = []

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + series.count * (32 + SegmentFormat.blockMetaSize))
        w.write(UInt32(series.count))
        w.write(supersedes?.lowerBound ?? 0)
        w.write(supersedes?.upperBound ?? 0)
        w.write(previousSeq)
        for s in series {
            w.writeString16(s.key)
            w.write(s.wal?.lsn ?? 0)
            w.write(s.wal?.index ?? 0)
            w.write(UInt32(s.blocks.count))
            for b in s.blocks { b.write(into: &w) }
        }
        w.write(UInt32(batchIDs.count))
        for id in batchIDs { w.writeString16(id) }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], baseOffset: Int64, chunkLimit: Int64) throws -> SegmentFooter {
        var r = ByteReader(bytes, baseOffset: baseOffset)
        let n = Int(try r.read(UInt32.self, "series count"))
        let from = try r.read(UInt64.self, "supersedes from")
        let to = try r.read(UInt64.self, "supersedes to")
        guard from <= to else { throw r.corrupt("supersedes range \(from)...\(to)") }
        let supersedes = to == 0 ? nil : from...to
        let previousSeq = try r.read(UInt64.self, "previous segment")
        var series: [SeriesIndex] = []
        series.reserveCapacity(min(n, 1 << 16))
        for _ in 0..<n {
            let key = try r.readString16("series key")
            let walLSN = try r.read(UInt64.self, "series WAL position")
            let walIndex = try r.read(UInt32.self, "series WAL position")
            let bc = Int(try r.read(UInt32.self, "block count"))
            guard bc <= r.remaining / SegmentFormat.blockMetaSize else { throw r.truncated("block index of \(key)") }
            var blocks: [BlockMeta] = []
            blocks.reserveCapacity(bc)
            for _ in 0..<bc {
                let at = r.offset
                let b = try BlockMeta.read(&r)
                for c in [b.steps, b.timestamps, b.values, b.rollup] where !c.isNone {
                    guard c.offset >= Int64(SegmentFormat.headerSize), c.length >= 4, c.offset <= chunkLimit - Int64(c.length) else {
                        throw StorageError(.corrupt, "block of \(key) points outside the data area", offset: baseOffset + Int64(at))
                    }
                }
                guard b.count > 0, b.count <= 1 << 20, b.flags & ~BlockMeta.timeOrdered == 0, b.minStep <= b.maxStep, !b.values.isNone, !b.steps.isNone,
                    !b.timestamps.isNone
                else {
                    throw StorageError(.corrupt, "malformed block index entry for \(key)", offset: baseOffset + Int64(at))
                }
                blocks.append(b)
            }
            series.append(SeriesIndex(key: key, blocks: blocks, wal: walLSN == 0 ? nil : WALPosition(lsn: walLSN, index: walIndex)))
        }
        let idCount = Int(try r.read(UInt32.self, "batch id count"))
        guard idCount <= r.remaining / 2 else { throw r.truncated("batch ids") }
        var ids: [String] = []
        for _ in 0..<idCount { ids.append(try r.readString16("batch id")) }
        guard r.remaining == 0 else { throw r.corrupt("\(r.remaining) unexpected bytes after the footer") }
        return SegmentFooter(supersedes: supersedes, previousSeq: previousSeq, series: series, batchIDs: ids)
    }
}
