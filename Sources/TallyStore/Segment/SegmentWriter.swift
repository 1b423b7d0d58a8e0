/// The columns of one series to seal, sorted by step with ties in arrival order.
struct SealColumns: Sendable {
    var key: String
    var steps: [Int64]
    var timestamps: [Int64]
    /// Double bit patterns.
    var values: [UInt64]
    /// WAL position just past these points (the series' seal watermark), when the store has a WAL.
    var wal: WALPosition? = nil

    var count: Int { steps.count }
}

/// Writes one immutable segment file, streaming it to an ``AtomicFile`` a buffer at a time (the caller commits it).
///
/// Series are split into balanced blocks of at most `blockPoints` points. Identical step or timestamp columns
/// (metrics logged together share them) are stored once and referenced by every block that has them. Series of
/// fewer than `packPoints` points go into packs instead: many series per chunk, no block index entry each.
///
/// Memory stays bounded by the input it is handed: written chunks leave the buffer once it holds
/// ``flushBytes``, and shared columns are remembered by a hash and read back from the file to confirm a match.
struct SegmentWriter {
    let blockPoints: Int
    let packPoints: Int
    let compression: Compression
    let supersedes: ClosedRange<UInt64>?
    let rollupPointsPerBucket: Int
    let output: AtomicFile
    /// Bytes the buffer collects before they are written to the file.
    static let flushBytes = 1 << 20
    private let planes = PlaneCodec()
    private var w = ByteWriter(capacity: SegmentWriter.flushBytes + (64 << 10))
    /// Bytes already written to the file (the buffer's offset in it).
    private var flushed: Int64 = 0
    private var series: [SeriesIndex] = []
    private var packs: [PackMeta] = []
    /// Short series waiting for the pack being filled.
    private var pending: [SealColumns] = []
    private var pendingPoints = 0
    /// Already written step/timestamp columns, by a fingerprint; a match is confirmed by reading the chunk back.
    private var shared: [SharedKey: [ChunkRef]] = [:]
    /// Value columns later blocks of the same rows may be predicted from, as probes (their first rows), by their
    /// step chunk's offset (oldest first). A chosen base's values are read back from what was written.
    private var probes: [Int64: [FloatColumnCodec.PredictionProbe]] = [:]
    /// Every probe kept, oldest first, as (step chunk, value chunk) offsets; entries from `probeOrderStart` on
    /// whose probe is still kept are live, the others were dropped by the per-chunk limit.
    private var probeOrder: [(rows: Int64, values: Int64)] = []
    private var probeOrderStart = 0
    private var probeCount = 0
    /// The most probes the writer keeps (``FloatColumnCodec/predictionProbe`` values each: 16 MB in all).
    static let maxProbes = 4096
    /// Series written so far (the ordinal of the one being written).
    private var seriesWritten = 0
    /// Series whose blocks were offered as bases to a block of the series being written and not used: its later
    /// blocks are not offered them again, so a series costs one round of fits per other series, not one per block.
    private var declined: Set<Int> = []

    private struct SharedKey: Hashable {
        var count: Int
        var first: Int64
        var last: Int64
        var hash: Int
    }

    init(blockPoints: Int, packPoints: Int, compression: Compression, rollupPointsPerBucket: Int, output: AtomicFile,
         supersedes: ClosedRange<UInt64>? = nil) {
        self.blockPoints = max(1, blockPoints)
        self.packPoints = min(packPoints, SegmentFormat.maxPackPoints)
        self.rollupPointsPerBucket = max(1, rollupPointsPerBucket)
        self.compression = compression
        self.supersedes = supersedes
        self.output = output
        w.write(bytes: SegmentFormat.headerMagic)
        w.write(SegmentFormat.version)
        w.write(UInt16(0))
        let crc = CRC32C.checksum(w.bytes)
        w.write(crc)
    }

