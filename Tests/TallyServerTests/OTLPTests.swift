import Foundation
import Testing
import TallyTracking
@testable import TallyServer

/// OTLP/HTTP ingest in process: the hand-written protobuf reader against bytes Python's protobuf wrote (every field
/// MLflow keeps, unknown fields and groups skipped, every truncation and random corruption refused or read, never a
/// crash), the JSON form read as the same spans, compressed bodies, and `/v1/traces`, `traces/get`, `traces/batchGet`
/// and `get-trace-artifact` answering as MLflow does, bad requests 4xx.
@Suite struct OTLPTests {
    /// An `ExportTraceServiceRequest` serialised by Python's protobuf (opentelemetry-proto 1.45): one resource
    /// (`service.name` = `svc`, a dropped count, a schema URL), one scope (`sc` 1), one span with every field and
    /// every kind of value.
    static let proto = bytes("""
        0ab8020a190a150a0c736572766963652e6e616d6512050a0373766310021297020a070a027363120131128b020a10000102030405060708090a0b0c0d0e0f12080001020304050607\
        1a03613d62220809090909090909092a056f7020c3a930033901002a36fe9c97174102002a36fe9c97174a080a017312030a01784a070a0162120210014a100a0169120b18fbffffff\
        ffffffffff014a0e0a0164120921000000000000d03f4a0a0a02627912043a0200ff4a100a0161120b2a090a0218010a030a01794a100a016d120b32090a070a016b120210004a030a\
        016e50015a17090700000000000000120265761a080a026561120218016a2f0a1001010101010101010101010101010101120802020202020202021a017422090a026c6112030a017a\
        35030000007a07120362616418028501010100001a0175
        """)
    /// The same, by Python's `gzip.compress(mtime=0)`, `zlib.compress` and a raw deflate stream.
    static let gzip = bytes("""
        1f8b08000000000002035d8e3d4ec340108577666376771cc26a2414e30a52bae04f02294808d16e454db7765c044840182c923e150748c305b8013d17e03e4884359886af1a3dbdf769\
        e80d698b36a95b95f7f5b82877a77e527244b2aa0b8bbc44528455c170c0cf485600ca4eb4a6b4a1b8bbdedb60fd97a4d29fe6036d5ab2e8f66efbfd755f0e4164c75f2fcbfe39b687d3\
        04154b8227a70872460bce128c394e3e572de07a0423363be2878f334784f98c3b2728564ddb739c19c2042888664d32e1f8d0846fe13a18850bf1f4022efb46fd2a046359a79ab0f41c\
        66577b64e11facb125858741b0dff8e6cdf9910cf3b96299fb51828bd0142285c76f866287393b010000
        """)
    static let raw = Array(gzip[10..<(gzip.count - 8)])
    static let zlib = [0x78, 0x9c] + raw + [0x3a, 0x76, 0x33, 0x3b]

    static func bytes(_ hex: String) -> [UInt8] {
        let h = Array(hex.utf8)
        return stride(from: 0, to: h.count, by: 2).map { PercentDecoding.hex(h[$0])! << 4 | PercentDecoding.hex(h[$0 + 1])! }
    }

    static let expected: OTLPSpan = {
        var s = OTLPSpan()
        s.traceID = Array(0..<16)
        s.spanID = Array(0..<8)
        s.parentSpanID = Array(repeating: 9, count: 8)
        s.traceState = "a=b"
        s.flags = 257
        s.name = "op é"
        s.kind = 3
        s.start = 1_700_000_000_000_000_001
        s.end = 1_700_000_000_000_000_002
        s.attributes = [
            OTLPAttribute(key: "s", value: .string("x")), OTLPAttribute(key: "b", value: .bool(true)), OTLPAttribute(key: "i", value: .int(-5)),
            OTLPAttribute(key: "d", value: .double(0.25)), OTLPAttribute(key: "by", value: .bytes([0, 255])),
            OTLPAttribute(key: "a", value: .array([.int(1), .string("y")])), OTLPAttribute(key: "m", value: .map([OTLPAttribute(key: "k", value: .bool(false))])),
            OTLPAttribute(key: "n", value: .none),
        ]
        s.events = [OTLPEvent(name: "ev", time: 7, attributes: [OTLPAttribute(key: "ea", value: .int(1))])]
        var l = OTLPLink()
        l.traceID = Array(repeating: 1, count: 16)
        l.spanID = Array(repeating: 2, count: 8)
        l.traceState = "t"
        l.flags = 3
        l.attributes = [OTLPAttribute(key: "la", value: .string("z"))]
        s.links = [l]
        s.statusCode = 2
        s.statusMessage = "bad"
        return s
    }()

