extension TrackingService {
    /// Sends the event (`entity`, `action`) to the active webhooks subscribed to it, in the background, once the
    /// write that caused it has succeeded. The subscriptions are read from the database each time, so a webhook
    /// created or disabled through another server of a shared database counts at once (registry writes are rare;
    /// MLflow caches them for 60 s). `entity` (`nil`: no event) and `data` are only worked out when some webhook is
    /// active. A failure to read them is reported, never the request's error: the write itself is done.
    func fire(_ entity: @autoclosure () -> WebhookEntity?, _ action: WebhookAction, _ data: () -> String) {
        let active: [Webhook]
        do {
            active = try metadata.webhooks(id: nil).filter { $0.status == .active }
        } catch {
            webhooks.report("Webhooks not read, no \(action.rawValue) event delivered: \(WebhookDelivery.reason(error))")
            return
        }
        guard !active.isEmpty, let entity = entity() else { return }
        // Only the registry's valid combinations are fired (a precondition the event table backs).
        guard let event = try? WebhookEvent(entity, action) else { preconditionFailure("no webhook event \(entity).\(action)") }
        let hooks = active.filter { $0.events.contains(event) }
        guard !hooks.isEmpty else { return }
        webhooks.deliver(event, data: data(), to: hooks)
    }

    /// Whether the registered model `name` is a prompt (for the events of its tags and aliases).
    func isPromptModel(_ name: String) -> Bool {
        ((try? metadata.registeredModel(named: name)).flatMap { $0 }).map { Self.isPrompt($0.tags) } ?? false
    }
}
