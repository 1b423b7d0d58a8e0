import Testing
import TallyWorkloads
@testable import TallyStore

extension ScaledIntegers {
    /// The scale with the smallest integers that represents every value exactly, with those integers; `nil` when
    /// there is none.
    static func detect(_ bits: UnsafeBufferPointer<UInt64>) -> (Scale, [Int64])? {
        var best: (Scale, [Int64], UInt64)?
        for s in candidates(bits) {
            guard let ks = integers(bits, s) else { continue }
            let spread = UInt64(bitPattern: ks.max()! &- ks.min()!)
            if best == nil || spread < best!.2 { best = (s, ks, spread) }
        }
        return best.map { ($0.0, $0.1) }
    }
}

/// Float columns stored as scaled integers (`k · 2⁻ᵇ · 10ᵉ`, segment format 3): chosen where they are smaller,
/// bit-exact always, on adversarial inputs too.
@Suite struct ScaledIntegersTests {
    /// Encodes with `segment: true` (or forcing the scaled layout when `force`), decodes, returns the values and
    /// the transform byte and encoded size.
    func roundTrip(_ xs: [Double], _ c: Compression = .default, force: Bool = false) throws -> (out: [UInt64], transform: UInt8, bytes: Int) {
        try floatColumnRoundTrip(xs) { b, planes, w in
            if force, try FloatColumnCodec.encodeScaled(b, beating: .infinity, compression: c, planes: planes, into: &w) { return }
            try FloatColumnCodec.encode(b, compression: c, planes: planes, into: &w, segment: true)
        }
    }

    static func scale(_ xs: [Double]) -> ScaledIntegers.Scale? { bits(xs).withUnsafeBufferPointer { ScaledIntegers.detect($0)?.0 } }

    /// Timings in ms from a clock in seconds: `(t₂ − t₁) · 1000` with the clock's ulp 2⁻³⁹.
    static func timings(_ n: Int, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        var t = 8_123.25
        return (0..<n).map { _ in
            let t2 = t + 0.00017 + rng.unit() * 0.0003
            defer { t = t2 }
            return (t2 - t) * 1000
        }
    }

    @Test func timingsAndQuantisedAccuraciesAreStoredAsIntegers() throws {
        var rng = SplitMix64(seed: 5)
        let timings = Self.timings(20_000, seed: 1)
        let accuracy = (0..<20_000).map { _ in Double(Float(Int(rng.next() % 33)) / 32) }
        for xs in [timings, accuracy] {
            let plain = try CodecTests().roundTripFloats(xs, .default)
            let scaled = try roundTrip(xs)
            #expect(scaled.out == bits(xs))
            #expect(scaled.transform == FloatColumnCodec.scaledTransform)
            var w = ByteWriter()
            try bits(xs).withUnsafeBufferPointer { _ = try FloatColumnCodec.encode($0, compression: .default, planes: PlaneCodec(), into: &w) }
            #expect(Double(scaled.bytes) < Double(w.count) * 0.8, "scaled \(scaled.bytes) vs \(w.count) bytes")
            #expect(bits(plain.out) == bits(xs))
        }
        #expect(Self.scale(timings) == .init(b: 40, e: 3))  // t in [4096, 8192) s: the ulp is 2⁻⁴⁰
    }

    @Test func noiseKeepsTheFloatLayout() throws {
        var rng = SplitMix64(seed: 6)
        let noise = (0..<10_000).map { _ in Double(Float(0.5 + rng.unit())) }
        let r = try roundTrip(noise)
        #expect(r.out == bits(noise))
        #expect(r.transform != FloatColumnCodec.scaledTransform)
    }

    /// Adversarial inputs, through the chooser and forced into the scaled layout when it applies at all: NaN
    /// payloads, ±Inf, −0.0, subnormals, constant blocks, alternating extremes, quantised series with one outlier.
    @Test(arguments: CodecTests.compressions)
    func adversarialInputsRoundTripBitExact(_ c: Compression) throws {
        var rng = SplitMix64(seed: 7)
        let quantised = (0..<5_000).map { _ in Double(Int(rng.next() % 33)) / 32 }
        var cases: [[Double]] = [
            [], [0.5], [0], [-0.0], Array(repeating: 0.25, count: 1_000), Array(repeating: 3, count: 17),
            quantised, quantised + [0.1], quantised + [.nan], quantised + [-0.0], quantised + [.infinity],
            quantised + [Double(bitPattern: 0x7FF8_0000_0000_0123)], quantised + [.leastNonzeroMagnitude], quantised + [Double.leastNonzeroMagnitude * 3],
            (0..<1_000).map { $0 % 2 == 0 ? Double(1 << 52) : -Double(1 << 52) },
            (0..<1_000).map { $0 % 2 == 0 ? 9_007_199_254_740_992.0 : -9_007_199_254_740_991.0 },
            (0..<1_000).map { $0 % 2 == 0 ? Double.greatestFiniteMagnitude : -Double.greatestFiniteMagnitude },
            (0..<1_000).map { Double($0) * 0x1p-64 }, (0..<1_000).map { Double($0) * 0x1p-65 },
            Self.timings(3_000, seed: 2), Self.timings(3_000, seed: 3).map { -$0 },
            (0..<2_000).map { _ in Double(rng.int(-1_000_000...1_000_000)) / 1000 },
            (0..<2_000).map { _ in Double(bitPattern: rng.next()) },
        ]
        cases.append(cases[cases.count - 5] + [Double.nan])
        for xs in cases {
            #expect(try roundTrip(xs, c).out == bits(xs), "\(xs.prefix(3)) (\(xs.count))")
            #expect(try roundTrip(xs, c, force: true).out == bits(xs), "forced: \(xs.prefix(3)) (\(xs.count))")
        }
    }

    @Test func valuesWithoutAScaleAreRefused() {
        for bad in [Double.nan, .infinity, -.infinity, -0.0, .leastNonzeroMagnitude] {
            #expect(Self.scale([1, bad, 2]) == nil, "\(bad)")
        }
        #expect(Self.scale([0.25, 0.5]) == .init(b: 2, e: 0))
    }

    /// A segment written by this build is format 5 (3 added scaled integers, 4 zigzag deltas, 5 predicted
    /// columns); an older reader refuses it rather than misread it, and this build still reads every older version.
    @Test func segmentsAreFormatFive() {
        #expect(SegmentFormat.version == 5)
        #expect(SegmentFormat.readableVersions == 1...5)
    }
}
