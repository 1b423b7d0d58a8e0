/// What each convention reads from a span's attributes, as MLflow's translators read it. A method throws where
/// Python raises (a kind that is a list or an object looked up in a dict): MLflow then refuses the export.
extension SpanConvention {
    /// The span type this convention gives the span, if any.
    func spanType(_ a: SpanAttributes) throws -> String? {
        switch self {
        case .claudeCode: return claudeKind(a).flatMap { kinds[$0] }
        case .geminiCLI: return isGeminiCLI(a) ? try mappedKind(a) : nil
        case .voltAgent:
            for key in ["span.type", "entity.type"] {
                guard let kind = a[key]?.jsonLoaded, kind.pythonTruthy else { continue }
                if kind.isUnhashable { throw SpanConversionError(failedToLog: true) }
                if case .string(let s) = kind, let type = kinds.exact(s) { return type }
            }
            return nil
        case .liveKit:
            if a.contains("gen_ai.request.model") { return "LLM" }
            if let op = a["gen_ai.operation.name"], op.pythonTruthy, case .string(let s) = op.jsonLoaded,
               let type = kinds.exact(s.lowercased()) {
                return type
            }
            for key in a.keys {
                func isOneOf(_ names: String...) -> Bool { names.contains { ExactKey.sameBytes(key, $0) } }
                if isOneOf("lk.retry_count") { return "LLM" }
                if key.startsWithBytes("lk.function_tool") { return "TOOL" }
                if isOneOf("lk.agent_name", "lk.instructions", "lk.generation_id") { return "AGENT" }
                if key.startsWithBytes("lk.tts") || isOneOf("lk.input_text") { return "UNKNOWN" }
                if isOneOf("lk.user_transcript", "lk.transcript_confidence", "lk.transcription_delay") { return "UNKNOWN" }
            }
            return nil
        default: return try mappedKind(a)
        }
    }

    /// The base translator's rule: the kind attribute (its JSON decoded) looked up in ``kinds``.
    private func mappedKind(_ a: SpanAttributes) throws -> String? {
        guard let key = kindKey, let raw = a[key], raw.pythonTruthy else { return nil }
        let kind = raw.jsonLoaded
        if kind.isUnhashable { throw SpanConversionError(failedToLog: true) }
        guard case .string(let s) = kind else { return nil }
        return kinds.exact(s)
    }

    /// Whether the span is Gemini CLI's (`gen_ai.agent.name` = `gemini-cli`).
    func isGeminiCLI(_ a: SpanAttributes) -> Bool { a["gen_ai.agent.name"]?.jsonLoaded.isString("gemini-cli") ?? false }

    /// Claude Code's span kind (`claude_code.interaction`, `.llm_request` or `.tool`; the prefix may be left out).
    func claudeKind(_ a: SpanAttributes) -> String? {
        guard case .string(let s)? = a["span.type"]?.jsonLoaded else { return nil }
        let kind = s.startsWithBytes("claude_code.") ? s : "claude_code." + s
        return kinds.exact(kind) != nil ? kind : nil
    }

    /// The text of a Claude Code content attribute unless it is empty or `<REDACTED>`.
    private func claudeContent(_ a: SpanAttributes, _ key: String) -> JSONValue? {
        guard let v = a.checked(key), !v.jsonLoaded.isString("<REDACTED>") else { return nil }
        return v
    }

