import Foundation
import NIOCore
import Testing
import TallyStore
import TallyTracking
@testable import TallyServer

/// The hand-written log-batch parser against the general path (JSON tree + MLflowRequest), and against
/// `strtod` for numbers: wherever the fast parser answers, it must answer the same.
@Suite struct LogBatchParserTests {
    /// The general path's reading of a log-batch body, or `nil` where it refuses the body.
    static func general(_ bytes: [UInt8]) -> LogBatchBody? {
        guard let tree = try? JSONParser.parse(bytes), case .object = tree else { return nil }
        let r = MLflowRequest(body: tree, query: [:])
        guard let id = try? r.runID(), let objects = try? r.objects("metrics"),
              let params = try? r.keyValues("params"), let tags = try? r.keyValues("tags") else { return nil }
        var batch = MetricBatch()
        for (i, o) in objects.enumerated() {
            guard (try? MLflowRequest(body: o, query: [:]).metric(into: &batch, i)) != nil else { return nil }
        }
        return LogBatchBody(runID: id, metrics: batch, params: params, tags: tags)
    }

    static func fast(_ bytes: [UInt8]) -> LogBatchBody? {
        bytes.withUnsafeBytes { LogBatchParser.parse($0) }
    }

    /// A batch's points, key by key (the order both readers group them in).
    static func points(_ b: MetricBatch) -> [Metric] {
        b.columns.batches.flatMap { s in s.steps.indices.map { Metric(key: s.key, value: s.values[$0], timestamp: s.timestamps[$0], step: s.steps[$0]) } }
    }

    /// Same fields, values compared bit for bit (NaN included), same content id and same first error.
    static func same(_ a: LogBatchBody, _ b: LogBatchBody) -> Bool {
        a.runID == b.runID && a.params == b.params && a.tags == b.tags && points(a.metrics) == points(b.metrics)
            && a.metrics.contentID == b.metrics.contentID && a.metrics.error == b.metrics.error
    }

    @Test func clientBodiesTakeTheFastPathAndAgree() throws {
        // The shape mlflow's REST store sends (message_to_json: spaces after separators, int64 as numbers).
        let body = """
            {"run_id": "0123abcd", "metrics": [{"key": "loss", "value": 0.0009990009990009, "timestamp": 1700000000000, "step": 999}, \
            {"key": "loss", "value": "NaN", "timestamp": 1700000000001, "step": 1000}, {"key": "acc", "value": -1.5e-7, "timestamp": 0}, \
            {"key": "acc", "value": "Infinity", "timestamp": 2, "step": -3}, {"key": "acc", "value": "-Infinity", "timestamp": 3}, \
            {"key": "big", "value": 1.7976931348623157e308, "timestamp": 4, "step": 9223372036854775807}, \
            {"key": "int", "value": 42, "timestamp": 5, "step": -9223372036854775808}], \
            "params": [{"key": "lr", "value": "0.01"}, {"key": "empty"}], "tags": [{"key": "t", "value": "v w"}]}
            """
        let bytes = Array(body.utf8)
        let f = try #require(Self.fast(bytes))
        let g = try #require(Self.general(bytes))
        #expect(Self.same(f, g))
        let p = Self.points(f.metrics)
        #expect(f.metrics.count == 7 && p[1].value.isNaN && p[3].value == .infinity && p[4].step == 0)
        #expect(f.params == [KeyValue(key: "lr", value: "0.01"), KeyValue(key: "empty", value: "")])
    }

