/// MLflow 3's label schemas and review queues, read from the same database (none where the schema predates them).
extension MLflowSQLSource {
    func review(experimentID: String) throws -> SourceReview {
        guard has("label_schemas"), has("review_queues"), let e = Int64(experimentID) else { return SourceReview() }
        var out = SourceReview()
        // Booleans as 0/1 on both databases (PostgreSQL's are `boolean`).
        try query("""
            SELECT schema_id, name, type, instruction, CASE WHEN enable_comment THEN 1 ELSE 0 END, input_type, input_config, created_by, \
            created_time, last_update_time, CASE WHEN is_default THEN 1 ELSE 0 END FROM label_schemas WHERE experiment_id = ? ORDER BY created_time, schema_id
            """, [.integer(e)]) { r in
            out.schemas.append(try ReviewSQL.schema([r[0], .text(experimentID), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]]))
        }
        try query("""
            SELECT queue_id, name, queue_type, created_by, creation_time_ms, last_update_time_ms FROM review_queues WHERE experiment_id = ?
            ORDER BY creation_time_ms, queue_id
            """, [.integer(e)]) { r in
            out.queues.append(ReviewQueue(id: r[0].string ?? "", experimentID: experimentID, name: r[1].string ?? "",
                                          type: ReviewQueueType(rawValue: r[2].string ?? "") ?? .custom, createdBy: r[3].string,
                                          creationTime: r[4].int ?? 0, lastUpdateTime: r[5].int ?? 0, users: [], schemaIDs: []))
        }
        guard !out.queues.isEmpty else { return out }
        let at = Dictionary(out.queues.indices.map { (out.queues[$0].id, $0) }, uniquingKeysWith: { a, _ in a })
        let inExperiment = "SELECT queue_id FROM review_queues WHERE experiment_id = ?"
        if has("review_queue_users") {
            try query("SELECT queue_id, user_id FROM review_queue_users WHERE queue_id IN (\(inExperiment)) ORDER BY user_id", [.integer(e)]) { r in
                if let i = at[r[0].string ?? ""] { out.queues[i].users.append(r[1].string ?? "") }
            }
        }
        if has("review_queue_label_schemas") {
            try query("SELECT queue_id, schema_id FROM review_queue_label_schemas WHERE queue_id IN (\(inExperiment)) ORDER BY schema_id", [.integer(e)]) { r in
                if let i = at[r[0].string ?? ""] { out.queues[i].schemaIDs.append(r[1].string ?? "") }
            }
        }
        if has("review_queue_items") {
            try query("""
                SELECT queue_id, item_type, item_id, status, completed_by, completed_time_ms, creation_time_ms, last_update_time_ms FROM review_queue_items
                WHERE queue_id IN (\(inExperiment)) ORDER BY queue_id, creation_time_ms, item_id
                """, [.integer(e)]) { r in out.items.append(ReviewSQL.item(r)) }
        }
        return out
    }
}
