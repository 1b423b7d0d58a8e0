/// Where webhooks are kept: both metadata stores, with the same SQL (``WebhookSQL``).
public protocol WebhookStore {
    /// Stores a new webhook.
    func insertWebhook(_ hook: Webhook) throws
    /// One webhook, or every webhook (newest first, then by id) when `id` is `nil`.
    func webhooks(id: String?) throws -> [Webhook]
    /// Replaces a webhook's fields and events; `false` when it does not exist (deleted meanwhile).
    func replaceWebhook(_ hook: Webhook) throws -> Bool
    /// Deletes a webhook; `false` when it did not exist.
    func deleteWebhook(id: String) throws -> Bool
}

/// The webhook tables' statements, in the SQL both dialects read alike. A webhook's events are rows of their own,
/// replaced with it in one transaction (the caller's).
enum WebhookSQL {
    /// SQLite's version 9 and PostgreSQL's version 8 (`text` is the dialect's text type).
    static func schema(text: String, integer: String) -> String {
        """
        CREATE TABLE webhooks (
            webhook_id \(text) PRIMARY KEY, name \(text) NOT NULL, description \(text), url \(text) NOT NULL, status \(text) NOT NULL,
            secret \(text), creation_time \(integer) NOT NULL, last_updated_time \(integer) NOT NULL);
        CREATE TABLE webhook_events (
            webhook_id \(text) NOT NULL REFERENCES webhooks(webhook_id) ON DELETE CASCADE, entity \(text) NOT NULL, action \(text) NOT NULL,
            PRIMARY KEY (webhook_id, entity, action));
        """
    }

    static func insert(_ db: some SQLConnection, _ h: Webhook) throws {
        try db.run("INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [.text(h.id), .text(h.name), h.description.map(SQLValue.text) ?? .null, .text(h.url), .text(h.status.rawValue),
                    h.sealedSecret.map(SQLValue.text) ?? .null, .integer(h.creationTime), .integer(h.lastUpdatedTime)])
        try insertEvents(db, h)
    }

    static func insertEvents(_ db: some SQLConnection, _ h: Webhook) throws {
        for e in Set(h.events) {
            try db.run("INSERT INTO webhook_events VALUES (?, ?, ?)", [.text(h.id), .text(e.entity.rawValue), .text(e.action.rawValue)])
        }
    }

    /// One statement (a consistent view on PostgreSQL, where two would each read their own snapshot): each webhook
    /// with its events, newest first, events by entity then action (MLflow's order).
    static func webhooks(_ db: some SQLConnection, id: String?) throws -> [Webhook] {
        let (cond, values): (String, [SQLValue]) = id.map { ("WHERE w.webhook_id = ?", [.text($0)]) } ?? ("", [])
        var hooks: [Webhook] = []
        try db.query("SELECT w.webhook_id, w.name, w.description, w.url, w.status, w.secret, w.creation_time, w.last_updated_time, e.entity, e.action "
                     + "FROM webhooks w LEFT JOIN webhook_events e ON e.webhook_id = w.webhook_id \(cond) "
                     + "ORDER BY w.creation_time DESC, w.webhook_id, e.entity, e.action", values) { r in
            let id = r[0].string ?? ""
            if hooks.last?.id != id {
                hooks.append(Webhook(id: id, name: r[1].string ?? "", description: r[2].string, url: r[3].string ?? "", events: [],
                                     status: WebhookStatus(rawValue: r[4].string ?? "") ?? .disabled, sealedSecret: r[5].string,
                                     creationTime: r[6].int ?? 0, lastUpdatedTime: r[7].int ?? 0))
            }
            if let e = WebhookEvent.stored(entity: r[8].string, action: r[9].string) { hooks[hooks.count - 1].events.append(e) }
        }
        return hooks
    }

    static func replace(_ db: some SQLConnection, _ h: Webhook) throws -> Bool {
        let changed = try db.run("UPDATE webhooks SET name = ?, description = ?, url = ?, status = ?, secret = ?, last_updated_time = ? WHERE webhook_id = ?",
                                 [.text(h.name), h.description.map(SQLValue.text) ?? .null, .text(h.url), .text(h.status.rawValue),
                                  h.sealedSecret.map(SQLValue.text) ?? .null, .integer(h.lastUpdatedTime), .text(h.id)])
        guard changed > 0 else { return false }
        try db.run("DELETE FROM webhook_events WHERE webhook_id = ?", [.text(h.id)])
        try insertEvents(db, h)
        return true
    }

    /// The webhook first, its events by the cascade: the order ``replace(_:_:)`` locks them in, so a delete and an
    /// update of one webhook wait for each other instead of deadlocking.
    static func delete(_ db: some SQLConnection, id: String) throws -> Bool {
        try db.run("DELETE FROM webhooks WHERE webhook_id = ?", [.text(id)]) > 0
    }
}

extension SQLiteMetadataStore {
    /// Version 9: webhooks (``WebhookSQL``).
    static let schemaVersion9 = WebhookSQL.schema(text: "TEXT", integer: "INTEGER")

    public func insertWebhook(_ hook: Webhook) throws {
        try transaction { try with { try WebhookSQL.insert($0, hook) } }
    }

    public func webhooks(id: String?) throws -> [Webhook] {
        try with { try WebhookSQL.webhooks($0, id: id) }
    }

    public func replaceWebhook(_ hook: Webhook) throws -> Bool {
        try transaction { try with { try WebhookSQL.replace($0, hook) } }
    }

    public func deleteWebhook(id: String) throws -> Bool {
        try transaction { try with { try WebhookSQL.delete($0, id: id) } }
    }
}

extension PostgresMetadataStore {
    /// Version 8: webhooks (``WebhookSQL``).
    static let schemaVersion8 = WebhookSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT")

    public func insertWebhook(_ hook: Webhook) throws {
        try write { try WebhookSQL.insert($0, hook) }
    }

    public func webhooks(id: String?) throws -> [Webhook] {
        try conn { try WebhookSQL.webhooks($0, id: id) }
    }

    public func replaceWebhook(_ hook: Webhook) throws -> Bool {
        try write { try WebhookSQL.replace($0, hook) }
    }

    public func deleteWebhook(id: String) throws -> Bool {
        try write { try WebhookSQL.delete($0, id: id) }
    }
}
