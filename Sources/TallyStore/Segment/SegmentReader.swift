import Synchronization

/// An open, validated, immutable segment file.
///
/// Opening reads and checks the header, trailer and footer; every chunk read later is checked against its
/// CRC32C. Any inconsistency throws a ``StorageError`` naming the file and byte offset.
final class SegmentReader: Sendable {
    /// Sequence number (from the file name); orders segments of a run by age.
    let seq: UInt64
    let file: ReadOnlyFile
    /// The format version the file was written in.
    let version: UInt16
    /// Every series: key, watermark, blocks or pack slot.
    let series: SeriesTable
    /// Packs of short series (version 2).
    let packs: [PackMeta]
    /// Sequence numbers of the segments this one replaces (a compaction's inputs); `nil` for a sealed head.
    let supersedes: ClosedRange<UInt64>?
    /// The run's live segment before this one (0: none).
    let previousSeq: UInt64
    /// The run's most recent client batch ids when this segment was written.
    let batchIDs: [String]
    /// Unique identity for caches.
    let uid: Int

    private static let nextUID = Atomic<Int>(1)

    /// Memory the reader holds: its series index, pack index and batch ids (approximately).
    var indexBytes: Int { 512 + series.bytes + packs.capacity * MemoryLayout<PackMeta>.stride + batchIDs.reduce(0) { $0 + 32 + $1.utf8.count } }

    var path: String { file.path }
    var size: Int64 { file.size }

