extension FloatColumnCodec {
    /// The transform byte of a column predicted from another value column of the same rows (segment format 5).
    ///
    /// Layout after the column header (transform 5, width 4 or 8): the base column's chunk (`offset: u64,
    /// length: u32`), the coefficients `a`, `b`, `c` (three f64), then `width` byte planes of the residuals: the
    /// zigzag-mapped wrapping difference between each value's bits (as a float32 when `width` is 4) and its
    /// prediction's bits. See ``Prediction``.
    static let predictedTransform: UInt8 = 5

    /// Bytes a predicted column's header holds after the common column header.
    static let predictionHeaderSize = 8 + 4 + 3 * 8

    /// The fewest values a column must hold to be predicted (or to be the base of one).
    static let minPredictedCount = 64

    /// A prediction of `y[i]` from the value before it and two values of another column of the same rows,
    /// `a · y[i−1] + b · x[i] + c · x[i−1]`, evaluated in Double in that order (no fused multiply-add) and rounded
    /// to the column's width; `y[−1]` and `x[−1]` are 0. When `a` is 0 it is `b · x[i] + c · x[i−1]` and `y[i−1]`
    /// is not an input (so decoding has no chain from one value to the next). When the prediction is not finite
    /// (an input is not, or a product overflows) its bits are 0: NaN signs and propagation are not the same on
    /// every processor, and the decoded bits must be. Computed in the default IEEE mode (no flush-to-zero).
    struct Prediction: Equatable, Sendable {
        var a: Double
        var b: Double
        var c: Double

        /// Whether every coefficient is finite (a decoder refuses others).
        var isFinite: Bool { a.isFinite && b.isFinite && c.isFinite }

        /// The prediction; `nil` when it is not finite.
        @inline(__always) func value(_ yPrev: Double, _ x: Double, _ xPrev: Double) -> Double? {
            a == 0 ? Self.finite(b * x + c * xPrev) : Self.finite(a * yPrev + b * x + c * xPrev)
        }

        /// `v` when it is finite (`v − v` is 0 for a finite `v`, NaN otherwise). With finite coefficients a
        /// non-finite input always makes the prediction non-finite, and so does an overflow, whose `inf − inf`
        /// NaN has a different sign on x86 and ARM: both give the bits 0.
        @inline(__always) static func finite(_ v: Double) -> Double? { (v - v) == 0 ? v : nil }

        /// The prediction's bits as a float32.
        @inline(__always) func bits32(_ yPrev: Double, _ x: Double, _ xPrev: Double) -> UInt32 {
            value(yPrev, x, xPrev).map { Float($0).bitPattern } ?? 0
        }

        /// The prediction's bits as a float64.
        @inline(__always) func bits64(_ yPrev: Double, _ x: Double, _ xPrev: Double) -> UInt64 {
            value(yPrev, x, xPrev)?.bitPattern ?? 0
        }
    }

    /// A value column already written to the segment, of the same rows as the column being written (its step
    /// chunk is the same), which that column may be predicted from.
    struct PredictionBase: Sendable {
        /// The base column's chunk.
        var ref: ChunkRef
        /// Its values' Double bit patterns.
        var values: [UInt64]
    }

    /// Writes `y` predicted from `base` with `prediction` (its header, then the residual planes).
    static func encodePredicted(_ y: UnsafeBufferPointer<UInt64>, narrow: Bool, base: PredictionBase, prediction: Prediction,
                                compression: Compression, planes: PlaneCodec, into w: inout ByteWriter) throws {
        let n = y.count
        precondition(base.values.count == n && prediction.isFinite, "a prediction needs a finite model and a base of the same rows")
        let width = narrow ? 4 : 8
        ColumnHeader(kind: kind, transform: predictedTransform, width: width, count: n).write(into: &w)
        w.write(UInt64(bitPattern: base.ref.offset))
        w.write(UInt32(base.ref.length))
        w.write(prediction.a.bitPattern)
        w.write(prediction.b.bitPattern)
        w.write(prediction.c.bitPattern)
        guard n > 0 else { return }
        var words = [UInt8](unsafeUninitializedCapacity: n * width) { _, c in c = n * width }  // every word is written
        base.values.withUnsafeBufferPointer { x in
            words.withUnsafeMutableBytes { raw in
                if narrow {
                    residuals(y, x, count: n, prediction, into: raw.bindMemory(to: UInt32.self).baseAddress!)
                } else {
                    residuals(y, x, count: n, prediction, into: raw.bindMemory(to: UInt64.self).baseAddress!)
                }
            }
        }
        try writePlanes(words, count: n, width: width, compression: compression, planes: planes, into: &w)
    }

