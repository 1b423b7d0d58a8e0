import Foundation

/// MLflow 3's registry webhooks, read from the same database (none where the schema predates them).
extension MLflowSQLSource {
    /// The environment variable MLflow's server seals webhook secrets under (a Fernet key).
    static let secretKeyVariable = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"

    /// The webhooks not deleted (of the workspace read, where the schema has workspaces), with their events; each
    /// secret opened with `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY` from the importer's environment, the key the MLflow
    /// server sealed it with.
    func webhooks() throws -> (hooks: [SourceWebhook], note: String?) {
        guard has("webhooks"), has("webhook_events") else { return ([], nil) }
        let key = ProcessInfo.processInfo.environment[Self.secretKeyVariable].flatMap { $0.isEmpty ? nil : $0 }
        let scope = ofWorkspace("webhooks")
        var out: [SourceWebhook] = []
        try query("SELECT webhook_id, name, description, url, status, secret, creation_timestamp, last_updated_timestamp FROM webhooks "
                  + "WHERE deleted_timestamp IS NULL AND \(scope.sql) ORDER BY creation_timestamp, webhook_id", scope.args) { r in
            let id = r[0].string ?? ""
            let events = try rows("SELECT entity, action FROM webhook_events WHERE webhook_id = ? ORDER BY entity, action", [.text(id)])
                .compactMap { WebhookEvent.stored(entity: $0[0].string, action: $0[1].string) }
            let hook = Webhook(id: id, name: r[1].string ?? "", description: r[2].string.flatMap { $0.isEmpty ? nil : $0 }, url: r[3].string ?? "",
                               events: events, status: WebhookStatus(rawValue: r[4].string ?? "") ?? .disabled, sealedSecret: nil,
                               creationTime: r[6].int ?? 0, lastUpdatedTime: r[7].int ?? r[6].int ?? 0)
            var secret: String?, note: String?
            if let sealed = r[5].string, !sealed.isEmpty {
                if let key {
                    do { secret = try Fernet.open(sealed, key: key) } catch { note = "\(Self.secretKeyVariable) does not open it (\(WebhookDelivery.reason(error)))" }
                } else {
                    note = "set \(Self.secretKeyVariable) to the MLflow server's key to bring it"
                }
            }
            out.append(SourceWebhook(hook: hook, secret: secret, secretNote: note))
        }
        return (out, nil)
    }
}
