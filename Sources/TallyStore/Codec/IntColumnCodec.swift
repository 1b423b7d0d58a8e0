/// Encodes `Int64` columns (steps, timestamps, rollup fields).
///
/// Transforms, chosen per column: constant delta (regular steps cost 36 bytes with the chunk CRC, whatever their number), or delta /
/// delta-of-delta followed by frame-of-reference (subtract the minimum) into the fewest whole bytes, split into
/// byte planes that are then compressed one by one. All arithmetic wraps, so `Int64.min`/`Int64.max` round-trip.
/// The byte layout is in `docs/storage-format.md`.
@usableFromInline
enum IntColumnCodec {
    @usableFromInline static let kind: UInt8 = 1

    @usableFromInline enum Transform: UInt8 {
        case empty = 0
        case constantDelta = 1
        case delta = 2
        case deltaOfDelta = 3
    }

    /// Bytes needed to hold `v` (0 for 0).
    @inlinable static func byteWidth(_ v: UInt64) -> Int { (64 &- v.leadingZeroBitCount &+ 7) >> 3 }

    /// Appends the encoded column to `w`.
    static func encode(_ xs: UnsafeBufferPointer<Int64>, compression: Compression, planes: PlaneCodec, into w: inout ByteWriter) throws {
        let n = xs.count
        guard n > 0 else {
            writeHeader(&w, .empty, width: 0, count: 0, 0, 0, 0)
            return
        }
        let first = xs[0]
        if n == 1 {
            writeHeader(&w, .constantDelta, width: 0, count: n, first, 0, 0)
            return
        }
        // First differences and their range.
        var residuals = [Int64](unsafeUninitializedCapacity: n - 1) { buf, c in
            var prev = first
            for i in 1..<n {
                let x = xs[i]
                buf[i - 1] = x &- prev
                prev = x
            }
            c = n - 1
        }
        var (lo, hi) = minMax(residuals)
        if lo == hi {
            writeHeader(&w, .constantDelta, width: 0, count: n, first, lo, 0)
            return
        }
        var transform = Transform.delta
        var width = byteWidth(UInt64(bitPattern: hi &- lo))
        var firstDelta: Int64 = 0
        if n >= 3 {
            let dods = [Int64](unsafeUninitializedCapacity: n - 2) { buf, c in
                residuals.withUnsafeBufferPointer { d in
                    for i in 0..<(n - 2) { buf[i] = d[i + 1] &- d[i] }
                }
                c = n - 2
            }
            let (lo2, hi2) = minMax(dods)
            let width2 = byteWidth(UInt64(bitPattern: hi2 &- lo2))
            if width2 < width {
                transform = .deltaOfDelta
                firstDelta = residuals[0]
                residuals = dods
                (lo, hi) = (lo2, hi2)
                width = width2
            }
        }
        if transform == .delta {
            writeHeader(&w, .delta, width: width, count: n, first, lo, 0)
        } else {
            writeHeader(&w, .deltaOfDelta, width: width, count: n, first, firstDelta, lo)
        }
        try writePlanes(residuals, minimum: lo, width: width, compression: compression, planes: planes, into: &w)
    }

    /// Appends `values - minimum` as `width` byte planes.
    static func writePlanes(_ values: [Int64], minimum: Int64, width: Int, compression: Compression, planes: PlaneCodec,
                            into w: inout ByteWriter) throws {
        let m = values.count
        guard width > 0, m > 0 else { return }
        let buffer = [UInt8](unsafeUninitializedCapacity: m * width) { out, c in
            values.withUnsafeBufferPointer { v in
                for k in 0..<width {
                    let plane = out.baseAddress! + k * m
                    let shift = UInt64(k * 8)
                    for i in 0..<m {
                        plane[i] = UInt8(truncatingIfNeeded: UInt64(bitPattern: v[i] &- minimum) &>> shift)
                    }
                }
            }
            c = m * width
        }
        try buffer.withUnsafeBytes { all in
            for k in 0..<width {
                try planes.encode(UnsafeRawBufferPointer(rebasing: all[(k * m)..<((k + 1) * m)]), compression: compression, into: &w)
            }
        }
    }

