extension TrackingService {
    /// Imports the source's registry webhooks, ids and times kept, each secret sealed under this server's key;
    /// journaled per webhook, so a rerun skips those unchanged and brings changed ones up to date. A webhook whose
    /// id Tally already has (not from this import) is left alone. One whose secret the source cannot give is imported
    /// without it, and said.
    func importWebhooks(from db: any MLflowSource, journal: inout ImportJournal, summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        let (hooks, note) = try db.webhooks()
        if let note { summary.warnings.append(note) }
        for w in hooks {
            let name = "webhook \(w.hook.id) (\(w.hook.name))"
            guard !w.hook.events.isEmpty else {
                summary.warnings.append("\(name) skipped: none of its events is one this server knows")
                continue
            }
            let key = "webhook:" + w.hook.id
            let fingerprint = "\(w.hook.lastUpdatedTime),\(w.hook.status.rawValue),\(w.hook.events.map(\.description).joined(separator: " ")),"
                + MLflowImport.digest(w.hook.name + "\u{1}" + w.hook.url + "\u{1}" + (w.hook.description ?? "") + "\u{1}" + (w.secret ?? ""))
            if journal.done[key] == fingerprint { continue }
            let existing = try metadata.webhooks(id: w.hook.id).first
            if existing != nil && journal.done[key] == nil && !journal.begun.contains(key) {
                summary.warnings.append("\(name) skipped: a webhook with this id already exists in the target")
                continue
            }
            if let note = w.secretNote {
                summary.warnings.append("\(name) \(dryRun ? "would be imported" : "imported") without its secret, if it has one (\(note)): "
                                        + "deliveries go unsigned until it is set again (update_webhook)")
            }
            summary.webhooks += 1
            if dryRun { continue }
            try journal.begin(key)
            var hook = w.hook
            // An empty secret is none (MLflow then signs nothing); one the source cannot give keeps what Tally has (a
            // secret set again after an earlier import).
            if let secret = w.secret, !secret.isEmpty {
                hook.sealedSecret = try webhooks.secrets.seal(secret)
            } else {
                hook.sealedSecret = w.secretNote == nil ? nil : existing?.sealedSecret
            }
            if existing != nil { _ = try metadata.replaceWebhook(hook) } else { try metadata.insertWebhook(hook) }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }
}