    init(path: String, seq: UInt64) throws {
        self.seq = seq
        let file = try ReadOnlyFile(path: path)
        self.file = file
        let minimum = SegmentFormat.headerSize + SegmentFormat.trailerSize
        guard file.size >= Int64(minimum) else {
            throw StorageError(.truncated, "segment is \(file.size) bytes, smaller than header and trailer (\(minimum))",
                               path: path, offset: file.size)
        }
        let header = try file.read(at: 0, count: SegmentFormat.headerSize, what: "segment header")
        guard Array(header[0..<8]) == SegmentFormat.headerMagic else {
            throw StorageError(.corrupt, "bad segment magic", path: path, offset: 0)
        }
        let version = UInt16(header[8]) | UInt16(header[9]) << 8
        let storedCRC = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self) }.littleEndian
        guard CRC32C.checksum(header[0..<12]) == storedCRC else {
            throw StorageError(.corrupt, "segment header checksum mismatch", path: path, offset: 12)
        }
        guard header[10] == 0 && header[11] == 0 else {
            throw StorageError(.corrupt, "unknown segment header flags", path: path, offset: 10)
        }
        guard SegmentFormat.readableVersions.contains(version) else {
            throw StorageError(.unsupportedFormat, "segment format version \(version), this build reads \(SegmentFormat.readableVersions)",
                               path: path, offset: 8)
        }
        self.version = version
        let trailerAt = file.size - Int64(SegmentFormat.trailerSize)
        let trailer = try file.read(at: trailerAt, count: SegmentFormat.trailerSize, what: "segment trailer")
        guard Array(trailer[24..<32]) == SegmentFormat.trailerMagic else {
            throw StorageError(.truncated, "segment trailer missing (file truncated or not finished)", path: path, offset: trailerAt)
        }
        var tr = ByteReader(trailer, baseOffset: trailerAt)
        let footerOffset = Int64(exactly: try tr.read(UInt64.self, "footer offset")) ?? -1
        let footerLength = Int(try tr.read(UInt32.self, "footer length"))
        let footerCRC = try tr.read(UInt32.self, "footer checksum")
        guard footerOffset >= Int64(SegmentFormat.headerSize), footerOffset == trailerAt - Int64(footerLength) else {
            throw StorageError(.corrupt, "footer location \(footerOffset)+\(footerLength) does not end at the trailer",
                               path: path, offset: trailerAt)
        }
        let fb = try file.read(at: footerOffset, count: footerLength, what: "segment footer")
        guard CRC32C.checksum(fb) == footerCRC else {
            throw StorageError(.corrupt, "segment footer checksum mismatch", path: path, offset: footerOffset)
        }
        let footer: SegmentFooter
        do {
            footer = try SegmentFooter.decode(fb, version: version, baseOffset: footerOffset, chunkLimit: footerOffset)
        } catch let e as StorageError {
            throw e.at(path: path)
        }
        series = SeriesTable(footer.series)
        packs = footer.packs
        supersedes = footer.supersedes
        previousSeq = footer.previousSeq
        batchIDs = footer.batchIDs
        uid = Self.nextUID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Reads a chunk and checks its CRC32C; returns the bytes without the CRC.
    func readChunk(_ ref: ChunkRef, what: String) throws -> [UInt8] {
        var bytes = try file.read(at: ref.offset, count: ref.length, what: what)
        let n = ref.length - 4
        let stored = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: n, as: UInt32.self) }.littleEndian
        let actual = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        guard stored == actual else {
            throw StorageError(.corrupt, "\(what) checksum mismatch (stored \(stored), computed \(actual))", path: path, offset: ref.offset)
        }
        bytes.removeLast(4)
        return bytes
    }

    /// Decodes an integer column chunk of `count` values.
    func readInts(_ ref: ChunkRef, count: Int, planes: PlaneCodec, what: String) throws -> [Int64] {
        try [Int64](unsafeUninitializedCapacity: count) { buf, c in
            try decodeInts(ref, count: count, planes: planes, what: what, into: buf)
            c = count
        }
    }

    /// Decodes an integer column chunk of `count` values into `out`.
    func decodeInts(_ ref: ChunkRef, count: Int, planes: PlaneCodec, what: String, into out: UnsafeMutableBufferPointer<Int64>) throws {
        let bytes = try readChunk(ref, what: what)
        try withPath {
            var r = ByteReader(bytes, baseOffset: ref.offset)
            try IntColumnCodec.decode(&r, expectedCount: count, planes: planes, into: out)
        }
    }

    /// Decodes a float column chunk of `count` values as Double bit patterns.
    func readValues(_ ref: ChunkRef, count: Int, planes: PlaneCodec) throws -> [UInt64] {
        try [UInt64](unsafeUninitializedCapacity: count) { buf, c in
            try decodeValues(ref, count: count, planes: planes, into: buf)
            c = count
        }
    }

    /// Decodes a float column chunk of `count` values into `out` as Double bit patterns. A column predicted from
    /// another (segment format 5) decodes its base first: a value chunk written before it in this file, of the
    /// same count, that is not predicted itself.
    func decodeValues(_ ref: ChunkRef, count: Int, planes: PlaneCodec, into out: UnsafeMutableBufferPointer<UInt64>) throws {
        let bytes = try readChunk(ref, what: "value column")
        try withPath {
            guard let base = try FloatColumnCodec.predictionBase(of: bytes, at: ref.offset) else {
                var r = ByteReader(bytes, baseOffset: ref.offset)
                return try FloatColumnCodec.decode(&r, expectedCount: count, planes: planes, into: out)
            }
            guard version >= 5, base.offset < ref.offset, base.isInside(chunkLimit: ref.offset) else {
                throw StorageError(.corrupt, "predicted value column names base \(base.offset)+\(base.length), not a chunk before it",
                                   offset: ref.offset + 8)
            }
            let baseBytes = try readChunk(base, what: "base value column")
            guard try FloatColumnCodec.predictionBase(of: baseBytes, at: base.offset) == nil else {
                throw StorageError(.corrupt, "predicted value column's base at \(base.offset) is predicted too", offset: ref.offset + 8)
            }
            var rb = ByteReader(baseBytes, baseOffset: base.offset)
            try FloatColumnCodec.decode(&rb, expectedCount: count, planes: planes, into: out)
            guard rb.remaining == 0 else { throw rb.corrupt("\(rb.remaining) unexpected bytes after the base value column") }
            var r = ByteReader(bytes, baseOffset: ref.offset)
            try FloatColumnCodec.decodePredicted(&r, expectedCount: count, planes: planes, base: out)
        }
    }

    /// Decodes a block's rollup pyramid (empty when the block has none).
    func readRollup(_ meta: BlockMeta, planes: PlaneCodec) throws -> RollupPyramid {
        guard !meta.rollup.isNone else { return RollupPyramid(levels: []) }
        let bytes = try readChunk(meta.rollup, what: "rollup")
        return try withPath { try RollupPyramid.decode(bytes, baseOffset: meta.rollup.offset, planes: planes) }
    }

    /// Block `bi` of series `si`.
    func block(_ si: Int, _ bi: Int) -> BlockMeta { series.blocks(si)[bi] }

    /// Decodes pack `index`.
    func readPack(_ index: Int, planes: PlaneCodec) throws -> DecodedPack {
        let meta = packs[index]
        let bytes = try readChunk(meta.chunk, what: "pack")
        return try withPath { try DecodedPack.decode(bytes, meta: meta, planes: planes) }
    }

    /// Points held: blocks and packs.
    var points: Int {
        (0..<series.count).reduce(0) { $0 + series.blocks($1).reduce(0) { $0 + $1.count } } + packs.reduce(0) { $0 + $1.pointCount }
    }

    private func withPath<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as StorageError { throw e.at(path: path) }
    }
}