    private static func writeHeader(_ w: inout ByteWriter, _ t: Transform, width: Int, count: Int, _ a: Int64, _ b: Int64, _ c: Int64) {
        ColumnHeader(kind: kind, transform: t.rawValue, width: width, count: count).write(into: &w)
        w.write(a)
        w.write(b)
        w.write(c)
    }

    @inlinable static func minMax(_ xs: [Int64]) -> (Int64, Int64) {
        xs.withUnsafeBufferPointer { b in
            var lo = b[0]
            var hi = b[0]
            for x in b {
                lo = x < lo ? x : lo
                hi = x > hi ? x : hi
            }
            return (lo, hi)
        }
    }

    /// Decodes a column of exactly `expectedCount` values into `out`.
    static func decode(_ r: inout ByteReader, expectedCount: Int, planes: PlaneCodec, into out: UnsafeMutableBufferPointer<Int64>) throws {
        let headerAt = r.baseOffset + Int64(r.offset)
        let h = try ColumnHeader.read(&r, kind: kind, expectedCount: expectedCount, name: "integer")
        let (width, n) = (h.width, h.count)
        let a = try r.read(Int64.self, "int column parameter")
        let b = try r.read(Int64.self, "int column parameter")
        let c = try r.read(Int64.self, "int column parameter")
        guard let t = Transform(rawValue: h.transform), width <= 8 else {
            throw StorageError(.corrupt, "unknown integer transform \(h.transform) or width \(width)", offset: headerAt)
        }
        precondition(out.count >= n)
        switch t {
        case .empty:
            guard n == 0 else { throw r.corrupt("empty column with count \(n)") }
        case .constantDelta:
            var x = a
            for i in 0..<n {
                out[i] = x
                x = x &+ b
            }
        case .delta, .deltaOfDelta:
            let m = t == .delta ? n - 1 : n - 2
            guard m >= 1 else { throw r.corrupt("transform \(t) needs more than \(n) values") }
            let lo = t == .delta ? b : c
            let buffer = try planes.decodePlanes(&r, count: m, width: width)
            buffer.withUnsafeBytes { pl in
                let base = pl.baseAddress!.assumingMemoryBound(to: UInt8.self)
                out[0] = a
                if t == .delta {
                    var x = a
                    residualLoop(base, m: m, width: width) { i, u in
                        x = x &+ (lo &+ Int64(bitPattern: u))
                        out[i &+ 1] = x
                    }
                } else {
                    var d = b
                    var x = a &+ d
                    out[1] = x
                    residualLoop(base, m: m, width: width) { i, u in
                        d = d &+ (lo &+ Int64(bitPattern: u))
                        x = x &+ d
                        out[i &+ 2] = x
                    }
                }
            }
        }
    }

    /// Calls `body(i, residual)` for each of `m` residuals stored as `width` byte planes, with fast paths for 0–2 bytes.
    @inline(__always)
    static func residualLoop(_ base: UnsafePointer<UInt8>, m: Int, width: Int, _ body: (Int, UInt64) -> Void) {
        switch width {
        case 0:
            for i in 0..<m { body(i, 0) }
        case 1:
            for i in 0..<m { body(i, UInt64(base[i])) }
        case 2:
            let p1 = base + m
            for i in 0..<m { body(i, UInt64(base[i]) | UInt64(p1[i]) &<< 8) }
        default:
            for i in 0..<m {
                var u: UInt64 = 0
                var p = base + i
                for k in 0..<width {
                    u |= UInt64(p.pointee) &<< UInt64(k &* 8)
                    p += m
                }
                body(i, u)
            }
        }
    }
}
