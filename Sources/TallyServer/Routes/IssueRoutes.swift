import Hummingbird
import TallyTracking

/// MLflow 3's issues under `/api/3.0/mlflow/issues` (and the UI's `ajax-api`), as `mlflow.genai.discover_issues`,
/// `mlflow.log_issue` and the tracing client call them. Creating one needs EDIT on its experiment, reading one READ,
/// changing one EDIT (MLflow's auth app's rules; by id, the service checks them once it has found the issue); a search
/// sees the experiments the caller may read.
struct IssueRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("issues", .post, access: .needs(.update, .experimentField("experiment_id")), use: e.json { r in
            // Read in the order MLflow's handler checks them: a missing or mistyped name is told first.
            let name = try r.string("name"), description = try r.string("description"), experimentID = try r.string("experiment_id")
            let issue = try s.createIssue(experimentID: experimentID, name: name, description: description, status: try r.string("status"),
                                          severity: try r.string("severity"), rootCauses: try r.strings("root_causes"),
                                          sourceRunID: try r.string("source_run_id"), categories: try r.strings("categories"),
                                          createdBy: try r.string("created_by"))
            return Render.wrap("issue", Self.issue(issue))
        })
        t.on("issues/search", .post, access: .user, use: e.json { r in
            let (found, next) = try s.searchIssues(experimentID: try r.string("experiment_id"), filter: try r.string("filter_string"),
                                                   maxResults: try r.int64("max_results"), pageToken: try r.string("page_token"),
                                                   includeTraceCount: try r.bool("include_trace_count") ?? false, scope: r.grants)
            return Render.page("issues", found.map(Self.issue), next: next)
        })
        t.on("issues/{issue_id}", .get, access: .user, use: e.json(path: ["issue_id"]) { r, p, _ in
            ByteBuffer(string: Render.wrap("issue", Self.issue(try s.issue(id: p[0], scope: r.grants))))
        })
        t.on("issues/{issue_id}", .patch, access: .user, use: e.json(path: ["issue_id"]) { r, p, _ in
            // The path names the issue; MLflow's handler also insists on `issue_id` in the body, which it then ignores.
            let issue = try s.updateIssue(id: p[0], status: try r.string("status"), name: try r.string("name"),
                                          description: try r.string("description"), severity: try r.string("severity"), scope: r.grants)
            return ByteBuffer(string: Render.wrap("issue", Self.issue(issue)))
        })
    }

    /// MLflow's `Issue` message, its fields in the proto's order; empty lists and unset fields left out.
    static func issue(_ i: TraceIssue) -> String {
        var o = Obj()
        o.add("issue_id", i.id)
        o.add("experiment_id", i.experimentID)
        o.add("name", i.name)
        o.add("description", i.description)
        o.add("status", i.status.rawValue)
        o.add("severity", i.severity?.rawValue)
        if !i.rootCauses.isEmpty { o.add("root_causes", array: i.rootCauses.map(JSONWriter.quote)) }
        o.add("source_run_id", i.sourceRunID)
        o.add("created_timestamp", i.creationTime)
        o.add("last_updated_timestamp", i.lastUpdateTime)
        o.add("created_by", i.createdBy)
        if !i.categories.isEmpty { o.add("categories", array: i.categories.map(JSONWriter.quote)) }
        o.add("trace_count", i.traceCount)
        return o.json
    }
}
