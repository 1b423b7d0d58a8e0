/// Float columns whose every value is exactly `k · 2⁻ᵇ · 10ᵉ` for integers `k` (the scale `b`, `e` shared by the
/// column): accuracies k/32 (`b` = 5, `e` = 0), and timings in milliseconds computed from a clock in seconds,
/// `(t₂ − t₁) · 1000`, where the difference is a multiple of the clock's ulp (`b` ≈ 39, `e` = 3). Storing `k`
/// (frame of reference, the fewest whole bytes, byte planes) instead of the float saves the bits the float spends on
/// a fixed scale: 64-bit timings become 27–36-bit integers.
///
/// Exact by construction: the encoder computes each value back with ``value(_:_:)``, the decoder's own formula,
/// and refuses the scale unless every value comes back with identical bits. NaN, ±Inf, −0.0 and subnormals never
/// take it.
enum ScaledIntegers {
    /// The column's scale.
    struct Scale: Equatable {
        /// Binary exponent: `k · 2⁻ᵇ`, 0...``ScaledIntegers/maxBinaryExponent``.
        let b: Int
        /// Decimal exponent of the multiplier, one of ``decimalExponents``.
        let e: Int
        /// 2ᵇ and 2⁻ᵇ.
        let up: Double, down: Double

        init(b: Int, e: Int) {
            self.b = b
            self.e = e
            up = Double(sign: .plus, exponent: b, significand: 1)
            down = Double(sign: .plus, exponent: -b, significand: 1)
        }

        static func == (l: Scale, r: Scale) -> Bool { l.b == r.b && l.e == r.e }
    }

    /// The decimal multipliers tried: none, and 1000 (seconds to milliseconds, milliseconds to microseconds).
    static let decimalExponents = [0, 3]
    /// Largest |k|: every k is an exact Double.
    static let maxMagnitude: Int64 = 1 << 53

    /// The value of `k` at `scale`: `(k · 2⁻ᵇ) · 10ᵉ`, the first product exact, the second rounded once.
    @inline(__always) static func value(_ k: Int64, _ s: Scale) -> Double { value(Double(k), s) }

    /// ``value(_:_:)`` for an integer held as a Double (exact below 2⁵³, as every stored `k` is).
    @inline(__always) static func value(_ x: Double, _ s: Scale) -> Double {
        let d = x * s.down
        return s.e == 0 ? d : d * 1000
    }

    /// The integer, as a Double of any size, that `v` stands for at `scale` when it comes back exactly.
    @inline(__always) static func multiple(_ v: Double, _ s: Scale) -> Double? {
        // `+ 0` turns −0 into 0, as an integer holds it: −0.0 then does not come back and is refused.
        let x = ((s.e == 0 ? v : v / 1000) * s.up).rounded() + 0
        return value(x, s).bitPattern == v.bitPattern ? x : nil
    }

    /// The integer `v` stands for at `scale`, when it comes back exactly and is under ``maxMagnitude``.
    @inline(__always) static func integer(_ v: Double, _ s: Scale) -> Int64? {
        guard let x = multiple(v, s), abs(x) < Double(maxMagnitude) else { return nil }
        return Int64(x)
    }

    /// The scales a sample of the values fits, one per decimal exponent at most (the smallest binary exponent).
    static func candidates(_ bits: UnsafeBufferPointer<UInt64>) -> [Scale] {
        guard !bits.isEmpty else { return [] }
        return decimalExponents.compactMap { e in smallestBinaryExponent(bits, e: e).map { Scale(b: $0, e: e) } }
    }

    /// The integers of every value at `scale`; `nil` unless each one comes back exactly.
    static func integers(_ bits: UnsafeBufferPointer<UInt64>, _ s: Scale) -> [Int64]? {
        var ok = true
        let ks = [Int64](unsafeUninitializedCapacity: bits.count) { buf, c in
            for i in 0..<bits.count {
                guard let k = integer(Double(bitPattern: bits[i]), s) else { ok = false; break }
                buf[i] = k
                c = i + 1
            }
        }
        return ok ? ks : nil
    }

    /// The smallest `b` ≤ ``maxBinaryExponent`` for which a sample of the values comes back exactly, whatever the size
    /// of the integers (then every larger `b` does too: `2k` at `b + 1` is the same value), found by bisection; `nil`
    /// when even the largest fails.
    static func smallestBinaryExponent(_ bits: UnsafeBufferPointer<UInt64>, e: Int) -> Int? {
        let step = max(1, bits.count / 64)
        func works(_ b: Int) -> Bool {
            let s = Scale(b: b, e: e)
            var i = 0
            while i < bits.count {
                let v = Double(bitPattern: bits[i])
                guard v == 0 ? v.sign == .plus : v.isNormal, multiple(v, s) != nil else { return false }
                i += step
            }
            return true
        }
        var lo = 0, hi = maxBinaryExponent
        guard works(hi) else { return nil }
        while lo < hi {
            let mid = (lo + hi) / 2
            if works(mid) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// The largest binary exponent tried: beyond it the integers of any value over 2⁻¹¹ would not fit 53 bits.
    static let maxBinaryExponent = 64
}
