import NIOHTTP1
import TallyTracking

/// Label schemas and review queues through MLflow's API (3.14 and later; none from an older server, which answers 404,
/// nor from a deleted experiment, which MLflow's API refuses with 404). MLflow makes an experiment's default question
/// the first time its questions are listed, so reading them may add it there.
extension MLflowRESTSource {
    /// The experiment's label schemas, review queues and their items (ids and times kept).
    public func review(experimentID: String) throws -> SourceReview {
        let ls = "/api/3.0/mlflow/label-schemas/", rq = "/api/3.0/mlflow/review-queues/"
        var out = SourceReview()
        let schemas = try Self.pages("label_schemas") {
            try http.json(.GET, ls + "list", query: Self.query([("experiment_id", experimentID), ("max_results", "1000")], token: $0), allowing: [400, 404])
        }
        out.schemas = try schemas.map { s in
            LabelSchema(id: s["schema_id"]?.text ?? "", experimentID: experimentID, name: s["name"]?.text ?? "",
                        type: LabelSchemaType(protoName: s["type"]?.text) ?? .feedback,
                        input: try TrackingService.labelInput(s["input"]), instruction: s["instruction"]?.text,
                        enableComment: s["enable_comment"] == .bool(true), createdBy: s["created_by"]?.text, creationTime: s["created_at"]?.int64 ?? 0,
                        lastUpdateTime: s["last_updated_at"]?.int64 ?? 0, isDefault: s["is_default"] == .bool(true))
        }
        let queues = try Self.pages("review_queues") {
            try http.json(.GET, rq + "list", query: Self.query([("experiment_id", experimentID), ("max_results", "1000")], token: $0), allowing: [400, 404])
        }
        for q in queues {
            let id = q["queue_id"]?.text ?? ""
            out.queues.append(ReviewQueue(id: id, experimentID: experimentID, name: q["name"]?.text ?? "",
                                          type: q["queue_type"]?.text == "USER" ? .user : .custom, createdBy: q["created_by"]?.text,
                                          creationTime: q["creation_time_ms"]?.int64 ?? 0, lastUpdateTime: q["last_update_time_ms"]?.int64 ?? 0,
                                          users: q["users"].items.compactMap(\.text), schemaIDs: q["schema_ids"].items.compactMap(\.text)))
            let items = try Self.pages("items") {
                try http.json(.GET, rq + "items/list", query: Self.query([("queue_id", id), ("max_results", "1000")], token: $0), allowing: [404])
            }
            out.items += items.map { i in
                ReviewQueueItem(queueID: id, itemType: (i["item_type"]?.text ?? "TRACE").lowercased(), itemID: i["item_id"]?.text ?? "",
                                status: ReviewStatus(protoName: i["status"]?.text) ?? .pending, completedBy: i["completed_by"]?.text,
                                completedTime: i["completed_time_ms"]?.int64, creationTime: i["creation_time_ms"]?.int64 ?? 0,
                                lastUpdateTime: i["last_update_time_ms"]?.int64 ?? 0)
            }
        }
        return out
    }
}
