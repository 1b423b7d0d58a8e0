import Testing
import TallyWorkloads
@testable import TallyStore

/// Every float transform (forced, so each one meets every input) round-trips bit-exactly in both word widths, and
/// the zigzag delta of segment format 4 is chosen where it pays and never written to the log.
@Suite struct FloatTransformTests {
    /// Encodes `xs` with `transform` forced (or chosen when `nil`) and decodes it; returns the values' bits and the
    /// column's transform byte and size.
    func roundTrip(_ xs: [Double], forcing transform: FloatColumnCodec.Transform?, segment: Bool = true,
                   _ c: Compression = .default) throws -> (out: [UInt64], transform: UInt8, bytes: Int) {
        try floatColumnRoundTrip(xs) { b, planes, w in
            try FloatColumnCodec.encode(b, compression: c, planes: planes, into: &w, segment: segment, forcing: transform)
        }
    }

    /// Float32-exact and float64 inputs of every awkward kind: NaN payloads, ±Inf, −0.0, subnormals, constant
    /// blocks, alternating extremes (the widest possible differences), quantised series with one outlier, noise.
    static func adversarialCases() -> [[Double]] {
        var rng = SplitMix64(seed: 11)
        let quantised = (0..<3_000).map { _ in Double(Float(Int(rng.next() % 33)) / 32) }
        var walk = 1.0
        let descending = (0..<3_000).map { _ in
            walk *= 1 + (rng.unit() - 0.7) * 1e-3
            return walk
        }
        return [
            [], [0.5], [-0.0], specialValues, specialValues.reversed(), specialValues.map { Double(Float($0)) },
            Array(repeating: 0.25, count: 1_000), Array(repeating: -0.0, count: 100), Array(repeating: Double.nan, count: 100),
            quantised, quantised + [0.1], quantised + [-.infinity], quantised + [Double(bitPattern: 0x7FF8_0000_0000_0123)],
            (0..<1_000).map { $0 % 2 == 0 ? Double.greatestFiniteMagnitude : -Double.greatestFiniteMagnitude },
            (0..<1_000).map { $0 % 2 == 0 ? Double(Float.greatestFiniteMagnitude) : -Double(Float.greatestFiniteMagnitude) },
            (0..<1_000).map { $0 % 2 == 0 ? Double.leastNonzeroMagnitude : -Double.leastNonzeroMagnitude },
            (0..<1_000).map { $0 % 2 == 0 ? Double.nan : -.infinity },
            (0..<1_000).map { Double($0) * .leastNonzeroMagnitude }, (0..<1_000).map { Double(Float($0) * .leastNonzeroMagnitude) },
            descending, descending.map { Double(Float($0)) }, descending.map { -$0 },
            (0..<2_000).map { _ in rng.anyDouble() }, (0..<2_000).map { _ in Double(bitPattern: rng.next()) },
            (0..<2_000).map { _ in Double(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) },
        ]
    }

    @Test(arguments: FloatColumnCodec.Transform.allCases)
    func everyTransformRoundTripsAdversarialInputsBitExact(_ t: FloatColumnCodec.Transform) throws {
        for xs in Self.adversarialCases() {
            for c in [Compression.none, .zstd(level: 3)] {
                let r = try roundTrip(xs, forcing: t, c)
                #expect(r.out == bits(xs), "\(t) \(c): \(xs.prefix(3)) (\(xs.count))")
                if xs.count > 1 { #expect(r.transform == t.rawValue) }
            }
        }
    }

    /// An EMA of a noisy loss moves up and down by small amounts: as a plain wrapping difference every step down
    /// fills the high bytes with ones; zigzagged it does not, and the chooser takes it.
    @Test func smallStepsBothWaysPickTheZigzagDelta() throws {
        var rng = SplitMix64(seed: 12)
        var ema: Float = 1
        let xs = (0..<20_000).map { i -> Double in
            let loss = Float(1.5 / (1 + Double(i) / 10_000) * (1 + 0.06 * rng.normal()))
            ema = 0.98 * ema + 0.02 * loss
            return Double(ema)
        }
        let chosen = try roundTrip(xs, forcing: nil)
        #expect(chosen.out == bits(xs))
        #expect(chosen.transform == FloatColumnCodec.Transform.zigzagDelta.rawValue)
        let plain = try roundTrip(xs, forcing: .delta)
        #expect(Double(chosen.bytes) < Double(plain.bytes) * 0.97, "zigzag \(chosen.bytes) vs delta \(plain.bytes) bytes")
    }

    /// The log is not a segment: its columns keep the transforms every older build reads.
    @Test func logColumnsNeverUseSegmentTransforms() throws {
        var rng = SplitMix64(seed: 13)
        var x = 1.0
        let smooth = (0..<5_000).map { _ in
            x += (rng.unit() - 0.5) * 1e-6
            return Double(Float(x))
        }
        for xs in [smooth, (0..<5_000).map { Double($0 % 33) / 32 }] {
            let r = try roundTrip(xs, forcing: nil, segment: false)
            #expect(r.out == bits(xs))
            #expect([0, 1, 2].contains(r.transform))
        }
    }
}
