extension FloatColumnCodec {
    /// Rows of the first pass that ranks the bases (a least-squares fit and a bit count each).
    static let predictionProbe = 512
    /// The most bases one column is tried against (the newest of its rows).
    static let maxPredictionBases = 16
    /// A prediction is kept only when its estimate is under this fraction of the plain layout's: decoding it also
    /// decodes its base, so a small gain does not pay for the read.
    static let predictionMargin = 0.9

    /// The terms of a model: which of `a · y[i−1]`, `b · x[i]`, `c · x[i−1]` it uses.
    struct PredictionTerms: Sendable {
        var a: Bool
        var b: Bool
        var c: Bool
        /// Simplest first: a scaled copy, a linear map of the base's change, an EMA-like filter, all three.
        static let tried: [PredictionTerms] = [.init(a: false, b: true, c: false), .init(a: false, b: true, c: true),
                                               .init(a: true, b: true, c: false), .init(a: true, b: true, c: true)]
    }

    /// The first rows of a value column already written to the segment (``predictionProbe`` of them at most), kept
    /// to rank it as a base for later columns of the same rows without keeping all its values.
    struct PredictionProbe: Sendable {
        /// The column's chunk.
        var ref: ChunkRef
        /// Its number of values.
        var count: Int
        /// Its first values' Double bit patterns.
        var head: [UInt64]
        /// Which series of the segment it belongs to (the writer's count of series before it).
        var series = 0
    }

    /// The probe of the column that predicts the first rows of `y` best, among the newest ``maxPredictionBases``
    /// of the same count; `nil` when none saves a bit per value over `y`'s own zigzag delta.
    ///
    /// Each is fitted with the full model on ``predictionProbe`` rows and its residuals' significant bits counted,
    /// so an unrelated column costs one small fit.
    static func bestBase(for y: UnsafeBufferPointer<UInt64>, among probes: [PredictionProbe]) -> PredictionProbe? {
        let n = y.count
        guard n >= minPredictedCount else { return nil }
        let m = min(n, predictionProbe)
        let narrow = allFloat32(UnsafeBufferPointer(rebasing: y[0..<m]))
        func bits(_ x: UnsafeBufferPointer<UInt64>?, _ p: Prediction?) -> Double {
            narrow ? meanBits(UInt32.self, y, x, count: m, p) : meanBits(UInt64.self, y, x, count: m, p)
        }
        let own = bits(nil, nil)
        var best: (probe: PredictionProbe, bits: Double)?
        for probe in probes.suffix(maxPredictionBases) where probe.count == n && probe.head.count == m {
            probe.head.withUnsafeBufferPointer { x in
                guard let p = fit(y, x, count: m, PredictionTerms(a: true, b: true, c: true)) else { return }
                let b = bits(x, p)
                if b < own - 1, best == nil || b < best!.bits { best = (probe, b) }
            }
        }
        return best?.probe
    }

    /// Mean significant bits of the first `m` values' zigzag words (float32 words when `W` is `UInt32`): their
    /// residuals under `p` from `x`, or without a prediction the column's own zigzag delta (transform 4).
    static func meanBits<W: FixedWidthInteger & UnsignedInteger>(_: W.Type, _ y: UnsafeBufferPointer<UInt64>, _ x: UnsafeBufferPointer<UInt64>?,
                                                                 count m: Int, _ p: Prediction?) -> Double {
        var words = [W](repeating: 0, count: m)
        words.withUnsafeMutableBufferPointer { out in
            guard let base = out.baseAddress else { return }
            if let x, let p {
                residuals(y, x, count: m, p, into: base)
            } else {
                for i in 0..<m {
                    let word = W.bitWidth == 32 ? UInt64(Float(Double(bitPattern: y[i])).bitPattern) : y[i]
                    out[i] = W(truncatingIfNeeded: word).littleEndian
                }
                apply(.zigzagDelta, UnsafePointer(base), count: m, into: base)
            }
        }
        let total = words.reduce(0) { $0 + W.bitWidth - W(littleEndian: $1).leadingZeroBitCount }
        return Double(total) / Double(max(1, m))
    }

    /// Rows each model is fitted and compared on before the chosen one is estimated on the whole sample.
    static let predictionFitRows = 2048

    /// The model that stores `y` predicted from `base` smallest, when its estimate (bytes for the first
    /// ``sampleSize`` values, as `estimate` is for the plain layout) is under ``predictionMargin`` of `estimate`;
    /// `nil` otherwise.
    ///
    /// Each model of ``PredictionTerms/tried`` is fitted on the first ``predictionFitRows`` rows, with its
    /// coefficients as fitted and rounded to float32 (a filter computed in float32 is then exact), and estimated
    /// there like the plain transforms; the smallest is estimated again on the whole sample.
    static func choosePrediction(_ y: UnsafeBufferPointer<UInt64>, narrow: Bool, base: PredictionBase, beating estimate: Double)
        -> (prediction: Prediction, size: Double)? {
        let n = y.count
        guard n >= minPredictedCount, base.values.count == n, estimate.isFinite else { return nil }
        let m = min(n, sampleSize), f = min(m, predictionFitRows)
        let width = narrow ? 4 : 8
        var trial = [UInt8](repeating: 0, count: m * width)
        func size(_ p: Prediction, rows: Int, _ x: UnsafeBufferPointer<UInt64>) -> Double {
            trial.withUnsafeMutableBytes { raw in
                if narrow {
                    residuals(y, x, count: rows, p, into: raw.bindMemory(to: UInt32.self).baseAddress!)
                } else {
                    residuals(y, x, count: rows, p, into: raw.bindMemory(to: UInt64.self).baseAddress!)
                }
                return BytePlanes.estimatedSize(raw.baseAddress!, count: rows, width: width)
            }
        }
        return base.values.withUnsafeBufferPointer { x in
            var chosen: (prediction: Prediction, size: Double)?
            for terms in PredictionTerms.tried {
                guard let fitted = fit(y, x, count: f, terms) else { continue }
                for p in [fitted.roundedToFloat, fitted] {
                    guard let p else { continue }
                    let s = size(p, rows: f, x)
                    if chosen == nil || s < chosen!.size * 0.98 { chosen = (p, s) }
                }
            }
            guard let p = chosen?.prediction else { return nil }
            let whole = (f == m ? chosen!.size : size(p, rows: m, x)) + Double(predictionHeaderSize)
            return whole < estimate * predictionMargin ? (p, whole) : nil
        }
    }