    @Test func unusualBodiesFallBackOrAgree() throws {
        let bodies = [
            #"{"run_uuid": "r", "metrics": []}"#,
            #"{"run_id": "", "run_uuid": "r"}"#,
            #"{"run_id": "r", "metrics": [{"key": "a\u00e9", "value": 1, "timestamp": 1}]}"#,  // escape: general path
            #"{"run_id": "r", "metrics": [{"key": "é", "value": 1, "timestamp": 1}]}"#,  // non-ASCII: general path
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 1, "timestamp": "17"}]}"#,  // int64 as string
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 1, "timestamp": 1.0}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 1, "timestamp": 9223372036854775808}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": true, "timestamp": 1}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": "1.5", "timestamp": 1}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "timestamp": 1}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 1, "timestamp": 1, "extra": [1, {"x": null}]}]}"#,
            #"{"run_id": "r", "run_id": "s"}"#,
            #"{"run_id": "r", "metrics": {}}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 1, "timestamp": 1},]}"#,
            #"{"run_id": "r"} x"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 01, "timestamp": 1}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": -, "timestamp": 1}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": 1., "timestamp": 1}]}"#,
            #"{"run_id": "r", "metrics": [{"key": "a", "value": NaN, "timestamp": 1}, {"key": "a", "value": -Infinity, "timestamp": 1}]}"#,
            #"{"run_id": "r", "params": [{"value": "v"}]}"#,
            #"{"run_id": "r", "params": [{"key": "k", "value": 5}]}"#,
            " \n{ \"run_id\" :\t\"r\" , \"metrics\" : [ { \"key\" : \"a\" , \"value\" : 1e2 , \"timestamp\" : 1 } ] } \r\n",
            #"{}"#,
        ]
        var fastCount = 0
        for body in bodies {
            let bytes = Array(body.utf8)
            guard let f = Self.fast(bytes) else { continue }
            fastCount += 1
            let g = try #require(Self.general(bytes), "fast path accepted what the general path refuses: \(body)")
            #expect(Self.same(f, g), "\(body)")
        }
        #expect(fastCount == 4)  // run_uuid, empty run_id, bare NaN/-Infinity, whitespace: the plain ones take the fast path
    }

    /// Text that is no Unicode (a surrogate without its pair, bytes that are not UTF-8) is refused by both readers,
    /// never stored as U+FFFD; a real pair is one character.
    @Test func textThatIsNoUnicodeIsRefused() throws {
        let broken: [[UInt8]] = [
            Array(#"{"run_id": "r", "tags": [{"key": "k", "value": "x\ud83d"}]}"#.utf8),  // high surrogate at the end
            Array(#"{"run_id": "r", "tags": [{"key": "k", "value": "\ud83d\u0041"}]}"#.utf8),  // high, then no low
            Array(#"{"run_id": "r", "tags": [{"key": "k", "value": "\ude00x"}]}"#.utf8),  // a low surrogate alone
            Array(#"{"run_id": "r", "tags": [{"key": "k", "value": "a"#.utf8) + [0xFF, 0xFE] + Array(#""}]}"#.utf8),
            Array(#"{"run_id": "r", "tags": [{"key": "k", "value": "a"#.utf8) + [0xED, 0xA0, 0xBD] + Array(#""}]}"#.utf8),  // CESU surrogate
        ]
        for bytes in broken {
            #expect(Self.fast(bytes) == nil && Self.general(bytes) == nil, "\(bytes)")
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(bytes) }
        }
        let pair = Array(#"{"run_id": "r", "tags": [{"key": "k", "value": "\ud83d\ude00 \u00e9"}]}"#.utf8)
        #expect(Self.general(pair)?.tags == [KeyValue(key: "k", value: "\u{1F600} \u{E9}")])
    }

    @Test func numbersAreCorrectlyRounded() throws {
        var rng = SystemRandomNumberGenerator()
        var texts: [String] = ["0", "-0", "0.0", "-0.0", "1e308", "1.7976931348623157e308", "4.9e-324", "2.2250738585072014e-308",
                               "123456789012345678901234567890", "0.30000000000000004", "9007199254740993", "1e22", "1e23", "1E-22",
                               "0.000000000000000000000000001", "3.141592653589793238462643383279"]
        for _ in 0..<20_000 {
            let v = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)
            texts.append("\(v)")
            texts.append(String(format: "%.17g", v))
            texts.append(String(format: "%.6g", Double.random(in: -1e6...1e6)))
            texts.append(String(Double(Int.random(in: -1_000_000...1_000_000)) / 1000))
        }
        for t in texts {
            let body = Array(#"{"run_id": "r", "metrics": [{"key": "k", "value": \#(t), "timestamp": 1}]}"#.utf8)
            let f = try #require(Self.fast(body), "\(t)")
            let expected = try #require(strtod(t, nil) as Double?)
            #expect(Self.points(f.metrics)[0].value.bitPattern == expected.bitPattern, "\(t)")
        }
    }

    /// The one number writer: MLflow's spellings for the special values, and every finite value read back bit for bit.
    @Test func numberWriterRoundTrips() {
        let fixed: [(Double, String)] = [(0, "0.0"), (-0.0, "-0.0"), (1, "1.0"), (.nan, "\"NaN\""), (.infinity, "1.7976931348623157e+308"),
                                         (-.infinity, "-1.7976931348623157e+308"), (0.1, "0.1"), (1e16, "1e+16"), (-2.5, "-2.5")]
        for (v, text) in fixed { #expect(JSONWriter.double(v) == text, "\(v)") }
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = [9_999_999_999_999_998, -2.5e-300, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        for _ in 0..<10_000 { values.append(Double(bitPattern: rng.next())) }
        for _ in 0..<10_000 { values.append(Double(Float(bitPattern: UInt32.random(in: 0...UInt32.max)))) }  // float32 data
        for _ in 0..<1_000 { values.append(Double(Int64.random(in: -(1 << 60)...(1 << 60)))) }
        for v in values where v.isFinite {
            var out = JSONBytes(capacity: 32)
            out.double(v)
            let text = String(buffer: out.buffer)
            #expect(text == JSONWriter.double(v))
            #expect(strtod(text, nil).bitPattern == v.bitPattern, "\(v.bitPattern) → \(text)")
            if v != v.rounded() || abs(v) >= 1e16 { #expect(text == v.description, "\(v.bitPattern)") }
        }
        for v: Int64 in [0, -1, 7, .max, .min, 1_700_000_000_000] + (0..<1000).map({ _ in Int64.random(in: .min ... .max) }) {
            var out = JSONBytes(capacity: 32)
            out.int(v)
            #expect(String(buffer: out.buffer) == String(v))
        }
    }
}