    /// The span's inputs (before the events are read), if this convention finds any. Vercel AI's chat spans also
    /// get their message format set, bare, as MLflow sets it.
    func inputs(_ a: inout SpanAttributes) throws -> JSONValue? {
        switch self {
        case .geminiCLI:
            guard isGeminiCLI(a), let v = a.firstChecked(inputKeys) else { return nil }
            let decoded = v.jsonLoaded
            if case .object = decoded, decoded.pythonMember("contents") != nil { return v }
            var items = decoded
            if case .string(let op)? = a[kindKey!], ExactKey.sameBytes(op, "system_prompt"), case .array(let list) = decoded {  // as MLflow: the raw text
                items = .array(list.map { item in
                    guard case .object(let m) = item, item.pythonMember("role")?.isString("user") == true else { return item }
                    return .object(pythonDict(m + [("role", .string("system"))]))
                })
            }
            switch items {
            case .array, .string: return .string(JSONValue.object([("contents", items)]).pythonDumps())
            default: return v
            }
        case .claudeCode:
            switch claudeKind(a) {
            case "claude_code.interaction": return claudeContent(a, "user_prompt").flatMap { $0.pythonTruthy ? $0 : nil } ?? claudeContent(a, "new_context")
            case "claude_code.llm_request": return claudeContent(a, "new_context")
            case "claude_code.tool":
                if let input = claudeContent(a, "tool_input"), input.pythonTruthy { return input }
                let details = ["full_command", "file_path", "skill_name", "subagent_type"].compactMap { key in
                    claudeContent(a, key).flatMap { $0.pythonTruthy ? (key, $0.jsonLoaded) : nil }
                }
                return details.isEmpty ? nil : .string(JSONValue.object(details).pythonDumps())
            default: return nil
            }
        case .traceloop:
            return a.firstChecked(inputKeys) ?? a.firstMatching(.prompt) ?? a.firstMatching(.toolCallArguments)
        case .vercelAI:
            guard isVercelChat(a) else { return a.firstChecked(inputKeys) }
            var inputs = vercelUnpacked(a, prefix: "ai.prompt.")
            if let i = inputs.lastIndex(where: { ExactKey.sameBytes($0.0, "tools") }) {
                let tools: [JSONValue]
                switch inputs[i].1 {
                case .array(let items): tools = items
                case .string(let s): tools = s.unicodeScalars.map { .string(String($0)) }  // Python iterates code points
                case .object(let m): tools = pythonDict(m).map { .string($0.0) }
                default: throw SpanConversionError(failedToLog: true)  // Python cannot iterate it
                }
                inputs[i].1 = .array(tools.map { Self.safeLoad($0) })
            }
            a[SpanTranslation.messageFormatKey] = .string("vercel_ai")
            return inputs.isEmpty ? nil : .string(JSONValue.object(inputs).pythonDumps())
        default: return a.firstChecked(inputKeys)
        }
    }

    /// The span's outputs (before the events are read), if this convention finds any.
    func outputs(_ a: SpanAttributes) -> JSONValue? {
        switch self {
        case .geminiCLI:
            guard isGeminiCLI(a), let v = a.firstChecked(outputKeys) else { return nil }
            let decoded = v.jsonLoaded
            if case .object = decoded, decoded.pythonMember("candidates") != nil { return v }
            guard case .array(let items) = decoded else { return v }
            let parts = items.flatMap { item -> [JSONValue] in
                if case .array(let p)? = item.pythonMember("parts") { return p }
                return []
            }
            guard !parts.isEmpty else { return v }
            let content = JSONValue.object([("role", .string("model")), ("parts", .array(parts))])
            return .string(JSONValue.object([("candidates", .array([.object([("content", content)])]))]).pythonDumps())
        case .claudeCode:
            switch claudeKind(a) {
            case "claude_code.llm_request": return claudeContent(a, "response.model_output")
            case "claude_code.tool": return claudeContent(a, "new_context")
            default: return nil
            }
        case .traceloop: return a.firstChecked(outputKeys) ?? a.firstMatching(.completion)
        case .vercelAI:
            guard isVercelChat(a) else { return a.firstChecked(outputKeys) }
            let outputs = vercelUnpacked(a, prefix: "ai.response.")
            return outputs.isEmpty ? nil : .string(JSONValue.object(outputs).pythonDumps())
        default: return a.firstChecked(outputKeys)
        }
    }

    /// Inputs from the span's events (Spring AI's prompt event; the GenAI conventions' message events, which MLflow
    /// reads through its LiveKit translator).
    func inputs(events: [JSONValue]) -> JSONValue? {
        switch self {
        case .springAI: return Self.eventValue(events, "gen_ai.content.prompt", "gen_ai.prompt")
        case .liveKit:
            let roles = ["gen_ai.system.message": "system", "gen_ai.user.message": "user", "gen_ai.assistant.message": "assistant"]
            let messages = events.compactMap { e -> JSONValue? in
                guard case .string(let name)? = e.pythonMember("name"), let role = roles.exact(name),
                      let content = e.pythonMember("attributes")?.pythonMember("content"), content.pythonTruthy else { return nil }
                return .object([("role", .string(role)), ("content", content.jsonLoaded)])
            }
            return messages.isEmpty ? nil : .string(JSONValue.array(messages).pythonDumps())
        default: return nil
        }
    }

