import NIOHTTP1
import TallyTracking

/// Label schemas and review queues sent to MLflow (`tally export mlflow`).
extension MLflowRESTDestination {
    static let labelSchemas = "/api/3.0/mlflow/label-schemas/", reviewQueues = "/api/3.0/mlflow/review-queues/"

    public func labelSchemaID(experimentID: String, name: String) throws -> String? {
        try http.json(.GET, Self.labelSchemas + "get-by-name", query: [("experiment_id", experimentID), ("name", name)], allowing: [404])?["label_schema"]?["schema_id"]?.text
    }

    public func defaultLabelSchemaID(experimentID: String) throws -> String? {
        try http.json(.GET, Self.labelSchemas + "list", query: [("experiment_id", experimentID), ("max_results", "50000")])?["label_schemas"].items
            .first { $0["is_default"] == .bool(true) }?["schema_id"]?.text
    }

    public func createLabelSchema(_ s: LabelSchema, experimentID: String) throws -> String {
        var o = Obj()
        o.add("experiment_id", experimentID)
        o.add("name", s.name)
        o.add("type", s.type.protoName)
        o.add("input", raw: LabelSchemaRoutes.input(s.input))
        o.add("instruction", s.instruction)
        o.add("enable_comment", bool: s.enableComment)
        let made = try http.json(.POST, Self.labelSchemas + "create", body: o.json, idempotent: false)
        guard let id = made?["label_schema"]?["schema_id"]?.text else {
            throw TrackingError(.internalError, "MLflow at \(http.base) made label schema '\(s.name)' without giving its id")
        }
        return id
    }

    public func deleteLabelSchema(id: String) throws {
        _ = try http.json(.DELETE, Self.labelSchemas + "delete", body: "{\"schema_id\":" + JSONText.quote(id) + "}", allowing: [404])
    }

    public func reviewQueueID(experimentID: String, name: String) throws -> String? {
        try http.json(.GET, Self.reviewQueues + "get-by-name", query: [("experiment_id", experimentID), ("name", name)], allowing: [404])?["review_queue"]?["queue_id"]?.text
    }

    public func createReviewQueue(_ q: ReviewQueue, experimentID: String, schemaIDs: [String]) throws -> String {
        var o = Obj()
        o.add("experiment_id", experimentID)
        o.add("name", q.name)
        o.add("queue_type", q.type.protoName)
        o.add("users", array: q.users.map(JSONText.quote))
        o.add("schema_ids", array: schemaIDs.map(JSONText.quote))
        return try queueID(http.json(.POST, Self.reviewQueues + "create", body: o.json, idempotent: false), q.name)
    }

    public func userReviewQueue(experimentID: String, user: String) throws -> String {
        try queueID(http.json(.POST, Self.reviewQueues + "get-or-create-user",
                              body: "{\"experiment_id\":" + JSONText.quote(experimentID) + ",\"user\":" + JSONText.quote(user) + "}"), user)
    }

    func queueID(_ answer: JSONValue?, _ name: String) throws -> String {
        guard let id = answer?["review_queue"]?["queue_id"]?.text else {
            throw TrackingError(.internalError, "MLflow at \(http.base) made review queue '\(name)' without giving its id")
        }
        return id
    }

    public func setReviewQueueOwner(id: String, owner: String) throws {
        _ = try http.json(.POST, Self.reviewQueues + "update", body: "{\"queue_id\":" + JSONText.quote(id) + ",\"new_owner\":" + JSONText.quote(owner) + "}")
    }

    public func deleteReviewQueue(id: String) throws {
        _ = try http.json(.POST, Self.reviewQueues + "delete", body: "{\"queue_id\":" + JSONText.quote(id) + "}", allowing: [404])
    }

    public func addReviewItems(queueID: String, itemIDs: [String]) throws {
        _ = try http.json(.POST, Self.reviewQueues + "items/add",
                          body: "{\"queue_id\":" + JSONText.quote(queueID) + ",\"item_ids\":[" + itemIDs.map(JSONText.quote).joined(separator: ",") + "]}")
    }

    public func setReviewItemStatus(queueID: String, itemID: String, status: ReviewStatus, completedBy: String?) throws {
        var o = Obj()
        o.add("queue_id", queueID)
        o.add("item_id", itemID)
        o.add("status", status.protoName)
        o.add("completed_by", completedBy)
        _ = try http.json(.POST, Self.reviewQueues + "items/set-status", body: o.json)
    }
}
