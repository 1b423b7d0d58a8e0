/// Constants and record framing of the write-ahead log (see `docs/storage-format.md`).
enum WALFormat {
    /// `TALLYWAL`, the first 8 bytes of every WAL segment.
    static let magic: [UInt8] = Array("TALLYWAL".utf8)
    static let version: UInt16 = 1
    /// `magic[8], version u16, reserved u16, firstLSN u64, crc u32` (CRC32C of the first 20 bytes).
    static let fileHeaderSize = 24
    /// Marks the start of every record (helps tell a torn tail from corruption followed by good records).
    static let recordMagic: UInt16 = 0x57A1
    static let recordHeaderSize = 20
    /// Largest payload a record may carry.
    static let maxPayload = 1 << 30

    /// File name of WAL segment `seq`.
    static func fileName(seq: UInt64) -> String {
        let hex = String(seq, radix: 16)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex + ".wal"
    }

    static func seq(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".wal"), name.count == 20 else { return nil }
        return UInt64(name.prefix(16), radix: 16)
    }

    /// The file header of a segment whose first record will have LSN `firstLSN`.
    static func fileHeader(firstLSN: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: fileHeaderSize)
        w.write(bytes: magic)
        w.write(version)
        w.write(UInt16(0))
        w.write(firstLSN)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }
}

/// Kinds of WAL records.
enum WALRecordType: UInt8 {
    /// Assigns a segment-local series id to (run, key): `u32 id, u16 runLength, run, u16 keyLength, key`.
    case series = 1
    /// A batch of points for one run (see ``WALPoints``).
    case points = 2
    /// A run's data was deleted: `u16 runLength, run`. Replay drops what came before for that run.
    case deleteRun = 3
}

/// One record read back: its payload is `bytes[payload]`.
struct WALRecord {
    var lsn: UInt64
    var type: WALRecordType
    var payload: Range<Int>
    /// Offset of the record header in its file.
    var offset: Int64
}

extension WALFormat {
    /// The 20-byte record header: `magic u16, type u8, flags u8, length u32, lsn u64, crc u32`, where the CRC32C
    /// covers the payload and then the first 16 header bytes (`crc32c(header[0..<16], seed: crc32c(payload))`).
    /// Appends a whole record (header and the payload `body` writes) to `w`, computing its length and checksum in
    /// place: many small records (a wide batch's series) go into one buffer without an array each.
    static func appendRecord(type: WALRecordType, lsn: UInt64, into w: inout ByteWriter, _ body: (inout ByteWriter) -> Void) {
        let h = w.count
        w.write(recordMagic)
        w.write(type.rawValue)
        w.write(UInt8(0))
        w.write(UInt32(0))  // length, patched below
        w.write(lsn)
        w.write(UInt32(0))  // checksum, patched below
        let p = w.count
        body(&w)
        w.patch(UInt32(w.count - p), at: h + 4)
        let crc = w.bytes.withUnsafeBytes { all in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[h..<(h + 16)]),
                            seed: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[p..<all.count])))
        }
        w.patch(crc, at: h + 16)
    }

    static func header(type: WALRecordType, lsn: UInt64, length: Int, payloadCRC: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: recordHeaderSize)
        w.write(recordMagic)
        w.write(type.rawValue)
        w.write(UInt8(0))
        w.write(UInt32(length))
        w.write(lsn)
        w.write(CRC32C.checksum(w.bytes, seed: payloadCRC))
        return w.bytes
    }
}
