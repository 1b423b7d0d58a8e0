extension TrackingService {
    /// Imports an experiment's label schemas and review queues (MLflow 3) into `experiment`: ids, names, owners,
    /// reviewers, questions, items and their statuses and times kept. Journaled per experiment: a rerun skips an
    /// experiment whose review MLflow has not changed since, and otherwise replaces each schema and queue it brings
    /// (a queue with its items). One Tally already has by name under another id is left alone, and said; so are items
    /// whose trace the target experiment does not hold. The default question comes as MLflow's, replacing Tally's.
    func importReview(of source: Experiment, into experiment: Experiment, from db: any MLflowSource, journal: inout ImportJournal,
                      summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        let r = try db.review(experimentID: source.experimentID)
        guard !r.schemas.isEmpty || !r.queues.isEmpty else { return }
        let key = "review:" + source.experimentID, fingerprint = MLflowImport.reviewFingerprint(r)
        if journal.done[key] == fingerprint { return }
        let e = experiment.experimentID, incoming = Set(r.schemas.map(\.id) + r.queues.map(\.id))
        var schemas: [LabelSchema] = [], queues: [ReviewQueue] = [], items: [ReviewQueueItem] = []
        for var s in r.schemas {
            s.experimentID = e
            if let held = try metadata.labelSchema(experimentID: e, name: s.name), held.id != s.id, !incoming.contains(held.id),
               !(held.isDefault && s.isDefault) {
                summary.warnings.append("label schema '\(s.name)' of experiment \(source.experimentID) skipped: the target's experiment \(e) "
                                        + "already has a label schema of this name")
                continue
            }
            schemas.append(s)
        }
        for var q in r.queues {
            q.experimentID = e
            if let held = try metadata.reviewQueue(experimentID: e, name: q.name), held.id != q.id, !incoming.contains(held.id) {
                summary.warnings.append("review queue '\(q.name)' of experiment \(source.experimentID) skipped: the target's experiment \(e) "
                                        + "already has a review queue of this name")
                continue
            }
            queues.append(q)
        }
        let kept = Set(queues.map(\.id))
        let wanted = r.items.filter { kept.contains($0.queueID) }
        let traces = Set(try metadata.traces(ids: Array(Set(wanted.map(\.itemID)))).filter { $0.experimentID == e }.map(\.traceID))
        items = wanted.filter { $0.itemType != "trace" || traces.contains($0.itemID) }
        if items.count < wanted.count {
            summary.warnings.append("\(wanted.count - items.count) review queue item(s) of experiment \(source.experimentID) skipped: "
                                    + "their traces are not in the target's experiment \(e)")
        }
        summary.labelSchemas += schemas.count
        summary.reviewQueues += queues.count
        summary.reviewItems += items.count
        if dryRun { return }
        try journal.begin(key)
        try metadata.transaction {
            // MLflow's default question replaces the one Tally made (an experiment has one).
            if let theirs = schemas.first(where: \.isDefault), let mine = try metadata.labelSchema(experimentID: e, name: theirs.name), mine.isDefault,
               !incoming.contains(mine.id) {
                _ = try metadata.deleteLabelSchema(id: mine.id) { _ in }
            }
            try metadata.importReview(schemas: schemas, queues: queues, items: items)
        }
        try metadata.checkpoint()
        try journal.finish(key, fingerprint: fingerprint)
    }
}

extension MLflowImport {
    /// What an import journals of an experiment's review: every field of its schemas, queues and items.
    static func reviewFingerprint(_ r: SourceReview) -> String {
        let schemas = r.schemas.map { s in
            [s.id, s.name, s.type.rawValue, s.instruction ?? "\u{0}", "\(s.enableComment)", ReviewSQL.inputConfig(s.input).1, s.createdBy ?? "\u{0}",
             "\(s.creationTime)", "\(s.lastUpdateTime)", "\(s.isDefault)"].joined(separator: "\u{1}")
        }
        let queues = r.queues.map { q in
            ([q.id, q.name, q.type.rawValue, q.createdBy ?? "\u{0}", "\(q.creationTime)", "\(q.lastUpdateTime)"] + q.users + ["\u{3}"] + q.schemaIDs)
                .joined(separator: "\u{1}")
        }
        let items = r.items.map { i in
            [i.queueID, i.itemType, i.itemID, i.status.rawValue, i.completedBy ?? "\u{0}", "\(i.completedTime ?? -1)", "\(i.creationTime)",
             "\(i.lastUpdateTime)"].joined(separator: "\u{1}")
        }
        return digest((schemas + ["\u{4}"] + queues + ["\u{4}"] + items).joined(separator: "\u{2}"))
    }
}
