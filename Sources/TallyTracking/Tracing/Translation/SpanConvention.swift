/// The OpenTelemetry conventions MLflow's server reads GenAI spans in (its twelve translators, in the order it asks
/// them: the first that answers wins). Each adds what MLflow's UI and trace info need — a span type, inputs and
/// outputs, token usage, a chat message format, tool definitions, a model and its provider — to spans sent by other
/// instrumentations: `docs/otlp.md`, "Other conventions".
enum SpanConvention: CaseIterable {
    /// Arize's OpenInference (`openinference.span.kind`, `llm.token_count.*`).
    case openInference
    /// Gemini CLI (`gen_ai.agent.name` = `gemini-cli`): the GenAI conventions with its own operation names.
    case geminiCLI
    /// Claude Code and the Claude Agent SDK (`span.type` = `claude_code.…`).
    case claudeCode
    /// OpenTelemetry's GenAI semantic conventions (`gen_ai.*`).
    case genAI
    /// Spring AI: the GenAI conventions, prompt and completion in events.
    case springAI
    /// Traceloop's OpenLLMetry (`traceloop.*`, `gen_ai.prompt.N.content`).
    case traceloop
    /// Google's Agent Development Kit (`gcp.vertex.agent.*`).
    case googleADK
    /// Vercel's AI SDK (`ai.*`).
    case vercelAI
    /// VoltAgent (`agent.messages`, `voltagent.*`).
    case voltAgent
    /// LiveKit Agents (`lk.*`).
    case liveKit
    /// Laminar (`lmnr.*`).
    case laminar
    /// Langfuse (`langfuse.observation.*`).
    case langfuse

    /// The conventions that read inputs and outputs from a span's events, in MLflow's order.
    static let fromEvents: [SpanConvention] = [.springAI, .liveKit, .claudeCode]

    /// The attribute naming the span's kind.
    var kindKey: String? {
        switch self {
        case .openInference: "openinference.span.kind"
        case .geminiCLI, .genAI, .springAI: "gen_ai.operation.name"
        case .claudeCode: "span.type"
        case .traceloop: "traceloop.span.kind"
        case .vercelAI: "ai.operationId"
        case .laminar: "lmnr.span.type"
        case .langfuse: "langfuse.observation.type"
        case .googleADK, .voltAgent, .liveKit: nil
        }
    }

    /// The MLflow span type of each kind (built once per convention).
    var kinds: [String: String] { Self.kindTables[self]! }

