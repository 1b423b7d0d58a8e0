import Foundation

/// What MLflow's server checks of a scorer's definition (`serialized_scorer`) before it keeps one: JSON, no code
/// unless the operator allows it, no third-party options that pick where a judge's requests go, a well-formed model.
extension TrackingService {
    /// MLflow's message for a definition with code (`@scorer`'s `call_source`), which its server refuses by default.
    static let customScorerRefused = """
        Custom scorer registration (using @scorer decorator) is disabled by default outside of Databricks tracking environments due to \
        security concerns. Custom scorers require arbitrary code execution during deserialization.

        To use custom scorers:
        1. Configure MLflow to use a Databricks tracking URI, or
        2. Manage your custom scorer code in a source code repository (e.g., GitHub) and import it directly, or
        3. On a self-managed MLflow server (or local environment) that you trust to run the scorer's code, set the \
        MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS environment variable to true, or
        4. Use built-in scorers or make_judge() scorers instead.
        """

    /// The options of a third-party judge that choose where its LLM client sends requests (MLflow's
    /// `GATEWAY_DESTINATION_KEYS`).
    static let judgeDestinationKeys: Set<String> = ["api_base", "base_url", "model_list", "fallbacks", "custom_llm_provider"]

    /// MLflow's `_validate_serialized_scorer_payload`, then a check MLflow's store makes by failing: the definition must
    /// be a JSON object. Returns it parsed.
    func checkScorerPayload(_ serialized: String) throws -> JSONValue {
        guard let v = try? JSONParser.parse(Array(serialized.utf8)) else { throw TrackingError.invalid("serialized_scorer must be valid JSON") }
        if !customScorers && Self.hasCode(v) { throw TrackingError.invalid(Self.customScorerRefused) }
        try Self.checkThirdPartyOptions(v)
        guard case .object = v else { throw TrackingError.invalid("serialized_scorer must be a JSON object, got \(v.pythonType)") }
        return v
    }

    /// Whether any object in `v` has a `call_source` that is not null (a scorer with code, an ensemble holding one).
    static func hasCode(_ v: JSONValue) -> Bool {
        switch v {
        case .object(let members):
            if let c = v["call_source"], c != .null { return true }
            return members.contains { hasCode($0.1) }
        case .array(let items): return items.contains(where: hasCode)
        default: return false
        }
    }

    /// MLflow's `_validate_third_party_scorer_data`: each `third_party_scorer_data` anywhere in the definition has
    /// `kwargs` an object (or null) naming none of ``judgeDestinationKeys`` at any depth.
    static func checkThirdPartyOptions(_ v: JSONValue) throws {
        switch v {
        case .object(let members):
            if let data = v["third_party_scorer_data"], case .object = data, let kwargs = data["kwargs"], kwargs != .null {
                guard case .object = kwargs else {
                    throw TrackingError.invalid("third_party_scorer_data.kwargs must be a JSON object, got \(kwargs.pythonType).")
                }
                let found = destinationKeys(kwargs).sorted(by: binaryLess)
                if !found.isEmpty {
                    throw TrackingError.invalid("third_party_scorer_data.kwargs must not contain \(found.map { "'\($0)'" }.joined(separator: ", ")): "
                        + "these options choose where the scorer's LLM client sends requests. Configure the judge endpoint on the server instead, "
                        + "for example through a gateway endpoint ('gateway:/<name>') or the provider's environment variables.")
                }
            }
            for (_, m) in members { try checkThirdPartyOptions(m) }
        case .array(let items): for i in items { try checkThirdPartyOptions(i) }
        default: break
        }
    }

    /// The destination keys named in an options value: object keys, and the first of two-item `[name, value]` pairs
    /// (how nested option maps are written as lists).
    static func destinationKeys(_ v: JSONValue) -> Set<String> {
        switch v {
        case .object(let members):
            return members.reduce(into: Set(members.map(\.0).filter(judgeDestinationKeys.contains))) { $0.formUnion(destinationKeys($1.1)) }
        case .array(let items):
            var found = Set<String>()
            for i in items {
                if case .array(let pair) = i, pair.count == 2, case .string(let k) = pair[0], judgeDestinationKeys.contains(k) { found.insert(k) }
                found.formUnion(destinationKeys(i))
            }
            return found
        default: return []
        }
    }

    /// The model a definition's judge uses (MLflow's `extract_model_from_serialized_scorer`): an instructions judge's,
    /// a built-in scorer's, a memory-augmented judge's base judge's, or a third-party scorer's; `nil` (absent or null)
    /// when it has none. A section that is empty counts as absent, as in Python.
    static func scorerModel(_ d: JSONValue) -> JSONValue? {
        func truthy(_ v: JSONValue?) -> JSONValue? {
            guard let v else { return nil }
            switch v {
            case .null, .bool(false): return nil
            case .object(let m) where m.isEmpty: return nil
            default: return v
            }
        }
        if let s = truthy(d["instructions_judge_pydantic_data"]) { return s["model"] }
        if let s = truthy(d["builtin_scorer_pydantic_data"]) { return s["model"] }
        if let s = truthy(d["memory_augmented_judge_data"]) { return s["base_judge"].flatMap(scorerModel) }
        if let s = truthy(d["third_party_scorer_data"]) { return s["model"] }
        return nil
    }

    /// MLflow's `validate_scorer_model`, then its gateway check: a `gateway:/<endpoint>` model names an AI gateway
    /// endpoint, and Tally has no gateway, so it is MLflow's 404 for an endpoint that does not exist.
    static func checkScorerModel(_ d: JSONValue) throws {
        guard let model = scorerModel(d), model != .null else { return }
        guard case .string(let m) = model else { throw TrackingError.invalid("Scorer model must be a string, got \(model.pythonType).") }
        guard !m.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw TrackingError.invalid("Scorer model cannot be empty or contain only whitespace.")
        }
        if let endpoint = gatewayEndpoint(m) { throw TrackingError.notFound("GatewayEndpoint not found (name='\(endpoint)')") }
    }

    /// The endpoint a `gateway:/<endpoint>` model URI names (MLflow's `_parse_model_uri`: `<provider>:/<path>`, the
    /// path's leading slashes dropped); `nil` for any other model.
    static func gatewayEndpoint(_ model: String) -> String? {
        guard let r = model.range(of: ":/"), model[..<r.lowerBound] == "gateway" else { return nil }
        let path = model[r.upperBound...].drop { $0 == "/" }
        return path.isEmpty ? nil : String(path)
    }

    /// Whether a stored definition's judge uses a gateway model (one imported from MLflow may).
    static func usesGatewayModel(_ serialized: String) -> Bool {
        guard let d = try? JSONParser.parse(Array(serialized.utf8)), case .string(let m)? = scorerModel(d) else { return false }
        return gatewayEndpoint(m) != nil
    }
}