    /// The zigzag-mapped differences between the first `m` values of `y` (as float32 words when `W` is `UInt32`)
    /// and their predictions from `x`, little-endian.
    static func residuals<W: FixedWidthInteger & UnsignedInteger>(_ y: UnsafeBufferPointer<UInt64>, _ x: UnsafeBufferPointer<UInt64>,
                                                                  count m: Int, _ p: Prediction, into out: UnsafeMutablePointer<W>) {
        var yPrev = 0.0, xPrev = 0.0
        for i in 0..<m {
            let yi = Double(bitPattern: y[i]), xi = Double(bitPattern: x[i])
            let d: W
            if W.bitWidth == 32 {
                d = W(truncatingIfNeeded: Float(yi).bitPattern &- p.bits32(yPrev, xi, xPrev))
            } else {
                d = W(truncatingIfNeeded: y[i] &- p.bits64(yPrev, xi, xPrev))
            }
            out[i] = zigzag(d).littleEndian
            yPrev = yi
            xPrev = xi
        }
    }

    /// The base chunk a predicted column names, or `nil` when `bytes` (a value chunk without its CRC) is not one.
    static func predictionBase(of bytes: [UInt8], at offset: Int64) throws -> ChunkRef? {
        guard bytes.count > 1, bytes[0] == kind, bytes[1] == predictedTransform else { return nil }
        var r = ByteReader(bytes, baseOffset: offset)
        r.offset = 8
        let at = try r.read(UInt64.self, "prediction base offset")
        let length = Int(try r.read(UInt32.self, "prediction base length"))
        guard let o = Int64(exactly: at) else { throw StorageError(.corrupt, "prediction base offset \(at) out of range", offset: offset + 8) }
        return ChunkRef(offset: o, length: length)
    }

    /// Decodes a predicted column of exactly `expectedCount` values. On entry `out` holds the base column's values
    /// (decoded by the caller, who found and checked the base); on return it holds the column's own.
    static func decodePredicted(_ r: inout ByteReader, expectedCount: Int, planes: PlaneCodec, base out: UnsafeMutableBufferPointer<UInt64>) throws {
        let headerAt = r.baseOffset + Int64(r.offset)
        let h = try ColumnHeader.read(&r, kind: kind, expectedCount: expectedCount, name: "float")
        guard h.transform == predictedTransform, h.width == 4 || h.width == 8 else {
            throw StorageError(.corrupt, "expected a predicted float column, found transform \(h.transform) width \(h.width)", offset: headerAt)
        }
        _ = try r.read(UInt64.self, "prediction base offset")
        _ = try r.read(UInt32.self, "prediction base length")
        let p = Prediction(a: Double(bitPattern: try r.read(UInt64.self, "prediction a")), b: Double(bitPattern: try r.read(UInt64.self, "prediction b")),
                           c: Double(bitPattern: try r.read(UInt64.self, "prediction c")))
        guard p.isFinite else { throw StorageError(.corrupt, "prediction coefficients are not finite", offset: headerAt + 20) }
        let n = h.count
        precondition(out.count >= n)
        guard n > 0 else { return }
        let buffer = try planes.decodePlanes(&r, count: n, width: h.width)
        buffer.withUnsafeBytes { pl in
            let q = pl.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if h.width == 4 { unpredict32(q, n: n, p, inPlace: out.baseAddress!) } else { unpredict64(q, n: n, p, inPlace: out.baseAddress!) }
        }
    }

    @inline(__always)
    static func unpredict32(_ q: UnsafePointer<UInt8>, n: Int, _ p: Prediction, inPlace out: UnsafeMutablePointer<UInt64>) {
        @inline(__always) func residual(_ i: Int) -> UInt32 { unzigzag(word32(q, i, planeBytes: n)) }
        if p.a == 0 {  // y[i−1] is not an input: no chain through the decoded values
            var xPrev = 0.0
            for i in 0..<n {
                let xi = Double(bitPattern: out[i])
                out[i] = Double(Float(bitPattern: p.bits32(0, xi, xPrev) &+ residual(i))).bitPattern
                xPrev = xi
            }
            return
        }
        var yPrev = 0.0, xPrev = 0.0
        for i in 0..<n {
            let xi = Double(bitPattern: out[i])
            let y = Double(Float(bitPattern: p.bits32(yPrev, xi, xPrev) &+ residual(i)))
            out[i] = y.bitPattern
            yPrev = y
            xPrev = xi
        }
    }

    @inline(__always)
    static func unpredict64(_ q: UnsafePointer<UInt8>, n: Int, _ p: Prediction, inPlace out: UnsafeMutablePointer<UInt64>) {
        @inline(__always) func residual(_ i: Int) -> UInt64 { unzigzag(word64(q, i, planeBytes: n)) }
        var yPrev = 0.0, xPrev = 0.0
        for i in 0..<n {
            let xi = Double(bitPattern: out[i])
            let bits = p.bits64(yPrev, xi, xPrev) &+ residual(i)
            out[i] = bits
            yPrev = Double(bitPattern: bits)
            xPrev = xi
        }
    }
}
