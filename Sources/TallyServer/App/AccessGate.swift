import Foundation
import Hummingbird
import NIOCore
import TallyTracking

/// The one access check: every route's handler is wrapped by ``admit(_:_:_:)`` with the route's ``Access``
/// (``RouteTable`` does it), and a resource named in the request's fields is checked by the JSON handler once it
/// has parsed them (``check(_:_:)``), so bodies are read once. Without access control (`control == nil`) nothing is
/// checked and every caller is unrestricted.
struct AccessGate: Sendable {
    /// Access control, `nil` when off.
    let control: AccessControl?
    let service: TrackingService
    let pool: BlockingPool

    /// Authenticates the caller (unless the route is open) and applies the route's rule: the context the handler
    /// gets carries the caller, their grants and any check left for the request's fields.
    func admit(_ access: Access, _ request: Request, _ context: TallyRequestContext) async throws -> TallyRequestContext {
        guard let control else { return context }
        if case .open = access { return context }
        var ctx = context
        ctx.caller = try await authenticate(request, ctx)
        if ctx.caller.isAdmin { return ctx }
        let caller = ctx.caller
        if let g = control.cachedGrants(for: caller) {
            ctx.grants = g
        } else {
            ctx.grants = try await pool.run { try control.grants(for: caller) }
        }
        switch access {
        case .open, .user: break
        case .admin: try control.requireAdmin(ctx.caller)
        case .creates(let type): try ctx.grants.requireCreate(type)
        case .needs(let need, let target):
            if target.inFields {
                ctx.pending = Requirement(need: need, target: target)
            } else if case .runPath(let p) = target,
                      let e = service.knownExperimentID(ofRun: Endpoints.parameter(p, context)) {
                try ctx.grants.require(need, on: .experiment(e))  // native ingest: no hop to the blocking pool
            } else {
                let grants = ctx.grants
                try await pool.run {
                    for r in try resources(target, request, context) { try grants.require(need, on: r) }
                }
            }
        }
        return ctx
    }

    /// The caller the request's credentials name: its `Authorization` header, else the UI's session cookie (whose
    /// state-changing requests must carry the session's CSRF token). 401 without valid ones, 429 after too many
    /// failures.
    func authenticate(_ request: Request, _ context: TallyRequestContext) async throws -> Caller {
        guard let control else { return .unrestricted }
        if let f = context.forwarded {  // signed by a server of the cluster, which authenticated the caller
            return try await pool.run { try control.localCaller(f.user) }
        }
        let address = context.remoteAddress
        if request.headers[.authorization] == nil, let session = Self.sessionCookie(request) {
            let caller: Caller
            if let c = control.cachedCaller(session: session) {
                caller = c
            } else {
                caller = try await pool.run { try control.authenticate(session: session, address: address) }
            }
            if request.method != .get && request.method != .head {
                try control.checkCSRF(session: session, token: request.headers[.init(AccessControl.csrfHeader)!])
            }
            return caller
        }
        let header = request.headers[.authorization]
        if let header, let c = control.cachedCaller(header) { return c }
        return try await pool.run { try control.authenticate(header, address: address) }
    }