    private static let kindTables = Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.kindTable) })

    /// The MLflow span type of each kind.
    private var kindTable: [String: String] {
        switch self {
        case .openInference:
            ["TOOL": "TOOL", "CHAIN": "CHAIN", "LLM": "LLM", "RETRIEVER": "RETRIEVER", "EMBEDDING": "EMBEDDING", "AGENT": "AGENT",
             "RERANKER": "RERANKER", "UNKNOWN": "UNKNOWN", "GUARDRAIL": "GUARDRAIL", "EVALUATOR": "EVALUATOR"]
        case .geminiCLI: ["llm_call": "LLM", "tool_call": "TOOL", "agent_call": "AGENT"]
        case .claudeCode: ["claude_code.interaction": "AGENT", "claude_code.llm_request": "LLM", "claude_code.tool": "TOOL"]
        case .genAI, .liveKit:
            ["chat": "CHAT_MODEL", "create_agent": "AGENT", "embeddings": "EMBEDDING", "execute_tool": "TOOL", "generate_content": "LLM",
             "invoke_agent": "AGENT", "text_completion": "LLM", "response": "LLM"]
        case .springAI: ["chat": "CHAT_MODEL", "embeddings": "EMBEDDING"]
        case .traceloop: ["workflow": "WORKFLOW", "task": "TASK", "agent": "AGENT", "tool": "TOOL", "unknown": "UNKNOWN"]
        case .vercelAI:
            ["ai.generateText": "LLM", "ai.generateText.doGenerate": "LLM", "ai.toolCall": "TOOL", "ai.streamText": "LLM",
             "ai.streamText.doStream": "LLM", "ai.generateObject": "LLM", "ai.generateObject.doGenerate": "LLM", "ai.streamObject": "LLM",
             "ai.streamObject.doStream": "LLM", "ai.embed": "EMBEDDING", "ai.embed.doEmbed": "EMBEDDING", "ai.embedMany": "EMBEDDING"]
        case .voltAgent: ["agent": "AGENT", "llm": "LLM", "tool": "TOOL", "memory": "MEMORY"]
        case .laminar:
            ["LLM": "LLM", "TOOL": "TOOL", "DEFAULT": "CHAIN", "PIPELINE": "CHAIN", "EXECUTOR": "AGENT", "EVALUATOR": "EVALUATOR",
             "HUMAN_EVALUATOR": "EVALUATOR", "EVALUATION": "EVALUATOR", "CACHED": "LLM"]
        case .langfuse:
            ["generation": "LLM", "embedding": "EMBEDDING", "tool": "TOOL", "retriever": "RETRIEVER", "agent": "AGENT", "chain": "CHAIN",
             "evaluator": "EVALUATOR", "guardrail": "GUARDRAIL", "span": "UNKNOWN"]
        case .googleADK: [:]
        }
    }

    /// The attributes of input, output and total tokens, and of cache reads and writes.
    var tokenKeys: (input: String?, output: String?, total: String?, cacheRead: String?, cacheWrite: String?) {
        switch self {
        case .openInference:
            ("llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total", "llm.token_count.prompt_details.cache_read",
             "llm.token_count.prompt_details.cache_write")
        case .geminiCLI, .genAI, .liveKit:
            ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", nil, "gen_ai.usage.cache_read.input_tokens",
             "gen_ai.usage.cache_write.input_tokens")
        case .claudeCode: ("input_tokens", "output_tokens", nil, "cache_read_tokens", "cache_creation_tokens")
        case .springAI, .laminar: ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", nil, nil, nil)
        case .traceloop: ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "llm.usage.total_tokens", nil, nil)
        case .googleADK, .vercelAI, .voltAgent, .langfuse: (nil, nil, nil, nil, nil)
        }
    }

    /// The GenAI conventions' older name for cache writes, read when the current one is absent.
    static let legacyCacheWriteKey = "gen_ai.usage.cache_creation.input_tokens"

    /// The attributes holding inputs, in the order they are tried.
    var inputKeys: [String] {
        switch self {
        case .openInference: ["input.value"]
        case .geminiCLI, .genAI: ["gen_ai.input.messages", "gen_ai.tool.call.arguments"]
        case .traceloop: ["traceloop.entity.input"]
        case .googleADK: ["gcp.vertex.agent.llm_request", "gcp.vertex.agent.tool_call_args"]
        case .vercelAI: ["ai.prompt", "ai.toolCall.args", "ai.value", "ai.values"]
        case .voltAgent: ["agent.messages", "llm.messages", "input"]
        case .liveKit: ["lk.user_input", "lk.user_transcript", "lk.chat_ctx", "lk.input_text"]
        case .laminar: ["lmnr.span.input"]
        case .langfuse: ["langfuse.observation.input"]
        case .claudeCode, .springAI: []
        }
    }

    /// The attributes holding outputs, in the order they are tried.
    var outputKeys: [String] {
        switch self {
        case .openInference: ["output.value"]
        case .geminiCLI, .genAI: ["gen_ai.output.messages", "gen_ai.tool.call.result"]
        case .traceloop: ["traceloop.entity.output"]
        case .googleADK: ["gcp.vertex.agent.llm_response", "gcp.vertex.agent.tool_response"]
        case .vercelAI: ["ai.response.text", "ai.toolCall.result", "ai.response.object", "ai.embedding", "ai.embeddings"]
        case .voltAgent: ["output"]
        case .liveKit: ["lk.response.text", "lk.response.function_calls"]
        case .laminar: ["lmnr.span.output"]
        case .langfuse: ["langfuse.observation.output"]
        case .claudeCode, .springAI: []
        }
    }

    /// The attributes naming the model.
    var modelKeys: [String] {
        switch self {
        case .openInference: ["llm.response.model_name", "llm.model_name", "llm.request.model_name", "embedding.model_name"]
        case .geminiCLI, .genAI, .liveKit, .laminar: ["gen_ai.response.model", "gen_ai.request.model"]
        default: []
        }
    }

    /// The attribute naming the model's provider.
    var providerKey: String? {
        switch self {
        case .openInference: "llm.provider"
        case .geminiCLI, .genAI, .liveKit: "gen_ai.provider.name"
        case .traceloop, .laminar: "gen_ai.system"
        default: nil
        }
    }

    /// Every attribute name a convention reads (``readPrefixes`` aside): a span naming none of them is left as it is
    /// by every convention, except for what events, inputs and outputs give.
    static let readNames: Set<String> = {
        var names: Set<String> = ["gen_ai.agent.name", "gen_ai.request.model", "gen_ai.operation.name", "entity.type", "span.type",
                                  legacyCacheWriteKey, "user_prompt", "new_context", "tool_input", "full_command", "file_path", "skill_name",
                                  "subagent_type", "response.model_output", "usage.prompt_tokens", "llm.usage.prompt_tokens", "usage.completion_tokens",
                                  "llm.usage.completion_tokens", "usage.total_tokens", "llm.usage.total_tokens", "voltagent.operation_id",
                                  "voltagent.conversation_id", "lmnr.span.type"]
        for c in allCases {
            names.formUnion([c.kindKey, c.providerKey].compactMap { $0 })
            let t = c.tokenKeys
            names.formUnion([t.input, t.output, t.total, t.cacheRead, t.cacheWrite].compactMap { $0 })
            names.formUnion(c.inputKeys + c.outputKeys + c.modelKeys + c.toolKeys)
        }
        return names
    }()

    /// The name prefixes conventions read (LiveKit's, Vercel AI's unpacked prompt and response, Traceloop's numbered
    /// messages).
    static let readPrefixes = ["lk.", "ai.prompt.", "ai.response.", "gen_ai.prompt.", "gen_ai.completion."]

    /// The attribute names the span-type rules read: every convention's kind, VoltAgent's `entity.type`, LiveKit's model
    /// request (and any name under ``typePrefix``).
    static let typeNames: [String] = Array(Set(allCases.compactMap(\.kindKey) + ["entity.type", "gen_ai.request.model"]))
        .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    /// The name prefix LiveKit's type rules read.
    static let typePrefix = "lk."

    /// Whether a span type rule could read one of these attribute names (a span naming none keeps the type it has).
    static func typesAny(_ names: some Sequence<String>) -> Bool {
        names.contains { name in name.startsWithBytes(typePrefix) || typeNames.contains { ExactKey.sameBytes($0, name) } }
    }

    /// Whether any convention could read one of these attribute names.
    static func readsAny(_ names: some Sequence<String>) -> Bool {
        names.contains { name in
            !name.startsWithBytes("mlflow.") && (readNames.contains(name) || readPrefixes.contains { name.startsWithBytes($0) })  // none reads MLflow's own
        }
    }

    /// The attributes holding tool definitions.
    var toolKeys: [String] {
        switch self {
        case .geminiCLI, .genAI, .liveKit: ["gen_ai.tool.definitions"]
        default: []
        }
    }
}
