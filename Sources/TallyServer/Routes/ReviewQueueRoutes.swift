import Hummingbird
import TallyTracking

/// MLflow 3's review queues under `/api/3.0/mlflow/review-queues` (and the UI's `ajax-api`), as
/// `mlflow.genai.review_queues` calls them. Who may do what depends on the queue (its owner, its reviewers), so the
/// service checks MLflow's auth app's rules once it has found the queue (``Grants/requireQueue(_:_:caller:)``).
struct ReviewQueueRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("review-queues/create", .post, access: .user, use: e.json { r in
            let q = try s.createReviewQueue(experimentID: try r.string("experiment_id"), name: try r.string("name"),
                                            queueType: try r.enumName("queue_type", numbers: ReviewQueueType.protoNames), users: try r.strings("users"),
                                            schemaIDs: try r.strings("schema_ids"), caller: r.caller, scope: r.grants)
            return Render.wrap("review_queue", Self.queue(q))
        })
        t.on("review-queues/get-or-create-user", .post, access: .user, use: e.json { r in
            Render.wrap("review_queue", Self.queue(try s.userReviewQueue(experimentID: try r.string("experiment_id"), user: try r.string("user"),
                                                                         scope: r.grants)))
        })
        t.on("review-queues/get", .get, access: .user, use: e.json { r in
            Render.wrap("review_queue", Self.queue(try s.reviewQueue(id: try r.string("queue_id"), caller: r.caller, scope: r.grants)))
        })
        t.on("review-queues/get-by-name", .get, access: .user, use: e.json { r in
            Render.wrap("review_queue", Self.queue(try s.reviewQueue(experimentID: try r.string("experiment_id"), name: try r.string("name"),
                                                                     caller: r.caller, scope: r.grants)))
        })
        t.on("review-queues/list", .get, access: .needs(.read, .experimentField("experiment_id")), use: e.json { r in
            let (list, next) = try s.reviewQueues(experimentID: try r.string("experiment_id"), user: try r.string("user"), itemID: try r.string("item_id"),
                                                  maxResults: try r.int64("max_results"), pageToken: try r.string("page_token"),
                                                  caller: r.caller, scope: r.grants)
            return Render.page("review_queues", list.map(Self.queue), next: next)
        })
        t.on("review-queues/update", .post, access: .user, use: e.json { r in
            let q = try s.updateReviewQueue(id: try r.string("queue_id"), users: try r.bool("update_users") == true ? try r.strings("users") : nil,
                                            schemaIDs: try r.bool("update_schema_ids") == true ? try r.strings("schema_ids") : nil,
                                            name: try r.string("name"), newOwner: try r.string("new_owner"), caller: r.caller, scope: r.grants)
            return Render.wrap("review_queue", Self.queue(q))
        })
        t.on("review-queues/delete", .post, access: .user, use: e.json { r in
            try s.deleteReviewQueue(id: try r.string("queue_id"), caller: r.caller, scope: r.grants)
            return Endpoints.empty
        })
        t.on("review-queues/items/add", .post, access: .user, use: e.json { r in
            _ = try r.enumName("item_type", numbers: [0: "REVIEW_ITEM_TYPE_UNSPECIFIED", 1: "TRACE"])  // a number the enum lacks is refused
            let items = try s.addReviewItems(queueID: try r.string("queue_id"), itemIDs: try r.strings("item_ids"), caller: r.caller, scope: r.grants)
            var o = Obj()
            o.add("items", array: items.map(Self.item))
            return o.json
        })
        t.on("review-queues/items/remove", .post, access: .user, use: e.json { r in
            try s.removeReviewItems(queueID: try r.string("queue_id"), itemIDs: try r.strings("item_ids"), caller: r.caller, scope: r.grants)
            return Endpoints.empty
        })
        t.on("review-queues/items/list", .get, access: .user, use: e.json { r in
            let (items, next) = try s.reviewItems(queueID: try r.string("queue_id"), status: try r.enumName("status", numbers: ReviewStatus.protoNames),
                                                  maxResults: try r.int64("max_results"), pageToken: try r.string("page_token"),
                                                  caller: r.caller, scope: r.grants)
            return Render.page("items", items.map(Self.item), next: next)
        })
        t.on("review-queues/items/set-status", .post, access: .user, use: e.json { r in
            let item = try s.setReviewItemStatus(queueID: try r.string("queue_id"), itemID: try r.string("item_id"),
                                                 status: try r.enumName("status", numbers: ReviewStatus.protoNames),
                                                 completedBy: try r.string("completed_by"), caller: r.caller, scope: r.grants)
            return Render.wrap("item", Self.item(item))
        })
    }

    /// MLflow's `ReviewQueue` message, its fields in the proto's order (empty lists left out).
    static func queue(_ q: ReviewQueue) -> String {
        var o = Obj()
        o.add("queue_id", q.id)
        o.add("experiment_id", q.experimentID)
        o.add("name", q.name)
        o.add("queue_type", q.type.protoName)
        o.add("created_by", q.createdBy)
        o.add("creation_time_ms", q.creationTime)
        o.add("last_update_time_ms", q.lastUpdateTime)
        o.add("users", array: q.users.map(JSONWriter.quote))
        o.add("schema_ids", array: q.schemaIDs.map(JSONWriter.quote))
        return o.json
    }

    /// MLflow's `ReviewQueueItem` message.
    static func item(_ i: ReviewQueueItem) -> String {
        var o = Obj()
        o.add("queue_id", i.queueID)
        o.add("item_type", i.itemType.uppercased())
        o.add("item_id", i.itemID)
        o.add("status", i.status.protoName)
        o.add("completed_by", i.completedBy)
        o.add("completed_time_ms", i.completedTime)
        o.add("creation_time_ms", i.creationTime)
        o.add("last_update_time_ms", i.lastUpdateTime)
        return o.json
    }
}
