import Testing
import TallyWorkloads
@testable import TallyStore

@Suite struct CodecTests {
    static let compressions: [Compression] = [.none, .lz4, .zstd(level: 1), .zstd(level: 3)]

    func roundTripInts(_ xs: [Int64], _ c: Compression) throws -> [Int64] {
        let planes = PlaneCodec()
        var w = ByteWriter()
        try xs.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: c, planes: planes, into: &w) }
        var r = ByteReader(w.bytes)
        let out = try [Int64](unsafeUninitializedCapacity: xs.count) { buf, n in
            try IntColumnCodec.decode(&r, expectedCount: xs.count, planes: planes, into: buf)
            n = xs.count
        }
        #expect(r.remaining == 0)
        return out
    }

    func roundTripFloats(_ xs: [Double], _ c: Compression) throws -> (out: [Double], width: UInt8) {
        let planes = PlaneCodec()
        var w = ByteWriter()
        let b = bits(xs)
        try b.withUnsafeBufferPointer { _ = try FloatColumnCodec.encode($0, compression: c, planes: planes, into: &w) }
        var r = ByteReader(w.bytes)
        let out = try [UInt64](unsafeUninitializedCapacity: xs.count) { buf, n in
            try FloatColumnCodec.decode(&r, expectedCount: xs.count, planes: planes, into: buf)
            n = xs.count
        }
        #expect(r.remaining == 0)
        return (out.map { Double(bitPattern: $0) }, w.bytes[2])
    }

    @Test(arguments: compressions)
    func intColumnsRoundTrip(_ c: Compression) throws {
        var rng = SplitMix64(seed: 1)
        var cases: [[Int64]] = [
            [], [0], [.min], [.max], [.min, .max], [.max, .min, .max, .min], [5, 5, 5, 5],
            Array(0..<10_000), (0..<5_000).map { 1_700_000_000_000 + $0 * 250 },
            (0..<3_000).map { $0 * $0 },  // delta-of-delta is constant
            (0..<4_096).map { _ in rng.int(Int64.min...Int64.max) },
            (0..<4_096).map { _ in rng.int(-3...3) },
            [Int64.max, 0, Int64.min, -1, 1],
        ]
        var t: Int64 = 1_700_000_000_000
        cases.append((0..<8_192).map { _ in t += 245 + rng.int(0...10); return t })
        for xs in cases {
            #expect(try roundTripInts(xs, c) == xs)
        }
    }

    @Test func regularStepsCostAlmostNothing() throws {
        let planes = PlaneCodec()
        var w = ByteWriter()
        let xs = Array(Int64(0)..<Int64(65_536))
        try xs.withUnsafeBufferPointer { try IntColumnCodec.encode($0, compression: .default, planes: planes, into: &w) }
        #expect(w.count <= 32)
    }

    @Test(arguments: compressions)
    func floatColumnsRoundTripBitExact(_ c: Compression) throws {
        var rng = SplitMix64(seed: 2)
        let cases: [[Double]] = [
            [], [0.5], specialValues, specialValues.reversed(),
            (0..<5_000).map { _ in rng.anyDouble() },
            (0..<5_000).map { Double(Float($0) * 0.001) },
            (0..<5_000).map { _ in Double(bitPattern: rng.next()) },
            Array(repeating: -0.0, count: 100),
            Array(repeating: Double(bitPattern: 0x7FF8_0000_0000_0123), count: 77),
        ]
        for xs in cases {
            #expect(bits(try roundTripFloats(xs, c).out) == bits(xs))
        }
    }

    @Test func float32ValuesAreStoredAsFourBytes() throws {
        let f32 = (0..<1_000).map { Double(Float($0) / 3) } + [.infinity, -0.0, Double(Float.nan)]
        #expect(try roundTripFloats(f32, .none).width == 4)
        #expect(try roundTripFloats(f32 + [0.1], .none).width == 8)
        // A NaN whose payload does not survive a float32 round trip forces 8 bytes.
        #expect(try roundTripFloats(f32 + [Double(bitPattern: 0x7FF8_0000_0000_0001)], .none).width == 8)
    }

    @Test func smoothCurvesPickATransform() throws {
        let planes = PlaneCodec()
        var w = ByteWriter()
        let xs = (0..<20_000).map { Double(Float(1 - Double($0) / 40_000)) }
        try bits(xs).withUnsafeBufferPointer { _ = try FloatColumnCodec.encode($0, compression: .default, planes: planes, into: &w) }
        #expect(w.bytes[1] != FloatColumnCodec.Transform.none.rawValue)
        #expect(Double(w.count) / Double(xs.count) < 1.5)
    }

    @Test func damagedColumnsThrowInsteadOfCrashing() throws {
        var rng = SplitMix64(seed: 3)
        let planes = PlaneCodec()
        var w = ByteWriter()
        let xs = (0..<2_000).map { _ in rng.anyDouble() }
        try bits(xs).withUnsafeBufferPointer { _ = try FloatColumnCodec.encode($0, compression: .default, planes: planes, into: &w) }
        let good = w.bytes
        var buf = [UInt64](repeating: 0, count: xs.count)
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 50)) {
            var r = ByteReader(Array(good[..<cut]))
            #expect(throws: StorageError.self) {
                try buf.withUnsafeMutableBufferPointer { try FloatColumnCodec.decode(&r, expectedCount: xs.count, planes: planes, into: $0) }
            }
        }
        // A wrong count in the index is caught.
        var r = ByteReader(good)
        #expect(throws: StorageError.self) {
            try buf.withUnsafeMutableBufferPointer { try FloatColumnCodec.decode(&r, expectedCount: xs.count - 1, planes: planes, into: $0) }
        }
    }

    @Test func crcMatchesTheReferenceAndThePortablePath() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        var rng = SplitMix64(seed: 4)
        for n in [0, 1, 7, 8, 9, 63, 64, 1000, 4097] {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let portable = bytes.withUnsafeBytes { tally_crc32c_portable(0, $0.baseAddress, $0.count) }
            #expect(CRC32C.checksum(bytes) == portable)
        }
    }

    @Test func bucketGridCoversRangesExactly() {
        var rng = SplitMix64(seed: 5)
        let ranges: [(Int64, Int64)] = [(0, 9), (0, 0), (-5, 5), (Int64.min, Int64.max), (Int64.max - 10, Int64.max), (Int64.min, Int64.min + 3)]
            + (0..<50).map { _ in let a = rng.int(-1_000_000...1_000_000); return (a, a + rng.int(0...100_000)) }
        for (lo, hi) in ranges {
            for k in [1, 2, 3, 7, 1000] {
                let g = BucketGrid(lo: lo, hi: hi, count: k)
                var expectStart = lo
                for p in 0..<g.count {
                    let (a, b) = g.range(of: p)
                    #expect(a == expectStart)
                    #expect(a <= b)
                    #expect(g.bucket(of: a) == p)
                    #expect(g.bucket(of: b) == p)
                    if p + 1 < g.count { expectStart = b + 1 } else { #expect(b == hi) }
                }
            }
        }
    }
}

import CTallyShims