    @Test func readsWhatPythonWrote() throws {
        let r = try OTLPProtobuf.exportRequest(Self.proto)
        #expect(r == [OTLPResourceSpans(resource: [OTLPAttribute(key: "service.name", value: .string("svc"))], spans: [Self.expected])])
        // Unknown fields of every wire type, a group among them, are skipped: appended at the top level and in a span.
        let unknown: [UInt8] = [0xC8, 0x06, 0x05, 0xC5, 0x06, 1, 2, 3, 4, 0xB9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0xBB, 0x06, 0x08, 0x01, 0xBC, 0x06]
        #expect(try OTLPProtobuf.exportRequest(Self.proto + unknown) == r)
        // A message given twice is merged, a repeated field appended to (the resource spans twice: two entries).
        #expect(try OTLPProtobuf.exportRequest(Self.proto + Self.proto).count == 2)
        // Bytes a reader must refuse.
        for bad: [UInt8] in [[0x0A], [0x0A, 0x05, 0x01], [0x08], [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
                             [0x0E], [0x0F], [0x00, 0x01], [0x0C], [0x0B, 0x08, 0x01],
                             [0x0A, 0x07, 0x12, 0x05, 0x12, 0x03, 0x2A, 0x01, 0x80]] {  // a span name that is not UTF-8
            #expect(throws: OTLPProtobuf.Malformed.self, "\(bad)") { try OTLPProtobuf.exportRequest(bad) }
        }
    }

    /// Bodies that would nest or repeat without bound are refused, not followed: 200 KB of group starts, values
    /// nested 40 deep, a span with 65,537 links.
    @Test func boundedNestingAndRepetition() throws {
        #expect(throws: OTLPProtobuf.Malformed.self) { try OTLPProtobuf.exportRequest([UInt8](repeating: 0x0B, count: 200_000)) }
        // An unknown group nested 1,000 deep at the top level, then closed: skipped by counting.
        let groups: [UInt8] = (0..<1000).flatMap { _ in [UInt8(0xCB), 0x06] } + (0..<1000).flatMap { _ in [UInt8(0xCC), 0x06] }
        #expect(try OTLPProtobuf.exportRequest(groups).isEmpty)
        func delimited(_ field: UInt8, _ body: [UInt8]) -> [UInt8] {
            var out: [UInt8] = [field << 3 | 2]
            var n = body.count
            while n >= 0x80 { out.append(UInt8(n & 0x7F) | 0x80); n >>= 7 }
            return out + [UInt8(n)] + body
        }
        func request(_ spanBody: [UInt8]) -> [UInt8] { delimited(1, delimited(2, delimited(2, spanBody))) }
        let ids = delimited(1, [UInt8](repeating: 1, count: 16)) + delimited(2, [UInt8](repeating: 2, count: 8))
        var value: [UInt8] = [0x10, 0x01]  // AnyValue { bool_value: true }
        for _ in 0..<40 { value = delimited(5, delimited(1, value)) }  // array_value { values: [value] }
        let deep = request(ids + delimited(9, delimited(1, Array("k".utf8)) + delimited(2, value)))
        #expect(throws: OTLPProtobuf.Malformed.self) { try OTLPProtobuf.exportRequest(deep) }
        var shallow: [UInt8] = [0x10, 0x01]
        for _ in 0..<20 { shallow = delimited(5, delimited(1, shallow)) }
        #expect(try OTLPProtobuf.exportRequest(request(ids + delimited(9, delimited(1, Array("k".utf8)) + delimited(2, shallow)))).count == 1)
        let links = request(ids + (0...OTLPSpan.maxElements).flatMap { _ in [UInt8(0x6A), 0x00] })
        #expect(throws: OTLPProtobuf.Malformed.self) { try OTLPProtobuf.exportRequest(links) }
    }

    /// Every truncation and 20,000 random corruptions of the request: read or refused as malformed, never a crash.
    @Test func corruptionIsRefusedNotFatal() {
        for n in 0..<Self.proto.count {
            do { _ = try OTLPProtobuf.exportRequest(Array(Self.proto[0..<n])) } catch { #expect(error is OTLPProtobuf.Malformed) }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var b = Self.proto
            for _ in 0..<Int.random(in: 1...4, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do { _ = try OTLPProtobuf.exportRequest(b) } catch { #expect(error is OTLPProtobuf.Malformed) }
        }
    }

    @Test func compressedBodies() throws {
        #expect(try Inflate.gzip(Self.gzip, limit: 1 << 20) == Self.proto)
        #expect(try Inflate.gzip(Self.gzip + Self.gzip, limit: 1 << 20) == Self.proto + Self.proto)  // two members
        #expect(try Inflate.deflate(Self.zlib, limit: 1 << 20) == Self.proto)
        #expect(try Inflate.deflate(Self.raw, limit: 1 << 20) == Self.proto)
        #expect(throws: Inflate.Failure.corrupt) { try Inflate.gzip(Array(Self.gzip.dropLast(20)), limit: 1 << 20) }
        #expect(throws: Inflate.Failure.corrupt) { try Inflate.gzip(Array("not gzip".utf8), limit: 1 << 20) }
        #expect(throws: Inflate.Failure.corrupt) { try Inflate.deflate(Array("not deflate".utf8), limit: 1 << 20) }
        #expect(throws: Inflate.Failure.tooLarge) { try Inflate.gzip(Self.gzip, limit: 100) }
    }

    static let json = #"""
        {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}, "schemaUrl": "u",
         "scopeSpans": [{"scope": {"name": "sc"}, "spans": [{"traceId": "000102030405060708090A0B0C0D0E0F", "span_id": "0001020304050607",
         "parentSpanId": "0909090909090909", "traceState": "a=b", "flags": 257, "name": "op é", "kind": "SPAN_KIND_CLIENT",
         "startTimeUnixNano": "1700000000000000001", "endTimeUnixNano": 1700000000000000002, "droppedAttributesCount": 1,
         "attributes": [{"key": "s", "value": {"stringValue": "x"}}, {"key": "b", "value": {"boolValue": true}},
          {"key": "i", "value": {"intValue": "-5"}}, {"key": "d", "value": {"doubleValue": 0.25}}, {"key": "by", "value": {"bytesValue": "AP8="}},
          {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "y"}]}}},
          {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": false}}]}}}, {"key": "n", "value": {}}],
         "events": [{"name": "ev", "timeUnixNano": "7", "attributes": [{"key": "ea", "value": {"intValue": 1}}]}],
         "links": [{"traceId": "01010101010101010101010101010101", "spanId": "0202020202020202", "traceState": "t", "flags": 3,
          "attributes": [{"key": "la", "value": {"stringValue": "z"}}]}],
         "status": {"code": 2, "message": "bad"}, "unknownField": [1, 2]}]}]}]}
        """#

    @Test func jsonReadsAsTheSameSpans() throws {
        #expect(try OTLPJSON.exportRequest(Array(Self.json.utf8)) == OTLPProtobuf.exportRequest(Self.proto))
        for bad in [#"[]"#, #"{"resourceSpans": {}}"#, #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0g"}]}]}]}"#,
                    #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abc"}]}]}]}"#,
                    #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}"#,
                    #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "SPAN_KIND_NONE"}]}]}]}"#,
                    #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "-1"}]}]}]}"#,
                    #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "x", "value": {"intValue": "1.5"}}]}]}]}]}"#, "{"] {
            #expect(throws: OTLPProtobuf.Malformed.self, "\(bad)") { try OTLPJSON.exportRequest(Array(bad.utf8)) }
        }
    }

    @Test func ingestedAndReadBack() async throws {
        try await LiveServer.with { s in
            let v3 = "/api/3.0/mlflow", traceID = "tr-000102030405060708090a0b0c0d0e0f"
            let exp = try #require(try await s.post("/api/2.0/mlflow/experiments/create", #"{"name": "otlp"}"#).json["experiment_id"] as? String)
            let sent = try await s.request("POST", "/v1/traces", body: Self.gzip, contentType: "application/x-protobuf",
                                           headers: ["x-mlflow-experiment-id": exp, "Content-Encoding": "gzip"])
            #expect(sent.status == 200 && sent.body.isEmpty && sent.headers["content-type"] == "application/x-protobuf", "\(sent.text)")
            // The span's parent never came: the trace is in progress, its span kept as MLflow keeps it.
            let info = try #require((try await s.get("\(v3)/traces/\(traceID)").json["trace"] as? [String: Any])?["trace_info"] as? [String: Any])
            #expect(info["state"] as? String == "IN_PROGRESS" && (info["tags"] as? [String: String])?["mlflow.trace.spansLocation"] == "TRACKING_STORE")
            #expect((info["tags"] as? [String: String])?["service.name"] == "svc")
            let got = try await s.get("\(v3)/traces/get?trace_id=\(traceID)")
            let spans = try #require((got.json["trace"] as? [String: Any])?["spans"] as? [[String: Any]], "\(got.text)")
            #expect(spans.count == 1 && spans[0]["name"] as? String == "op é" && spans[0]["parent_span_id"] as? String == "CQkJCQkJCQk=")
            let attributes = try #require(spans[0]["attributes"] as? [[String: Any]])
            #expect(attributes.first { $0["key"] as? String == "by" }?["value"] as? [String: String] == ["string_value": "b'\\x00\\xff'"])
            #expect(attributes.first { $0["key"] as? String == "n" }?["value"] == nil)
            let artifact = try await s.get("/ajax-api/2.0/mlflow/get-trace-artifact?request_id=\(traceID)")
            #expect(artifact.status == 200 && artifact.text.hasPrefix(#"{"spans":[{"trace_id": "AAECAwQFBgcICQoLDA0ODw==", "span_id": "AAECAwQFBgc=""#))
            let batch = try await s.get("\(v3)/traces/batchGet?trace_ids=\(traceID)&trace_ids=tr-nope")
            #expect((batch.json["traces"] as? [Any])?.count == 1, "\(batch.text)")
            // JSON in, JSON out.
            let json = try await s.request("POST", "/v1/traces", body: Array(Self.json.utf8), contentType: "application/json",
                                           headers: ["x-mlflow-experiment-id": exp])
            #expect(json.status == 200 && json.text == "{}")

            // Refusals: 4xx, MLflow's status and text.
            func refused(_ body: [UInt8], _ type: String?, _ headers: [String: String], _ status: Int, _ text: String) async throws {
                let r = try await s.request("POST", "/v1/traces", body: body, contentType: type, headers: headers)
                #expect(r.status == status && r.json["detail"] as? String == text && r.json["message"] as? String == text, "\(r.status) \(r.text)")
            }
            let e = ["x-mlflow-experiment-id": exp]
            try await refused(Self.proto, nil, e, 400, "Invalid Content-Type: None. Expected: application/x-protobuf or application/json")
            try await refused(Self.proto, "text/plain", e, 400, "Invalid Content-Type: text/plain. Expected: application/x-protobuf or application/json")
            try await refused([0xFF, 0xFF], "application/x-protobuf", e, 400, "Invalid OpenTelemetry format")
            try await refused([], "application/x-protobuf", e, 400, "Invalid OpenTelemetry format - no spans found")
            try await refused(Self.proto, "application/x-protobuf", e.merging(["Content-Encoding": "br"]) { a, _ in a }, 400, "Unsupported Content-Encoding: br")
            try await refused(Self.proto, "application/x-protobuf", e.merging(["Content-Encoding": "gzip"]) { a, _ in a }, 400, "Failed to decompress gzip payload")
            try await refused([0x0A, 0x06, 0x12, 0x04, 0x12, 0x02, 0x12, 0x00], "application/x-protobuf", e, 422,  // a span with no ids
                              "Cannot convert OpenTelemetry span to MLflow span")
            try await refused(Self.proto, "application/x-protobuf", [:], 422, "Field required: header x-mlflow-experiment-id")
            try await refused(Self.proto, "application/x-protobuf", ["x-mlflow-experiment-id": ""], 400, "Missing required header: X-Mlflow-Experiment-Id")
            let unknown = try await s.request("POST", "/v1/traces", body: Self.proto, contentType: "application/x-protobuf", headers: ["x-mlflow-experiment-id": "999"])
            #expect(unknown.status == 404 && unknown.errorCode == "RESOURCE_DOES_NOT_EXIST")
            #expect(try await s.get("\(v3)/traces/get?trace_id=tr-nope").status == 404)
            #expect(try await s.get("\(v3)/traces/get").errorCode == "INVALID_PARAMETER_VALUE")
            #expect(try await s.get("\(v3)/traces/batchGet").errorCode == "INVALID_PARAMETER_VALUE")
            #expect(try await s.get("\(v3)/traces/batchGet?trace_ids=tr-nope").text == "{}")

            // The client's info counts 2 spans; 1 came: traces/get waits (1 s, 2 s) and gives up, as MLflow does,
            // unless a partial trace is asked for; batchGet leaves it out.
            let info2 = #"{"trace": {"trace_info": {"trace_id": "\#(traceID)", "trace_location": {"mlflow_experiment": {"experiment_id": "\#(exp)"}}, "#
                + #""request_time": "2026-12-05T00:00:00Z", "state": "OK", "trace_metadata": {"mlflow.trace.sizeStats": "{\"num_spans\": 2}"}}}}"#
            #expect(try await s.post(v3 + "/traces", info2).status == 200)
            let started = Date()
            let waited = try await s.get("\(v3)/traces/get?trace_id=\(traceID)&allow_partial=False")
            #expect(waited.status == 404 && waited.json["message"] as? String == "Trace with ID \(traceID) is not fully exported yet, please try again later.")
            #expect(Date().timeIntervalSince(started) >= 2.9)
            #expect(try await s.get("\(v3)/traces/get?trace_id=\(traceID)&allow_partial=True").status == 200)
            #expect(try await s.get("\(v3)/traces/batchGet?trace_ids=\(traceID)").text == "{}")
        }
    }
}
