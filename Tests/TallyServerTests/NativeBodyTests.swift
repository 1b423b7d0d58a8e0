import CZstd
import Foundation
import Testing
import TallyStore
@testable import TallyServer

/// The native ingest bodies: binary (plain and zstd) round trips, and the columnar JSON parser against
/// Foundation's `JSONSerialization` on random bodies.
@Suite struct NativeBodyTests {
    /// A binary body as docs/api.md describes it.
    static func binary(_ series: [(String, [Int64], [Int64], [Double])], batchID: String = "", float32: Bool = false, zstd: Bool = false) -> [UInt8] {
        var payload: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { payload += $0 } }
        le(UInt16(batchID.utf8.count))
        payload += Array(batchID.utf8)
        for (key, steps, ts, values) in series {
            le(UInt16(key.utf8.count))
            payload += Array(key.utf8)
            payload += [float32 ? 4 : 8, 0]
            le(UInt32(steps.count))
            for s in steps { le(s) }
            for t in ts { le(t) }
            for v in values { if float32 { le(Float(v).bitPattern) } else { le(v.bitPattern) } }
        }
        var body = Array("TLYC".utf8) + [1, zstd ? 1 : 0, 0, 0]
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { body += $0 }
        withUnsafeBytes(of: UInt32(series.count).littleEndian) { body += $0 }
        guard zstd else { return body + payload }
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(payload.count))
        let n = ZSTD_compress(&out, out.count, payload, payload.count, 3)
        return body + out.prefix(n)
    }

    @Test func binaryRoundTripsPlainAndCompressed() throws {
        let steps = (0..<5000).map { Int64($0) * 3 - 7 }
        let ts = steps.map { 1_700_000_000_000 + $0 }
        let values = steps.map { $0 % 97 == 0 ? .nan : sin(Double($0)) }
        for zstd in [false, true] {
            let body = Self.binary([("loss", steps, ts, values), ("é/acc", [1], [2], [-0.0])], batchID: "b-7", zstd: zstd)
            let batch = try body.withUnsafeBytes { try NativeBinary.decode($0) }
            #expect(batch.batchID == "b-7" && batch.series.map(\.key) == ["loss", "é/acc"])
            #expect(batch.series[0].steps == steps && batch.series[0].timestamps == ts)
            #expect(batch.series[0].values.map(\.bitPattern) == values.map(\.bitPattern))
            #expect(batch.series[1].values[0].sign == .minus)
        }
        let f32 = try Self.binary([("k", [1, 2], [0, 0], [0.1, .infinity])], float32: true).withUnsafeBytes { try NativeBinary.decode($0) }
        #expect(f32.batchID == nil && f32.series[0].values == [Double(Float(0.1)), .infinity])
    }

    @Test func damagedBinaryBodiesNameTheOffset() {
        let good = Self.binary([("k", [1, 2], [0, 0], [1, 2])], zstd: true)
        var badFrame = good
        badFrame[20] ^= 0xFF
        for (body, fragment) in [(Array(good[..<10]), "shorter than the 16-byte header"), (badFrame, "zstd"),
                                 (Array("TLYX".utf8) + good[4...], "bad magic"), (Array(good[..<8]) + [1, 0, 0, 0] + good[12...], "zstd: Destination buffer is too small")] {
            let error = #expect(throws: NativeBodyError.self) { try body.withUnsafeBytes { try NativeBinary.decode($0) } }
            #expect(error?.description.contains(fragment) == true, "\(String(describing: error))")
        }
    }

    @Test func limitsOnDecompressionSeriesAndEscapes() throws {
        let big = Self.binary([("k", Array(0..<10_000), Array(0..<10_000), (0..<10_000).map(Double.init))], zstd: true)
        #expect(big.count < 100_000)
        let error = #expect(throws: NativeBodyError.self) { try big.withUnsafeBytes { try NativeBinary.decode($0, limit: 100_000) } }
        #expect(error?.message.contains("exceeds the limit of 100000 bytes") == true)
        _ = try big.withUnsafeBytes { try NativeBinary.decode($0, limit: 1 << 20) }
        var many = Self.binary([])
        many.replaceSubrange(12..<16, with: [0xA1, 0x86, 0x01, 0x00])  // 100,001 series
        let e2 = #expect(throws: NativeBodyError.self) { try many.withUnsafeBytes { try NativeBinary.decode($0) } }
        #expect(e2?.message.contains("exceed the limit of 100000") == true)
        // \u escapes take hex digits only, not control bytes that look like digits after case folding.
        let bad: [UInt8] = Array(#"{"metrics": [{"key": "a\u"#.utf8) + [0x10, 0x10, 0x10, 0x31] + Array(#"", "steps": [1], "values": [1]}]}"#.utf8)
        #expect(throws: NativeBodyError.self) { try bad.withUnsafeBytes { try ColumnarJSONParser.parse($0, defaultTimestamp: 0) } }
        let good = Array(#"{"metrics": [{"key": "a\u00E9\u00e9", "steps": [1], "values": [1]}]}"#.utf8)
        #expect(try good.withUnsafeBytes { try ColumnarJSONParser.parse($0, defaultTimestamp: 0) }.series[0].key == "aéé")
    }

    @Test func columnarJSONAgreesWithJSONSerialization() throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var metrics: [[String: Any]] = []
            for k in 0..<Int.random(in: 1...4, using: &rng) {
                let n = Int.random(in: 0...50, using: &rng)
                metrics.append(["key": round % 7 == 0 ? "k\"\\\u{e9}\u{1F600}\(k)" : "m\(k)",
                                "steps": (0..<n).map { _ in Int64.random(in: -(1 << 62)...(1 << 62), using: &rng) },
                                "timestamps": (0..<n).map { _ in Int64.random(in: 0...(1 << 50), using: &rng) },
                                "values": (0..<n).map { _ in Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random() ? 1 : -1) }])
            }
            let object: [String: Any] = ["batch_id": "r\(round)", "metrics": metrics]
            let data = try JSONSerialization.data(withJSONObject: object, options: round % 2 == 0 ? [.prettyPrinted] : [])
            let batch = try data.withUnsafeBytes { try ColumnarJSONParser.parse($0, defaultTimestamp: 0) }
            #expect(batch.batchID == "r\(round)" && batch.series.count == metrics.count)
            for (s, m) in zip(batch.series, metrics) {
                #expect(s.key == m["key"] as? String)
                #expect(s.steps == m["steps"] as? [Int64] && s.timestamps == m["timestamps"] as? [Int64])
                #expect(s.values.map(\.bitPattern) == (m["values"] as? [Double])?.map(\.bitPattern))
            }
        }
    }
}
