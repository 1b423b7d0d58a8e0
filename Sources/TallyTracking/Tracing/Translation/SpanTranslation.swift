import Foundation

/// MLflow's translation of a span from another OpenTelemetry convention (`translate_span_when_storing` and
/// `translate_loaded_span`): what ``SpanConvention``s read, written under MLflow's own attribute keys where the span
/// has none. Keys added are appended in MLflow's order; a key already there keeps its place.
enum SpanTranslation {
    /// `mlflow.spanType`.
    static let spanTypeKey = "mlflow.spanType"
    /// `mlflow.spanInputs`.
    static let inputsKey = "mlflow.spanInputs"
    /// `mlflow.spanOutputs`.
    static let outputsKey = "mlflow.spanOutputs"
    /// `mlflow.chat.tokenUsage`: a span's token counts.
    static let usageKey = "mlflow.chat.tokenUsage"
    /// `mlflow.llm.cost`: a span's cost in US dollars.
    static let costKey = "mlflow.llm.cost"
    /// `mlflow.message.format`: how the UI reads a span's messages.
    static let messageFormatKey = "mlflow.message.format"
    /// `mlflow.chat.tools`: the tools a model was offered.
    static let toolsKey = "mlflow.chat.tools"
    /// `mlflow.llm.model`.
    static let modelKey = "mlflow.llm.model"
    /// `mlflow.llm.provider`.
    static let providerKey = "mlflow.llm.provider"

    /// Translates a span's attributes as MLflow does when it stores the span (`events`: its span dict's events).
    /// Throws ``SpanConversionError`` where MLflow's translation raises.
    static func translate(_ a: inout SpanAttributes, events: [JSONValue], prices: ModelPrices?) throws {
        guard SpanConvention.readsAny(a.keys) else {  // the usual span of MLflow's own client: no convention reads it
            if !a.contains(inputsKey), let v = fromEvents(events, { $0.inputs(events: $1) }) { a[inputsKey] = v }
            if !a.contains(outputsKey), let v = fromEvents(events, { $0.outputs(events: $1, a) }) { a[outputsKey] = v }
            if !a.contains(modelKey), let m = model(a) { a[modelKey] = .string(m.pythonDumps(ascii: false)) }
            price(&a, prices)
            return
        }
        if let type = try spanType(a), untyped(a) { a[spanTypeKey] = .string(JSONValue.string(type).pythonDumps(ascii: false)) }
        if !a.contains(inputsKey), let v = try inputs(&a, events: events), v.pythonTruthy { a[inputsKey] = v }
        if !a.contains(outputsKey), let v = outputs(a, events: events), v.pythonTruthy { a[outputsKey] = v }
        if !a.contains(usageKey), let usage = try SpanUsage.translated(a) { a[usageKey] = .string(usage.pythonDumps(ascii: false)) }
        if !a.contains(messageFormatKey), let f = first(a, { $0.messageFormat($1).map(JSONValue.string) }) {
            a[messageFormatKey] = .string(f.pythonDumps(ascii: false))
        }
        if !a.contains(toolsKey), let v = first(a, { $0.tools($1) }) { a[toolsKey] = v }
        if !a.contains(modelKey), let m = model(a) { a[modelKey] = .string(m.pythonDumps(ascii: false)) }
        if !a.contains(providerKey), let p = first(a, { $0.provider($1) }) { a[providerKey] = .string(p.pythonDumps(ascii: false)) }
        price(&a, prices)
    }

    /// `mlflow.llm.cost` from the span's usage and model, where it has none.
    static func price(_ a: inout SpanAttributes, _ prices: ModelPrices?) {
        guard let prices, !a.contains(costKey), let usage = a[usageKey]?.jsonLoaded, let model = a[modelKey]?.jsonLoaded,
              let cost = prices.cost(model: model, usage: usage, provider: a[providerKey]?.jsonLoaded) else { return }
        a[costKey] = .string(cost.pythonDumps(ascii: false))
    }

    /// The first true value the event conventions read.
    static func fromEvents(_ events: [JSONValue], _ read: (SpanConvention, [JSONValue]) -> JSONValue?) -> JSONValue? {
        guard !events.isEmpty else { return nil }
        for c in SpanConvention.fromEvents {
            if let v = read(c, events), v.pythonTruthy { return v }
        }
        return nil
    }

    /// The first true value a convention reads, in MLflow's order.
    static func first(_ a: SpanAttributes, _ read: (SpanConvention, SpanAttributes) -> JSONValue?) -> JSONValue? {
        for c in SpanConvention.allCases {
            if let v = read(c, a), v.pythonTruthy { return v }
        }
        return nil
    }

