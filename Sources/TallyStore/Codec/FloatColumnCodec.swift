/// Encodes `Double` columns bit-exactly (NaN payloads, signed zeros and infinities included).
///
/// When every value of the column converts to `Float` and back to the same bits, the column stores 4-byte words,
/// otherwise 8-byte words. A transform chosen per column (none, XOR with the previous word, wrapping difference of
/// consecutive words, or that difference zigzag-mapped) is applied, the words are split into byte planes and each
/// plane is compressed. The transform is chosen by an order-0 entropy estimate on a sample, so the choice costs a
/// histogram, not a trial compression. Zigzag deltas (transform 4) are for segment columns (`segment: true`) only,
/// which may also store the integers of ``ScaledIntegers`` (transform 3) when the same estimate says they are smaller,
/// or be predicted from another column of the same rows (transform 5, `FloatColumnCodec+Predicted.swift`).
@usableFromInline
enum FloatColumnCodec {
    @usableFromInline static let kind: UInt8 = 2

    @usableFromInline enum Transform: UInt8, CaseIterable, Sendable {
        case none = 0
        case xor = 1
        case delta = 2
        /// Wrapping difference of consecutive words, zigzag-mapped (0, -1, 1, -2, … → 0, 1, 2, 3, …) so that small
        /// steps down leave the high byte planes zero as small steps up do (segment format 4).
        case zigzagDelta = 4
    }

    /// The transform byte of a column stored as scaled integers (segment format 3).
    static let scaledTransform: UInt8 = 3

    /// Number of leading values examined to choose the transform.
    static let sampleSize = 8192
    /// Columns shorter than this are stored untransformed outside segments.
    static let smallColumn = 16

    /// Appends the encoded column of `bits` (Double bit patterns) to `w`. `segment` allows what only segments may
    /// hold: scaled integers (format 3) and zigzag deltas (format 4); the write-ahead log's format does not change.
    /// `forcing` makes the chooser take that transform (tests, to round-trip each one on any input). `base` is a value
    /// column of the same rows already in the segment, which the column may be predicted from (format 5, see
    /// ``choosePrediction(_:narrow:base:beating:)``). Returns the transform byte written.
    @discardableResult
    static func encode(_ bits: UnsafeBufferPointer<UInt64>, compression: Compression, planes: PlaneCodec, into w: inout ByteWriter,
                       segment: Bool = false, forcing: Transform? = nil, base: PredictionBase? = nil) throws -> UInt8 {
        let n = bits.count
        let narrow = n > 0 && allFloat32(bits)
        let width = narrow ? 4 : 8
        var words = [UInt8](unsafeUninitializedCapacity: n * width) { _, c in c = n * width }  // every word is written
        words.withUnsafeMutableBytes { raw in
            if narrow {
                let out = raw.bindMemory(to: UInt32.self)
                for i in 0..<n { out[i] = Float(Double(bitPattern: bits[i])).bitPattern.littleEndian }
            } else {
                let out = raw.bindMemory(to: UInt64.self)
                for i in 0..<n { out[i] = bits[i].littleEndian }
            }
        }
        let choices: [Transform] = forcing.map { [$0] } ?? (segment ? Transform.allCases : [.none, .xor, .delta])
        // Outside segments, a column of a few values (a run's latest row of a few keys) is stored as it is:
        // estimating transforms over a handful of values decides nothing, and cost 3 % of run creation's CPU.
        let small = !segment && forcing == nil && n < Self.smallColumn
        let (transform, estimate) = small ? (Transform.none, Double.infinity)
            : narrow ? chooseAndApply(&words, UInt32.self, among: choices) : chooseAndApply(&words, UInt64.self, among: choices)
        // A prediction the estimate favours is written beside the plain layout and kept only when it is smaller by
        // the margin in fact: the order-0 estimate misjudges what zstd's matches find in smooth plain columns.
        let start = w.count
        var predicted: ByteWriter?
        if segment, forcing == nil, let base, let p = choosePrediction(bits, narrow: narrow, base: base, beating: estimate) {
            var alone = ByteWriter(capacity: Int(p.size) + 64)
            try encodePredicted(bits, narrow: narrow, base: base, prediction: p.prediction, compression: compression, planes: planes, into: &alone)
            predicted = alone
        }
        let plain = try encodePlain(bits, words: words, width: width, transform: transform, estimate: estimate, compression: compression,
                                    planes: planes, into: &w, scaled: segment && forcing == nil && n >= 16)
        if let predicted, Double(predicted.count) < Double(w.count - start) * predictionMargin {
            w.bytes.removeSubrange(start...)
            w.write(bytes: predicted.bytes)
            return predictedTransform
        }
        return plain
    }

