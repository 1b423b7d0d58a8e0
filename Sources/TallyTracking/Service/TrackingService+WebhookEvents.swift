extension TrackingService {
    /// Sends `event` to the active webhooks subscribed to it, in the background, once the write that caused it has
    /// succeeded. The subscriptions are read from the database each time, so a webhook created or disabled through
    /// another server of a shared database counts at once (registry writes are rare; MLflow caches them for 60 s).
    /// A failure to read them is reported, never the request's error: the write itself is done.
    func fire(_ entity: WebhookEntity, _ action: WebhookAction, _ data: () -> String) {
        // Only the registry's valid combinations are fired (a precondition the event table backs).
        guard let event = try? WebhookEvent(entity, action) else { preconditionFailure("no webhook event \(entity).\(action)") }
        let hooks: [Webhook]
        do {
            hooks = try metadata.webhooks(id: nil).filter { $0.status == .active && $0.events.contains(event) }
        } catch {
            webhooks.report("Webhooks for \(event) not read, none delivered: \(WebhookDelivery.reason(error))")
            return
        }
        guard !hooks.isEmpty else { return }
        webhooks.deliver(event, data: data(), to: hooks)
    }

    /// Whether the registered model `name` is a prompt (for the events of its tags and aliases).
    func isPromptModel(_ name: String) -> Bool {
        ((try? metadata.registeredModel(named: name)).flatMap { $0 }).map { Self.isPrompt($0.tags) } ?? false
    }
}
