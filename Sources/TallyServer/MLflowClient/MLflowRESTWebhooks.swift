import NIOHTTP1
import TallyTracking

/// Registry webhooks through MLflow's API (admins only there, as here). MLflow's API never shows a webhook's secret:
/// webhooks come without it, and go with it.
extension MLflowRESTSource {
    /// The webhooks, without secrets; none from an MLflow before 3.3 (404), and none, with a note, for a caller who
    /// is not an admin there (403).
    public func webhooks() throws -> (hooks: [SourceWebhook], note: String?) {
        let listed: [JSONValue]
        do {
            listed = try http.webhooks(allowing: [404])
        } catch let e as TrackingError where e.code == .permissionDenied {
            return ([], "webhooks not imported: MLflow lists them to admins only (\(e.message))")
        }
        return (listed.map { w in
            let events = w["events"].items.compactMap { e in try? WebhookEvent(apiEntity: e["entity"]?.text, apiAction: e["action"]?.text) }
            let hook = Webhook(id: w["webhook_id"]?.text ?? "", name: w["name"]?.text ?? "", description: w["description"]?.text, url: w["url"]?.text ?? "",
                               events: events, status: WebhookStatus(rawValue: w["status"]?.text ?? "") ?? .disabled, sealedSecret: nil,
                               creationTime: w["creation_timestamp"]?.int64 ?? 0, lastUpdatedTime: w["last_updated_timestamp"]?.int64 ?? 0)
            return SourceWebhook(hook: hook, secret: nil, secretNote: "MLflow's API does not show secrets; import from its database to bring them")
        }, nil)
    }
}

extension MLflowHTTPClient {
    /// Every webhook MLflow lists, page by page (none when it answers a status of `allowing`).
    func webhooks(allowing: Set<UInt> = []) throws -> [JSONValue] {
        try MLflowRESTSource.pages("webhooks") {
            try json(.GET, "/api/2.0/mlflow/webhooks", query: MLflowRESTSource.query([("max_results", "1000")], token: $0), allowing: allowing)
        }
    }
}

extension MLflowRESTDestination {
    public func webhookExists(name: String, url: String) throws -> Bool {
        try http.webhooks().contains { $0["name"]?.text == name && $0["url"]?.text == url }
    }

    public func createWebhook(_ hook: Webhook, secret: String?) throws {
        let events = hook.events.map { "{\"entity\":\(JSONText.quote($0.entity.rawValue.uppercased())),\"action\":\(JSONText.quote($0.action.rawValue.uppercased()))}" }
        var body = "{\"name\":\(JSONText.quote(hook.name)),\"url\":\(JSONText.quote(hook.url)),\"events\":[\(events.joined(separator: ","))],"
            + "\"status\":\(JSONText.quote(hook.status.rawValue))"
        if let d = hook.description { body += ",\"description\":" + JSONText.quote(d) }
        if let secret { body += ",\"secret\":" + JSONText.quote(secret) }
        _ = try http.json(.POST, "/api/2.0/mlflow/webhooks", body: body + "}", idempotent: false)
    }
}