    /// The least-squares coefficients of `terms` predicting rows 1..<m of `y` (rows with a non-finite input are
    /// left out), `nil` when there are too few rows or the fit is singular or not finite. Each column is scaled by a
    /// power of two first and the solution refined twice, so an exact relation comes out within a few ulps.
    static func fit(_ y: UnsafeBufferPointer<UInt64>, _ x: UnsafeBufferPointer<UInt64>, count m: Int, _ terms: PredictionTerms) -> Prediction? {
        var rows: [(y: Double, u: SIMD3<Double>)] = []
        rows.reserveCapacity(m)
        var top = SIMD3<Double>(repeating: 0), yTop = 0.0
        for i in 1..<max(1, m) {
            let yi = Double(bitPattern: y[i]), yp = Double(bitPattern: y[i - 1])
            let xi = Double(bitPattern: x[i]), xp = Double(bitPattern: x[i - 1])
            guard yi.isFinite && yp.isFinite && xi.isFinite && xp.isFinite else { continue }
            let u = SIMD3(terms.a ? yp : 0, terms.b ? xi : 0, terms.c ? xp : 0)
            rows.append((yi, u))
            top = pointwiseMax(top, SIMD3(abs(u.x), abs(u.y), abs(u.z)))
            yTop = max(yTop, abs(yi))
        }
        guard rows.count >= 16 else { return nil }
        // Powers of two: scaling loses nothing (short of underflow) and keeps the sums of squares finite.
        func scale(_ v: Double) -> Double { v > 0 && v.isFinite ? Double(sign: .plus, exponent: -v.exponent, significand: 1) : 1 }
        let s = SIMD3(scale(top.x), scale(top.y), scale(top.z)), sy = scale(yTop)
        let used = SIMD3<Double>(terms.a ? 1 : 0, terms.b ? 1 : 0, terms.c ? 1 : 0)
        for k in rows.indices { rows[k] = (rows[k].y * sy, rows[k].u * s) }
        var g = [SIMD3<Double>](repeating: .zero, count: 3)
        for r in rows {
            g[0] += r.u * r.u.x
            g[1] += r.u * r.u.y
            g[2] += r.u * r.u.z
        }
        // Unused terms: an identity row, so the solve leaves their coefficient 0.
        for j in 0..<3 where used[j] == 0 { g[j][j] = 1 }
        var beta = SIMD3<Double>(repeating: 0)
        for _ in 0..<3 {
            var rhs = SIMD3<Double>(repeating: 0)
            for r in rows { rhs += r.u * (r.y - (r.u * beta).sum()) }
            guard let delta = solve3(g, rhs) else { return nil }
            beta += delta * used
        }
        let coef = beta * s / sy
        let p = Prediction(a: coef.x, b: coef.y, c: coef.z)
        return p.isFinite ? p : nil
    }

    /// Solves `g · v = rhs` (symmetric, 3×3) by elimination with partial pivoting; `nil` when singular.
    static func solve3(_ g: [SIMD3<Double>], _ rhs: SIMD3<Double>) -> SIMD3<Double>? {
        var m = g, b = rhs
        let tiny = 1e-13 * max(abs(m[0][0]), abs(m[1][1]), abs(m[2][2]))
        for col in 0..<3 {
            var pivot = col
            for r in (col + 1)..<3 where abs(m[r][col]) > abs(m[pivot][col]) { pivot = r }
            guard abs(m[pivot][col]) > tiny, m[pivot][col].isFinite else { return nil }
            if pivot != col {
                m.swapAt(pivot, col)
                let t = b[pivot]
                b[pivot] = b[col]
                b[col] = t
            }
            for r in (col + 1)..<3 {
                let f = m[r][col] / m[col][col]
                m[r] -= m[col] * f
                b[r] -= b[col] * f
            }
        }
        var v = SIMD3<Double>(repeating: 0)
        for col in stride(from: 2, through: 0, by: -1) {
            var s = b[col]
            for k in (col + 1)..<3 { s -= m[col][k] * v[k] }
            v[col] = s / m[col][col]
        }
        return v.x.isFinite && v.y.isFinite && v.z.isFinite ? v : nil
    }
}

extension FloatColumnCodec.Prediction {
    /// The coefficients rounded to float32 (a filter computed in float32 has such coefficients); `nil` when one
    /// does not fit a float32 or nothing changes.
    var roundedToFloat: Self? {
        let r = Self(a: Double(Float(a)), b: Double(Float(b)), c: Double(Float(c)))
        return r.isFinite && r != self ? r : nil
    }
}