    /// Balanced block boundaries for `n` points.
    static func blockRanges(count n: Int, blockPoints: Int) -> [Range<Int>] {
        guard n > 0 else { return [] }
        let blocks = min((n + blockPoints - 1) / blockPoints, SegmentFormat.maxBlocksPerSeries)
        let size = (n + blocks - 1) / blocks
        return stride(from: 0, to: n, by: size).map { $0..<min(n, $0 + size) }
    }

    /// Adds one series (must be sorted by step, ties in arrival order).
    mutating func add(_ s: SealColumns) throws {
        guard s.count > 0 else { return }
        if s.count < packPoints {
            if pendingPoints + s.count > SegmentFormat.maxPackPoints { try writePack() }
            series.append(SeriesIndex(key: s.key, blocks: [], wal: s.wal, packed: PackSlot(pack: packs.count, ordinal: pending.count)))
            pending.append(s)
            pendingPoints += s.count
            return
        }
        var metas: [BlockMeta] = []
        for r in Self.blockRanges(count: s.count, blockPoints: blockPoints) {
            metas.append(try addBlock(steps: Array(s.steps[r]), timestamps: Array(s.timestamps[r]), values: Array(s.values[r])))
        }
        addSeries(key: s.key, blocks: metas, wal: s.wal)
    }

    /// Records a series written block by block with ``addBlock(steps:timestamps:values:)`` (at least ``packPoints``
    /// points, in ``blockRanges(count:blockPoints:)``).
    mutating func addSeries(key: String, blocks: [BlockMeta], wal: WALPosition?) {
        series.append(SeriesIndex(key: key, blocks: blocks, wal: wal))
        seriesWritten += 1
        declined.removeAll(keepingCapacity: true)
    }

    /// Writes one block of a series (sorted by step, ties in arrival order) and returns its index entry.
    mutating func addBlock(steps: [Int64], timestamps ts: [Int64], values vals: [UInt64]) throws -> BlockMeta {
        let stepRef = try sharedIntColumn(steps)
        let tsRef = try sharedIntColumn(ts)
        let compression = self.compression
        let offered = (probes[stepRef.offset] ?? []).filter { !declined.contains($0.series) }
        let best = vals.withUnsafeBufferPointer { FloatColumnCodec.bestBase(for: $0, among: offered) }
        let base = try best.map { FloatColumnCodec.PredictionBase(ref: $0.ref, values: try writtenValues($0.ref, count: $0.count)) }
        var transform: UInt8 = 0
        let valRef = try chunk { w, planes in
            transform = try vals.withUnsafeBufferPointer {
                try FloatColumnCodec.encode($0, compression: compression, planes: planes, into: &w, segment: true, base: base)
            }
        }
        let predicted = transform == FloatColumnCodec.predictedTransform
        for p in offered where !(predicted && p.ref == best?.ref) { declined.insert(p.series) }
        if !predicted, vals.count >= FloatColumnCodec.minPredictedCount {
            keepProbe(FloatColumnCodec.PredictionProbe(ref: valRef, count: vals.count, head: Array(vals.prefix(FloatColumnCodec.predictionProbe)),
                                                       series: seriesWritten), rows: stepRef)
        }
        let pyramid = steps.withUnsafeBufferPointer { st in vals.withUnsafeBufferPointer { RollupPyramid.build(steps: st, values: $0, pointsPerBucket: rollupPointsPerBucket) } }
        var rollupRef = ChunkRef.none
        if !pyramid.levels.isEmpty {
            let blob = try pyramid.encode(planes: planes)
            rollupRef = try chunk { w, _ in w.write(bytes: blob) }
        }
        return Self.meta(steps: steps, timestamps: ts, values: vals, refs: (stepRef, tsRef, valRef, rollupRef))
    }

