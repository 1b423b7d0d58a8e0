import Testing
import TallyTracking
import TallyWorkloads
@testable import TallyServer

/// Mutated request bodies (bit flips, truncations, splices, inserted bytes) through every hand-written reader:
/// each must return or throw, never trap — a trap would take the server down on a client's mistake.
@Suite struct FuzzTests {
    static func mutate(_ base: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = base
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            guard !b.isEmpty else { break }
            let i = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 5 {
            case 0: b[i] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
            case 1: b = Array(b[..<i])
            case 2: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
            case 3: b[i] = [0x22, 0x5C, 0x2C, 0x5B, 0x5D, 0x7B, 0x7D, 0x30, 0x2D, 0x65, 0xFF, 0x00][Int(rng.next() % 12)]
            default: b.replaceSubrange(i..<min(b.count, i + 4), with: [0xFF, 0xFF, 0xFF, 0x7F])
            }
        }
        return b
    }

    @Test func mutatedBodiesNeverTrap() {
        var rng = SplitMix64(seed: 2026)
        let logBatch = Array(#"{"run_id": "0123abcd", "metrics": [{"key": "loss", "value": 0.0009990009990009, "timestamp": 1700000000000, "step": 999}, {"key": "acc", "value": "NaN", "timestamp": 1, "step": -3}, {"key": "x", "value": 1e-7, "timestamp": 2}], "params": [{"key": "lr", "value": "0.01"}], "tags": [{"key": "t", "value": "v"}]}"#.utf8)
        let columns = Array(#"{"batch_id": "b1", "metrics": [{"key": "loss", "steps": [1, 2, 3], "timestamps": [10, 20, 30], "values": [0.5, "NaN", -1.5e300]}, {"key": "k\u00e9\ud83d\ude00", "steps": [9223372036854775807], "values": [Infinity]}]}"#.utf8)
        let plain = NativeBodyTests.binary([("loss", [1, 2, 3], [4, 5, 6], [0.5, .nan, 2]), ("b", [7], [8], [9])], batchID: "id")
        let packed = NativeBodyTests.binary([("loss", Array(0..<300), Array(0..<300), (0..<300).map { Double($0) })], zstd: true)
        var accepted = 0
        for round in 0..<30_000 {
            let which = round % 4
            let body = Self.mutate([logBatch, columns, plain, packed][which], &rng)
            if which < 2, let tree = try? JSONParser.parse(body) {  // the general parser every MLflow request goes through
                _ = tree.pythonRepr
            }
            body.withUnsafeBytes { raw in
                switch which {
                case 0:
                    if let fast = LogBatchParser.parse(raw) {
                        accepted += 1
                        // Whatever the fast path accepts, the general path accepts with the same values.
                        if let general = LogBatchParserTests.general(body) {
                            #expect(LogBatchParserTests.same(fast, general))
                        } else {
                            Issue.record("fast path accepted a body the general path refuses: \(String(decoding: body, as: UTF8.self))")
                        }
                    }
                case 1: if (try? ColumnarJSONParser.parse(raw, defaultTimestamp: 0)) != nil { accepted += 1 }
                default: if (try? NativeBinary.decode(raw)) != nil { accepted += 1 }
                }
            }
        }
        #expect(accepted > 1000)  // plenty of mutants are still valid and take the success paths too
    }
}