    /// Writes the column in the float layout with `transform` already applied to `words`, or as scaled integers when
    /// `scaled` allows it and they beat `estimate`; returns the transform byte written.
    private static func encodePlain(_ bits: UnsafeBufferPointer<UInt64>, words: [UInt8], width: Int, transform: Transform, estimate: Double,
                                    compression: Compression, planes: PlaneCodec, into w: inout ByteWriter, scaled: Bool) throws -> UInt8 {
        let n = bits.count
        if scaled, try encodeScaled(bits, beating: estimate, compression: compression, planes: planes, into: &w) { return scaledTransform }
        ColumnHeader(kind: kind, transform: transform.rawValue, width: width, count: n).write(into: &w)
        try writePlanes(words, count: n, width: width, compression: compression, planes: planes, into: &w)
        return transform.rawValue
    }

    /// Splits `count` little-endian words of `width` bytes into byte planes and writes each, compressed.
    static func writePlanes(_ words: [UInt8], count n: Int, width: Int, compression: Compression, planes: PlaneCodec,
                            into w: inout ByteWriter) throws {
        guard n > 0 else { return }
        let shuffled = [UInt8](unsafeUninitializedCapacity: n * width) { out, c in
            words.withUnsafeBytes { BytePlanes.shuffle($0.baseAddress!, count: n, width: width, into: out.baseAddress!) }
            c = n * width
        }
        try shuffled.withUnsafeBytes { all in
            for k in 0..<width {
                try planes.encode(UnsafeRawBufferPointer(rebasing: all[(k * n)..<((k + 1) * n)]), compression: compression, into: &w)
            }
        }
    }

    /// Word `i` of four byte planes of `n` bytes each laid out from `p` (the layout ``writePlanes`` makes).
    @inline(__always) static func word32(_ p: UnsafePointer<UInt8>, _ i: Int, planeBytes n: Int) -> UInt32 {
        UInt32(p[i]) | UInt32(p[n &+ i]) &<< 8 | UInt32(p[2 &* n &+ i]) &<< 16 | UInt32(p[3 &* n &+ i]) &<< 24
    }

    /// Word `i` of eight byte planes of `n` bytes each laid out from `p`.
    @inline(__always) static func word64(_ p: UnsafePointer<UInt8>, _ i: Int, planeBytes n: Int) -> UInt64 {
        var u: UInt64 = 0
        var q = p + i
        for k in 0..<8 {
            u |= UInt64(q.pointee) &<< UInt64(k &* 8)
            q += n
        }
        return u
    }

    /// Whether every value survives a round trip through `Float` with identical bits.
    @inlinable static func allFloat32(_ bits: UnsafeBufferPointer<UInt64>) -> Bool {
        for b in bits {
            let d = Double(bitPattern: b)
            if Double(Float(d)).bitPattern != b { return false }
        }
        return true
    }

    /// Picks the transform whose sample has the smallest estimated size, applies it in place and returns it with
    /// that estimate (bytes for the sample of the first ``sampleSize`` values).
    static func chooseAndApply<W: FixedWidthInteger & UnsignedInteger>(_ words: inout [UInt8], _: W.Type,
                                                                      among choices: [Transform]) -> (Transform, Double) {
        let width = MemoryLayout<W>.size
        let n = words.count / width
        guard n > 1 else { return (.none, .infinity) }
        let m = min(n, sampleSize)
        var best = Transform.none
        var bestSize = Double.infinity
        var trial = [UInt8](repeating: 0, count: m * width)
        for t in choices {
            words.withUnsafeBytes { src in
                trial.withUnsafeMutableBytes { dst in
                    apply(t, src.bindMemory(to: W.self).baseAddress!, count: m, into: dst.bindMemory(to: W.self).baseAddress!)
                }
            }
            let size = trial.withUnsafeBytes { BytePlanes.estimatedSize($0.baseAddress!, count: m, width: width) }
            if size < bestSize * 0.98 || (t == .none && size < bestSize) {
                best = t
                bestSize = size
            }
        }
        if best != .none {
            words.withUnsafeMutableBytes { raw in
                let p = raw.bindMemory(to: W.self).baseAddress!
                apply(best, UnsafePointer(p), count: n, into: p)
            }
        }
        return (best, bestSize)
    }

