import Hummingbird
import NIOCore
import TallyTracking

/// MLflow 3's webhook endpoints (`webhooks`, `webhooks/{webhook_id}`, `webhooks/{webhook_id}/test`), mounted under
/// each MLflow API prefix. Admins only, as MLflow's auth app has them.
struct WebhookRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("webhooks", .post, access: .admin, use: e.json { r in
            Render.wrap("webhook", Self.webhook(try s.createWebhook(try Self.fields(r))))
        })
        t.on("webhooks", .get, access: .admin, use: e.json { r in
            let page = try s.listWebhooks(maxResults: try r.int64("max_results"), pageToken: try r.string("page_token"))
            return Render.page("webhooks", page, Self.webhook)
        })
        t.on("webhooks/{webhook_id}", .get, access: .admin, use: e.json(path: ["webhook_id"]) { _, p, _ in
            ByteBuffer(string: Render.wrap("webhook", Self.webhook(try s.webhook(id: p[0]))))
        })
        t.on("webhooks/{webhook_id}", .patch, access: .admin, use: e.json(path: ["webhook_id"]) { r, p, _ in
            ByteBuffer(string: Render.wrap("webhook", Self.webhook(try s.updateWebhook(id: p[0], try Self.fields(r)))))
        })
        t.on("webhooks/{webhook_id}", .delete, access: .admin, use: e.json(path: ["webhook_id"]) { _, p, _ in
            try s.deleteWebhook(id: p[0])
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("webhooks/{webhook_id}/test", .post, access: .admin, use: e.json(path: ["webhook_id"]) { r, p, _ in
            let event = try r.raw("event").flatMap { v -> WebhookEvent? in
                if case .null = v { return nil }
                guard case .object = v else { throw MLflowRequest.invalid("event", v) }
                return try Self.event(v)
            }
            let result = try s.testWebhook(id: p[0], event: event)
            var o = Obj()
            o.add("success", bool: result.success)
            o.add("response_status", result.responseStatus.map(Int64.init))
            o.add("response_body", result.responseBody)
            o.add("error_message", result.errorMessage)
            return ByteBuffer(string: Render.wrap("result", o.json))
        })
    }

    /// The request's fields (events as `{entity, action}` objects in the API's upper-case names).
    static func fields(_ r: MLflowRequest) throws -> WebhookFields {
        let events: [WebhookEvent]? = r.raw("events") == nil ? nil : try r.objects("events").map(event)
        return WebhookFields(name: try r.string("name"), url: try r.string("url"), events: events, description: try r.string("description"),
                             secret: try r.string("secret"), status: try r.string("status"))
    }

    static func event(_ v: JSONValue) throws -> WebhookEvent {
        let q = MLflowRequest(body: v, query: [:])
        return try WebhookEvent(apiEntity: try q.string("entity"), apiAction: try q.string("action"))
    }

    /// A webhook as MLflow renders it: never its secret.
    static func webhook(_ h: Webhook) -> String {
        var o = Obj()
        o.add("webhook_id", h.id)
        o.add("name", h.name)
        o.add("description", h.description)
        o.add("url", h.url)
        o.add("events", array: h.events.map { ev in
            var x = Obj()
            x.add("entity", ev.entity.rawValue.uppercased())
            x.add("action", ev.action.rawValue.uppercased())
            return x.json
        })
        o.add("status", h.status.rawValue)
        o.add("creation_timestamp", h.creationTime)
        o.add("last_updated_timestamp", h.lastUpdatedTime)
        return o.json
    }
}
