import Hummingbird
import NIOCore

/// Serves the web UI embedded in the binary: `/` is the single page, `/static/<file>` its scripts and styles (under a
/// `--static-prefix`, `/mlflow/` and `/mlflow/static/<file>`; the page finds its scripts and the API relative to its
/// own address). Responses carry an ETag (content hash) and `Cache-Control: no-cache`, so browsers revalidate and get
/// 304s.
struct UIRoutes: Sendable {
    /// The server's `--static-prefix`, empty for none.
    let prefix: String

    func add(to t: RouteTable) {
        let prefix = prefix
        t.on("/", .get, access: .open) { request, _ in
            // `/mlflow` → `/mlflow/`: the page's relative addresses resolve against a path that ends with `/`. The
            // target is the prefix, never the request's path (`//mlflow` must not send the browser to host `mlflow`).
            guard request.uri.path.hasSuffix("/") else {
                let target = prefix + "/" + (request.uri.query.map { "?" + $0 } ?? "")
                return Response(status: .permanentRedirect, headers: [.location: target])
            }
            return Self.serve("index.html", request)
        }
        t.on("/static/:file", .get, access: .open) { request, context in
            Self.serve(context.parameters.get("file") ?? "", request)
        }
    }

    /// The page's Content-Security-Policy: everything it loads is its own (scripts only from files, no `eval`), so a
    /// value that slipped past the page's escaping could not run script or send data elsewhere. Inline styles stay
    /// allowed (the page sets colours and widths in `style` attributes), and the favicon is a `data:` URL.
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        + "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"

    static func serve(_ name: String, _ request: Request) -> Response {
        guard let file = EmbeddedAssets.files[name] else {
            return Response(status: .notFound, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "not found")))
        }
        var headers: HTTPFields = [.eTag: file.etag, .cacheControl: "no-cache", .contentType: file.contentType]
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        if name == "index.html" { headers[.contentSecurityPolicy] = contentSecurityPolicy }
        if request.headers[.ifNoneMatch] == file.etag {
            return Response(status: .notModified, headers: headers)
        }
        let body = file.body.withUTF8Buffer { ByteBuffer(bytes: $0) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}
