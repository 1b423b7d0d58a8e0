/// MLflow 3's issues (`/api/3.0/mlflow/issues`; `mlflow.genai.discover_issues` makes them, `mlflow.log_issue` links a
/// trace to one), with MLflow's rules and messages (`server/handlers.py`, its SQL store's `create_issue`, `update_issue`,
/// `search_issues`). Where MLflow answers a 500 (a status or severity it does not know), Tally answers a 400 naming
/// the values it takes.
extension TrackingService {
    /// Pages of issues hold 100 unless asked otherwise (MLflow's `SEARCH_ISSUES_DEFAULT_MAX_RESULTS`).
    public static let defaultIssueSearchResults: Int64 = 100

    /// `POST issues`: a new issue (pending unless `status` says otherwise) in an existing, active experiment. Empty
    /// optional fields are none, as MLflow's handler reads them; a source run must exist.
    public func createIssue(experimentID: String?, name: String?, description: String?, status: String?, severity: String?,
                            rootCauses: [String], sourceRunID: String?, categories: [String], createdBy: String?) throws -> TraceIssue {
        let name = try Self.required(name, "name"), description = try Self.required(description, "description")
        let experiment = try Self.required(experimentID, "experiment_id")
        let status = try status.map(Self.issueStatus) ?? .pending, severity = try severity.map(Self.issueSeverity)
        let e = try liveExperiment(experiment)
        let sourceRunID = sourceRunID.flatMap { $0.isEmpty ? nil : $0 }
        if let sourceRunID { _ = try self.experimentID(ofRun: sourceRunID) }
        let now = clock()
        let issue = TraceIssue(id: "iss-" + RunNames.runID(), experimentID: e, name: name, description: description, status: status,
                               severity: severity, rootCauses: rootCauses, sourceRunID: sourceRunID, categories: categories,
                               createdBy: createdBy.flatMap { $0.isEmpty ? nil : $0 }, creationTime: now, lastUpdateTime: now)
        try metadata.insertIssue(issue)
        return issue
    }

    /// `GET issues/{issue_id}`: `scope` must read its experiment.
    public func issue(id: String, scope: Grants = .unrestricted) throws -> TraceIssue {
        guard let i = try metadata.issue(id: id) else { throw Self.noIssue(id) }
        try scope.require(.read, on: .experiment(i.experimentID))
        return i
    }

    /// `PATCH issues/{issue_id}`: the fields given change (an empty name or description is none, as MLflow reads it),
    /// and the update time is now, whatever was given. `scope` must be able to update its experiment.
    public func updateIssue(id: String, status: String?, name: String?, description: String?, severity: String?,
                            scope: Grants = .unrestricted) throws -> TraceIssue {
        let now = clock()
        let updated = try metadata.updateIssue(id: id) { i in
            try scope.require(.update, on: .experiment(i.experimentID))  // a caller who may not change it is told so first
            if let s = try status.map(Self.issueStatus) { i.status = s }
            if let s = try severity.map(Self.issueSeverity) { i.severity = s }
            if let name, !name.isEmpty { i.name = name }
            if let description, !description.isEmpty { i.description = description }
            i.lastUpdateTime = max(now, i.creationTime)
        }
        guard let updated else { throw Self.noIssue(id) }
        return updated
    }

    /// `POST issues/search`: a page of the issues of `experimentID` (every experiment's when none is given) that
    /// `filter` selects, the worst first (``IssueStore/issues(_:offset:limit:)``), with each one's trace count when
    /// asked; and the next page's token (`nil` on the last). An experiment named must be one `scope` may read; with
    /// none, the issues of the experiments it may read (MLflow's auth app refuses such a search instead).
    public func searchIssues(experimentID: String?, filter: String?, maxResults: Int64?, pageToken: String?, includeTraceCount: Bool,
                             scope: Grants = .unrestricted) throws -> ([TraceIssue], String?) {
        let limit = try Validation.searchPageSize(maxResults ?? Self.defaultIssueSearchResults)
        let offset = try PageToken.decode(pageToken)
        let experiment = try experimentID.flatMap { $0.isEmpty ? nil : String(try Validation.experimentID($0)) }
        if let experiment { try scope.require(.read, on: .experiment(experiment)) }
        let search = IssueSearch(experimentID: experiment, filter: try IssueFilter(parsing: filter), includeTraceCount: includeTraceCount)
        let found: [TraceIssue]
        if experiment == nil && !scope.isUnrestricted {
            // Every experiment's, as the caller may read them: the issues filtered, then paged (an experiment's issues
            // number in the tens, a deployment's in the thousands).
            let readable = try metadata.issues(search, offset: 0, limit: Int(Int32.max)).filter { scope.canRead(experiment: $0.experimentID) }
            found = Array(readable.dropFirst(offset).prefix(limit + 1))
        } else {
            found = try metadata.issues(search, offset: offset, limit: limit + 1)
        }
        return found.count > limit ? (Array(found.prefix(limit)), PageToken.encode(offset: offset + limit)) : (found, nil)
    }

    /// An issue's status by its value (`pending`, `rejected`, `resolved`).
    static func issueStatus(_ s: String) throws -> IssueStatus {
        guard let v = IssueStatus(rawValue: s) else {
            throw TrackingError.invalid("Invalid issue status '\(s)'. Valid values are: \(IssueStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    /// An issue's severity by its value (`not_an_issue`, `low`, `medium`, `high`).
    static func issueSeverity(_ s: String) throws -> IssueSeverity {
        guard let v = IssueSeverity(rawValue: s) else {
            throw TrackingError.invalid("Invalid issue severity '\(s)'. Valid values are: \(IssueSeverity.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    /// MLflow's 404 for an issue id nothing has.
    static func noIssue(_ id: String) -> TrackingError { TrackingError.notFound("Issue with ID '\(id)' not found") }
}
