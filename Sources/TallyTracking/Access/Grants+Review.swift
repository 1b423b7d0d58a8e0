/// MLflow's auth app's rules for review queues (`mlflow/server/auth`: "Review queues & label schemas"). A queue's level
/// is its experiment's, or the `review_queue` `*` grant's when there is one — and nothing without READ on the
/// experiment. Owners (`created_by`) and reviewers (`users`) get more than their level alone gives them.
extension Grants {
    /// What a route does to a queue.
    public enum QueueAction: Sendable {
        /// Read it or its items: MANAGE, or READ as one of its reviewers, or EDIT as its owner.
        case view
        /// Change its name, reviewers or questions: MANAGE, or EDIT as its owner.
        case change
        /// Give it another owner: MANAGE.
        case reassign
        /// Delete it or take items out: MANAGE, or EDIT as the owner of a custom queue.
        case prune
        /// Add items: EDIT.
        case add
        /// Set an item's status: EDIT as one of its reviewers (a manager too must be one).
        case review
    }

    /// The level on the review queues of an experiment.
    public func reviewQueueLevel(experimentID: String) -> Permission {
        if isUnrestricted { return .manage }
        let experiment = permission(on: .experiment(experimentID))
        guard experiment.allows(.read) else { return .noPermissions }
        if grants[Resource(.reviewQueue, "*")] == .deny { return .deny }
        return grants[Resource(.reviewQueue, "*")] ?? experiment
    }

    /// Throws 403 unless `caller` may do `action` to `queue`.
    public func requireQueue(_ action: QueueAction, _ queue: ReviewQueue, caller: Caller) throws {
        guard !isUnrestricted else { return }
        let level = reviewQueueLevel(experimentID: queue.experimentID)
        let member = Self.isMember(queue, caller), owner = Self.isOwner(queue, caller)
        let allowed = switch action {
        case .view: level.allows(.read) && (level.allows(.manage) || member || (level.allows(.update) && owner))
        case .change: level.allows(.manage) || (level.allows(.update) && owner)
        case .reassign: level.allows(.manage)
        case .prune: level.allows(.manage) || (level.allows(.update) && owner && queue.type == .custom)
        case .add: level.allows(.update)
        case .review: level.allows(.update) && member
        }
        guard allowed else { throw AccessRules.deniedUnnamed }
    }

    /// Throws 403 unless the caller may make a queue in the experiment: EDIT on it, and no DENY on every queue.
    public func requireQueueCreate(experimentID: String) throws {
        try require(.update, on: .experiment(experimentID))
        try requireCreate(.reviewQueue)
    }

    /// Whether a listing shows the queue: everything to EDIT and above, a queue's reviewers only theirs.
    public func canList(_ queue: ReviewQueue, caller: Caller) -> Bool {
        if isUnrestricted { return true }
        let level = reviewQueueLevel(experimentID: queue.experimentID)
        return level.allows(.update) || (level.allows(.read) && Self.isMember(queue, caller))
    }

    /// Whether the caller is one of the queue's reviewers (kept lower-case and stripped, as the caller's name is
    /// compared).
    static func isMember(_ q: ReviewQueue, _ caller: Caller) -> Bool {
        q.users.contains(TrackingService.normalizedUser(caller.username))
    }

    /// Whether the caller owns the queue (names compared in any case).
    static func isOwner(_ q: ReviewQueue, _ caller: Caller) -> Bool {
        let owner = TrackingService.normalizedUser(q.createdBy ?? "")
        return !owner.isEmpty && owner == TrackingService.normalizedUser(caller.username)
    }
}
