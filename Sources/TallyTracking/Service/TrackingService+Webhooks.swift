import Foundation

/// A webhook's fields as a request gives them: `nil` for a field the request leaves out.
public struct WebhookFields: Sendable {
    /// The name.
    public var name: String?
    /// The URL.
    public var url: String?
    /// The events (`nil`: absent; empty: given empty).
    public var events: [WebhookEvent]?
    /// The description.
    public var description: String?
    /// The signing secret (empty: none).
    public var secret: String?
    /// `ACTIVE` or `DISABLED`.
    public var status: String?

    /// Fields.
    public init(name: String? = nil, url: String? = nil, events: [WebhookEvent]? = nil, description: String? = nil, secret: String? = nil,
                status: String? = nil) {
        self.name = name
        self.url = url
        self.events = events
        self.description = description
        self.secret = secret
        self.status = status
    }
}

extension TrackingService {
    /// `webhooks` (POST): MLflow 3's webhook, with its rules for names, URLs (``WebhookPolicy``) and events.
    public func createWebhook(_ f: WebhookFields) throws -> Webhook {
        guard let name = f.name, !name.isEmpty else { throw Validation.missing("name") }
        guard let url = f.url, !url.isEmpty else { throw Validation.missing("url") }
        guard let events = f.events else { throw Validation.missing("events") }
        try Self.checkWebhookName(name)
        _ = try WebhookTarget.check(url, policy: webhooks.policy)
        try Self.checkWebhookEvents(events)
        let now = clock()
        let hook = Webhook(id: UUID().uuidString.lowercased(), name: name, description: try Self.webhookDescription(f.description), url: url,
                           events: events, status: try Self.webhookStatus(f.status) ?? .active,
                           sealedSecret: try sealedWebhookSecret(f.secret), creationTime: now, lastUpdatedTime: now)
        try metadata.insertWebhook(hook)
        return try webhook(id: hook.id)
    }

    /// A webhook; MLflow's 404 when there is none.
    public func webhook(id: String) throws -> Webhook {
        guard let h = try metadata.webhooks(id: id).first else { throw TrackingError.notFound("Webhook with ID \(id) not found.") }
        return h
    }

    /// `webhooks` (GET): newest first, `maxResults` (1–1000, default 100) per page.
    public func listWebhooks(maxResults: Int64?, pageToken: String?) throws -> SearchPage<Webhook> {
        let limit = maxResults.flatMap { $0 == 0 ? nil : $0 } ?? 100
        guard (1...1000).contains(limit) else { throw TrackingError.invalid("max_results must be between 1 and 1000.") }
        let offset = try PageToken.decode(pageToken)
        let all = try metadata.webhooks(id: nil)
        let page = Array(all.dropFirst(offset).prefix(Int(limit)))
        return SearchPage(items: page, nextPageToken: offset + page.count < all.count ? PageToken.encode(offset: offset + page.count) : nil)
    }

    /// `webhooks/{id}` (PATCH): the fields given change (an empty name, URL or event list changes nothing, as in
    /// MLflow; an empty description or secret clears it).
    public func updateWebhook(id: String, _ f: WebhookFields) throws -> Webhook {
        var h = try webhook(id: id)
        if let name = f.name, !name.isEmpty {
            try Self.checkWebhookName(name)
            h.name = name
        }
        if let url = f.url, !url.isEmpty {
            _ = try WebhookTarget.check(url, policy: webhooks.policy)
            h.url = url
        }
        if let events = f.events, !events.isEmpty {
            try Self.checkWebhookEvents(events)
            h.events = events
        }
        if f.description != nil { h.description = try Self.webhookDescription(f.description) }
        if f.secret != nil { h.sealedSecret = try sealedWebhookSecret(f.secret) }
        if let s = try Self.webhookStatus(f.status) { h.status = s }
        h.lastUpdatedTime = clock()
        guard try metadata.replaceWebhook(h) else { throw TrackingError.notFound("Webhook with ID \(id) not found.") }
        return try webhook(id: id)
    }

    /// `webhooks/{id}` (DELETE).
    public func deleteWebhook(id: String) throws {
        guard try metadata.deleteWebhook(id: id) else { throw TrackingError.notFound("Webhook with ID \(id) not found.") }
    }

    /// `webhooks/{id}/test`: MLflow's example payload of `event` (default: the webhook's first event) posted now,
    /// whatever the webhook's status, and what came back.
    public func testWebhook(id: String, event: WebhookEvent?) throws -> WebhookTestResult {
        let h = try webhook(id: id)
        guard let event = event ?? h.events.first else { throw TrackingError.invalid("Webhook \(id) has no events to test.") }
        return webhooks.test(h, event: event)
    }

    /// The webhooks whose secrets another key sealed (`id (key fingerprint)`), which this server cannot sign with:
    /// servers of one database that were not given the same key.
    public func webhookSecretsUnderOtherKeys() throws -> [String] {
        try metadata.webhooks(id: nil).compactMap { h in
            guard let sealed = h.sealedSecret, let f = WebhookSecrets.fingerprint(of: sealed), f != webhooks.secrets.fingerprint else { return nil }
            return "\(h.id) (\(f))"
        }
    }

    static func checkWebhookName(_ name: String) throws {
        let u = Array(name.utf8)
        func ok(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) }
        guard (1...63).contains(u.count), ok(u.first!), ok(u.last!), u.allSatisfy({ ok($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }) else {
            throw TrackingError.invalid("Webhook name \(WebhookTarget.repr(name)) is invalid. It must start and end with a letter or digit, "
                                        + "be less than 63 characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens (-).")
        }
    }

    static func checkWebhookEvents(_ events: [WebhookEvent]) throws {
        guard !events.isEmpty else { throw TrackingError.invalid("Webhook events must be a non-empty list of WebhookEvent objects: [].") }
    }

    /// A description as stored (`nil` for none; MLflow's column holds 1,000 characters).
    static func webhookDescription(_ d: String?) throws -> String? {
        guard let d, !d.isEmpty else { return nil }
        guard d.count <= 1000 else { throw TrackingError.invalid("Webhook description must be at most 1000 characters, got \(d.count).") }
        return d
    }

    static func webhookStatus(_ s: String?) throws -> WebhookStatus? {
        guard let s, !s.isEmpty else { return nil }
        guard let status = WebhookStatus(rawValue: s) else {
            throw TrackingError.invalid("Invalid webhook status \(WebhookTarget.repr(s)). Valid statuses are: ACTIVE, DISABLED.")
        }
        return status
    }

    func sealedWebhookSecret(_ s: String?) throws -> String? {
        guard let s, !s.isEmpty else { return nil }
        guard s.utf8.count <= 1000 else { throw TrackingError.invalid("Webhook secret must be at most 1000 bytes, got \(s.utf8.count).") }
        return try webhooks.secrets.seal(s)
    }
}