    /// The value of the session cookie, if the request carries one.
    static func sessionCookie(_ request: Request) -> String? {
        let prefix = AccessControl.sessionCookie + "="
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.trimmingCharacters(in: .whitespaces)
                if kv.hasPrefix(prefix), kv.count > prefix.count { return String(kv.dropFirst(prefix.count)) }
            }
        }
        return nil
    }

    /// Makes the check left for the request's fields (on the blocking pool, with the parsed request).
    func check(_ pending: Requirement?, _ r: MLflowRequest) throws {
        guard let pending else { return }
        let resource: Resource
        switch pending.target {
        case .experimentField(let f, let d): resource = .experiment(try d.map { try r.string(f) ?? $0 } ?? r.string(f, required: true)!)
        case .experimentNameField(let f): resource = .experiment(try service.experimentID(named: try r.string(f, required: true)!))
        case .runField: resource = .experiment(try service.experimentID(ofRun: try r.runID()))
        case .modelField(let f): resource = .registeredModel(try r.string(f, required: true)!)
        case .traceField(let f): resource = try traceExperiment(try r.string(f, required: true)!)
        case .traceLocation:
            guard let info = r.raw("trace").flatMap({ TraceJSON.member($0, "trace_info") }) else { throw MLflowRequest.missing("trace") }
            resource = .experiment(try TraceJSON.experimentID(info))
        case .experimentListField(let f):
            let ids = try r.strings(f)
            guard !ids.isEmpty else { throw AccessRules.deniedUnnamed }
            for id in ids { try r.grants.require(pending.need, on: .experiment(id)) }
            return
        case .traceFieldAll(let f):
            guard r.has(f) else { throw Validation.missing(f) }  // an empty list names nothing to read
            for id in Set(try r.strings(f)) { try r.grants.require(pending.need, on: try traceExperiment(id)) }
            return
        case .scorerFields:
            try r.grants.requireScorer(pending.need, experimentID: try r.string("experiment_id", required: true)!,
                                       name: try r.string("name", required: true)!, version: pending.need == .delete ? try r.int64("version") : nil)
            return
        default: throw TrackingError(.internalError, "access target \(pending.target) is not a request field")
        }
        try r.grants.require(pending.need, on: resource)
    }

    /// The experiment of trace `id`; an unknown trace is refused as unreadable (whether it exists is not told).
    func traceExperiment(_ id: String) throws -> Resource {
        guard let e = try service.traceExperiment(id: id) else { throw AccessRules.deniedUnnamed }
        return .experiment(e)
    }

    /// The resources a path, query or artifact target names.
    func resources(_ target: Target, _ request: Request, _ context: TallyRequestContext) throws -> [Resource] {
        switch target {
        case .runPath(let p): return [.experiment(try service.experimentID(ofRun: Endpoints.parameter(p, context)))]
        case .loggedModelPath(let p): return [.experiment(try service.experimentID(ofLoggedModel: Endpoints.parameter(p, context)))]
        case .tracePath(let p): return [try traceExperiment(Endpoints.parameter(p, context))]
        case .datasetPath(let p):
            let ids = try service.datasetExperimentIDs(id: Endpoints.parameter(p, context))
            guard !ids.isEmpty else { throw AccessRules.deniedUnnamed }
            return ids.map(Resource.experiment)
        case .traceQuery(let name):
            guard let id = PercentDecoding.query(request.uri.query ?? "")[name]?.first, !id.isEmpty else {  // the first, as Flask reads it
                throw AccessRules.missingQueryParameter(name)
            }
            return [try traceExperiment(id)]
        case .traceQueryAll(let name):
            let ids = (PercentDecoding.query(request.uri.query ?? "")[name] ?? []).filter { !$0.isEmpty }
            guard !ids.isEmpty else { throw Validation.missing(name) }
            return try Set(ids).map(traceExperiment)
        case .experimentHeader(let name):
            guard let id = request.headers[.init(name)!], !id.isEmpty else { throw OTLPRoutes.missingExperimentHeader }
            return [.experiment(id)]
        case .runQuery(let names):
            let q = PercentDecoding.query(request.uri.query ?? "")
            let ids = names.flatMap { q[$0] ?? [] }.filter { !$0.isEmpty }
            guard !ids.isEmpty else { throw Validation.missing(names[0]) }
            return try ids.map { .experiment(try service.experimentID(ofRun: $0)) }
        case .artifactPath:
            // A family's path names the experiment; only the listing (`artifacts`, no family path) names it by `?path=`.
            let path = ArtifactRoutes.proxiedTarget(request) ?? PercentDecoding.query(request.uri.query ?? "")["path"]?.last ?? ""
            // `<experiment id>/…`: proxied artifacts of runs and logged models live under their experiment's root.
            let first = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard let id = Int64(first), String(id) == first, (try? service.experiment(id: first)) != nil else { throw AccessRules.adminOnly }
            return [.experiment(first)]
        case .experimentField, .experimentNameField, .runField, .modelField, .traceLocation, .experimentListField, .traceField, .traceFieldAll, .scorerFields:
            throw TrackingError(.internalError, "access target \(target) is checked with the request's fields")
        }
    }
}

/// Unknown paths answer 401 to callers without valid credentials, as MLflow's auth app does, so which paths exist
/// is not told to anonymous callers.
struct UnknownRouteMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let gate: AccessGate

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound && gate.control != nil {
            _ = try await gate.authenticate(request, context)
            throw e
        }
    }
}
