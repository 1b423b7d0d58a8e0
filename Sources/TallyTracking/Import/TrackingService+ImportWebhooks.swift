extension TrackingService {
    /// Imports the source's registry webhooks, ids and times kept, each secret sealed under this server's key;
    /// journaled per webhook, so a rerun skips those unchanged and brings changed ones up to date. A webhook whose
    /// id Tally already has (not from this import) is left alone. One whose secret the source cannot give is imported
    /// without it, and said.
    func importWebhooks(from db: any MLflowSource, journal: inout ImportJournal, summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        let (hooks, note) = try db.webhooks()
        if let note { summary.warnings.append(note) }
        for w in hooks {
            let key = "webhook:" + w.hook.id
            let fingerprint = "\(w.hook.lastUpdatedTime),\(w.hook.status.rawValue),\(w.hook.events.map(\.description).joined(separator: " ")),"
                + MLflowImport.digest(w.hook.name + "\u{1}" + w.hook.url + "\u{1}" + (w.hook.description ?? "") + "\u{1}" + (w.secret ?? ""))
            if journal.done[key] == fingerprint { continue }
            let exists = try !metadata.webhooks(id: w.hook.id).isEmpty
            if exists && journal.done[key] == nil && !journal.begun.contains(key) {
                summary.warnings.append("webhook \(w.hook.id) (\(w.hook.name)) skipped: a webhook with this id already exists in the target")
                continue
            }
            if let note = w.secretNote {
                summary.warnings.append("webhook \(w.hook.id) (\(w.hook.name)) imported without its secret, if it has one (\(note)): deliveries go unsigned "
                                        + "until it is set again (update_webhook)")
            }
            if w.hook.events.isEmpty {
                summary.warnings.append("webhook \(w.hook.id) (\(w.hook.name)) skipped: none of its events is one this server knows")
                continue
            }
            summary.webhooks += 1
            if dryRun { continue }
            try journal.begin(key)
            var hook = w.hook
            hook.sealedSecret = try w.secret.map { try webhooks.secrets.seal($0) }
            if exists { _ = try metadata.replaceWebhook(hook) } else { try metadata.insertWebhook(hook) }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }
}
