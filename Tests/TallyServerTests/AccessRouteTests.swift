import Foundation
import Hummingbird
import NIOPosix
import Testing
import TallyStore
import TallyTracking
@testable import TallyServer

/// Access control over HTTP. The main test is generated from the route table: every route the application serves
/// (each method under each prefix, as ``RouteTable`` records them) is called by seven callers — anonymous, a wrong
/// password, a user denied the resource, and users with READ, EDIT and MANAGE on it, and the admin — and must answer
/// 401, 403 or get past the check exactly as its declared ``Access`` says. A new route is covered the day it is
/// added; a new kind of path parameter makes the test fail until it is taught how to fill it.
@Suite(.serialized) struct AccessRouteTests {
    static let adminPassword = "admin-password-1"

    /// Access control for tests: cheap hashes, a long cache (each caller's hash paid once), no failure limit.
    static func configure(_ c: inout ServerConfiguration) {
        var a = AccessConfiguration()
        a.adminPassword = adminPassword
        a.passwordHashRounds = 1 << 10
        a.cacheMillis = 600_000
        a.maxFailures = 1_000_000
        c.access = a
        c.prometheusDirectory = c.dataDirectory + "/prometheus"  // `/metrics` among the routes checked
    }

    static func basic(_ user: String, _ password: String) -> [String: String] {
        ["Authorization": "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()]
    }

    /// Every route: (full path, method, access).
    static func catalog(_ service: TrackingService) async throws -> [(path: String, method: HTTPRequest.Method, access: Access)] {
        let pool = BlockingPool(threads: 1)
        let e = Endpoints(service: service, pool: pool, largeBody: 1, smallBody: 1, nativeBody: 1,
                          gate: AccessGate(control: nil, service: service, pool: pool), metrics: ServerMetrics(service: service, pool: pool))
        var out: [(String, HTTPRequest.Method, Access)] = []
        _ = TallyApplication.router(e) { prefix, entry in
            let path = entry.path.hasPrefix("/") ? prefix + entry.path : prefix + "/" + entry.path
            out.append((path, entry.method, entry.access))
        }
        try await pool.pool.shutdownGracefully()
        return out
    }

    /// The callers, least allowed first.
    enum Role: String, CaseIterable {
        case anonymous, wrongPassword, denied, reader, editor, manager, admin
    }

    /// What `role` must get from a route of `access`: 401, 403, or past the check (`nil`).
    static func expected(_ access: Access, _ role: Role) -> Int? {
        if case .open = access { return nil }
        if role == .anonymous || role == .wrongPassword { return 401 }
        switch access {
        case .open, .user, .creates: return nil  // `denied` holds DENY on one experiment and one model, not on '*'
        case .admin: return role == .admin ? nil : 403
        case .needs(let need, _):
            switch role {
            case .anonymous, .wrongPassword, .denied: return 403
            case .reader: return need == .read || need == .use ? nil : 403
            case .editor: return need == .delete || need == .manage ? 403 : nil
            case .manager, .admin: return nil
            }
        }
    }

    /// The fixture the requests name.
    struct Names {
        let experiment: String, experimentName: String, run: String, loggedModel: String, model: String
        /// An evaluation dataset of the experiment (made again by the test when a route deleted it).
        var dataset = ""
        /// A registered scorer of the experiment.
        static let scorer = "acl-s"
        /// A trace of the experiment.
        static let trace = "tr-0123456789abcdef0123456789abcdef"
        /// An OTLP export (JSON) of one span of ``trace``.
        static let otlpBody = #"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "\#(trace.dropFirst(3))", "spanId": "0123456789abcdef", "#
            + #""name": "acl", "startTimeUnixNano": "1000000", "endTimeUnixNano": "2000000"}]}]}]}"#
        /// `traces` (POST)'s body: a trace of `experiment`.
        static func traceBody(_ experiment: String) -> String {
            #"{"trace": {"trace_info": {"trace_id": "\#(trace)", "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": "#
                + #"{"experiment_id": "\#(experiment)"}}, "request_time": "2026-12-05T00:00:00Z", "state": "OK"}}}"#
        }
    }

    /// A request for `path`/`method` naming the fixture where `access` looks for its resource; `nil` with a reason
    /// when the path has a parameter this test does not know.
    static func request(_ path: String, _ method: HTTPRequest.Method, _ access: Access, _ n: Names) -> (path: String, body: [UInt8], contentType: String?, headers: [String: String])? {
        var p = path
        for (param, value) in [(":run_id", n.run), ("{model_id}", n.loggedModel), ("{tag_key}", "k"), ("{id}", "tok-unknown"),
                               ("{webhook_id}", "no-such-webhook"), ("{dataset_id}", n.dataset), ("{key}", "k"), ("{trace_id}", Names.trace), ("{assessment_id}", "a-unknown"), ("{issue_id}", "iss-unknown"), (":file", "app.js"), ("**", "\(n.experiment)/\(n.run)/artifacts/acl.txt")] {
            p = p.replacingOccurrences(of: param, with: value)
        }
        guard !p.contains("{"), !p.split(separator: "/").contains(where: { $0.hasPrefix(":") }) else { return nil }
        var fields: [String: String] = [:]
        var query: [String: String] = [:]
        var lists: [String: [String]] = [:]
        if case .needs(_, let target) = access {
            switch target {
            case .experimentField(let f, _): fields[f] = n.experiment
            case .experimentNameField(let f): fields[f] = n.experimentName
            case .runField: fields["run_id"] = n.run
            case .modelField(let f): fields[f] = n.model
            case .runQuery(let names): query[names[0]] = n.run
            case .artifactPath: if !path.contains("**") { query["path"] = "\(n.experiment)/\(n.run)/artifacts" }
            case .traceLocation: return (p, Array(Names.traceBody(n.experiment).utf8), "application/json", [:])
            case .traceQueryAll(let name): query[name] = Names.trace
            case .experimentHeader(let name):  // OTLP: a span of the fixture's trace
                return (p, Array(Names.otlpBody.utf8), "application/json", [name: n.experiment])
            case .traceQuery(let name): query[name] = Names.trace
            case .experimentListField(let f): lists[f] = [n.experiment]
            case .traceFieldAll(let f): lists[f] = [Names.trace]
            case .traceField(let f): fields[f] = Names.trace
            // add-experiments checks the experiments it adds too (none is refused): the fixture's, already linked.
            case .datasetPath: if path.hasSuffix("/add-experiments") { lists["experiment_ids"] = [n.experiment] }
            case .scorerFields:  // the fixture's scorer (a route before may have deleted it: then 404 where allowed)
                fields["experiment_id"] = n.experiment
                fields["name"] = Names.scorer
            case .runPath, .loggedModelPath, .tracePath: break
            }
        }
        if method == .get || method == .head { query.merge(fields) { a, _ in a } }
        if !query.isEmpty {
            p += "?" + query.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }.sorted().joined(separator: "&")
        }
        if method == .get || method == .head { return (p, [], nil, [:]) }
        if method == .put && path.contains("artifacts") { return (p, Array("x".utf8), "application/octet-stream", [:]) }
        let members = fields.map { "\"\($0.key)\": \"\($0.value)\"" } + lists.map { "\"\($0.key)\": [" + $0.value.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let json = "{" + members.sorted().joined(separator: ", ") + "}"
        return (p, Array(json.utf8), "application/json", [:])
    }

    @Test func everyRouteTimesEveryCaller() async throws {
        try await LiveServer.with(Self.configure) { s in
            let admin = Self.basic("admin", Self.adminPassword)
            func call(_ method: String, _ path: String, _ json: String, as headers: [String: String] = admin) async throws -> HTTPAnswer {
                try await s.request(method, path, body: Array(json.utf8), contentType: method == "GET" ? nil : "application/json", headers: headers)
            }
            let api = "/api/2.0/mlflow", v3 = "/api/3.0/mlflow"
            var headers: [Role: [String: String]] = [.anonymous: [:], .wrongPassword: Self.basic("admin", "not-the-password"), .admin: admin]
            for role in [Role.denied, .reader, .editor, .manager] {
                let r = try await call("POST", api + "/users/create", #"{"username": "\#(role.rawValue)", "password": "password-of-\#(role.rawValue)"}"#)
                #expect(r.status == 200, "\(r.text)")
                headers[role] = Self.basic(role.rawValue, "password-of-\(role.rawValue)")
            }
            let exp = try #require(try await call("POST", api + "/experiments/create", #"{"name": "acl-e"}"#).json["experiment_id"] as? String)
            let run = try #require(((try await call("POST", api + "/runs/create", #"{"experiment_id": "\#(exp)"}"#).json["run"] as? [String: Any])?["info"]
                as? [String: Any])?["run_id"] as? String)
            let lm = try #require(((try await call("POST", api + "/logged-models", #"{"experiment_id": "\#(exp)", "name": "lm"}"#).json["model"]
                as? [String: Any])?["info"] as? [String: Any])?["model_id"] as? String)
            var names = Names(experiment: exp, experimentName: "acl-e", run: run, loggedModel: lm, model: "acl-m")
            /// The fixture as the test needs it before each route (routes before may have deleted the model, and
            /// its grants with it, or the experiment).
            func setUp() async throws {
                _ = try await call("POST", api + "/registered-models/create", #"{"name": "acl-m"}"#)
                _ = try await call("POST", api + "/experiments/restore", #"{"experiment_id": "\#(exp)"}"#)
                _ = try await call("POST", v3 + "/traces", Names.traceBody(exp))
                _ = try await call("POST", v3 + "/scorers/register", #"{"experiment_id": "\#(exp)", "name": "\#(Names.scorer)", "serialized_scorer": "{}"}"#)
                let gone = names.dataset.isEmpty ? true : try await s.request("GET", v3 + "/datasets/" + names.dataset, contentType: nil, headers: admin).status == 404
                if gone {
                    let made = try await call("POST", v3 + "/datasets/create", #"{"name": "acl-d", "experiment_ids": ["\#(exp)"]}"#)
                    names.dataset = try #require((made.json["dataset"] as? [String: Any])?["dataset_id"] as? String, "\(made.text)")
                }
                for (role, level) in [(Role.denied, "DENY"), (.editor, "EDIT"), (.manager, "MANAGE")] {
                    for (type, id) in [("experiment", exp), ("registered_model", "acl-m")] {
                        _ = try await call("POST", v3 + "/users/permissions/grant",
                                           #"{"username": "\#(role.rawValue)", "resource_type": "\#(type)", "resource_id": "\#(id)", "permission": "\#(level)"}"#)
                    }
                }
            }
            let routes = try await Self.catalog(s.service)
            #expect(routes.count > 150, "\(routes.count) routes")
            var wrong: [String] = []
            var checked = 0
            for (path, method, access) in routes {
                try await setUp()
                guard let (p, body, contentType, extra) = Self.request(path, method, access, names) else {
                    wrong.append("\(method) \(path): a path parameter this test cannot fill")
                    continue
                }
                for role in Role.allCases {
                    let r = try await s.request(method.rawValue, p, body: body, contentType: contentType, headers: headers[role]!.merging(extra) { a, _ in a })
                    let got = r.status == 401 || r.status == 403 ? r.status : nil
                    checked += 1
                    // 501 NOT_IMPLEMENTED is MLflow's answer for what a store on disk cannot do (presigned URLs), not a failure.
                    let failed = r.status >= 500 && !(r.status == 501 && r.errorCode == "NOT_IMPLEMENTED")
                    if got != Self.expected(access, role) || r.status == 429 || failed || r.status == 0 {
                        wrong.append("\(method) \(p) as \(role): \(r.status) \(r.text.prefix(160))")
                    }
                    if r.status == 401 { #expect(r.headers["www-authenticate"] == #"Basic realm="mlflow""#) }
                    if r.status == 401 || r.status == 403 { #expect(r.errorCode == (r.status == 401 ? "UNAUTHENTICATED" : "PERMISSION_DENIED")) }
                }
            }
            #expect(wrong.isEmpty, Comment(rawValue: "\(wrong.count) of \(checked):\n" + wrong.joined(separator: "\n")))
            #expect(checked > 1000)
        }
    }

    /// The levels routes declare are MLflow's (`mlflow/server/auth/__init__.py`'s validators), and a route open to
    /// every authenticated caller or to anyone is one of those known to filter, refuse per run or apply their own
    /// rules: a new route declared so fails here until it is added on purpose.
    @Test func declaredLevelsAreMLflows() async throws {
        let levels: [String: Permission.Need] = [
            "GET experiments/get": .read, "GET experiments/get-by-name": .read, "POST experiments/update": .update,
            "POST experiments/delete": .delete, "POST experiments/restore": .delete, "POST experiments/set-experiment-tag": .update,
            "POST experiments/delete-experiment-tag": .update, "POST runs/create": .update, "GET runs/get": .read, "POST runs/update": .update,
            "POST runs/delete": .delete, "POST runs/restore": .delete, "POST runs/set-tag": .update, "POST runs/delete-tag": .update,
            "POST runs/log-metric": .update, "POST runs/log-parameter": .update, "POST runs/log-batch": .update, "POST runs/log-inputs": .update,
            "POST runs/outputs": .update, "GET metrics/get-history": .read, "GET artifacts/list": .read,
            "POST logged-models": .update, "GET logged-models/{model_id}": .read, "PATCH logged-models/{model_id}": .update,
            "DELETE logged-models/{model_id}": .delete, "PATCH logged-models/{model_id}/tags": .update,
            "DELETE logged-models/{model_id}/tags/{tag_key}": .update, "POST logged-models/{model_id}/params": .update,
            "GET logged-models/{model_id}/artifacts/directories": .read,
            "GET registered-models/get": .read, "POST registered-models/rename": .update, "PATCH registered-models/update": .update,
            "DELETE registered-models/delete": .delete, "POST registered-models/set-tag": .update, "DELETE registered-models/delete-tag": .update,
            "GET registered-models/get-latest-versions": .read, "POST registered-models/get-latest-versions": .read,
            "POST registered-models/alias": .update, "DELETE registered-models/alias": .delete, "GET registered-models/alias": .read,
            "POST model-versions/create": .update, "GET model-versions/get": .read, "PATCH model-versions/update": .update,
            "POST model-versions/transition-stage": .update, "DELETE model-versions/delete": .delete, "POST model-versions/set-tag": .update,
            "DELETE model-versions/delete-tag": .delete, "GET model-versions/get-download-uri": .read,
            "PUT artifacts/**": .update, "GET artifacts/**": .read, "DELETE artifacts/**": .delete, "GET artifacts": .read,
            // Uploads in parts and presigned downloads: the fastapi validator's POST → update, GET → read.
            "POST traces/batchGetInfos": .read,  // validate_can_batch_get_traces
            "POST runs/log-model": .update,  // validate_can_update_run
            "POST artifacts/presigned-download-url": .read,  // validate_can_read_run
            "POST traces/calculate-filter-correlation": .read,  // validate_can_read_traces_by_experiment_ids
            "POST mpu/create/**": .update, "POST mpu/complete/**": .update, "POST mpu/abort/**": .update, "GET presigned/**": .read,
            "POST upload-artifact": .update, "GET /get-artifact": .read, "POST runs/:run_id/metrics": .update,
            // Traces: MLflow's validate_can_start_trace_v3, _read_trace, _update_trace, _delete_traces and the assessments'.
            "POST traces": .update, "GET traces/{trace_id}": .read, "PATCH traces/{trace_id}/tags": .update,
            "DELETE traces/{trace_id}/tags": .update, "POST traces/delete-traces": .delete, "POST traces/{trace_id}/assessments": .update,
            "GET traces/{trace_id}/assessments/{assessment_id}": .read, "PATCH traces/{trace_id}/assessments/{assessment_id}": .update,
            "DELETE traces/{trace_id}/assessments/{assessment_id}": .update, "POST traces/link-to-run": .update,
            "POST traces/link-prompts": .update,  // validate_can_update_trace_by_trace_id
            // MLflow 2's trace API: validate_can_start_trace, _update_trace_by_request_id, _read_trace_by_request_id.
            "PATCH traces/{trace_id}": .update, "GET traces/{trace_id}/info": .read,
            "GET get-trace-artifact": .read,  // validate_can_read_trace_artifact
            // Spans: validate_can_read_trace_by_trace_id, validate_can_batch_get_traces, the OTLP validator (a trace create).
            "GET traces/get": .read, "POST traces/metrics": .read, "GET traces/batchGet": .read, "POST /v1/traces": .update,
            // Evaluation datasets: validate_can_create_dataset, _read_dataset, _update_dataset, _delete_dataset.
            "POST datasets/create": .update, "GET datasets/{dataset_id}": .read, "DELETE datasets/{dataset_id}": .delete,
            "PATCH datasets/{dataset_id}/tags": .update, "DELETE datasets/{dataset_id}/tags/{key}": .update,
            "POST datasets/{dataset_id}/records": .update, "GET datasets/{dataset_id}/records": .read,
            "DELETE datasets/{dataset_id}/records": .update, "GET datasets/{dataset_id}/experiment-ids": .read,
            "POST datasets/{dataset_id}/add-experiments": .update, "POST datasets/{dataset_id}/remove-experiments": .update,
            // Scorers: validate_can_register_scorer, _read_scorer, _delete_scorer, _update_online_scoring_config.
            "POST scorers/register": .update, "GET scorers/versions": .read, "GET scorers/get": .read, "DELETE scorers/delete": .delete,
            "PUT scorers/online-config": .update,
            // Label schemas and queue listings: validate_can_create_label_schema, validate_can_read_experiment.
            "POST label-schemas/create": .manage, "GET label-schemas/get-by-name": .read, "GET label-schemas/list": .read,
            "GET review-queues/list": .read,
            // Issues: validate_can_create_issue (UPDATE on the request's experiment).
            "POST issues": .update,
        ]
        let anyUser: Set<String> = [
            "POST experiments/search", "GET experiments/search", "POST runs/search", "GET runs/search", "GET registered-models/search",
            "GET model-versions/search", "POST logged-models/search", "POST experiments/search-datasets", "POST traces/search", "GET traces",  // filtered
            "POST datasets/search", "GET datasets/search",  // filtered: datasets whose every experiment the caller may read
            "GET scorers/list",  // one experiment: READ on it (checked by the service); none: filtered
            "GET scorers/online-configs",  // READ on the experiment of every scorer asked about (checked by the service)
            // A label schema by id: its experiment's level (checked by the service once it has found it).
            "GET label-schemas/get", "PATCH label-schemas/update", "DELETE label-schemas/delete",
            // Review queues: MLflow's owner and reviewer rules (Grants.requireQueue, checked by the service).
            "POST review-queues/create", "POST review-queues/get-or-create-user", "GET review-queues/get", "GET review-queues/get-by-name",
            "POST review-queues/update", "POST review-queues/delete", "POST review-queues/items/add", "POST review-queues/items/remove",
            "GET review-queues/items/list", "POST review-queues/items/set-status",
            // Issues by id: their experiment's level (checked by the service once it has found them); a search: READ on
            // the experiment it names, else filtered (checked by the service).
            "GET issues/{issue_id}", "PATCH issues/{issue_id}", "POST issues/search",
            "GET metrics/get-history-bulk", "GET metrics/get-history-bulk-interval", "POST compare", "POST scoreboard",  // every run checked
            "PUT artifacts", "DELETE artifacts",  // only ever 405
            "POST artifacts/presigned-upload-url",  // the run's or the model's experiment: UPDATE (checked by the service)
            "GET users/get", "GET users/current", "GET users/list", "PATCH users/update-password", "POST users/permissions/grant",
            "POST users/permissions/revoke", "GET users/permissions/get", "GET users/permissions/list", "GET users/current/permissions",
            "POST tokens", "GET tokens", "DELETE tokens/{id}", "GET permissions",  // AccessControl's own rules
            "GET /metrics",  // a scraper authenticates, as on MLflow's basic-auth app
        ]
        // MLflow's auth app: users and webhooks are the admins' (WEBHOOK_BEFORE_REQUEST_HANDLERS: sender_is_admin).
        let admins: Set<String> = ["POST users/create", "PATCH users/update-admin", "DELETE users/delete", "POST webhooks", "GET webhooks",
                                   "GET webhooks/{webhook_id}", "PATCH webhooks/{webhook_id}", "DELETE webhooks/{webhook_id}",
                                   "POST webhooks/{webhook_id}/test"]
        let creates: [String: ResourceType] = ["POST experiments/create": .experiment, "POST registered-models/create": .registeredModel]
        let open: Set<String> = ["GET server-info", "GET /health", "GET /ready", "GET /version", "GET /", "GET /static/:file",
                                 "POST login", "POST logout", "GET session"]  // the session routes authenticate themselves
        let routes = try await LiveServer.with { s in try await Self.catalog(s.service).map { ($0.path, $0.method.rawValue, $0.access) } }
        var seen = Set<String>()
        for (path, method, access) in routes {
            let prefixes = ["/api/2.0/mlflow-artifacts/", "/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/", "/api/tally/v1/"]
            let relative = prefixes.first { path.hasPrefix($0) }.map { String(path.dropFirst($0.count)) } ?? path
            let name = "\(method) \(relative)"
            seen.insert(name)
            switch access {
            case .needs(let need, _): #expect(levels[name] == need, "\(name): declared \(need), MLflow's \(levels[name].map { "\($0)" } ?? "none")")
            case .user: #expect(anyUser.contains(name), "\(name) is open to every authenticated caller")
            case .admin: #expect(admins.contains(name), "\(name) is admin-only")
            case .creates(let type): #expect(creates[name] == type, "\(name) creates a \(type)")
            case .open: #expect(open.contains(name), "\(name) is open to anyone")
            }
        }
        #expect(Set(levels.keys).union(anyUser).union(admins).union(open).union(creates.keys).subtracting(seen).isEmpty)
    }

    @Test func unknownPathsHideFromAnonymousCallers() async throws {
        try await LiveServer.with(Self.configure) { s in
            let anonymous = try await s.get("/api/2.0/mlflow/no-such-route")
            #expect(anonymous.status == 401 && anonymous.headers["www-authenticate"] == #"Basic realm="mlflow""#)
            let known = try await s.request("GET", "/api/2.0/mlflow/no-such-route", contentType: nil, headers: Self.basic("admin", Self.adminPassword))
            #expect(known.status == 404 && known.errorCode == "ENDPOINT_NOT_FOUND")
            for open in ["/health", "/ready", "/version", "/api/3.0/mlflow/server-info", "/", "/static/app.js"] {
                #expect(try await s.get(open).status == 200, "\(open)")
            }
        }
    }

    @Test func optionsFollowsThePathsLoosestAccess() async throws {
        try await LiveServer.with(Self.configure) { s in
            // Open paths answer anyone, as MLflow's basic-auth app leaves `/health` unprotected; API paths want a caller.
            for path in ["/health", "/version", "/"] {
                let r = try await s.request("OPTIONS", path, contentType: nil)
                #expect(r.status == 200 && r.headers["allow"]?.contains("GET") == true, "\(path): \(r.status)")
            }
            #expect(try await s.request("OPTIONS", "/api/2.0/mlflow/runs/create", contentType: nil).status == 401)
            let r = try await s.request("OPTIONS", "/api/2.0/mlflow/runs/create", contentType: nil, headers: Self.basic("admin", Self.adminPassword))
            #expect(r.status == 204 && r.headers["allow"] == "POST, OPTIONS")
        }
    }

    /// The proxied artifact routes name their experiment in the path the router matched: an extra `/` (which the
    /// router folds) cannot make the access check read another path, nor the `?path=` of the listing.
    @Test func artifactFamiliesAreCheckedOnTheRoutersPath() async throws {
        try await LiveServer.with(Self.configure) { s in
            let admin = Self.basic("admin", Self.adminPassword), api = "/api/2.0/mlflow"
            _ = try await s.request("POST", api + "/users/create", body: Array(#"{"username": "bob", "password": "bob-password-1"}"#.utf8), headers: admin)
            let bob = Self.basic("bob", "bob-password-1")
            var ids: [String] = []
            for name in ["mine", "theirs"] {
                ids.append(try #require(try await s.request("POST", api + "/experiments/create", body: Array(#"{"name": "\#(name)"}"#.utf8),
                                                             headers: admin).json["experiment_id"] as? String))
            }
            let grant = #"{"username": "bob", "resource_type": "experiment", "resource_id": "\#(ids[0])", "permission": "EDIT"}"#
            #expect(try await s.request("POST", "/api/3.0/mlflow/users/permissions/grant", body: Array(grant.utf8), headers: admin).status == 200)
            let body = Array(#"{"path": "/tmp/x.bin", "num_parts": 1}"#.utf8), base = "/api/2.0/mlflow-artifacts"
            // Their experiment, however the path is written, with bob's experiment in the query: refused.
            for path in ["/mpu/create/\(ids[1])/r/artifacts", "//mpu/create/\(ids[1])/r/artifacts", "/mpu//create/\(ids[1])/r/artifacts",
                         "/mpu//create//\(ids[1])/r/artifacts", "//mpu/abort/\(ids[1])/r/artifacts", "//artifacts/\(ids[1])/r/artifacts/a.txt"] {
                let put = path.contains("/artifacts/\(ids[1])")
                let r = try await s.request(put ? "PUT" : "POST", base + path + "?path=\(ids[0])/r/artifacts", body: put ? [1] : body,
                                            contentType: put ? "application/octet-stream" : "application/json", headers: bob)
                #expect(r.status == 403, "\(path): \(r.status) \(r.text)")
            }
            // Bob's own experiment, with an extra `/`: allowed (a store on disk then answers MLflow's 501).
            for path in ["/mpu/create/\(ids[0])/r/artifacts", "//mpu//create/\(ids[0])/r/artifacts"] {
                let r = try await s.request("POST", base + path, body: body, headers: bob)
                #expect(r.status == 501 && r.errorCode == "NOT_IMPLEMENTED", "\(path): \(r.status) \(r.text)")
            }
            // A family with no path after it is no route at all.
            #expect(try await s.request("POST", base + "/mpu/create/?path=\(ids[0])/x", body: body, headers: admin).status == 404)
        }
    }

    @Test func logBatchIsCheckedOnBothParsers() async throws {
        try await LiveServer.with(Self.configure) { s in
            let admin = Self.basic("admin", Self.adminPassword), api = "/api/2.0/mlflow"
            _ = try await s.request("POST", api + "/users/create", body: Array(#"{"username": "bob", "password": "bob-password-1"}"#.utf8), headers: admin)
            let bob = Self.basic("bob", "bob-password-1")
            let exp = try #require(try await s.request("POST", api + "/experiments/create", body: Array(#"{"name": "b"}"#.utf8), headers: admin)
                .json["experiment_id"] as? String)
            let run = try await s.request("POST", api + "/runs/create", body: Array(#"{"experiment_id": "\#(exp)"}"#.utf8), headers: admin)
            let id = try #require(((run.json["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
            let metric = #"{"key": "loss", "value": 1.5, "timestamp": 1, "step": 0}"#
            // run_id first (the fast parser), run_id last, and an escaped run id (the general parser).
            let bodies = [#"{"run_id": "\#(id)", "metrics": [\#(metric)]}"#, #"{"metrics": [\#(metric)], "run_id": "\#(id)"}"#,
                          #"{"run_id": "\u00\#(String(id.utf8.first!, radix: 16))\#(id.dropFirst())", "metrics": [\#(metric)]}"#]
            for body in bodies {
                let r = try await s.request("POST", api + "/runs/log-batch", body: Array(body.utf8), headers: bob)
                #expect(r.status == 403 && r.errorCode == "PERMISSION_DENIED", "\(body): \(r.text)")
            }
            #expect(try s.service.history(runID: id, key: "loss").isEmpty)
            let grant = #"{"username": "bob", "resource_type": "experiment", "resource_id": "\#(exp)", "permission": "EDIT"}"#
            #expect(try await s.request("POST", "/api/3.0/mlflow/users/permissions/grant", body: Array(grant.utf8), headers: admin).status == 200)
            for body in bodies.prefix(2) {
                let r = try await s.request("POST", api + "/runs/log-batch", body: Array(body.utf8), headers: bob)
                #expect(r.status == 200, "\(body): \(r.text)")
            }
            #expect(try s.service.history(runID: id, key: "loss").count == 1)  // the same point twice: stored once
        }
    }

    @Test func withoutAccessControlNothingChanges() async throws {
        try await LiveServer.with { s in
            let current = try await s.get("/api/2.0/mlflow/users/current")
            #expect(current.status == 200 && current.json["is_basic_auth"] as? Bool == false)
            let create = try await s.post("/api/2.0/mlflow/users/create", #"{"username": "x", "password": "long-enough-pw"}"#)
            #expect(create.status == 404 && create.errorCode == "ENDPOINT_NOT_FOUND")
            #expect(try await s.post("/api/2.0/mlflow/experiments/create", #"{"name": "open"}"#).status == 200)
        }
    }
}
