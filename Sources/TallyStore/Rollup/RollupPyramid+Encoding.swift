import CZstd

extension RollupPyramid {
    /// Serialises the pyramid: `levelCount: u8`, then per level `shift: u8`, `bucketCount: u32` and 14 columns
    /// (see `docs/storage-format.md`), the whole compressed once with zstd when that pays.
    func encode(planes: PlaneCodec) throws -> [UInt8] {
        var w = ByteWriter(capacity: 1024)
        w.write(UInt8(levels.count))
        for L in levels {
            w.write(UInt8(L.shift))
            w.write(UInt32(L.bucketCount))
            for col in [L.bucket, L.count, L.nan, L.posInf, L.negInf, L.firstStep, L.lastStep, L.minStep, L.maxStep] {
                try col.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: .none, planes: planes, into: &w) }
            }
            for col in [L.first, L.last, L.min, L.max, L.sum] {
                try col.withUnsafeBufferPointer { _ = try FloatColumnCodec.encode($0, compression: .none, planes: planes, into: &w, segment: true) }
            }
        }
        return try Blob.pack(w.bytes)
    }

    /// Parses what ``encode(planes:)`` wrote.
    static func decode(_ bytes: [UInt8], baseOffset: Int64, planes: PlaneCodec) throws -> RollupPyramid {
        let raw = try Blob.unpack(bytes, baseOffset: baseOffset)
        var r = ByteReader(raw, baseOffset: baseOffset)
        let levelCount = Int(try r.read(UInt8.self, "rollup level count"))
        var levels: [Level] = []
        for _ in 0..<levelCount {
            let shift = Int(try r.read(UInt8.self, "rollup shift"))
            let n = Int(try r.read(UInt32.self, "rollup bucket count"))
            guard shift <= 60, n <= 1 << 24 else { throw r.corrupt("rollup level with shift \(shift) and \(n) buckets") }
            var L = Level(shift: shift)
            func ints() throws -> [Int64] {
                try [Int64](unsafeUninitializedCapacity: n) { buf, c in
                    try IntColumnCodec.decode(&r, expectedCount: n, planes: planes, into: buf)
                    c = n
                }
            }
            func floats() throws -> [UInt64] {
                try [UInt64](unsafeUninitializedCapacity: n) { buf, c in
                    try FloatColumnCodec.decode(&r, expectedCount: n, planes: planes, into: buf)
                    c = n
                }
            }
            L.bucket = try ints(); L.count = try ints(); L.nan = try ints(); L.posInf = try ints(); L.negInf = try ints()
            L.firstStep = try ints(); L.lastStep = try ints(); L.minStep = try ints(); L.maxStep = try ints()
            L.first = try floats(); L.last = try floats(); L.min = try floats(); L.max = try floats(); L.sum = try floats()
            levels.append(L)
        }
        return RollupPyramid(levels: levels)
    }
}

/// A byte blob compressed as a whole: `method: u8` (0 raw, 1 zstd), `rawLength: u32`, then the bytes.
enum Blob {
    static func pack(_ raw: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        var w = ByteWriter(capacity: raw.count / 2 + 16)
        w.write(UInt8(1))
        w.write(UInt32(raw.count))
        let bound = ZSTD_compressBound(raw.count)
        let n = try w.withUnsafeAppendingSpace(bound) { out in
            let r = raw.withUnsafeBytes { ZSTD_compress(out.baseAddress, bound, $0.baseAddress, $0.count, level) }
            if ZSTD_isError(r) != 0 { throw StorageError(.compression, "zstd: " + String(cString: ZSTD_getErrorName(r))) }
            return (r, r)
        }
        if n >= raw.count {
            var plain = ByteWriter(capacity: raw.count + 5)
            plain.write(UInt8(0))
            plain.write(UInt32(raw.count))
            plain.write(bytes: raw)
            return plain.bytes
        }
        return w.bytes
    }

    static func unpack(_ bytes: [UInt8], baseOffset: Int64) throws -> [UInt8] {
        var r = ByteReader(bytes, baseOffset: baseOffset)
        let method = try r.read(UInt8.self, "blob method")
        let rawLength = Int(try r.read(UInt32.self, "blob length"))
        let body = try r.skip(r.remaining)
        switch method {
        case 0:
            guard body.count == rawLength else { throw StorageError(.corrupt, "blob length mismatch", offset: baseOffset) }
            return Array(bytes[body])
        case 1:
            guard rawLength <= 1 << 30 else { throw StorageError(.corrupt, "blob claims \(rawLength) bytes", offset: baseOffset) }
            return try [UInt8](unsafeUninitializedCapacity: rawLength) { out, c in
                let n = bytes.withUnsafeBytes { src in
                    ZSTD_decompress(out.baseAddress, rawLength, src.baseAddress! + body.lowerBound, body.count)
                }
                guard ZSTD_isError(n) == 0, n == rawLength else {
                    throw StorageError(.corrupt, "compressed blob does not decode", offset: baseOffset)
                }
                c = rawLength
            }
        default:
            throw StorageError(.corrupt, "unknown blob method \(method)", offset: baseOffset)
        }
    }
}
