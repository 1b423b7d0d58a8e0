import Foundation
import Testing
@testable import TallyTracking

/// MLflow's translation of spans from other OpenTelemetry conventions (the byte-for-byte comparison with a real
/// MLflow is `Tests/Interop/test_otel_conventions.py`): Python's number rules the token counts follow, the
/// conventions' rules one by one, the tree-aware sums of usage and cost, a trace's counts across batches on both
/// backends, the prices, the typing of spans stored untyped, and the refusals.
private func a(_ key: String, _ value: OTLPValue) -> OTLPAttribute { OTLPAttribute(key: key, value: value) }

/// The attributes a span of `attributes` is stored with after translation (`prices`: the catalog, if any).
private func translated(_ attributes: [OTLPAttribute], events: [OTLPEvent] = [], prices: ModelPrices? = nil) throws -> [String: String] {
    var s = SpanTests.span("0102030405060708", name: "s", start: 1, end: 2, attributes: attributes)
    s.events = events
    let c = try ConvertedSpan(s, resource: [], prices: prices)
    #expect(!c.translationFailed)
    return Dictionary(c.attributes.pairs.map { ($0.0, $0.1.pythonDumps(ascii: false)) }) { _, b in b }
}

@Suite struct SpanTranslationTests {
    @Test func pythonIntegers() throws {
        #expect(PyNumber.pythonInt(" 26 ") == 26 && PyNumber.pythonInt("-1_000") == -1000 && PyNumber.pythonInt("+7") == 7)
        #expect(PyNumber.pythonInt("٣") == 3)  // any script's decimal digits
        for bad in ["", "1__0", "_1", "1_", "1.0", "1e3", "x", "- 1"] { #expect(PyNumber.pythonInt(bad) == nil, "\(bad)") }
        #expect(PyNumber.decimalInteger("5.000") == 5 && PyNumber.decimalInteger("1e3") == 1000 && PyNumber.decimalInteger("1_0") == 10)
        #expect(PyNumber.decimalInteger("2.5") == nil && PyNumber.decimalInteger("nan") == nil && PyNumber.decimalInteger("1e") == nil)
        #expect(PyNumber.decimalInteger("9.223372036854775e+18") == 9_223_372_036_854_775_000)  // a float's repr, not its exact value
        // Exponents at the edges: no overflow, no hang (a client's text reaches this).
        #expect(PyNumber.decimalInteger("1e-9223372036854775808") == nil && PyNumber.decimalInteger("1.0e-9223372036854775808") == nil)
        #expect(PyNumber.decimalInteger("0e999999999999") == 0 && PyNumber.decimalInteger("5e9223372036854775807") == .max)
        #expect(PyNumber.float(9.223372036854776e18).tokenCount == nil && PyNumber.float(3.0).tokenCount == 3 && PyNumber.bool(true).tokenCount == nil)
        #expect(PyNumber.int(5) + .bool(true) == .int(6) && PyNumber.int(1) + .float(0.5) == .float(1.5))
        #expect(PyNumber.int(.max) + .int(1) == .int(.max))  // held at the bound: never a 64-bit count either way
        #expect(try PyNumber.truncated(-7.9) == -7 && (try PyNumber.truncated(.nan)) == nil)
        #expect(throws: SpanConversionError(failedToLog: true)) { try PyNumber.truncated(.infinity) }
        #expect(SpanConvention.parsedInt(.string("true")) == .bool(true) && SpanConvention.parsedInt(.string(#""26""#)) == .int(26))
        #expect(SpanConvention.parsedInt(.string("5.0")) == nil && SpanConvention.parsedInt(.string(#""1e5""#)) == nil)
    }

    @Test func traceloopPatternsMatchAPrefix() {
        let p = SpanAttributes.Pattern.prompt
        #expect(p.matches("gen_ai.prompt.0.content") && p.matches("gen_ai.prompt.12.content_extra") && p.matches("gen_ai.prompt.٣.content"))
        #expect(!p.matches("gen_ai.prompt..content") && !p.matches("gen_ai.prompt.x.content") && !p.matches("xgen_ai.prompt.0.content"))
        #expect(SpanAttributes.Pattern.toolCallArguments.matches("gen_ai.completion.0.tool_calls.3.arguments"))
    }

    @Test func conventionsOneByOne() throws {
        // OpenInference: kind, inputs and outputs as stored, counts, model and provider; the first convention wins.
        var t = try translated([a("openinference.span.kind", .string("LLM")), a("input.value", .string("q")), a("output.value", .string("")),
                                a("llm.token_count.prompt", .int(3)), a("llm.token_count.completion", .string("4")), a("llm.model_name", .string("m")),
                                a("llm.provider", .string("p")), a("gen_ai.usage.input_tokens", .int(100))])
        #expect(t["mlflow.spanType"] == #""\"LLM\"""# && t["mlflow.spanInputs"] == #""\"q\"""# && t["mlflow.spanOutputs"] == nil)
        #expect(t["mlflow.chat.tokenUsage"] == #""{\"input_tokens\": 3, \"output_tokens\": 4, \"total_tokens\": 7}""#)
        #expect(t["mlflow.llm.model"] == #""\"m\"""# && t["mlflow.llm.provider"] == #""\"p\"""# && t["mlflow.llm.cost"] == nil)
        // A sender's own type stands unless it is UNKNOWN; a sender's own usage stands.
        t = try translated([a("openinference.span.kind", .string("LLM")), a("mlflow.spanType", .string("TOOL")),
                            a("mlflow.chat.tokenUsage", .string(#"{"input_tokens": 1}"#)), a("llm.token_count.prompt", .int(9))])
        #expect(t["mlflow.spanType"] == #""\"TOOL\"""# && t["mlflow.chat.tokenUsage"] == #""{\"input_tokens\": 1}""#)
        t = try translated([a("openinference.span.kind", .string("LLM")), a("mlflow.spanType", .string("UNKNOWN"))])
        #expect(t["mlflow.spanType"] == #""\"LLM\"""#)
        // Many attributes (looked up through an index, not by scanning): the same rules.
        t = try translated((0..<20).map { a("filler.\($0)", .int(Int64($0))) } + [a("openinference.span.kind", .string("TOOL")),
                                                                                 a("input.value", .string("x"))])
        #expect(t["mlflow.spanType"] == #""\"TOOL\"""# && t["mlflow.spanInputs"] == #""\"x\"""# && t["filler.19"] == #""19""#)
        // Claude Code: cache counts added to the input, redacted content skipped, a tool's output from its event.
        t = try translated([a("span.type", .string("llm_request")), a("input_tokens", .int(10)), a("cache_read_tokens", .int(5)),
                            a("output_tokens", .double(2.9)), a("new_context", .string("<REDACTED>"))])
        #expect(t["mlflow.spanType"] == #""\"LLM\"""# && t["mlflow.spanInputs"] == nil)
        #expect(t["mlflow.chat.tokenUsage"] == #""{\"input_tokens\": 15, \"output_tokens\": 2, \"total_tokens\": 17, \"cache_read_input_tokens\": 5}""#)
        t = try translated([a("span.type", .string("claude_code.tool")), a("file_path", .string("x.py"))],
                           events: [OTLPEvent(name: "tool.output", time: 1, attributes: [a("output", .string("<REDACTED>")), a("diff", .string("+1"))])])
        #expect(t["mlflow.spanInputs"] == #""{\"file_path\": \"x.py\"}""# && t["mlflow.spanOutputs"] == #""\"+1\"""#)
        // Gemini CLI wraps messages for its renderer; GenAI counts take the legacy cache key.
        t = try translated([a("gen_ai.agent.name", .string("gemini-cli")), a("gen_ai.operation.name", .string("llm_call")),
                            a("gen_ai.input.messages", .string("hi")), a("gen_ai.usage.input_tokens", .int(1)),
                            a("gen_ai.usage.cache_creation.input_tokens", .int(2))])
        #expect(t["mlflow.spanType"] == #""\"LLM\"""# && t["mlflow.message.format"] == #""\"gemini\"""#)
        #expect(t["mlflow.spanInputs"] == #""{\"contents\": \"hi\"}""#)
        #expect(t["mlflow.chat.tokenUsage"] == #""{\"input_tokens\": 1, \"cache_creation_input_tokens\": 2}""#)
        // Vercel AI's chat span: its prompt unpacked, its message format set bare (over a sender's).
        t = try translated([a("ai.operationId", .string("ai.streamText.doStream")), a("ai.prompt.messages", .string(#"[{"role": "user"}]"#)),
                            a("mlflow.message.format", .string("x"))])
        #expect(t["mlflow.message.format"] == #""vercel_ai""# && t["mlflow.spanInputs"] == #""{\"messages\": [{\"role\": \"user\"}]}""#)
        // LiveKit: a model request is an LLM span; GenAI message events become its inputs.
        t = try translated([a("gen_ai.request.model", .string("m")), a("lk.room_name", .string("r"))],
                           events: [OTLPEvent(name: "gen_ai.user.message", time: 1, attributes: [a("content", .string("héllo"))])])
        #expect(t["mlflow.spanType"] == #""\"LLM\"""# && t["mlflow.message.format"] == #""\"livekit\"""#)
        #expect(t["mlflow.spanInputs"] == #""[{\"role\": \"user\", \"content\": \"h\\u00e9llo\"}]""#)
        // The model from the inputs' object when no convention names one; none when it is not a string.
        t = try translated([a("mlflow.spanInputs", .string(#"{"model": "gpt-4o"}"#))])
        #expect(t["mlflow.llm.model"] == #""\"gpt-4o\"""#)
        t = try translated([a("mlflow.spanInputs", .string(#"{"mod\u0065l": "m2"}"#))])  // an escape spelling the key
        #expect(t["mlflow.llm.model"] == #""\"m2\"""#)
        t = try translated([a("mlflow.spanInputs", .string(#"{"model": 4}"#)), a("mlflow.spanOutputs", .string(#"{"model": "b"}"#))])
        #expect(t["mlflow.llm.model"] == nil)
    }

    @Test func whereMLflowRaisesTheExportIsRefused() throws {
        for attributes in [[a("openinference.span.kind", .array([.string("LLM")]))], [a("span.type", .map([a("k", .int(1))]))],
                           [a("ai.operationId", .string("ai.generateText.doGenerate")), a("ai.prompt.tools", .int(1))],
                           [a("span.type", .string("llm_request")), a("input_tokens", .double(.infinity))]] {
            let c = try ConvertedSpan(SpanTests.span("0102030405060708", name: "s", start: 1, end: 2, attributes: attributes), resource: [])
            #expect(c.translationFailed, "\(attributes)")
        }
    }

    @Test func sumsSkipWhatAnAncestorCounted() throws {
        func node(_ id: String, _ parent: String?, _ usage: String?) -> SpanUsage.Node {
            SpanUsage.Node(spanID: id, parentID: parent, value: usage.map(JSONValue.string))
        }
        let nodes = [node("c", "p", #"{"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}"#),
                     node("p", nil, #"{"input_tokens": 5, "output_tokens": 5, "total_tokens": 10, "cache_read_input_tokens": 3}"#),
                     node("g", "c", #"{"input_tokens": 100}"#), node("o", "missing", #"{"input_tokens": 2, "output_tokens": true}"#),
                     node("n", nil, nil), node("self", "self", #"{"input_tokens": 1000}"#)]  // its own parent: never reached, as in MLflow
        let sum = try #require(try SpanUsage.tokens(nodes))
        #expect(sum["input_tokens"] == .int(7) && sum["output_tokens"] == .int(6) && sum["total_tokens"] == .int(10))
        #expect(sum["cache_read_input_tokens"] == .int(3) && sum["cache_creation_input_tokens"] == nil)
        #expect(try SpanUsage.tokens([node("n", nil, nil), node("x", nil, "[1]")]) == nil)
        #expect(throws: SpanConversionError(failedToLog: true)) { try SpanUsage.tokens([node("x", nil, #"{"input_tokens": "5"}"#)]) }
        #expect(SpanUsage.tokenText(sum, over: #"{"cache_creation_input_tokens": 4, "input_tokens": 1}"#)
                == #"{"input_tokens": 7, "output_tokens": 6, "total_tokens": 10, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 4}"#)
        // A client's counts as MLflow's columns keep them: named ones set or cleared, the rest kept, in column order.
        #expect(SpanUsage.startTraceText(TraceKeys.tokenUsage, given: #"{"total_tokens": "12", "input_tokens": 2.0, "x": 1}"#, existing: nil)
                == #"{"input_tokens": 2, "total_tokens": 12}"#)
        #expect(SpanUsage.startTraceText(TraceKeys.tokenUsage, given: #"{"input_tokens": "no"}"#, existing: #"{"input_tokens": 3}"#) == nil)
        #expect(SpanUsage.startTraceText(TraceKeys.cost, given: #"{"total_cost": "0.5"}"#, existing: #"{"input_cost": 1}"#)
                == #"{"input_cost": 1.0, "total_cost": 0.5}"#)
    }

    @Test func pricesFromACatalogDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"models": {"m": {"pricing": {"input_per_million_tokens": 2, "output_per_million_tokens": 8, "cache_read_per_million_tokens": 1}}}}"#.utf8)
            .write(to: dir.appendingPathComponent("acme.json"))
        try Data(#"{"models": {"m": {"mode": "chat"}, "z": {"pricing": {"output_per_million_tokens": 1}}}}"#.utf8).write(to: dir.appendingPathComponent("aaa.json"))
        let prices = try ModelPrices(directory: dir)
        let t = try translated([a("gen_ai.request.model", .string("acme/m")), a("gen_ai.usage.input_tokens", .int(1_000_000)),
                                a("gen_ai.usage.output_tokens", .int(500_000)), a("gen_ai.usage.cache_read.input_tokens", .int(200_000))], prices: prices)
        // 800,000 regular at 2/M, 200,000 cached at 1/M, 500,000 out at 8/M (Python's float sums); found by scanning, the unpriced `aaa` entry skipped.
        #expect(t["mlflow.llm.cost"] == #""{\"input_cost\": 1.7999999999999998, \"output_cost\": 4.0, \"total_cost\": 5.8}""#)
        #expect(prices.cost(model: .string("gateway:/m"), usage: .object([("input_tokens", .number("5"))]), provider: nil) == nil)
        #expect(prices.cost(model: .string("m/"), usage: .object([("input_tokens", .number("5"))]), provider: nil) == nil)  // `split("/", 1)[-1]` is ""
        // A cache count Python finds false is 0 (`or 0`); a true one that is not a number prices nothing.
        #expect(prices.cost(model: .string("m"), usage: .object([("input_tokens", .number("1000000")), ("cache_read_input_tokens", .string(""))]),
                            provider: nil) == .object([("input_cost", .number("2.0")), ("output_cost", .number("0.0")), ("total_cost", .number("2.0"))]))
        #expect(prices.cost(model: .string("m"), usage: .object([("input_tokens", .number("5")), ("cache_read_input_tokens", .string("x"))]),
                            provider: nil) == nil)
        #expect(prices.cost(model: .string("m"), usage: .object([("input_tokens", .string("5"))]), provider: nil) == nil)
        try Data("[]".utf8).write(to: dir.appendingPathComponent("bad.json"))
        #expect(throws: (any Error).self) { try ModelPrices(directory: dir) }
    }

    @Test(arguments: Backend.all) func traceSumsAcrossBatches(_ backend: Backend) throws {
        let f = try Fixture("span-sums", backend: backend)
        let s = f.service
        let usage = { (i: Int, o: Int) in a("mlflow.chat.tokenUsage", .string(#"{"input_tokens": \#(i), "output_tokens": \#(o), "total_tokens": \#(i + o)}"#)) }
        func send(_ spans: [OTLPSpan]) throws { try s.logSpans(experimentID: "0", runID: nil, [OTLPResourceSpans(resource: [], spans: spans)]) }
        // Children first, then their parent with the rollup: the trace's sum is the parent's alone.
        try send([SpanTests.span("0000000000000002", parent: "0000000000000001", name: "a", start: 1_000_000, end: 2_000_000, attributes: [usage(2, 1)]),
                  SpanTests.span("0000000000000003", parent: "0000000000000001", name: "b", start: 1_000_000, end: 2_000_000, attributes: [usage(3, 1)])])
        #expect(try s.traceInfo(id: SpanTests.traceID).metadata(TraceKeys.tokenUsage) == #"{"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}"#)
        try send([SpanTests.span("0000000000000001", name: "root", start: 1_000_000, end: 3_000_000, attributes: [usage(6, 2)])])
        #expect(try s.traceInfo(id: SpanTests.traceID).metadata(TraceKeys.tokenUsage) == #"{"input_tokens": 6, "output_tokens": 2, "total_tokens": 8}"#)
        // A client's finalised counts stand against later spans.
        var info = try s.traceInfo(id: SpanTests.traceID)
        info.metadata = [KeyValue(key: TraceKeys.tokenUsage, value: #"{"total_tokens": 99}"#)]
        _ = try s.startTrace(info)
        #expect(try s.traceInfo(id: SpanTests.traceID).metadata(TraceKeys.tokenUsage) == #"{"input_tokens": 6, "output_tokens": 2, "total_tokens": 99}"#)
        try send([SpanTests.span("0000000000000004", parent: "0000000000000009", name: "late", start: 1_000_000, end: 2_000_000, attributes: [usage(50, 50)])])
        #expect(try s.traceInfo(id: SpanTests.traceID).metadata(TraceKeys.tokenUsage) == #"{"input_tokens": 6, "output_tokens": 2, "total_tokens": 99}"#)
        // A span whose usage is not numbers fails the export, and nothing of it is kept.
        #expect(throws: OTLPRefusal(status: 422, detail: "Failed to log OpenTelemetry spans")) {
            try send([SpanTests.span("0000000000000005", name: "bad", start: 1, end: 2, attributes: [a("mlflow.chat.tokenUsage", .string(#"{"input_tokens": null}"#))],
                                     trace: SpanTests.bytes("11111111111111111111111111111111"))])
        }
        #expect(try s.metadata.traces(ids: ["tr-11111111111111111111111111111111"]).isEmpty)
    }

    @Test func searchesOnSumsAsMLflowAllows() throws {
        let f = try Fixture("span-search", backend: .sqlite)
        let usage = "metadata.`mlflow.trace.tokenUsage`"
        _ = try f.service.searchTraces(experimentIDs: ["0"], filter: "\(usage) IS NOT NULL", maxResults: nil, orderBy: [], pageToken: nil)
        #expect(throws: TrackingError.invalid("Comparator 'LIKE' is not supported for reserved metadata 'mlflow.trace.tokenUsage'. "
                                              + "Only '=', '!=', 'IS NULL', and 'IS NOT NULL' are supported.")) {
            try f.service.searchTraces(experimentIDs: ["0"], filter: "\(usage) LIKE '%1%'", maxResults: nil, orderBy: [], pageToken: nil)
        }
        #expect(throws: TrackingError.invalid("Ordering by reserved metadata 'mlflow.trace.cost' is not supported because it is represented by multiple columns.")) {
            try f.service.searchTraces(experimentIDs: ["0"], filter: nil, maxResults: nil, orderBy: ["metadata.`mlflow.trace.cost` DESC"], pageToken: nil)
        }
    }

    @Test(arguments: Backend.all) func spansStoredUntypedAreTypedOnReading(_ backend: Backend) throws {
        let f = try Fixture("span-load", backend: backend)
        let s = f.service
        _ = try s.startTrace(TraceInfo(traceID: SpanTests.traceID, experimentID: "0", requestTime: 1, state: .ok))
        let untyped = #"{"span_id": "AQIDBAUGBwg=", "name": "imported", "attributes": {"openinference.span.kind": "\"TOOL\"", "x": "1"}}"#
        let typed = #"{"span_id": "AQIDBAUGBwk=", "name": "plain", "attributes": {"x": "\"é\""}}"#
        let spans = try [untyped, typed].map { try #require(StoredSpan(traceID: SpanTests.traceID, dict: try JSONParser.parse(Array($0.utf8)))) }
        #expect(try s.metadata.insertSpans(traceID: SpanTests.traceID, spans))
        let read = try #require(try s.traceWithSpans(id: SpanTests.traceID)).spans
        #expect(read.map { $0["attributes"]?["mlflow.spanType"] } == [.string(#""TOOL""#), nil])
        // The UI's read writes the typed span again, compactly, as MLflow's json_for_export; the other as stored.
        let data = try #require(try s.keptTraceData(traceID: SpanTests.traceID))
        #expect(data.contains(#""attributes":{"openinference.span.kind":"\"TOOL\"","x":"1","mlflow.spanType":"\"TOOL\""}"#))
        #expect(data.contains(#""attributes": {"x": "\"é\""}"#))
    }
}
