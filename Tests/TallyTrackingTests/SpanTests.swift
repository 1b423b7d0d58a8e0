import Foundation
import Synchronization
import Testing
@testable import TallyTracking

/// Spans sent over OTLP, on both backends: each converted to the JSON MLflow's tracking store keeps (the literal text
/// a real MLflow 3.17.2 stored for the same span), traces made from their spans and completed by later batches as
/// MLflow's `log_spans` does, previews from the root span, reads in MLflow's order, deletes.
private func a(_ key: String, _ value: OTLPValue) -> OTLPAttribute { OTLPAttribute(key: key, value: value) }

private func name(_ v: JSONValue) -> String? {
    if case .string(let s)? = v["name"] { return s }
    return nil
}

@Suite struct SpanTests {
    static let trace: [UInt8] = bytes("0af7651916cd43dd8448eb211c80319c")
    static let traceID = "tr-0af7651916cd43dd8448eb211c80319c"

    static func bytes(_ hex: String) -> [UInt8] {
        let h = Array(hex.utf8)
        return stride(from: 0, to: h.count, by: 2).map { UInt8(String(decoding: h[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }

    static func span(_ id: String, parent: String? = nil, name: String, start: UInt64, end: UInt64, status: Int32 = 0, message: String = "",
                     attributes: [OTLPAttribute] = [], trace: [UInt8] = trace) -> OTLPSpan {
        var s = OTLPSpan()
        s.traceID = trace
        s.spanID = bytes(id)
        s.parentSpanID = parent.map(bytes) ?? []
        s.name = name
        s.start = start
        s.end = end
        s.statusCode = status
        s.statusMessage = message
        s.attributes = attributes
        return s
    }


    /// The root span of MLflow's captured example (docs/otlp.md) and the text MLflow 3.17.2 stored for it.
    static let root: OTLPSpan = {
        var s = span("b7ad6b7169203331", name: "root-op", start: 1_700_000_000_123_456_789, end: 1_700_000_002_500_000_000, status: 1, attributes: [
            a("s", .string("hello")), a("b", .bool(true)), a("i", .int(42)), a("d", .double(3.5)), a("arr", .array([.string("x"), .int(2), .bool(false)])),
            a("kv", .map([a("a", .int(1)), a("n", .string("z"))])), a("by", .bytes([0, 1, 255])), a("empty", .none), a("jsonstr", .string(#"{"k": [1, 2]}"#)),
            a("numstr", .string("123")), a("mlflow.spanInputs", .string(#"{"question": "what?"}"#)), a("mlflow.spanOutputs", .string(#""the answer""#)),
            a("mlflow.spanType", .string(#""CHAIN""#)), a("mlflow.traceTag.foo", .string("bar")), a("mlflow.traceRequestId", .string("tr-spoofed")),
            a("user.id", .string("alice")), a("session.id", .string("sess-1")),
        ])
        s.kind = 2
        s.traceState = "vendor=abc"
        s.events = [OTLPEvent(name: "ev1", time: 1_700_000_001_000_000_000, attributes: [a("es", .string("v")), a("ei", .int(7)), a("earr", .array([.double(1.5)]))])]
        return s
    }()
    static let storedRoot = #"""
        {"trace_id": "CvdlGRbNQ92ESOshHIAxnA==", "span_id": "t61rcWkgMzE=", "parent_span_id": null, "name": "root-op", "start_time_unix_nano": 1700000000123456789, "end_time_unix_nano": 1700000002500000000, "events": [{"name": "ev1", "time_unix_nano": 1700000001000000000, "attributes": {"es": "v", "ei": 7, "earr": [1.5]}}], "status": {"code": "STATUS_CODE_OK", "message": ""}, "attributes": {"s": "\"hello\"", "b": "true", "i": "42", "d": "3.5", "arr": "[\"x\", 2, false]", "kv": "{\"a\": 1, \"n\": \"z\"}", "by": "\"b'\\\\x00\\\\x01\\\\xff'\"", "empty": "null", "jsonstr": "{\"k\": [1, 2]}", "numstr": "\"123\"", "mlflow.spanInputs": "{\"question\": \"what?\"}", "mlflow.spanOutputs": "\"the answer\"", "mlflow.spanType": "\"CHAIN\"", "mlflow.traceTag.foo": "\"bar\"", "mlflow.traceRequestId": "\"tr-0af7651916cd43dd8448eb211c80319c\"", "user.id": "\"alice\"", "session.id": "\"sess-1\""}, "links": []}
        """#
    static let grandchild = span("1111111111111111", parent: "00f067aa0ba902b7", name: "grandchild-unset", start: 1_700_000_000_600_000_000,
                                 end: 1_700_000_000_700_000_000)
    static let storedGrandchild = #"""
        {"trace_id": "CvdlGRbNQ92ESOshHIAxnA==", "span_id": "ERERERERERE=", "parent_span_id": "APBnqgupArc=", "name": "grandchild-unset", "start_time_unix_nano": 1700000000600000000, "end_time_unix_nano": 1700000000700000000, "events": [], "status": {"code": "STATUS_CODE_UNSET", "message": ""}, "attributes": {"mlflow.traceRequestId": "\"tr-0af7651916cd43dd8448eb211c80319c\""}, "links": []}
        """#

    @Test func convertedAsMLflowStoresThem() throws {
        let resource = [a("service.name", .string("my-svc"))]
        let root = try ConvertedSpan(Self.root, resource: resource)
        #expect(root.stored.content == Self.storedRoot)
        #expect(root.stored.traceID == Self.traceID && root.stored.spanID == "b7ad6b7169203331" && root.stored.parentSpanID == nil)
        #expect(root.stored.type == #""CHAIN""# && root.stored.status == "OK" && root.isRoot)
        let grand = try ConvertedSpan(Self.grandchild, resource: resource)
        #expect(grand.stored.content == Self.storedGrandchild && grand.stored.status == "UNSET" && grand.stored.parentSpanID == "00f067aa0ba902b7")
        // A known service's name goes onto root spans; short ids are zero-padded; an all-zero parent is none.
        var short = Self.span("0102", parent: "0000000000000000", name: "s", start: 1, end: 2, trace: [0x0a, 0xbc])
        short.links = [{ var l = OTLPLink(); l.traceID = [1]; l.spanID = [2]; l.attributes = [a("b", .bytes([0, 255]))]; return l }()]
        let c = try ConvertedSpan(short, resource: [a("service.name", .string("claude-code"))])
        #expect(c.stored.traceID == "tr-00000000000000000000000000000abc" && c.stored.spanID == "0000000000000102" && c.isRoot)
        #expect(c.attribute("service.name") == #""claude-code""#)
        #expect(c.stored.content.contains(#""links": [{"trace_id": "tr-00000000000000000000000000000001", "span_id": "0000000000000002", "attributes": {"b": "AP8="}}]"#))
        // An imported span (MLflow's stored dict read back) is the same row, its content the same text.
        // (The root's type was sent as the JSON of a string, `"CHAIN"`: its column keeps the quotes, its content one layer.)
        for converted in [root, grand, c] {
            var expected = converted.stored
            if expected.type == #""CHAIN""# { expected.type = "CHAIN" }
            #expect(StoredSpan(traceID: converted.stored.traceID, dict: try JSONParser.parse(Array(converted.stored.content.utf8))) == expected)
        }
        // Ids MLflow cannot convert or log.
        #expect(throws: SpanConversionError(failedToLog: false)) { try ConvertedSpan(Self.span("01", name: "x", start: 1, end: 2, trace: []), resource: []) }
        #expect(throws: SpanConversionError(failedToLog: true)) {
            try ConvertedSpan(Self.span("010203040506070809", name: "x", start: 1, end: 2), resource: [])
        }
        #expect(throws: SpanConversionError(failedToLog: true)) { try ConvertedSpan(Self.span("01", name: "x", start: UInt64.max, end: 2), resource: []) }
    }

    /// The stored form of a span's JSON: any text comes back the same; MLflow's span dicts shrink several times
    /// against the fixed dictionary; damaged bytes are refused naming the row, never read as another text.
    @Test func contentIsStoredCompressed() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}\"\\:, abcxyz0189éü✓🙂\n\t\u{0}".unicodeScalars)
        for n in [0, 1, 2, 10, 100, 1000, 20_000] {
            let text = String(String.UnicodeScalarView((0..<n).map { _ in alphabet.randomElement(using: &rng)! }))
            #expect(try SpanContentCodec.decode(SpanContentCodec.encode(text), where: "t") == text)
        }
        let stored = SpanContentCodec.encode(Self.storedRoot), grand = SpanContentCodec.encode(Self.storedGrandchild)
        #expect(stored.first == 1 && stored.count * 2 < Self.storedRoot.utf8.count, "\(stored.count) of \(Self.storedRoot.utf8.count)")
        #expect(grand.first == 1 && grand.count * 2 < Self.storedGrandchild.utf8.count, "\(grand.count) of \(Self.storedGrandchild.utf8.count)")
        #expect(SpanContentCodec.encode("x") == [0, UInt8(ascii: "x")])  // not worth a frame
        for bad: [UInt8] in [[], [2, 1], [0, 0xFF], [1], [1, 0x28, 0xB5, 0x2F, 0xFD], Array(stored.dropLast(3)), [1] + Array(stored.dropFirst(2))] {
            #expect(throws: SpanContentCodec.Corrupt.self) { try SpanContentCodec.decode(bad, where: "spans (t, s)") }
        }
    }

    @Test func previewsAsMLflowMakesThem() {
        let chat = #"{"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "last"}]}]}"#
        #expect(TracePreview.previews(inputs: chat, outputs: #"{"choices": [{"message": {"role": "assistant", "content": "reply"}}]}"#) == ("last", "reply"))
        #expect(TracePreview.previews(inputs: #"{"input": [{"role": "user", "content": "resp api"}]}"#, outputs: #""plain""#) == ("resp api", #""plain""#))
        #expect(TracePreview.previews(inputs: #"{"request": {"input": [{"role": "user", "content": "agent"}]}}"#, outputs: nil) == ("agent", nil))
        #expect(TracePreview.previews(inputs: #"{"messages": [{"role": "user", "content": ""}]}"#, outputs: "5") == (#"{"messages": [{"role": "user", "content": ""}]}"#, "5"))
        // A text part whose text is a number: MLflow's preview fails, and the request's failure leaves both unset.
        #expect(TracePreview.previews(inputs: #"{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}"#, outputs: "x") == (nil, nil))
        let long = String(repeating: "é", count: 1001)
        #expect(TracePreview.previews(inputs: long, outputs: nil).request == String(repeating: "é", count: 997) + "...")
    }

    @Test(arguments: Backend.all) func tracesMadeAndCompletedFromSpans(_ backend: Backend) throws {
        let f = try Fixture("spans", backend: backend)
        let s = f.service
        let resource = [a("service.name", .string("svc")), a("telemetry.sdk.name", .string("otel")), a("mlflow.x", .string("no")), a("n", .int(3))]
        // A child first: the trace is made in progress, its times from the child.
        let child = Self.span("00f067aa0ba902b7", parent: "b7ad6b7169203331", name: "child", start: 1_700_000_000_500_000_000,
                              end: 1_700_000_001_500_000_000, status: 2, message: "boom", attributes: [a("user.id", .string("bob"))])
        #expect(try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: resource, spans: [child])]) == 1)
        var t = try s.traceInfo(id: Self.traceID)
        #expect(t.state == .inProgress && t.requestTime == 1_700_000_000_500 && t.executionDuration == 1000 && t.requestPreview == nil)
        #expect(t.tag(TraceKeys.spansLocation) == "TRACKING_STORE" && t.tag(TraceKeys.artifactLocation) == "mlflow-artifacts:/0/traces/\(Self.traceID)/artifacts")
        #expect(t.tag("service.name") == "svc" && t.tag("n") == "3" && t.tag("telemetry.sdk.name") == nil && t.tag("mlflow.x") == nil)
        #expect(t.metadata(TraceKeys.user) == "bob")
        // The root: earlier and later, an error; the trace takes its state, widens, gets previews, tags and a session.
        var root = Self.root
        root.statusCode = 2
        root.attributes.append(a("mlflow.traceTag.mlflow.traceName", .string("named")))
        try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: resource, spans: [root, Self.grandchild])])
        t = try s.traceInfo(id: Self.traceID)
        #expect(t.state == .error && t.requestTime == 1_700_000_000_123 && t.executionDuration == 2377)
        #expect(t.requestPreview == #"{"question": "what?"}"# && t.responsePreview == #""the answer""#)
        #expect(t.tag("foo") == "bar" && t.tag(TraceKeys.traceName) == "named")
        #expect(t.metadata(TraceKeys.user) == "bob" && t.metadata(TraceKeys.session) == "sess-1")  // the first user stays
        // The root again, OK and renamed: its row is replaced, the trace keeps its state.
        root.statusCode = 1
        root.name = "renamed"
        try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [root])])
        #expect(try s.traceInfo(id: Self.traceID).state == .error)
        let read = try #require(try s.traceWithSpans(id: Self.traceID))
        #expect(read.spans.map(name) == ["renamed", "child", "grandchild-unset"])  // roots first, then by start
        #expect(try s.keptTraceData(traceID: Self.traceID)?.hasPrefix(#"{"spans":[{"trace_id": "CvdlGRbNQ92ESOshHIAxnA==""#) == true)

        // Searching by span: every span clause holds for one span.
        func found(_ filter: String) throws -> [String] {
            try s.searchTraces(experimentIDs: ["0"], filter: filter, maxResults: nil, orderBy: [], pageToken: nil).items.map(\.traceID)
        }
        #expect(try found("span.name = 'child'") == [Self.traceID] && found("span.name = 'nothing'").isEmpty)
        #expect(try found("span.status = 'ERROR' AND span.name = 'child'") == [Self.traceID])
        #expect(try found("span.status = 'OK' AND span.name = 'child'").isEmpty)  // one span each, never the same
        #expect(try found(#"span.type = '"CHAIN"'"#) == [Self.traceID] && found("span.name IN ('x', 'renamed')") == [Self.traceID])
        #expect(try found("trace.text ILIKE '%WHAT?%'") == [Self.traceID] && found("span.content LIKE '%WHAT?%'").isEmpty)
        #expect(try found("span.attributes.mlflow.spanInputs LIKE '%what%'") == [Self.traceID])
        #expect(try found("span.attributes.`user.id` LIKE '%bob%'") == [Self.traceID])
        #expect(try found("span.attributes.session.id RLIKE 'ess'") == [Self.traceID] && found("span.attributes.session.id RLIKE '^sess-1$'") == [Self.traceID])
        #expect(try found("span.attributes.session.id RLIKE '^ess'").isEmpty && found("span.attributes.session.id RLIKE 'sess$'").isEmpty)
        #expect(try found("span.attributes.session.id = 'sess-1'").isEmpty && found("tags.foo = 'bar' AND span.name = 'child'") == [Self.traceID])
        expectError(.invalidParameterValue, "Invalid span attribute 'kind'. Supported attributes: name, status, type, attributes.<attribute_name>.") {
            _ = try found("span.kind = 'x'")
        }
        expectError(.invalidParameterValue, "span.content comparator '=' not one of") { _ = try found("span.content = 'x'") }
        expectError(.invalidParameterValue, "Span attribute name cannot be empty after 'attributes.'") { _ = try found("span.attributes. = 'x'") }

        // The client's own info makes the trace final: later spans no longer move its times.
        var info = TraceInfo(traceID: Self.traceID, experimentID: "0", requestTime: 1_700_000_000_200, executionDuration: 50, state: .ok)
        info.tags = [KeyValue(key: "team", value: "a")]
        info.metadata = [KeyValue(key: TraceKeys.sizeStats, value: #"{"total_size_bytes": 1740, "num_spans": 4}"#)]
        let final = try s.startTrace(info)
        #expect(final.tag(TraceKeys.spansLocation) == "TRACKING_STORE" && final.state == .ok && final.requestTime == 1_700_000_000_200)
        // The client counted 4 spans and 3 came: incomplete (left out of batch reads) until the fourth comes.
        #expect(try s.traceWithSpans(id: Self.traceID, allowPartial: false) == nil && s.traceWithSpans(id: Self.traceID)?.spans.count == 3)
        #expect(try s.tracesWithSpans(ids: [Self.traceID], experimentIDs: nil).isEmpty)
        let early = Self.span("2222222222222222", parent: "b7ad6b7169203331", name: "early", start: 1_600_000_000_000_000_000, end: 1_800_000_000_000_000_000)
        try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [early])])
        t = try s.traceInfo(id: Self.traceID)
        #expect(t.requestTime == 1_700_000_000_200 && t.executionDuration == 50 && t.state == .ok && t.requestPreview == #"{"question": "what?"}"#)
        #expect(try s.traceWithSpans(id: Self.traceID, allowPartial: false)?.spans.count == 4)
        #expect(try s.tracesWithSpans(ids: [Self.traceID], experimentIDs: nil).count == 1)

        // Several traces in one export; a run linked to those whose root came; batch reads in the order asked.
        let run = try s.createRun(experimentID: "0", userID: "u", runName: "r", startTime: 1).info.runID
        let other: [UInt8] = Array(repeating: 7, count: 16)
        try s.logSpans(experimentID: "0", runID: run, [OTLPResourceSpans(resource: [], spans: [
            Self.span("0101010101010101", name: "solo", start: 1_000_000, end: 3_000_000, trace: other),
            Self.span("0202020202020202", parent: "0303030303030303", name: "orphan", start: 1_000_000, end: 2_000_000, trace: Array(repeating: 8, count: 16)),
        ])])
        let solo = "tr-" + String(repeating: "07", count: 16), orphan = "tr-" + String(repeating: "08", count: 16)
        #expect(try s.traceInfo(id: solo).linkedRuns == [run] && (try s.traceInfo(id: orphan).linkedRuns).isEmpty)
        try s.logSpans(experimentID: "0", runID: "no-such-run", [OTLPResourceSpans(resource: [], spans: [
            Self.span("0909090909090909", name: "x", start: 1, end: 2, trace: Array(repeating: 9, count: 16))])])  // no link, no failure
        // Each once, in the order of its last mention (MLflow's store orders a batch so), unknown ones left out.
        #expect(try s.tracesWithSpans(ids: [orphan, "tr-nope", solo, orphan], experimentIDs: nil).map(\.info.traceID) == [solo, orphan])
        #expect(try s.tracesWithSpans(ids: [orphan, solo], experimentIDs: nil).map(\.info.traceID) == [orphan, solo])
        #expect(try s.tracesWithSpans(ids: [solo], experimentIDs: ["1"]).isEmpty)

        // MLflow's refusals: the session id and trace name limits, unknown experiments; a deleted one takes spans.
        var long = Self.span("0505050505050505", name: "l", start: 1, end: 2, attributes: [a("session.id", .string(String(repeating: "s", count: 251)))],
                             trace: Array(repeating: 5, count: 16))
        expectError(.invalidParameterValue, "'Session ID' exceeds the maximum length of 250 characters") {
            try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [long])])
        }
        long.attributes = [a("mlflow.traceTag.mlflow.traceName", .string(String(repeating: "n", count: 4097)))]
        expectError(.invalidParameterValue, "'Trace name' exceeds the maximum length of 4096 characters") {
            try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [long])])
        }
        #expect(try s.traceExperiment(id: "tr-" + String(repeating: "05", count: 16)) == nil)  // all or nothing
        expectError(.resourceDoesNotExist, "No Experiment with id=42 exists") {
            try s.logSpans(experimentID: "42", runID: nil, [OTLPResourceSpans(resource: [], spans: [Self.root])])
        }
        let gone = try s.createExperiment(name: "gone")
        try s.deleteExperiment(id: gone)
        long.attributes = []
        try s.logSpans(experimentID: gone, runID: nil, [OTLPResourceSpans(resource: [], spans: [long])])
        #expect(try s.traceExperiment(id: "tr-" + String(repeating: "05", count: 16)) == gone)

        // Spans may not write another experiment's trace, nor the tags the server owns; a run of another experiment
        // is not linked; an earlier start with no end keeps the trace's end.
        let otherExperiment = try s.createExperiment(name: "other")
        expectError(.resourceAlreadyExists, "already exists in another experiment") {
            try s.logSpans(experimentID: otherExperiment, runID: nil, [OTLPResourceSpans(resource: [], spans: [Self.grandchild])])
        }
        var owned = Self.span("0a0a0a0a0a0a0a0a", name: "owned", start: 10_000_000_000, end: 20_000_000_000,
                              attributes: [a("mlflow.traceTag.mlflow.trace.spansLocation", .string("X")),
                                           a("mlflow.traceTag.mlflow.artifactLocation", .string("s3://elsewhere"))],
                              trace: Array(repeating: 0x0a, count: 16))
        let foreignRun = try s.createRun(experimentID: otherExperiment, userID: "u", runName: "r", startTime: 1).info.runID
        try s.logSpans(experimentID: "0", runID: foreignRun, [OTLPResourceSpans(resource: [], spans: [owned])])
        let ownedID = "tr-" + String(repeating: "0a", count: 16)
        var o = try s.traceInfo(id: ownedID)
        #expect(o.tag(TraceKeys.spansLocation) == "TRACKING_STORE" && o.tag(TraceKeys.artifactLocation)?.hasPrefix("mlflow-artifacts:/0/") == true)
        #expect(o.linkedRuns.isEmpty && o.requestTime == 10_000 && o.executionDuration == 10_000)
        owned = Self.span("0b0b0b0b0b0b0b0b", parent: "0a0a0a0a0a0a0a0a", name: "open", start: 5_000_000_000, end: 0, trace: owned.traceID)
        try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: [owned])])
        o = try s.traceInfo(id: ownedID)
        #expect(o.requestTime == 5_000 && o.endTime == 20_000)

        // Deleting a trace deletes its spans.
        #expect(try s.deleteTraces(experimentID: "0", maxTimestamp: nil, maxTraces: nil, ids: [Self.traceID]) == 1)
        #expect(try f.service.metadata.spans(traceIDs: [Self.traceID]).isEmpty)
        expectError(.resourceDoesNotExist, "Trace with ID \(Self.traceID) is not found.") { _ = try s.traceWithSpans(id: Self.traceID) }
    }

    /// Many exports at once — two servers on one PostgreSQL database, or one SQLite store — each sending spans of the
    /// same traces in its own order (roots, children, a trace's first batch, or a span sent again): none fails and
    /// none is lost, every trace made once, with its earliest start, latest end and its root's state.
    @Test(arguments: Backend.all) func concurrentExportsOfTheSameTraces(_ backend: Backend) throws {
        let f = try Fixture("spc", backend: backend)
        let servers = backend == .postgres ? [f.service, try f.secondServer()] : [f.service]
        let traces = 6, children = 8, senders = 8
        @Sendable func span(_ t: Int, _ c: Int) -> OTLPSpan {  // c == 0: the root (an error in odd traces)
            Self.span(String(format: "%016x", t * 100 + c + 1), parent: c == 0 ? nil : String(format: "%016x", t * 100 + 1), name: "s\(c)",
                      start: UInt64(1_700_000_000_000_000_000 + c * 1_000_000), end: UInt64(1_700_000_001_000_000_000 + c * 1_000_000),
                      status: c == 0 && t % 2 == 1 ? 2 : 1, trace: Array(repeating: UInt8(t + 1), count: 16))
        }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: senders) { i in
            var rng = SystemRandomNumberGenerator()
            let order = (0..<traces).flatMap { t in (0...children).map { (t, $0) } }.shuffled(using: &rng)
            for chunk in order.chunks(of: 1 + i % 4) {  // exports of 1 to 4 spans, of one or several traces
                do {
                    try servers[i % servers.count].logSpans(experimentID: "0", runID: nil,
                                                          [OTLPResourceSpans(resource: [a("sender", .int(Int64(i)))], spans: chunk.map(span))])
                } catch { failures.withLock { $0.append("\(i): \(error)") } }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let ids = (0..<traces).map { "tr-" + String(repeating: String(format: "%02x", $0 + 1), count: 16) }
        let read = try servers.last!.tracesWithSpans(ids: ids, experimentIDs: nil)
        #expect(read.count == traces)
        for (i, t) in read.enumerated() {
            #expect(t.spans.count == children + 1 && t.info.requestTime == 1_700_000_000_000 && t.info.executionDuration == 1008)
            #expect(t.info.state == (i % 2 == 1 ? .error : .ok) && t.info.tag(TraceKeys.spansLocation) == "TRACKING_STORE")
        }
    }
}
