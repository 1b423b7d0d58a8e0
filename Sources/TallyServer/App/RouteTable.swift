import Hummingbird

/// The routes of one area as a Hummingbird `RouteCollection`, remembering which methods each path serves so that
/// every other method answers 405 (MLflow error JSON with an `Allow` header) instead of 404. Every route declares
/// its ``Access``: the handler runs behind the ``AccessGate`` with it, and ``entries`` lists them for the generated
/// access test.
final class RouteTable {
    /// A route handler.
    typealias Handler = @Sendable (Request, TallyRequestContext) async throws -> Response

    /// One method of one path and what it needs.
    struct Entry: Sendable {
        /// The path relative to where the table is mounted.
        let path: String
        let method: HTTPRequest.Method
        let access: Access
    }

    private let gate: AccessGate
    private let collection = RouteCollection(context: TallyRequestContext.self)
    private var paths: [String] = []
    private var methods: [String: [HTTPRequest.Method]] = [:]
    /// Every route, in the order added.
    private(set) var entries: [Entry] = []

    /// How OPTIONS is answered on this table's paths: MLflow 3.17 answers 204 on its API (`/api/…`, `/ajax-api/…`)
    /// and Flask's 200 elsewhere (`/health`, `/`, `/get-artifact`), both with an empty body and `Allow`.
    private let optionsStatus: HTTPResponse.Status

    /// A table whose routes are checked by `gate`; `api`: mounted under an API prefix (OPTIONS answers 204, else 200).
    init(gate: AccessGate, api: Bool = true) {
        self.gate = gate
        optionsStatus = api ? .noContent : .ok
    }

    /// Every method a 405 is answered for when the path does not serve it.
    static let allMethods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .options, .head]

    /// Serves `path` (relative to where the table is mounted) for `methods` with `handler`, behind `access`.
    func on(_ path: String, _ methods: HTTPRequest.Method..., access: Access, use handler: @escaping Handler) {
        if self.methods[path] == nil { paths.append(path) }
        let gate = gate
        for m in methods {
            self.methods[path, default: []].append(m)
            entries.append(Entry(path: path, method: m, access: access))
            collection.on(RouterPath(path), method: m) { request, context in
                try await handler(request, try await gate.admit(access, request, context))
            }
        }
    }

    /// The collection, with the 405 answers added, and OPTIONS answered with the methods a path serves, as MLflow
    /// answers it (``optionsStatus``; by the loosest access the path declares: anyone on a path open to anyone, else
    /// authenticated callers, others getting the 401 first). A CORS preflight is answered by the browser defences
    /// before it gets here, unless they are off; then it gets no CORS headers, as from MLflow without its middleware.
    func build() -> RouteCollection<TallyRequestContext> {
        let gate = gate, optionsStatus = optionsStatus
        for path in paths {
            let served = methods[path] ?? []
            // HEAD is generated for every GET by the router.
            let allowed = served.contains(.get) ? served + [.head] : served
            let open = entries.contains { e in
                guard e.path == path, case .open = e.access else { return false }
                return true
            }
            for m in Self.allMethods where !allowed.contains(m) {
                collection.on(RouterPath(path), method: m) { request, context -> Response in
                    guard request.method == .options else {
                        // One route label for every method a path does not serve (metrics by route stay bounded by
                        // the routes served, whatever methods clients try).
                        context.coreContext.endpointPath.value = "MethodNotAllowed"
                        _ = try await gate.admit(.user, request, context)
                        throw MLflowError.methodNotAllowed(request, allowed: allowed)
                    }
                    _ = try await gate.admit(open ? .open : .user, request, context)
                    let methods = (allowed + [.options]).map(\.rawValue).joined(separator: ", ")
                    return Response(status: optionsStatus, headers: [.allow: methods])
                }
            }
        }
        return collection
    }
}