    /// Outputs from the span's events (Spring AI's completion event, the GenAI conventions' choices, Claude Code's
    /// tool output).
    func outputs(events: [JSONValue], _ a: SpanAttributes) -> JSONValue? {
        switch self {
        case .springAI: return Self.eventValue(events, "gen_ai.content.completion", "gen_ai.completion")
        case .liveKit:
            let messages = events.compactMap { e -> JSONValue? in
                guard e.pythonMember("name")?.isString("gen_ai.choice") == true, let attributes = e.pythonMember("attributes"),
                      let content = attributes.pythonMember("content"), content.pythonTruthy else { return nil }
                let role = attributes.pythonMember("role") ?? .string("assistant")
                return .object([("role", role.jsonLoaded), ("content", content.jsonLoaded)])
            }
            return messages.isEmpty ? nil : .string(JSONValue.array(messages).pythonDumps())
        case .claudeCode:
            guard claudeKind(a) == "claude_code.tool" else { return nil }
            for e in events where e.pythonMember("name")?.isString("tool.output") == true {
                let attributes = e.pythonMember("attributes")
                for key in ["output", "content", "diff"] {
                    guard let value = attributes?.pythonMember(key)?.jsonLoaded, value.pythonTruthy, !value.isString("<REDACTED>") else { continue }
                    return .string(value.pythonDumps(ascii: false))
                }
            }
            return nil
        default: return nil
        }
    }

    /// The first event named `name` with a true `key` attribute: that attribute's value.
    private static func eventValue(_ events: [JSONValue], _ name: String, _ key: String) -> JSONValue? {
        for e in events where e.pythonMember("name")?.isString(name) == true {
            if let v = e.pythonMember("attributes")?.pythonMember(key), v.pythonTruthy { return v }
        }
        return nil
    }

    /// Whether a Vercel AI span is a model call (`ai.generateText.doGenerate`, `ai.streamText.doStream`).
    private func isVercelChat(_ a: SpanAttributes) -> Bool {
        guard let kind = a[kindKey!].map({ Self.safeLoad($0) }), case .string(let s) = kind else { return false }
        return ExactKey.sameBytes(s, "ai.generateText.doGenerate") || ExactKey.sameBytes(s, "ai.streamText.doStream")
    }

    /// The attributes under `prefix`, the prefix cut off and each value decoded.
    private func vercelUnpacked(_ a: SpanAttributes, prefix: String) -> [(String, JSONValue)] {
        a.pairs.filter { $0.0.startsWithBytes(prefix) }.map { ($0.0.droppingBytes(prefix), Self.safeLoad($0.1)) }
    }

    /// Vercel's `_safe_load_json`: a string's JSON decoded, again while the result is a string, at most three times.
    static func safeLoad(_ v: JSONValue, depth: Int = 2) -> JSONValue {
        guard case .string(let s) = v, let parsed = try? JSONParser.parse(Array(s.utf8)) else { return v }
        return depth > 0 ? safeLoad(parsed, depth: depth - 1) : parsed
    }

    /// The message format this convention's spans are shown in, if it recognises the span.
    func messageFormat(_ a: SpanAttributes) -> String? {
        switch self {
        case .geminiCLI: isGeminiCLI(a) ? "gemini" : nil
        case .laminar: a.contains("lmnr.span.type") ? "openai" : nil
        case .voltAgent: a.contains("voltagent.operation_id") || a.contains("voltagent.conversation_id") ? "voltagent" : nil
        case .liveKit: a.keys.contains { $0.startsWithBytes("lk.") } ? "livekit" : nil  // its four detection keys all start so
        default: nil
        }
    }

    /// The model's name (decoded), if this convention names one.
    func model(_ a: SpanAttributes) -> JSONValue? { a.firstChecked(modelKeys)?.jsonLoaded }

    /// The model's provider (decoded), if this convention names one.
    func provider(_ a: SpanAttributes) -> JSONValue? { providerKey.flatMap { a.checked($0) }.map(\.jsonLoaded) }

    /// The tool definitions as stored, if this convention has them.
    func tools(_ a: SpanAttributes) -> JSONValue? { a.firstChecked(toolKeys) }
}

extension Dictionary where Key == String {
    /// The value of a key with exactly these code points (Python's string comparison, not Swift's canonical one).
    func exact(_ key: String) -> Value? {
        guard let v = self[key], let k = index(forKey: key), ExactKey.sameBytes(self[k].key, key) else { return nil }
        return v
    }
}