    /// Remembers a written value column as a base for later blocks of the same rows (one level: a predicted column
    /// is never a base), dropping the oldest past ``FloatColumnCodec/maxPredictionBases`` per step chunk or
    /// ``maxProbes`` in all.
    private mutating func keepProbe(_ probe: FloatColumnCodec.PredictionProbe, rows: ChunkRef) {
        probes[rows.offset, default: []].append(probe)
        probeOrder.append((rows.offset, probe.ref.offset))
        probeCount += 1
        if probes[rows.offset]!.count > FloatColumnCodec.maxPredictionBases { dropOldestProbe(of: rows.offset) }
        while probeCount > Self.maxProbes, probeOrderStart < probeOrder.count {
            let (rows, values) = probeOrder[probeOrderStart]
            probeOrderStart += 1
            // A chunk's probes leave oldest first, so a live entry is its chunk's oldest probe.
            if probes[rows]?.first?.ref.offset == values { dropOldestProbe(of: rows) }
        }
        if probeOrder.count - probeOrderStart > 2 * probeCount + 1024 {
            probeOrder = probeOrder[probeOrderStart...].filter { e in probes[e.rows]?.contains { $0.ref.offset == e.values } == true }
            probeOrderStart = 0
        } else if probeOrderStart > 1024 && probeOrderStart * 2 > probeOrder.count {
            probeOrder.removeFirst(probeOrderStart)
            probeOrderStart = 0
        }
    }

    private mutating func dropOldestProbe(of rows: Int64) {
        guard probes[rows]?.isEmpty == false else { return }
        probes[rows]!.removeFirst()
        probeCount -= 1
        if probes[rows]!.isEmpty { probes[rows] = nil }
    }

    /// Writes the pending short series as one pack.
    private mutating func writePack() throws {
        guard !pending.isEmpty else { return }
        let (compression, group) = (self.compression, pending)
        let ref = try chunk { w, planes in try DecodedPack.encode(group, compression: compression, planes: planes, into: &w) }
        packs.append(PackMeta.describing(group, chunk: ref))
        pending.removeAll(keepingCapacity: true)
        pendingPoints = 0
    }

    static func meta(steps: [Int64], timestamps ts: [Int64], values: [UInt64], refs: (ChunkRef, ChunkRef, ChunkRef, ChunkRef)) -> BlockMeta {
        var agg = Aggregate()
        var latest = MetricPoint(step: steps[0], timestamp: ts[0], value: Double(bitPattern: values[0]))
        var minTs = ts[0], maxTs = ts[0]
        var timeOrdered = true
        for i in 0..<steps.count {
            agg.add(step: steps[i], bits: values[i], order: 0)
            if i > 0 && !((ts[i - 1], steps[i - 1]) < (ts[i], steps[i])) { timeOrdered = false }
            let p = MetricPoint(step: steps[i], timestamp: ts[i], value: Double(bitPattern: values[i]))
            if LatestRule.isLater(p, than: latest) { latest = p }
            minTs = min(minTs, ts[i])
            maxTs = max(maxTs, ts[i])
        }
        return BlockMeta(count: steps.count, flags: timeOrdered ? BlockMeta.timeOrdered : 0, minStep: steps.first!, maxStep: steps.last!,
                         minTimestamp: minTs, maxTimestamp: maxTs,
                         summary: agg, latest: latest, steps: refs.0, timestamps: refs.1, values: refs.2, rollup: refs.3)
    }

