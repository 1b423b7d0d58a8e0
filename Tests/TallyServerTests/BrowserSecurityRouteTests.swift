import Foundation
import Testing
import TallyServer
import TallyTracking

/// MLflow 3's security middleware on the real application: `Host` checks against DNS rebinding, cross-site writes
/// refused, CORS for allowed origins, and the headers every answer carries.
@Suite struct BrowserSecurityRouteTests {
    /// A request with exactly these headers (`host` `nil`: no `Host` header at all).
    static func send(_ s: LiveServer, _ method: String, _ path: String, host: String? = "127.0.0.1", headers: [String: String] = [:],
                     json: String? = nil) async throws -> HTTPAnswer {
        var head = "\(method) \(path) HTTP/1.1\r\nConnection: close\r\n"
        if let host { head += "Host: \(host)\r\n" }
        if let json { head += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n" }
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        return try await s.raw(Array((head + "\r\n" + (json ?? "")).utf8))
    }

    static func experiments(_ s: LiveServer, prefix: String = "") async throws -> [String] {
        let r = try await s.post(prefix + "/api/2.0/mlflow/experiments/search", #"{"max_results": 100}"#)
        return ((r.json["experiments"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
    }

    @Test func hostsOtherThanTheServersAreRefused() async throws {
        try await LiveServer.with { s in
            for host in ["evil.example", "evil.example:\(s.port)", "10.attacker.example", "8.8.8.8"] {
                for path in ["/api/2.0/mlflow/experiments/search?max_results=1", "/", "/static/app.js", "/api/tally/v1/runs/x/metrics"] {
                    let r = try await Self.send(s, "GET", path, host: host)
                    #expect(r.status == 403 && r.errorCode == "PERMISSION_DENIED", "\(host) \(path): \(r.status) \(r.text)")
                    #expect((r.json["message"] as? String)?.contains("--allowed-hosts") == true)
                    #expect(r.headers["x-content-type-options"] == "nosniff" && r.headers["x-frame-options"] == "SAMEORIGIN")
                }
            }
            #expect(try await Self.send(s, "GET", "/", host: nil).status == 403)
            // Probes answer whatever the name.
            #expect(try await Self.send(s, "GET", "/health", host: "evil.example").text == "OK")
            #expect(try await Self.send(s, "GET", "/version", host: "evil.example").status == 200)
            #expect(try await Self.send(s, "GET", "/ready", host: "evil.example").status == 200)
            // A write through a refused name changes nothing.
            let w = try await Self.send(s, "POST", "/api/2.0/mlflow/experiments/create", host: "evil.example", json: #"{"name": "rebound"}"#)
            #expect(w.status == 403)
            for host in ["127.0.0.1:\(s.port)", "localhost:\(s.port)", "[::1]:\(s.port)", "192.168.1.7:\(s.port)", "10.0.0.5"] {
                #expect(try await Self.send(s, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", host: host).status == 200, "\(host)")
            }
            #expect(try await Self.experiments(s) == ["Default"])
            // Two Host headers: which names the server is ambiguous (RFC 9112), so neither is trusted.
            let two = try await Self.send(s, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers: ["Host": "evil.example"])
            #expect(two.status == 400 && (two.json["message"] as? String)?.contains("more than one") == true, "\(two.status) \(two.text)")
        }
    }

    @Test func crossSiteWritesAreRefusedAndAllowedOriginsGetCORS() async throws {
        try await LiveServer.with({ $0.browserSecurity = try! BrowserSecurity(allowedOrigins: "https://app.example.com") }) { s in
            let create = "/api/2.0/mlflow/experiments/create"
            for (method, path, json) in [("POST", create, #"{"name": "evil"}"#), ("POST", "/ajax-api/2.0/mlflow/experiments/create", #"{"name": "evil2"}"#),
                                         ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/x.txt", "x"), ("DELETE", "/api/2.0/mlflow/experiments/delete", "{}"),
                                         ("POST", "/api/tally/v1/runs/x/metrics", "{}"), ("PATCH", "/api/2.0/mlflow/runs/update", "{}")] {
                let r = try await Self.send(s, method, path, headers: ["Origin": "https://evil.example"], json: json)
                #expect(r.status == 403 && r.errorCode == "PERMISSION_DENIED", "\(method) \(path): \(r.status) \(r.text)")
                #expect((r.json["message"] as? String)?.hasPrefix("Cross-origin request blocked") == true)
                #expect(r.headers["access-control-allow-origin"] == nil)
            }
            #expect(try await Self.experiments(s) == ["Default"])
            // Reads from another origin are answered, but without CORS headers the browser keeps them from the page.
            let read = try await Self.send(s, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers: ["Origin": "https://evil.example"])
            #expect(read.status == 200 && read.headers["access-control-allow-origin"] == nil && read.headers["vary"] == "Origin")
            // An allowed origin, localhost, and the server's own page (same origin) may write; CORS headers for the first two.
            let app = try await Self.send(s, "POST", create, headers: ["Origin": "https://app.example.com"], json: #"{"name": "from-app"}"#)
            #expect(app.status == 200 && app.headers["access-control-allow-origin"] == "https://app.example.com")
            #expect(app.headers["access-control-allow-credentials"] == "true" && app.headers["access-control-expose-headers"]?.contains("ETag") == true)
            let local = try await Self.send(s, "POST", create, headers: ["Origin": "http://localhost:3000"], json: #"{"name": "from-localhost"}"#)
            #expect(local.status == 200 && local.headers["access-control-allow-origin"] == "http://localhost:3000")
            let own = try await Self.send(s, "POST", create, host: "10.0.0.5:\(s.port)", headers: ["Origin": "http://10.0.0.5:\(s.port)"],
                                          json: #"{"name": "from-ui"}"#)
            #expect(own.status == 200 && own.headers["access-control-allow-origin"] == nil, "\(own.text)")
            // The same page over another scheme than the server's (a proxy says which in X-Forwarded-Proto).
            let https = try await Self.send(s, "POST", create, host: "10.0.0.5:\(s.port)", headers: ["Origin": "https://10.0.0.5:\(s.port)"],
                                            json: #"{"name": "other-scheme"}"#)
            #expect(https.status == 403)
            let proxied = try await Self.send(s, "POST", create, host: "10.0.0.5", headers: ["Origin": "https://10.0.0.5", "X-Forwarded-Proto": "https"],
                                              json: #"{"name": "behind-a-proxy"}"#)
            #expect(proxied.status == 200, "\(proxied.text)")
            #expect(Set(try await Self.experiments(s)) == ["Default", "from-app", "from-localhost", "from-ui", "behind-a-proxy"])
        }
    }

    @Test func preflightsAreAnsweredForAllowedOrigins() async throws {
        try await LiveServer.with({ $0.browserSecurity = try! BrowserSecurity(allowedOrigins: "https://*.example.com") }) { s in
            let path = "/api/2.0/mlflow/runs/log-batch"
            let ok = try await Self.send(s, "OPTIONS", path, headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                                                                       "Access-Control-Request-Headers": "content-type,authorization"])
            #expect(ok.status == 204 && ok.headers["access-control-allow-origin"] == "https://app.example.com", "\(ok.status) \(ok.text)")
            #expect(ok.headers["access-control-allow-methods"]?.contains("POST") == true && ok.headers["access-control-max-age"] == "600")
            #expect(ok.headers["access-control-allow-headers"] == "content-type,authorization" && ok.headers["access-control-allow-credentials"] == "true")
            let evil = try await Self.send(s, "OPTIONS", path, headers: ["Origin": "https://evil.example", "Access-Control-Request-Method": "POST"])
            #expect(evil.status == 403 && evil.headers["access-control-allow-origin"] == nil)
            let method = try await Self.send(s, "OPTIONS", path, headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "FOO"])
            #expect(method.status == 403 && method.errorCode == "PERMISSION_DENIED")
            // A preflight to a refused host is refused for the host.
            let host = try await Self.send(s, "OPTIONS", path, host: "evil.example",
                                           headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"])
            #expect(host.status == 403 && (host.json["message"] as? String)?.hasPrefix("Invalid Host header") == true)
        }
    }

    @Test func settingsChangeTheHeadersAndTheChecks() async throws {
        // X-Frame-Options DENY, and NONE (no header); errors and the UI carry them too.
        try await LiveServer.with({ $0.browserSecurity = try! BrowserSecurity(frameOptions: "DENY") }) { s in
            for path in ["/", "/nothing", "/api/2.0/mlflow/experiments/get?experiment_id=404"] {
                let r = try await Self.send(s, "GET", path)
                #expect(r.headers["x-frame-options"] == "DENY" && r.headers["x-content-type-options"] == "nosniff", "\(path)")
            }
        }
        try await LiveServer.with({ $0.browserSecurity = try! BrowserSecurity(allowedHosts: "tally.example.com", frameOptions: "NONE") }) { (s: LiveServer) async throws in
            #expect(try await Self.send(s, "GET", "/").headers["x-frame-options"] == nil)
            #expect(try await Self.send(s, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", host: "TALLY.example.com:443").status == 200)
            #expect(try await Self.send(s, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", host: "127.0.0.1").status == 200)  // --host
            #expect(try await Self.send(s, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", host: "localhost").status == 403)
        }
        // --disable-security-middleware: nothing checked, no headers added (the UI's own nosniff stays).
        try await LiveServer.with({ $0.browserSecurity = nil }) { s in
            let r = try await Self.send(s, "POST", "/api/2.0/mlflow/experiments/create", host: "evil.example", headers: ["Origin": "https://evil.example"],
                                        json: #"{"name": "open"}"#)
            #expect(r.status == 200 && r.headers["x-frame-options"] == nil && r.headers["vary"] == nil)
        }
    }

    /// `--static-prefix /mlflow`: every route under it, the page at `/mlflow/` (`/mlflow` redirects there), the
    /// `Host`-exempt probes at `/mlflow/health` and `/mlflow/version` only, as MLflow registers them.
    @Test func everyRouteUnderAStaticPrefix() async throws {
        try await LiveServer.with({ $0.staticPrefix = "/mlflow" }) { s in
            let created = try await s.post("/mlflow/api/2.0/mlflow/experiments/create", #"{"name": "prefixed"}"#)
            #expect(created.status == 200, "\(created.text)")
            #expect(Set(try await Self.experiments(s, prefix: "/mlflow")) == ["Default", "prefixed"])
            for path in ["/api/2.0/mlflow/experiments/search?max_results=1", "/", "/health", "/static/app.js", "/mlflowx/"] {
                #expect(try await s.get(path).status == 404, "\(path)")
            }
            let page = try await s.get("/mlflow/")
            #expect(page.status == 200 && page.text.contains(#"src="static/app.js""#))
            #expect(try await s.get("/mlflow/static/api.js").status == 200)
            let bare = try await s.get("/mlflow?x=1")
            #expect(bare.status == 308 && bare.headers["location"] == "/mlflow/?x=1")
            // The router reads `//mlflow` as `/mlflow`; the redirect names the prefix, not `//mlflow/` (host `mlflow`).
            #expect(try await s.get("//mlflow").headers["location"] == "/mlflow/")
            // The proxied artifacts are also served without the prefix, as MLflow serves them.
            #expect(try await s.get("/api/2.0/mlflow-artifacts/artifacts/0/a.txt").status == 404)  // not written yet
            #expect(try await Self.send(s, "GET", "/mlflow/health", host: "evil.example").text == "OK")
            #expect(try await Self.send(s, "GET", "/mlflow/ready", host: "evil.example").status == 200)
            #expect(try await Self.send(s, "GET", "/mlflow/", host: "evil.example").status == 403)
            let put = try await s.request("PUT", "/mlflow/api/2.0/mlflow-artifacts/artifacts/0/a.txt", body: Array("hi".utf8), contentType: "text/plain")
            #expect(put.status == 200, "\(put.text)")
            #expect(try await s.get("/mlflow/api/2.0/mlflow-artifacts/artifacts/0/a.txt").text == "hi")
            #expect(try await s.get("/api/2.0/mlflow-artifacts/artifacts/0/a.txt").text == "hi")
        }
    }
}