    /// Forward transform; `src` and `dst` may be the same buffer.
    @inlinable static func apply<W: FixedWidthInteger & UnsignedInteger>(_ t: Transform, _ src: UnsafePointer<W>, count n: Int,
                                                                         into dst: UnsafeMutablePointer<W>) {
        var prev: W = 0
        switch t {
        case .none:
            if UnsafePointer(dst) != src { dst.update(from: src, count: n) }
        case .xor:
            for i in 0..<n {
                let x = W(littleEndian: src[i])
                dst[i] = (x ^ prev).littleEndian
                prev = x
            }
        case .delta:
            for i in 0..<n {
                let x = W(littleEndian: src[i])
                dst[i] = (x &- prev).littleEndian
                prev = x
            }
        case .zigzagDelta:
            for i in 0..<n {
                let x = W(littleEndian: src[i])
                let d = x &- prev
                dst[i] = zigzag(d).littleEndian
                prev = x
            }
        }
    }

    /// The zigzag map of ``Transform/zigzagDelta``: 0, −1, 1, −2, … (as wrapping differences) → 0, 1, 2, 3, ….
    @usableFromInline @inline(__always) static func zigzag<W: FixedWidthInteger & UnsignedInteger>(_ d: W) -> W {
        (d &<< 1) ^ (0 &- (d &>> (W.bitWidth &- 1)))
    }

    /// The inverse of the zigzag map of ``Transform/zigzagDelta``.
    @inline(__always) static func unzigzag<W: FixedWidthInteger & UnsignedInteger>(_ z: W) -> W { (z &>> 1) ^ (0 &- (z & 1)) }

    /// Decodes a column of exactly `expectedCount` values into `out` as Double bit patterns.
    static func decode(_ r: inout ByteReader, expectedCount: Int, planes: PlaneCodec, into out: UnsafeMutableBufferPointer<UInt64>) throws {
        let headerAt = r.baseOffset + Int64(r.offset)
        let h = try ColumnHeader.read(&r, kind: kind, expectedCount: expectedCount, name: "float")
        let (width, n) = (h.width, h.count)
        if h.transform == scaledTransform { return try decodeScaled(&r, width: width, count: n, planes: planes, into: out, at: headerAt) }
        if h.transform == predictedTransform {  // needs its base, which only a segment's reader can find
            throw StorageError(.corrupt, "a predicted float column outside a segment's blocks", offset: headerAt)
        }
        guard let t = Transform(rawValue: h.transform), width == 4 || width == 8 else {
            throw StorageError(.corrupt, "unknown float transform \(h.transform) or width \(width)", offset: headerAt)
        }
        precondition(out.count >= n)
        guard n > 0 else { return }
        let buffer = try planes.decodePlanes(&r, count: n, width: width)
        buffer.withUnsafeBytes { pl in
            let p = pl.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if width == 4 {
                unshuffle32(p, n: n, transform: t, into: out.baseAddress!)
            } else {
                unshuffle64(p, n: n, transform: t, into: out.baseAddress!)
            }
        }
    }

    @inline(__always)
    static func unshuffle32(_ p: UnsafePointer<UInt8>, n: Int, transform t: Transform, into out: UnsafeMutablePointer<UInt64>) {
        @inline(__always) func word(_ i: Int) -> UInt32 { word32(p, i, planeBytes: n) }
        @inline(__always) func widen(_ w: UInt32) -> UInt64 { Double(Float(bitPattern: w)).bitPattern }
        switch t {
        case .none:
            for i in 0..<n { out[i] = widen(word(i)) }
        case .xor:
            var prev: UInt32 = 0
            for i in 0..<n {
                prev ^= word(i)
                out[i] = widen(prev)
            }
        case .delta:
            var prev: UInt32 = 0
            for i in 0..<n {
                prev &+= word(i)
                out[i] = widen(prev)
            }
        case .zigzagDelta:
            var prev: UInt32 = 0
            for i in 0..<n {
                prev &+= unzigzag(word(i))
                out[i] = widen(prev)
            }
        }
    }

    @inline(__always)
    static func unshuffle64(_ p: UnsafePointer<UInt8>, n: Int, transform t: Transform, into out: UnsafeMutablePointer<UInt64>) {
        @inline(__always) func word(_ i: Int) -> UInt64 { word64(p, i, planeBytes: n) }
        var prev: UInt64 = 0
        switch t {
        case .none:
            for i in 0..<n { out[i] = word(i) }
        case .xor:
            for i in 0..<n {
                prev ^= word(i)
                out[i] = prev
            }
        case .delta:
            for i in 0..<n {
                prev &+= word(i)
                out[i] = prev
            }
        case .zigzagDelta:
            for i in 0..<n {
                prev &+= unzigzag(word(i))
                out[i] = prev
            }
        }
    }
}
