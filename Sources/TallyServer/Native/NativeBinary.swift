import CZstd
import TallyStore

/// Reads the binary columnar body of `POST /api/tally/v1/runs/{run_id}/metrics` (`Content-Type:
/// application/x-tally-columns`). Little-endian throughout; the layout is in `docs/api.md`:
///
///     header (16 bytes): "TLYC" · version u8 = 1 · flags u8 (bit 0: payload is one zstd frame) · reserved u16 = 0
///                        · payload length u32 (after decompression) · series count u32
///     payload:           batch id length u16 · batch id (UTF-8; length 0 = none)
///                        then per series: key length u16 · key (UTF-8) · value type u8 (4 = float32, 8 = float64)
///                        · reserved u8 = 0 · point count u32 · steps i64 × count · timestamps i64 × count
///                        · values (float32 or float64) × count
///
/// Float32 values are widened exactly; the store keeps columns whose values all fit float32 as float32.
enum NativeBinary {
    /// The four magic bytes.
    static let magic: [UInt8] = Array("TLYC".utf8)
    /// Largest decompressed payload accepted (also never more than the caller's body limit).
    static let maxPayload = 1 << 30
    /// Most series in one request (each costs an allocation however few points it has).
    static let maxSeries = 100_000

    /// Decodes a whole body; a compressed payload may not decompress to more than `limit` bytes.
    static func decode(_ body: UnsafeRawBufferPointer, limit: Int = maxPayload) throws -> NativeBatch {
        guard body.count >= 16 else { throw NativeBodyError(message: "body shorter than the 16-byte header", offset: body.count, field: nil) }
        guard body[0] == magic[0], body[1] == magic[1], body[2] == magic[2], body[3] == magic[3] else {
            throw NativeBodyError(message: "bad magic (expected \"TLYC\")", offset: 0, field: nil)
        }
        guard body[4] == 1 else { throw NativeBodyError(message: "unsupported version \(body[4]) (expected 1)", offset: 4, field: nil) }
        let flags = body[5]
        guard flags & ~1 == 0 else { throw NativeBodyError(message: "unknown flags \(flags)", offset: 5, field: nil) }
        let payloadLength = Int(body.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
        let seriesCount = Int(body.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian)
        guard seriesCount <= maxSeries else {
            throw NativeBodyError(message: "\(seriesCount) series exceed the limit of \(maxSeries) per request", offset: 12, field: nil)
        }
        let rest = UnsafeRawBufferPointer(rebasing: body[16...])
        if flags & 1 == 0 {
            guard payloadLength == rest.count else {
                throw NativeBodyError(message: "payload length \(payloadLength) does not match the \(rest.count) bytes sent", offset: 8, field: nil)
            }
            return try payload(rest, seriesCount: seriesCount, base: 16)
        }
        let cap = min(maxPayload, limit)
        guard payloadLength <= cap else {
            throw NativeBodyError(message: "payload length \(payloadLength) exceeds the limit of \(cap) bytes", offset: 8, field: nil)
        }
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, payloadLength), alignment: 8)
        defer { plain.deallocate() }
        let got = ZSTD_decompress(plain.baseAddress, payloadLength, rest.baseAddress, rest.count)
        if ZSTD_isError(got) != 0 {
            throw NativeBodyError(message: "zstd: \(String(cString: ZSTD_getErrorName(got)))", offset: 16, field: nil)
        }
        guard got == payloadLength else {
            throw NativeBodyError(message: "zstd payload is \(got) bytes, header says \(payloadLength)", offset: 8, field: nil)
        }
        // Offsets in errors count from the start of the decompressed payload.
        return try payload(UnsafeRawBufferPointer(plain), seriesCount: seriesCount, base: 0)
    }

    private static func payload(_ p: UnsafeRawBufferPointer, seriesCount: Int, base: Int) throws -> NativeBatch {
        var at = 0
        func need(_ n: Int, _ what: @autoclosure () -> String) throws {
            guard n >= 0, p.count - at >= n else {
                throw NativeBodyError(message: "truncated: \(what()) needs \(n) bytes, \(p.count - at) left", offset: base + at, field: nil)
            }
        }
        func u16() -> Int {
            defer { at += 2 }
            return Int(p.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian)
        }
        func text(_ n: Int, _ field: String) throws -> String {
            try need(n, field)
            defer { at += n }
            guard let s = String(validating: UnsafeRawBufferPointer(rebasing: p[at..<(at + n)]), as: UTF8.self) else {
                throw NativeBodyError(message: "not valid UTF-8", offset: base + at, field: field)
            }
            return s
        }
        try need(2, "batch id length")
        let idLength = u16()
        let batchID = idLength == 0 ? nil : try text(idLength, "batch_id")
        var series: [SeriesBatch] = []
        series.reserveCapacity(min(seriesCount, 4096))
        for i in 0..<seriesCount {
            let field = "series[\(i)]"
            try need(2, field + " key length")
            let key = try text(u16(), field + ".key")
            try need(6, field + " header")
            let type = p[at]
            guard type == 4 || type == 8 else {
                throw NativeBodyError(message: "value type \(type) (expected 4 = float32 or 8 = float64)", offset: base + at, field: field)
            }
            guard p[at + 1] == 0 else { throw NativeBodyError(message: "reserved byte must be 0", offset: base + at + 1, field: field) }
            let count = Int(p.loadUnaligned(fromByteOffset: at + 2, as: UInt32.self).littleEndian)
            at += 6
            let (columns, o1) = count.multipliedReportingOverflow(by: 16 + Int(type))
            guard !o1 else { throw NativeBodyError(message: "point count \(count) too large", offset: base + at - 4, field: field) }
            try need(columns, field + " columns of \(count) points")
            let steps = int64s(p, at, count)
            let timestamps = int64s(p, at + 8 * count, count)
            let values = type == 8 ? float64s(p, at + 16 * count, count) : float32s(p, at + 16 * count, count)
            at += columns
            series.append(SeriesBatch(key: key, steps: steps, timestamps: timestamps, values: values))
        }
        guard at == p.count else {
            throw NativeBodyError(message: "\(p.count - at) bytes after the last series", offset: base + at, field: nil)
        }
        return NativeBatch(batchID: batchID, series: series)
    }

    private static func int64s(_ p: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> [Int64] {
        [Int64](unsafeUninitializedCapacity: count) { out, n in
            let dst = UnsafeMutableRawBufferPointer(out)
            dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: p[at..<(at + 8 * count)]))
            #if _endian(big)
            for k in 0..<count { out[k] = Int64(littleEndian: out[k]) }
            #endif
            n = count
        }
    }

    private static func float64s(_ p: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: count) { out, n in
            let dst = UnsafeMutableRawBufferPointer(out)
            dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: p[at..<(at + 8 * count)]))
            #if _endian(big)
            for k in 0..<count { out[k] = Double(bitPattern: UInt64(littleEndian: out[k].bitPattern)) }
            #endif
            n = count
        }
    }

    private static func float32s(_ p: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: count) { out, n in
            for k in 0..<count {
                let bits = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at &+ 4 &* k, as: UInt32.self))
                out[k] = Double(Float(bitPattern: bits))
            }
            n = count
        }
    }
}
