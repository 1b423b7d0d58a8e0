/// Label schemas and review queues, exported with their experiment. MLflow gives each schema and queue a new id, so
/// a queue's questions are sent as MLflow's ids of them; traces keep theirs, so items do too. Owners are set (a
/// custom queue's through `new_owner`); who completed an item is sent with it, which MLflow keeps unless its auth app
/// puts its own caller there.
extension MLflowExport {
    /// Exports the label schemas and review queues of Tally's experiment `e` into MLflow's experiment `target`.
    /// Journaled per experiment: unchanged since, skipped; changed, each schema and queue sent before is deleted in
    /// MLflow and sent again (a queue with its items). One of the same name MLflow already has, not from this export,
    /// is left alone (a queue's question of that name is then MLflow's).
    func exportReview(of e: Experiment, into target: String, service: TrackingService, to destination: any MLflowDestination,
                      journal: inout ImportJournal, summary: inout Summary) throws {
        let review = try service.metadata.review(experimentID: e.experimentID)
        guard !review.schemas.isEmpty || !review.queues.isEmpty else { return }
        let key = "review:" + e.experimentID, fingerprint = MLflowImport.reviewFingerprint(review)
        if journal.done[key] == fingerprint { return }
        let again = journal.done[key] != nil || journal.begun.contains(key)
        do {
            try journal.begin(key)
            var ids: [String: String] = [:]  // Tally's schema id → MLflow's
            for s in review.schemas {
                if s.isDefault {
                    ids[s.id] = try destination.defaultLabelSchemaID(experimentID: target)
                    continue
                }
                if let theirs = try destination.labelSchemaID(experimentID: target, name: s.name) {
                    guard again else {
                        summary.warnings.append("label schema '\(s.name)' of experiment \(e.experimentID) not exported: MLflow's experiment \(target) "
                                                + "already has one of this name")
                        ids[s.id] = theirs
                        continue
                    }
                    try destination.deleteLabelSchema(id: theirs)
                }
                ids[s.id] = try destination.createLabelSchema(s, experimentID: target)
                summary.labelSchemas += 1
            }
            for q in review.queues {
                if let theirs = try destination.reviewQueueID(experimentID: target, name: q.name) {
                    guard again else {
                        summary.warnings.append("review queue '\(q.name)' of experiment \(e.experimentID) not exported: MLflow's experiment \(target) "
                                                + "already has one of this name")
                        continue
                    }
                    try destination.deleteReviewQueue(id: theirs)
                }
                let id: String
                if q.type == .user {
                    id = try destination.userReviewQueue(experimentID: target, user: q.name)
                } else {
                    id = try destination.createReviewQueue(q, experimentID: target, schemaIDs: q.schemaIDs.compactMap { ids[$0] })
                    if let owner = q.createdBy { try destination.setReviewQueueOwner(id: id, owner: owner) }
                }
                summary.reviewQueues += 1
                let items = review.items.filter { $0.queueID == q.id }
                for chunk in items.chunks(of: 100) where !chunk.isEmpty {
                    try destination.addReviewItems(queueID: id, itemIDs: chunk.map(\.itemID))
                }
                for i in items where i.status != .pending {
                    try destination.setReviewItemStatus(queueID: id, itemID: i.itemID, status: i.status, completedBy: i.completedBy)
                }
                summary.reviewItems += items.count
            }
        } catch let err as TrackingError where [.resourceDoesNotExist, .permissionDenied].contains(err.code) {
            // An MLflow without human review (before 3.14: 404), or whose auth app refuses the caller (403).
            summary.warnings.append("label schemas and review queues of experiment \(e.experimentID) not exported: \(err.message)")
            return
        }
        try journal.finish(key, fingerprint: fingerprint)
    }
}
