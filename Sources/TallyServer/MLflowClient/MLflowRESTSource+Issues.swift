import NIOHTTP1
import TallyTracking

/// Issues through MLflow's API (recent MLflow 3 releases; none from a server without them, which answers 404).
extension MLflowRESTSource {
    /// The experiment's issues, oldest first (ids and times kept).
    public func issues(experimentID: String) throws -> [TraceIssue] {
        try Self.issues(http, experimentID: experimentID).map { i in
            TraceIssue(id: i["issue_id"]?.text ?? "", experimentID: experimentID, name: i["name"]?.text ?? "", description: i["description"]?.text ?? "",
                       status: IssueStatus(rawValue: i["status"]?.text ?? "") ?? .pending, severity: IssueSeverity(rawValue: i["severity"]?.text ?? ""),
                       rootCauses: i["root_causes"].items.compactMap(\.text), sourceRunID: i["source_run_id"]?.text,
                       categories: i["categories"].items.compactMap(\.text), createdBy: i["created_by"]?.text,
                       creationTime: i["created_timestamp"]?.int64 ?? 0, lastUpdateTime: i["last_updated_timestamp"]?.int64 ?? 0)
        }.sorted { ($0.creationTime, $0.id) < ($1.creationTime, $1.id) }
    }

    /// Every issue of the experiment as MLflow's `issues/search` answers it, page after page (none from a server
    /// without issues).
    static func issues(_ http: MLflowHTTPClient, experimentID: String) throws -> [JSONValue] {
        try pages("issues") {
            try http.json(.POST, "/api/3.0/mlflow/issues/search",
                          body: body([("experiment_id", JSONText.quote(experimentID)), ("max_results", "1000")], token: $0), allowing: [404])
        }
    }
}

/// Issues sent to MLflow (`tally export mlflow`): MLflow gives each a new id and its own times.
extension MLflowRESTDestination {
    /// `POST issues` with the fields MLflow's handler reads; MLflow's id of the new issue.
    public func createIssue(_ issue: TraceIssue, experimentID: String, sourceRunID: String?) throws -> String {
        var o = Obj()
        o.add("experiment_id", experimentID)
        Self.changeable(issue, &o)
        if !issue.rootCauses.isEmpty { o.add("root_causes", array: issue.rootCauses.map(JSONWriter.quote)) }
        o.add("source_run_id", sourceRunID)
        if !issue.categories.isEmpty { o.add("categories", array: issue.categories.map(JSONWriter.quote)) }
        o.add("created_by", issue.createdBy)
        let answer = try http.json(.POST, "/api/3.0/mlflow/issues", body: o.json, idempotent: false)
        guard let id = answer?["issue"]?["issue_id"]?.text else {
            throw TrackingError(.internalError, "MLflow at \(http.base) gave issue '\(issue.name)' no id")
        }
        return id
    }

    /// `PATCH issues/{id}`: the fields MLflow's handler changes.
    public func updateIssue(id: String, _ issue: TraceIssue) throws {
        var o = Obj()
        o.add("issue_id", id)
        Self.changeable(issue, &o)
        _ = try http.json(.PATCH, "/api/3.0/mlflow/issues/" + id, body: o.json)
    }

    /// The fields both a create and an update send: name, description, status, severity.
    static func changeable(_ issue: TraceIssue, _ o: inout Obj) {
        o.add("name", issue.name)
        o.add("description", issue.description)
        o.add("status", issue.status.rawValue)
        o.add("severity", issue.severity?.rawValue)
    }

    /// The experiment's issue of this name and description (the one an export made before its journal could say so),
    /// or `nil`.
    public func issueID(experimentID: String, name: String, description: String) throws -> String? {
        try MLflowRESTSource.issues(http, experimentID: experimentID)
            .first { $0["name"]?.text == name && $0["description"]?.text == description }?["issue_id"]?.text
    }
}
