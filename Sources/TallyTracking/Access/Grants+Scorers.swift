/// MLflow's auth app's rules for registered scorers: a scorer is a resource of its own (`scorer`,
/// `<experiment id>/<name, percent-encoded>`, ``TrackingService/scorerResource(experimentID:name:)``), its versions a
/// tier (`scorer_version`, `*` only) whose grant, when there is one, governs their reads and deletes.
extension Grants {
    /// The level on the experiment's scorer `name`: DENY on it or on every scorer (`*`) beats everything; else its own
    /// grant, the `*` grant, or — where MLflow would take the default level — its experiment's level, so a scorer is
    /// never more readable than its experiment unless a grant says so.
    public func permission(onScorer name: String, experimentID: String) -> Permission {
        if isUnrestricted { return .manage }
        let r = TrackingService.scorerResource(experimentID: experimentID, name: name)
        let own = grants[r], wildcard = grants[Resource(.scorer, "*")]
        if own == .deny || wildcard == .deny { return .deny }
        return own ?? wildcard ?? permission(on: .experiment(experimentID))
    }

    /// The level the version tier gives: its `*` grant when there is one, else the scorer's.
    func scorerVersionTier(_ name: String, experimentID: String) -> Permission {
        grants[Resource(.scorerVersion, "*")] ?? permission(onScorer: name, experimentID: experimentID)
    }

    /// Throws 403 unless the caller may do `need` to the experiment's scorer `name`: `.update` registers a version
    /// (EDIT on the experiment; no DENY on the scorer or its versions), `.read` reads it (READ on the scorer, no DENY
    /// on its versions), `.delete` deletes it — or with `version`, one version (MANAGE on the scorer, or READ with a
    /// version; MANAGE on the version tier either way).
    public func requireScorer(_ need: Permission.Need, experimentID: String, name: String, version: Int64? = nil) throws {
        if isUnrestricted { return }
        let scorer = TrackingService.scorerResource(experimentID: experimentID, name: name)
        let level = permission(onScorer: name, experimentID: experimentID), tier = scorerVersionTier(name, experimentID: experimentID)
        switch need {
        case .update:
            try require(.update, on: .experiment(experimentID))
            guard level != .deny, tier != .deny else { throw AccessRules.denied(.read, scorer) }
        case .delete, .manage:
            guard level.allows(version == nil ? .delete : .read) else { throw AccessRules.denied(version == nil ? .delete : .read, scorer) }
            guard tier.allows(.delete) else { throw AccessRules.denied(.delete, Resource(.scorerVersion, "*")) }
        case .read, .use:
            guard level.allows(need) else { throw AccessRules.denied(need, scorer) }
            guard tier != .deny else { throw AccessRules.denied(.read, Resource(.scorerVersion, "*")) }
        }
    }

    /// Whether a listing shows the experiment's scorer `name` (READ on its experiment and on it, no DENY on versions).
    public func canRead(scorer name: String, experimentID: String) -> Bool {
        isUnrestricted || (canRead(experiment: experimentID) && permission(onScorer: name, experimentID: experimentID).allows(.read)
                           && scorerVersionTier(name, experimentID: experimentID) != .deny)
    }
}