    /// Whether the span has no type, or `UNKNOWN` (the only types a translated one replaces).
    static func untyped(_ a: SpanAttributes) -> Bool {
        guard let raw = a[spanTypeKey], raw.pythonTruthy else { return true }
        let current = raw.jsonLoaded
        return current == .null || current.isString("UNKNOWN")
    }

    /// The first convention's span type.
    static func spanType(_ a: SpanAttributes) throws -> String? {
        for c in SpanConvention.allCases {
            if let t = try c.spanType(a), !t.isEmpty { return t }
        }
        return nil
    }

    /// The first convention's inputs from the attributes, else from the events.
    static func inputs(_ a: inout SpanAttributes, events: [JSONValue]) throws -> JSONValue? {
        for c in SpanConvention.allCases {
            if let v = try c.inputs(&a), v.pythonTruthy { return v }
        }
        return fromEvents(events) { $0.inputs(events: $1) }
    }

    /// The first convention's outputs from the attributes, else from the events.
    static func outputs(_ a: SpanAttributes, events: [JSONValue]) -> JSONValue? {
        if let v = first(a, { $0.outputs($1) }) { return v }
        return fromEvents(events) { $0.outputs(events: $1, a) }
    }

    /// The model's name: the first convention's, else a string `model` of the inputs', else of the outputs' object.
    static func model(_ a: SpanAttributes) -> JSONValue? {
        if let m = first(a, { $0.model($1) }) { return m }
        for key in [inputsKey, outputsKey] {
            guard let v = a[key], v.pythonTruthy else { continue }
            var obj = v
            if case .string(let s) = v {
                // Text naming no `model` (nor any escape that could spell it) holds no model: not parsed.
                guard mentionsModel(s), let parsed = try? JSONParser.parse(Array(s.utf8)) else { continue }  // MLflow logs it and goes on
                obj = parsed
            }
            guard case .object = obj else { continue }
            if let model = obj.pythonMember("model"), model.pythonTruthy { return model.text != nil ? model : nil }
        }
        return nil
    }

    /// ``SpanConvention/typeNames`` as they appear in stored JSON (`"name": `), and the start of a LiveKit name.
    static let typingKeys: [[UInt8]] = SpanConvention.typeNames.map { Array("\"\($0)\": ".utf8) } + [Array("\"\(SpanConvention.typePrefix)".utf8)]

    /// Whether a stored span's JSON may be typed on reading (``translateLoaded(_:)``): it names an attribute the
    /// rules read. Most spans do not, and are served without being parsed.
    static func mayTypeOnLoad(_ content: String) -> Bool {
        var content = content
        return content.withUTF8 { bytes in typingKeys.contains { Self.find($0, in: bytes) } }
    }

    /// Whether `key` (at least two bytes) occurs in `bytes`: candidates found by its first two bytes, compared with
    /// `memcmp`.
    private static func find(_ key: [UInt8], in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress, key.count >= 2, key.count <= bytes.count else { return false }
        let second = key[1], last = bytes.count - key.count
        return key.withUnsafeBytes { k in
            var i = 0
            while i <= last {
                if base[i + 1] == second, base[i] == key[0], memcmp(base + i, k.baseAddress!, key.count) == 0 { return true }
                i += 1
            }
            return false
        }
    }

    /// The bytes ``mentionsModel(_:)`` looks for.
    private static let modelMemberBytes = Array(#"model""#.utf8)

    /// Whether JSON text could have a member `model`: it holds `model"` or a `\u` escape.
    static func mentionsModel(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { b in
            guard b.count >= 6 else { return false }
            for i in 0..<(b.count - 1) where b[i] == UInt8(ascii: "\\") && b[i + 1] == UInt8(ascii: "u") { return true }
            return find(modelMemberBytes, in: b)
        }
    }

    /// `translate_loaded_span`: a stored span dict given a type by the conventions when it has none (or `UNKNOWN`);
    /// `true` when the dict changed. A convention that raises changes nothing.
    static func translateLoaded(_ dict: inout JSONValue) -> Bool {
        guard case .object(var members) = dict else { return false }
        var i = members.lastIndex { ExactKey.sameBytes($0.0, "attributes") }
        var a = SpanAttributes(values: [])
        switch i.map({ members[$0].1 }) {
        case nil, .null?: break
        case .object(let stored)?: a = SpanAttributes(values: pythonDict(stored))
        default: return false  // MLflow's lookup fails and is ignored
        }
        guard untyped(a), let type = try? spanType(a) else { return false }
        a[spanTypeKey] = .string(JSONValue.string(type).pythonDumps(ascii: false))
        if let i { members[i].1 = .object(a.pairs) } else {
            members.append(("attributes", .object(a.pairs)))
            i = members.count - 1
        }
        dict = .object(members)
        return true
    }
}
