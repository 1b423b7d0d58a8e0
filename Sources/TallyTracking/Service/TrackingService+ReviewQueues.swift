import Foundation

/// MLflow 3's review queues (`mlflow.genai.review_queues`; `/api/3.0/mlflow/review-queues/…`): traces handed to
/// reviewers, with MLflow's rules and messages (`mlflow/genai/review_queues/validation.py`). A reviewer is named by a
/// user identifier, kept stripped and lower-case (as assessments' sources are matched).
extension TrackingService {
    /// Queues and items are listed 1,000 a page unless asked otherwise.
    static let defaultReviewPage = 1000
    /// At most 10 reviewers a queue.
    static let maxQueueUsers = 10

    /// `review-queues/create`. `queueType` is the proto enum's name (`nil` when absent or unknown). A user queue is
    /// named after its one reviewer and asks every question; a custom one has a name of its own (not `default`, nor a
    /// registered user's), up to 10 reviewers and the questions chosen, each of the experiment. `caller` owns it (with
    /// access control off, no one does) and needs EDIT on the experiment.
    public func createReviewQueue(experimentID: String?, name: String?, queueType: String?, users: [String], schemaIDs: [String],
                                  caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws -> ReviewQueue {
        if !scope.isUnrestricted, let experimentID { try scope.requireQueueCreate(experimentID: experimentID) }
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        guard let type = ReviewQueueType(protoName: queueType) else {
            throw TrackingError.invalid("`queue_type` must be one of USER or CUSTOM; got proto enum value 0.")
        }
        if type == .custom { try refuseUsername(name, caller: caller, renaming: false) }
        return try makeReviewQueue(experimentID: experimentID, name: name, type: type, users: users, schemaIDs: schemaIDs,
                                   owner: caller == .unrestricted ? nil : caller.username)
    }

    /// `review-queues/get-or-create-user`: the user's own queue in the experiment, made when missing (owned by the
    /// user). A custom queue of that name is MLflow's `RESOURCE_ALREADY_EXISTS`.
    public func userReviewQueue(experimentID: String?, user: String?, scope: Grants = .unrestricted) throws -> ReviewQueue {
        if !scope.isUnrestricted, let experimentID { try scope.requireQueueCreate(experimentID: experimentID) }
        let experimentID = try Self.required(experimentID, "experiment_id"), user = try Self.required(user, "user")
        let name = Self.normalizedUser(user)
        do {
            return try makeReviewQueue(experimentID: experimentID, name: name, type: .user, users: [], schemaIDs: [], owner: name)
        } catch let e as TrackingError where e.code == .resourceAlreadyExists {
            let q = try lookUpQueue(experimentID, name)
            guard q.type == .user else {
                throw TrackingError(.resourceAlreadyExists,
                                    "A non-user queue named '\(name)' already exists; cannot get-or-create a user queue with that name.")
            }
            return q
        }
    }

    func makeReviewQueue(experimentID: String, name: String, type: ReviewQueueType, users: [String], schemaIDs: [String], owner: String?) throws -> ReviewQueue {
        var users = try Self.normalizedUsers(users)
        let schemaIDs = try Self.normalizedSchemaIDs(schemaIDs)
        let queueName: String
        switch type {
        case .user:
            queueName = Self.normalizedUser(name)
            try Self.checkIdentifier(queueName, "name", max: 250)
            if users.isEmpty {
                users = [queueName]
            } else if users != [queueName] {
                throw TrackingError.invalid("A user queue must have exactly one assigned user equal to its name; got name=\(PythonRepr.string(queueName)) "
                                            + "and users=\(PythonRepr.strings(users)).")
            }
            guard schemaIDs.isEmpty else {
                throw TrackingError.invalid("A user queue cannot have explicitly-attached schemas; it resolves to all of the experiment's label schemas.")
            }
        case .custom:
            queueName = try Self.customQueueName(name)
        }
        let e = try liveExperiment(experimentID)
        try checkSchemaIDs(schemaIDs, in: e, known: nil)
        let now = clock()
        let q = ReviewQueue(id: "rq-" + RunNames.runID(), experimentID: e, name: queueName, type: type, createdBy: owner, creationTime: now, lastUpdateTime: now,
                            users: users.sorted(by: binaryLess), schemaIDs: schemaIDs.sorted(by: binaryLess))
        guard try metadata.insertReviewQueue(q) else { throw Self.queueNameTaken(queueName) }
        return q
    }

    /// `review-queues/get`: `caller` must be able to view it (``Grants/QueueAction/view``).
    public func reviewQueue(id: String?, caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws -> ReviewQueue {
        try queue(id, .view, caller, scope)
    }

    /// The queue, once `scope` allows `action` on it.
    func queue(_ id: String?, _ action: Grants.QueueAction, _ caller: Caller, _ scope: Grants) throws -> ReviewQueue {
        let id = try Self.required(id, "queue_id")
        guard let q = try metadata.reviewQueue(id: id) else { throw Self.noQueue(id) }
        try scope.requireQueue(action, q, caller: caller)
        return q
    }

    /// `review-queues/get-by-name`: the experiment (existing and active) and the name in any case; `caller` must be
    /// able to view it, and read the experiment's queues before it is looked for.
    public func reviewQueue(experimentID: String?, name: String?, caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws -> ReviewQueue {
        if !scope.isUnrestricted, let experimentID, !scope.reviewQueueLevel(experimentID: experimentID).allows(.read) { throw AccessRules.deniedUnnamed }
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        let q = try lookUpQueue(experimentID, name)
        try scope.requireQueue(.view, q, caller: caller)
        return q
    }

    func lookUpQueue(_ experimentID: String, _ name: String) throws -> ReviewQueue {
        guard let q = try metadata.reviewQueue(experimentID: try liveExperiment(experimentID), name: name) else {
            throw TrackingError.notFound("Review queue with name '\(name)' not found for experiment '\(experimentID)'.")
        }
        return q
    }

    /// `review-queues/list`: a page of the experiment's queues, newest first — those `user` reviews, those holding
    /// `itemID`, when given — and the next page's token (`nil` on the last). A page leaves out the queues `caller`
    /// may not list (``Grants/canList(_:caller:)``) after it is cut, as MLflow's auth app filters its answer.
    public func reviewQueues(experimentID: String?, user: String?, itemID: String?, maxResults: Int64?, pageToken: String?,
                             caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws -> ([ReviewQueue], String?) {
        let experimentID = try Self.required(experimentID, "experiment_id")
        let limit = try Self.reviewPageSize(maxResults, default: Self.defaultReviewPage), offset = try PageToken.decode(pageToken)
        let e = try liveExperiment(experimentID)
        let found = try metadata.reviewQueues(experimentID: e, user: user.map(Self.normalizedUser), itemID: itemID, offset: offset, limit: limit + 1)
        let page = Array(found.prefix(limit)).filter { scope.canList($0, caller: caller) }
        return (page, found.count > limit ? PageToken.encode(offset: offset + limit) : nil)
    }

    /// `review-queues/update`: a custom queue's owner, name, reviewers (`users`, when given) and questions
    /// (`schemaIDs`, when given; only while it holds no items). A user queue is fixed. `caller` must be able to change
    /// it (reassign it, for a new owner); a new name may not be a registered user's.
    public func updateReviewQueue(id: String?, users: [String]?, schemaIDs: [String]?, name: String?, newOwner: String?,
                                  caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws -> ReviewQueue {
        if caller != .unrestricted {
            let q = try queue(id, newOwner == nil ? .change : .reassign, caller, scope)
            if q.type == .custom, let name { try refuseUsername(name, caller: caller, renaming: true) }
        }
        let id = try Self.required(id, "queue_id")
        let now = clock()
        do {
            let updated = try metadata.updateReviewQueue(id: id) { q, items, known in
                guard q.type == .custom else {
                    throw TrackingError.invalid("A user queue's name, assigned user, schemas, and owner are fixed and cannot be updated.")
                }
                guard users != nil || schemaIDs != nil || name != nil || newOwner != nil else { return }
                if let newOwner {
                    let owner = Self.pythonStrip(newOwner)
                    try Self.checkIdentifier(owner, "new_owner", max: 250)
                    q.createdBy = owner
                }
                if let name { q.name = try Self.customQueueName(name) }
                if let users { q.users = try Self.normalizedUsers(users) }
                if let schemaIDs {
                    guard items == 0 else {
                        throw TrackingError.invalid("A review queue's questions are locked once items are assigned to it. "
                                                    + "Remove the items before changing its questions.")
                    }
                    let ids = try Self.normalizedSchemaIDs(schemaIDs)
                    try self.checkSchemaIDs(ids, in: q.experimentID, known: known)
                    q.schemaIDs = ids
                }
                q.lastUpdateTime = now
            }
            guard let updated else { throw Self.noQueue(id) }
            return updated
        } catch let taken as ReviewNameTaken {
            throw Self.queueNameTaken(taken.name)
        }
    }

    /// `review-queues/delete`: the queue with its reviewers, questions and items; nothing to delete is no error
    /// (with access control on it is a 404: MLflow's auth app looks the queue up first). `caller` must be able to
    /// prune it (``Grants/QueueAction/prune``).
    public func deleteReviewQueue(id: String?, caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws {
        if !scope.isUnrestricted { _ = try queue(id, .prune, caller, scope) }
        _ = try metadata.deleteReviewQueue(id: try Self.required(id, "queue_id"))
    }

    /// `review-queues/items/add`: traces of the queue's experiment, added pending (one already there keeps its status).
    /// Every item is a trace (MLflow's only kind: a name its enum lacks is dropped by its parser, leaving the default).
    public func addReviewItems(queueID: String?, itemIDs: [String], caller: Caller = .unrestricted,
                               scope: Grants = .unrestricted) throws -> [ReviewQueueItem] {
        if !scope.isUnrestricted { _ = try queue(queueID, .add, caller, scope) }
        let queueID = try Self.required(queueID, "queue_id")
        let ids = try Self.normalizedItemIDs(itemIDs)
        let q = try reviewQueue(id: queueID)
        let inExperiment = Set(try metadata.traces(ids: ids).filter { String($0.experimentID) == q.experimentID }.map(\.traceID))
        let missing = ids.filter { !inExperiment.contains($0) }
        guard missing.isEmpty else {
            throw TrackingError.notFound("Cannot attach trace(s) \(PythonRepr.strings(missing)) to review queue '\(queueID)': "
                                         + "they do not exist in experiment '\(q.experimentID)'.")
        }
        guard let items = try metadata.addReviewItems(queueID: q.id, itemIDs: ids, itemType: "trace", time: clock()) else { throw Self.noQueue(queueID) }
        return items
    }

    /// `review-queues/items/remove`: `caller` must be able to prune the queue.
    public func removeReviewItems(queueID: String?, itemIDs: [String], caller: Caller = .unrestricted, scope: Grants = .unrestricted) throws {
        if !scope.isUnrestricted { _ = try queue(queueID, .prune, caller, scope) }
        let queueID = try Self.required(queueID, "queue_id")
        let ids = try Self.normalizedItemIDs(itemIDs)
        guard try metadata.removeReviewItems(queueID: queueID, itemIDs: ids) else { throw Self.noQueue(queueID) }
    }

    /// `review-queues/items/list`: a page of the queue's items (of `status`, a proto enum name, when given), newest
    /// first, and the next page's token (`nil` on the last). `caller` must be able to view the queue.
    public func reviewItems(queueID: String?, status: String?, maxResults: Int64?, pageToken: String?, caller: Caller = .unrestricted,
                            scope: Grants = .unrestricted) throws -> ([ReviewQueueItem], String?) {
        if !scope.isUnrestricted { _ = try queue(queueID, .view, caller, scope) }
        let queueID = try Self.required(queueID, "queue_id")
        let limit = try Self.reviewPageSize(maxResults, default: Self.defaultReviewPage), offset = try PageToken.decode(pageToken)
        let wanted = ReviewStatus(protoName: status)
        guard let found = try metadata.reviewItems(queueID: queueID, status: wanted, offset: offset, limit: limit + 1) else { throw Self.noQueue(queueID) }
        return found.count > limit ? (Array(found.prefix(limit)), PageToken.encode(offset: offset + limit)) : (found, nil)
    }

    /// `review-queues/items/set-status`: `status` (a proto enum name) by `completedBy` — with access control on, the
    /// route gives the caller (none for `PENDING`); off, the client's value. Completing or declining needs someone;
    /// reopening clears who. The same status again changes nothing (the first completer stays). `caller` must be one of
    /// the queue's reviewers, with EDIT.
    public func setReviewItemStatus(queueID: String?, itemID: String?, status: String?, completedBy: String?, caller: Caller = .unrestricted,
                                    scope: Grants = .unrestricted) throws -> ReviewQueueItem {
        if !scope.isUnrestricted { _ = try queue(queueID, .review, caller, scope) }
        let queueID = try Self.required(queueID, "queue_id"), itemID = Self.pythonStrip(try Self.required(itemID, "item_id"))
        guard let status = ReviewStatus(protoName: status) else {
            throw TrackingError.invalid("`status` must be one of PENDING, COMPLETE, or DECLINED; got proto enum value 0.")
        }
        // With access control on, the caller is who did it (a client cannot name someone else); off, the client says.
        let by = caller == .unrestricted ? completedBy.map(Self.normalizedUser) : status == .pending ? nil : Self.normalizedUser(caller.username)
        if status == .pending {
            guard by == nil else { throw TrackingError.invalid("`completed_by` must not be set when reopening an item to `pending`.") }
        } else if by?.isEmpty ?? true {
            throw TrackingError.invalid("`completed_by` is required when setting status to `\(status.rawValue)`.")
        }
        if let n = by?.unicodeScalars.count, n > 250 { throw TrackingError.invalid("`completed_by` must be at most 250 characters; got \(n).") }
        let now = clock()
        switch try metadata.updateReviewItem(queueID: queueID, itemID: itemID, { item in
            guard item.status != status else { return false }
            item.status = status
            item.lastUpdateTime = now
            item.completedBy = status == .pending ? nil : by
            item.completedTime = status == .pending ? nil : now
            return true
        }) {
        case .noQueue: throw Self.noQueue(queueID)
        case .noItem: throw TrackingError.notFound("Item '\(itemID)' is not attached to review queue '\(queueID)'.")
        case .item(let i): return i
        }
    }

    // MARK: Rules

    /// A reviewer's identifier as MLflow keeps it: stripped, lower-case.
    static func normalizedUser(_ user: String) -> String { pythonStrip(user).lowercased() }

    /// `values` normalized, each checked (1–`max` characters), repeats dropped (the first kept, in order).
    static func distinct(_ values: [String], _ field: String, max: Int, _ normalize: (String) -> String) throws -> [String] {
        var out: [String] = [], seen = Set<String>()
        for v in values.map(normalize) {
            try checkIdentifier(v, field, max: max)
            if seen.insert(v).inserted { out.append(v) }
        }
        return out
    }

    /// Reviewers: each normalized and 1–250 characters, repeats dropped, at most 10.
    static func normalizedUsers(_ users: [String]) throws -> [String] {
        let out = try distinct(users, "user", max: 250, normalizedUser)
        guard out.count <= maxQueueUsers else {
            throw TrackingError.invalid("A review queue can have at most \(maxQueueUsers) assigned users; got \(out.count).")
        }
        return out
    }

    /// Label schema ids: stripped, 1–36 characters, repeats dropped.
    static func normalizedSchemaIDs(_ ids: [String]) throws -> [String] { try distinct(ids, "schema_id", max: 36, pythonStrip) }

    /// Item ids: at least one; each stripped, 1–50 characters; repeats dropped.
    static func normalizedItemIDs(_ ids: [String]) throws -> [String] {
        guard !ids.isEmpty else { throw TrackingError.invalid("`item_ids` must be a non-empty list; got [].") }
        return try distinct(ids, "item_id", max: 50, pythonStrip)
    }

    /// A custom queue's name: stripped, 1–250 characters, not `default` in any case.
    static func customQueueName(_ name: String) throws -> String {
        let n = pythonStrip(name)
        try checkIdentifier(n, "name", max: 250)
        guard n.lowercased() != "default" else {
            throw TrackingError.invalid("`\(n)` is a reserved queue name and cannot be used for a custom queue.")
        }
        return n
    }

    static func checkIdentifier(_ s: String, _ field: String, max: Int) throws {
        guard !s.isEmpty else { throw TrackingError.invalid("`\(field)` must be a non-empty string; got ''.") }
        let n = s.unicodeScalars.count
        guard n <= max else { throw TrackingError.invalid("`\(field)` must be at most \(max) characters; got \(n).") }
    }

    /// Each id must be one of the experiment's label schemas (`known`, or read now).
    func checkSchemaIDs(_ ids: [String], in experimentID: String, known: Set<String>?) throws {
        guard !ids.isEmpty else { return }
        let have = try known ?? metadata.labelSchemaIDs(experimentID: experimentID)
        let missing = ids.filter { !have.contains($0) }
        guard missing.isEmpty else {
            throw TrackingError.invalid("Label schema id(s) \(PythonRepr.strings(missing)) not found for experiment '\(experimentID)'.")
        }
    }

    /// MLflow's refusal of a custom queue named after a registered user (in any case), whose own queue it would
    /// shadow; for everyone, admins included, once there are users (access control on).
    func refuseUsername(_ name: String, caller: Caller, renaming: Bool) throws {
        guard caller != .unrestricted else { return }
        let target = Self.normalizedUser(name)
        guard !target.isEmpty, let user = try metadata.users().first(where: { Self.normalizedUser($0.username) == target }) else { return }
        throw TrackingError.invalid("'\(user.username)' is a registered user. A custom review queue cannot "
                                    + (renaming ? "be renamed to a username" : "use a username as its name") + "; assign that user to a queue instead.")
    }

    static func noQueue(_ id: String) -> TrackingError { TrackingError.notFound("Review queue with id '\(id)' not found.") }

    static func queueNameTaken(_ name: String) -> TrackingError {
        TrackingError(.resourceAlreadyExists, "Review queue with name '\(name)' already exists (names are case-insensitive).")
    }
}
