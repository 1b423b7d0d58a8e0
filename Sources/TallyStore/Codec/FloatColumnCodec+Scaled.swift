#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FloatColumnCodec {
    /// Writes the column as scaled integers (see ``ScaledIntegers``) when its values have a scale and the integers'
    /// estimated size is under 97 % of `estimate` (the float path's, for the same sample); `false` writes nothing.
    ///
    /// Layout after the column header (transform 3, width = bytes per integer, 0...8): `b: u8`, `e: u8`,
    /// `reference: i64` (the smallest integer), then `width` byte planes of `integer − reference`.
    static func encodeScaled(_ bits: UnsafeBufferPointer<UInt64>, beating estimate: Double, compression: Compression, planes: PlaneCodec,
                             into w: inout ByteWriter) throws -> Bool {
        // Chosen on the sample the float estimate used, so a column of noise costs a sample, not a pass.
        let m = min(bits.count, sampleSize)
        let sample = UnsafeBufferPointer(rebasing: bits[0..<m])
        var best: (scale: ScaledIntegers.Scale, size: Double)?
        for s in ScaledIntegers.candidates(sample) {
            guard let ks = ScaledIntegers.integers(sample, s) else { continue }
            let size = estimatedSize(ks)
            if best == nil || size < best!.size { best = (s, size) }
        }
        guard let best, best.size < estimate * 0.97, let ks = ScaledIntegers.integers(bits, best.scale) else { return false }
        let scale = best.scale
        let n = ks.count
        let reference = ks.min()!
        let width = IntColumnCodec.byteWidth(UInt64(bitPattern: ks.max()! &- reference))
        ColumnHeader(kind: kind, transform: scaledTransform, width: width, count: n).write(into: &w)
        w.write(UInt8(scale.b))
        w.write(UInt8(scale.e))
        w.write(reference)
        for k in 0..<width {  // the planes above `width` are all zero
            try plane(k, of: ks, reference: reference).withUnsafeBytes { try planes.encode($0, compression: compression, into: &w) }
        }
        return true
    }

    /// Byte `k` of every `integer − reference`.
    static func plane(_ k: Int, of ks: [Int64], reference: Int64) -> [UInt8] {
        let shift = UInt64(k * 8)
        return ks.map { UInt8(truncatingIfNeeded: UInt64(bitPattern: $0 &- reference) &>> shift) }
    }

    /// The estimated stored size of integers as their frame-of-reference planes (only the planes stored count), by
    /// the same order-0 entropy rule as ``BytePlanes/estimatedSize(_:count:width:)``.
    static func estimatedSize(_ ks: [Int64]) -> Double {
        guard let lo = ks.min(), let hi = ks.max() else { return 0 }
        let width = IntColumnCodec.byteWidth(UInt64(bitPattern: hi &- lo))
        var total = 0.0
        var hist = [Int](repeating: 0, count: 256)
        let n = Double(ks.count)
        for k in 0..<width {
            for j in 0..<256 { hist[j] = 0 }
            for byte in plane(k, of: ks, reference: lo) { hist[Int(byte)] &+= 1 }
            var bits = 0.0
            for c in hist where c > 0 { bits -= Double(c) * log2(Double(c) / n) }
            total += min(bits / 8 + 16, n)
        }
        return total
    }

    /// Decodes a scaled-integer column (after its header) into `out` as Double bit patterns.
    static func decodeScaled(_ r: inout ByteReader, width: Int, count n: Int, planes: PlaneCodec, into out: UnsafeMutableBufferPointer<UInt64>,
                             at headerAt: Int64) throws {
        let b = Int(try r.read(UInt8.self, "scaled column binary exponent"))
        let e = Int(try r.read(UInt8.self, "scaled column decimal exponent"))
        let reference = try r.read(Int64.self, "scaled column reference")
        guard width <= 8, b <= ScaledIntegers.maxBinaryExponent, ScaledIntegers.decimalExponents.contains(e) else {
            throw StorageError(.corrupt, "scaled float column with width \(width), b \(b), e \(e)", offset: headerAt)
        }
        precondition(out.count >= n)
        let scale = ScaledIntegers.Scale(b: b, e: e)
        guard n > 0 else { return }
        guard width > 0 else {
            let v = ScaledIntegers.value(reference, scale).bitPattern
            for i in 0..<n { out[i] = v }
            return
        }
        let buffer = try planes.decodePlanes(&r, count: n, width: width)
        buffer.withUnsafeBytes { pl in
            IntColumnCodec.residualLoop(pl.baseAddress!.assumingMemoryBound(to: UInt8.self), m: n, width: width) { i, u in
                out[i] = ScaledIntegers.value(reference &+ Int64(bitPattern: u), scale).bitPattern
            }
        }
    }
}
