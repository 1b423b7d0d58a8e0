/// The records of one WAL segment file, validated, and where (if anywhere) the file stops being valid.
struct WALSegmentScan {
    let path: String
    let seq: UInt64
    /// The whole file.
    let bytes: [UInt8]
    /// Valid records in order.
    var records: [WALRecord] = []
    /// Offset just past the last valid record.
    var validEnd: Int64 = Int64(WALFormat.fileHeaderSize)
    /// LSN the segment's first record has (from the file header); the next segment continues after the last record.
    var firstLSN: UInt64 = 0
    /// The last LSN of this segment (`firstLSN - 1` when it holds no record).
    var lastLSN: UInt64 { records.last?.lsn ?? (firstLSN > 0 ? firstLSN - 1 : 0) }
    /// The first invalid record: offset and reason (`nil` when the file is valid to its end).
    var damage: (offset: Int64, reason: String)?
    /// Whether a valid record appears after ``damage`` (corruption in the middle, not a torn tail).
    var validRecordAfterDamage = false

    /// Reads and validates a segment file.
    /// - Parameter afterLSN: the last LSN of the previous segment (0 for the first); this one must continue above it.
    init(path: String, seq: UInt64, afterLSN: UInt64) throws {
        self.path = path
        self.seq = seq
        let file = try ReadOnlyFile(path: path)
        bytes = try file.read(at: 0, count: Int(file.size), what: "WAL segment")
        guard bytes.count >= WALFormat.fileHeaderSize else {
            damage = (0, "file shorter than its header")
            validEnd = 0
            return
        }
        let storedCRC = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 20, as: UInt32.self) }.littleEndian
        guard Array(bytes[0..<8]) == WALFormat.magic, CRC32C.checksum(bytes[0..<20]) == storedCRC else {
            damage = (0, "bad WAL file header")
            validEnd = 0
            return
        }
        let version = UInt16(bytes[8]) | UInt16(bytes[9]) << 8
        guard version == WALFormat.version else {
            throw StorageError(.unsupportedFormat, "WAL format version \(version)", path: path, offset: 8)
        }
        firstLSN = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt64.self) }.littleEndian
        guard firstLSN >= 1, afterLSN == 0 || firstLSN == afterLSN + 1 else {
            throw StorageError(.corrupt, "WAL segment starts at LSN \(firstLSN), expected \(afterLSN + 1): a WAL segment is missing",
                               path: path, offset: 12)
        }
        var offset = WALFormat.fileHeaderSize
        var last = firstLSN - 1
        while offset < bytes.count {
            switch Self.record(in: bytes, at: offset, after: last) {
            case .success(let r):
                records.append(r)
                last = r.lsn
                offset = r.payload.upperBound
                validEnd = Int64(offset)
            case .failure(let why):
                // Zeros to the end: space written ahead of the records (WALConfiguration.preallocateBytes), the log's end.
                if bytes[offset...].allSatisfy({ $0 == 0 }) { return }
                damage = (Int64(offset), why.message)
                validRecordAfterDamage = Self.findRecord(in: bytes, from: offset + 1, after: last)
                return
            }
        }
    }

    struct Invalid: Error {
        var message: String
    }

    /// Parses and checks the record at `offset`.
    static func record(in bytes: [UInt8], at offset: Int, after previous: UInt64) -> Result<WALRecord, Invalid> {
        let remaining = bytes.count - offset
        guard remaining >= WALFormat.recordHeaderSize else {
            return .failure(Invalid(message: "\(remaining) bytes left, less than a record header"))
        }
        return bytes.withUnsafeBytes { raw in
            func load<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T { T(littleEndian: raw.loadUnaligned(fromByteOffset: offset + at, as: T.self)) }
            guard load(0, UInt16.self) == WALFormat.recordMagic else { return .failure(Invalid(message: "no record magic")) }
            guard let type = WALRecordType(rawValue: load(2, UInt8.self)), load(3, UInt8.self) == 0 else {
                return .failure(Invalid(message: "unknown record type or flags"))
            }
            let length = Int(load(4, UInt32.self))
            let lsn = load(8, UInt64.self)
            guard length <= remaining - WALFormat.recordHeaderSize else {
                return .failure(Invalid(message: "record of \(length) bytes runs past the end of the file"))
            }
            let start = offset + WALFormat.recordHeaderSize
            let payloadCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]))
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 16)]), seed: payloadCRC)
            guard crc == load(16, UInt32.self) else { return .failure(Invalid(message: "record checksum mismatch")) }
            guard lsn == previous &+ 1 else { return .failure(Invalid(message: "record LSN \(lsn) does not follow \(previous)")) }
            return .success(WALRecord(lsn: lsn, type: type, payload: start..<(start + length), offset: Int64(offset)))
        }
    }

    /// Whether a valid record continuing the log (LSN `after + 1`, or any later LSN if records in between were lost)
    /// starts at or after `from`.
    static func findRecord(in bytes: [UInt8], from: Int, after: UInt64) -> Bool {
        guard from + WALFormat.recordHeaderSize <= bytes.count else { return false }
        let (lo, hi) = (UInt8(WALFormat.recordMagic & 0xFF), UInt8(WALFormat.recordMagic >> 8))
        var i = from
        while i + WALFormat.recordHeaderSize <= bytes.count {
            if bytes[i] == lo && bytes[i + 1] == hi {
                let lsn = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)) }
                if lsn > after, case .success = record(in: bytes, at: i, after: lsn &- 1) { return true }
            }
            i += 1
        }
        return false
    }
}
