import Hummingbird

/// The routes of one area as a Hummingbird `RouteCollection`, remembering which methods each path serves so that
/// every other method answers 405 (MLflow error JSON with an `Allow` header) instead of 404.
final class RouteTable {
    /// A route handler.
    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    private let collection = RouteCollection(context: BasicRequestContext.self)
    private var paths: [String] = []
    private var methods: [String: [HTTPRequest.Method]] = [:]

    /// Every method a 405 is answered for when the path does not serve it.
    static let allMethods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .options, .head]

    /// Serves `path` (relative to where the table is mounted) for `methods` with `handler`.
    func on(_ path: String, _ methods: HTTPRequest.Method..., use handler: @escaping Handler) {
        if self.methods[path] == nil { paths.append(path) }
        for m in methods {
            self.methods[path, default: []].append(m)
            collection.on(RouterPath(path), method: m, use: handler)
        }
    }

    /// The collection, with the 405 answers added.
    func build() -> RouteCollection<BasicRequestContext> {
        for path in paths {
            let served = methods[path] ?? []
            // HEAD is generated for every GET by the router.
            let allowed = served.contains(.get) ? served + [.head] : served
            for m in Self.allMethods where !allowed.contains(m) {
                collection.on(RouterPath(path), method: m) { request, _ -> Response in
                    throw MLflowError.methodNotAllowed(request, allowed: allowed)
                }
            }
        }
        return collection
    }
}
