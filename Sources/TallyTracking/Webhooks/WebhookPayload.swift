/// The `data` of each webhook event, as MLflow 3.17's handlers fill it (`mlflow/webhooks/types.py`), as JSON text
/// with the fields in MLflow's order.
enum WebhookPayload {
    /// A JSON object from fields whose values are JSON text already.
    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(JSONText.quote($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// A string, or `null`.
    static func text(_ s: String?) -> String { s.map(JSONText.quote) ?? "null" }

    /// Tags as an object (the last of repeated keys wins, as a Python dict built from them).
    static func tags(_ tags: [KeyValue], without: Set<String> = []) -> String {
        var seen: [String: Int] = [:], fields: [(String, String)] = []
        for t in tags where !without.contains(t.key) {
            if let i = seen[t.key] { fields[i].1 = text(t.value) } else {
                seen[t.key] = fields.count
                fields.append((t.key, text(t.value)))
            }
        }
        return object(fields)
    }

    /// The tags a prompt's payload leaves out: they mark it as a prompt (and the template travels apart).
    static let promptTags: Set<String> = [SearchFilter.promptTag, "_mlflow_prompt_type"]

    /// `registered_model.created` / `prompt.created`.
    static func modelCreated(name: String, tags: [KeyValue], description: String?, prompt: Bool) -> String {
        object([("name", text(name)), ("tags", Self.tags(tags, without: prompt ? promptTags : [])), ("description", text(description ?? ""))])
    }

    /// `model_version.created`.
    static func versionCreated(name: String, version: Int64, source: String, runID: String?, tags: [KeyValue], description: String?) -> String {
        object([("name", text(name)), ("version", text(String(version))), ("source", text(source)), ("run_id", text(runID)),
                ("tags", Self.tags(tags)), ("description", text(description))])
    }

    /// `prompt_version.created`: the template is the `mlflow.prompt.text` tag.
    static func promptVersionCreated(name: String, version: Int64, tags: [KeyValue], description: String?) -> String {
        object([("name", text(name)), ("version", text(String(version))), ("template", text(tags.last { $0.key == "mlflow.prompt.text" }?.value)),
                ("tags", Self.tags(tags, without: promptTags.union(["mlflow.prompt.text"]))), ("description", text(description))])
    }

    /// `*_tag.set` / `*_tag.deleted` (`version` for a version's tag; `value` when set).
    static func tag(name: String, version: String?, key: String, value: String?) -> String {
        var f = [("name", text(name))]
        if let version { f.append(("version", text(version))) }
        f.append(("key", text(key)))
        if let value { f.append(("value", text(value))) }
        return object(f)
    }

    /// `*_alias.created` / `*_alias.deleted` (`version` when created).
    static func alias(name: String, alias: String, version: String?) -> String {
        object([("name", text(name)), ("alias", text(alias))] + (version.map { [("version", text($0))] } ?? []))
    }

    /// MLflow's example payload of each event (`get_example_payload_for_event`): what a test delivery sends.
    static func example(_ event: WebhookEvent) -> String {
        let tags = [KeyValue(key: "example_key", value: "example_value")]
        let prompt = event.entity.rawValue.hasPrefix("prompt")
        let name = prompt ? "example_prompt" : "example_model"
        switch (event.entity, event.action) {
        case (.registeredModel, _): return modelCreated(name: name, tags: tags, description: "An example registered model", prompt: false)
        case (.prompt, _): return modelCreated(name: name, tags: tags, description: "An example prompt", prompt: true)
        case (.modelVersion, _):
            return versionCreated(name: name, version: 1, source: "models:/123", runID: "abcd1234abcd5678", tags: tags, description: "An example model version")
        case (.promptVersion, _):
            return object([("name", text(name)), ("version", text("1")), ("template", text("Hello {{name}}!")), ("tags", Self.tags(tags)),
                           ("description", text("An example prompt version"))])
        case (.modelVersionTag, .set), (.promptVersionTag, .set): return tag(name: name, version: "1", key: "example_key", value: "example_value")
        case (.modelVersionTag, _), (.promptVersionTag, _): return tag(name: name, version: "1", key: "example_key", value: nil)
        case (.promptTag, .set): return tag(name: name, version: nil, key: "example_key", value: "example_value")
        case (.promptTag, _): return tag(name: name, version: nil, key: "example_key", value: nil)
        case (.modelVersionAlias, .created), (.promptAlias, .created): return alias(name: name, alias: "example_alias", version: "1")
        case (.modelVersionAlias, _), (.promptAlias, _): return alias(name: name, alias: "example_alias", version: nil)
        case (.budgetPolicy, _):
            return #"{"budget_policy_id": "bp-abc123", "budget_unit": "USD", "budget_amount": 100.0, "current_spend": 105.5, "duration_unit": "MONTHS", "#
                + #""duration_value": 1, "target_scope": "ENDPOINT", "workspace": "default", "target_value": "ep-abc123", "window_start": 1704067200000}"#
        }
    }
}