    /// Writes an integer column, or returns the chunk of an identical one written before.
    private mutating func sharedIntColumn(_ column: [Int64]) throws -> ChunkRef {
        let hash = column.withUnsafeBytes { b in
            var h = Hasher()
            h.combine(bytes: b)
            return h.finalize()
        }
        let key = SharedKey(count: column.count, first: column.first ?? 0, last: column.last ?? 0, hash: hash)
        for ref in shared[key] ?? [] where try writtenInts(ref, count: column.count) == column { return ref }
        let compression = self.compression
        let ref = try chunk { w, planes in
            try column.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: compression, planes: planes, into: &w) }
        }
        shared[key, default: []].append(ref)
        return ref
    }

    /// Decodes an integer column chunk this writer wrote.
    private func writtenInts(_ ref: ChunkRef, count: Int) throws -> [Int64] {
        var r = try written(ref)
        return try [Int64](unsafeUninitializedCapacity: count) { buf, c in
            try IntColumnCodec.decode(&r, expectedCount: count, planes: planes, into: buf)
            c = count
        }
    }

    /// Decodes a value column chunk this writer wrote, not predicted (a base).
    private func writtenValues(_ ref: ChunkRef, count: Int) throws -> [UInt64] {
        var r = try written(ref)
        return try [UInt64](unsafeUninitializedCapacity: count) { buf, c in
            try FloatColumnCodec.decode(&r, expectedCount: count, planes: planes, into: buf)
            c = count
        }
    }

    /// The bytes of a chunk this writer wrote, without its CRC, from the buffer or read back from the file.
    private func written(_ ref: ChunkRef) throws -> ByteReader {
        let bytes: [UInt8]
        if ref.offset >= flushed {
            let at = Int(ref.offset - flushed)
            bytes = Array(w.bytes[at..<(at + ref.length - 4)])
        } else {
            bytes = Array(try output.read(at: ref.offset, count: ref.length).dropLast(4))
        }
        return ByteReader(bytes, baseOffset: ref.offset)
    }

    /// Writes a chunk produced by `body` followed by its CRC32C.
    private mutating func chunk(_ body: (inout ByteWriter, PlaneCodec) throws -> Void) throws -> ChunkRef {
        let start = w.count
        try body(&w, planes)
        let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        w.write(crc)
        let ref = ChunkRef(offset: flushed + Int64(start), length: w.count - start)
        if w.count >= Self.flushBytes { try flush() }
        return ref
    }

    /// Writes the buffer to the file.
    private mutating func flush() throws {
        try w.bytes.withUnsafeBytes { try output.write($0) }
        flushed += Int64(w.count)
        w.bytes.removeAll(keepingCapacity: true)
    }

    /// Appends the footer (with the run's recent batch ids) and trailer and writes everything to the file; the
    /// caller then commits or abandons it.
    consuming func finish(previousSeq: UInt64, batchIDs: [String] = []) throws {
        try writePack()
        let footer = SegmentFooter(supersedes: supersedes, previousSeq: previousSeq, series: series, packs: packs, batchIDs: batchIDs)
        let fb = try footer.encode(planes: planes)
        let footerOffset = UInt64(flushed) + UInt64(w.count)
        w.write(bytes: fb)
        w.write(footerOffset)
        w.write(UInt32(fb.count))
        w.write(CRC32C.checksum(fb))
        w.write(UInt64(0))
        w.write(bytes: SegmentFormat.trailerMagic)
        try flush()
    }
}

/// MLflow's rule for a series' latest point: the largest step, then the largest timestamp, then the largest value.
public enum LatestRule {
    /// Whether `a` is later than `b` under the rule. NaN compares as 0, as MLflow stores it (`value=0, is_nan=1`).
    @inlinable public static func isLater(_ a: MetricPoint, than b: MetricPoint) -> Bool {
        if a.step != b.step { return a.step > b.step }
        if a.timestamp != b.timestamp { return a.timestamp > b.timestamp }
        return valueKey(a.value) > valueKey(b.value)
    }

    /// The latest of the points `range` of three columns (value bit patterns), `nil` when the range is empty.
    static func latest(steps: [Int64], timestamps: [Int64], values: [UInt64], in range: Range<Int>) -> MetricPoint? {
        var best: MetricPoint?
        for i in range {
            let p = MetricPoint(step: steps[i], timestamp: timestamps[i], value: Double(bitPattern: values[i]))
            if best == nil || isLater(p, than: best!) { best = p }
        }
        return best
    }

    /// The value MLflow's SQL store compares: NaN is stored as value 0 with `is_nan` set, so it counts as 0.
    @inlinable public static func valueKey(_ v: Double) -> Double { v.isNaN ? 0 : v }
}
