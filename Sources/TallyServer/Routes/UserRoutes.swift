import Hummingbird
import NIOCore
import TallyTracking

/// Access control's endpoints: MLflow's user endpoints (`users/...` under each MLflow prefix), its unified
/// permission endpoints (`/api/3.0/mlflow/users/permissions/...`), and Tally's access tokens and per-resource
/// grant listing (`/api/tally/v1/tokens`, `/api/tally/v1/permissions`). The rules (who may, limits, messages) are
/// TallyTracking's ``AccessControl``; with access control off these answer 404.
struct UserRoutes {
    let endpoints: Endpoints

    /// `users/create|get|current|list|update-password|update-admin|delete`.
    func add(to t: RouteTable) {
        let e = endpoints
        t.on("users/create", .post, access: .admin, use: e.json { r in
            let u = try Self.control(e).createUser(try r.string("username"), password: try r.string("password"), by: r.caller)
            return Render.wrap("user", Self.user(Caller(u)))
        })
        t.on("users/get", .get, access: .user, use: e.json { r in
            Render.wrap("user", Self.user(Caller(try Self.control(e).user(try r.string("username"), by: r.caller))))
        })
        t.on("users/current", .get, access: .user, use: e.json { r in
            var o = Obj()
            o.add("is_basic_auth", bool: e.access != nil)
            if e.access != nil { o.add("user", raw: Self.user(r.caller)) }
            return o.json
        })
        t.on("users/list", .get, access: .user, use: e.json { _ in
            "{\"users\": [" + (try Self.control(e).users().map { Self.user(Caller($0), roles: true) }.joined(separator: ", ")) + "]}"
        })
        t.on("users/update-password", .patch, access: .user, use: e.json { r in
            try Self.control(e).updatePassword(try r.string("username"), password: try r.string("password"),
                                               currentPassword: try r.string("current_password"), by: r.caller)
            return Endpoints.empty
        })
        t.on("users/update-admin", .patch, access: .admin, use: e.json { r in
            try Self.control(e).updateAdmin(try r.string("username"), isAdmin: try r.bool("is_admin"), by: r.caller)
            return Endpoints.empty
        })
        t.on("users/delete", .delete, access: .admin, use: e.json { r in
            try Self.control(e).deleteUser(try r.string("username"), by: r.caller)
            return Endpoints.empty
        })
    }

    /// `users/permissions/grant|revoke|get|list` and `users/current/permissions` (MLflow 3's unified routes).
    func addPermissions(to t: RouteTable) {
        let e = endpoints
        t.on("users/permissions/grant", .post, access: .user, use: e.json { r in
            try Self.control(e).grant(try r.string("username"), type: try r.string("resource_type"), id: try r.string("resource_id"),
                                      permission: try r.string("permission"), by: r.caller)
            return Endpoints.empty
        })
        t.on("users/permissions/revoke", .post, access: .user, use: e.json { r in
            try Self.control(e).revoke(try r.string("username"), type: try r.string("resource_type"), id: try r.string("resource_id"), by: r.caller)
            return Endpoints.empty
        })
        t.on("users/permissions/get", .get, access: .user, use: e.json { r in
            let a = try Self.control(e).permission(try r.string("username"), type: try r.string("resource_type"), id: try r.string("resource_id"),
                                                   by: r.caller)
            var o = Obj()
            o.add("allowed", bool: a.allowed)
            o.add("permission", a.permission.rawValue)
            return o.json
        })
        t.on("users/permissions/list", .get, access: .user, use: e.json { r in
            Self.grantList(try Self.control(e).grants(of: try r.string("username"), by: r.caller))
        })
        t.on("users/current/permissions", .get, access: .user, use: e.json { r in
            Self.grantList(try Self.control(e).grants(of: r.caller.username, by: r.caller))
        })
    }

    /// `tokens` (POST creates one for the caller, GET lists theirs), `tokens/{id}` (DELETE revokes), and
    /// `permissions?resource_type=&resource_id=` (every grant on a resource, for its MANAGE holders).
    func addTokens(to t: RouteTable) {
        let e = endpoints
        addTokenRoutes(to: t, access: .user, control: { try Self.control(e) }) { r, _ in r.caller }
        t.on("permissions", .get, access: .user, use: e.json { r in
            let grants = try Self.control(e).grants(onType: try r.string("resource_type"), id: try r.string("resource_id"), by: r.caller)
            return "{\"permissions\": [" + grants.map { g in
                var o = Obj()
                o.add("username", g.username)
                o.add("permission", g.permission.rawValue)
                return o.json
            }.joined(separator: ", ") + "]}"
        })
    }

    /// `tokens` (POST creates one, GET lists them) and `tokens/{id}` (DELETE revokes), for the user `caller` names:
    /// the authenticated caller over HTTP, the request's `user` on the admin socket (``AdminSocket``).
    func addTokenRoutes(to t: RouteTable, access: Access, control: @escaping @Sendable () throws -> AccessControl,
                        caller: @escaping @Sendable (MLflowRequest, AccessControl) throws -> Caller) {
        let e = endpoints
        t.on("tokens", .post, access: access, use: e.json { r in
            let c = try control()
            let (info, token) = try c.createToken(name: try r.string("name"), expiresInDays: try r.int64("expires_in_days"), for: try caller(r, c))
            var o = Obj()
            o.add("id", info.id)
            o.add("token", token)
            o.add("name", info.name)
            o.add("expiry_time", info.expiryTime)
            return o.json
        })
        t.on("tokens", .get, access: access, use: e.json { r in
            let c = try control()
            return "{\"tokens\": [" + (try c.tokens(of: try caller(r, c)).map { i in
                var o = Obj()
                o.add("id", i.id)
                o.add("name", i.name)
                o.add("creation_time", i.creationTime)
                o.add("expiry_time", i.expiryTime)
                return o.json
            }.joined(separator: ", ")) + "]}"
        })
        t.on("tokens/{id}", .delete, access: access, use: e.json(path: ["id"]) { r, p, _ in
            let c = try control()
            try c.revokeToken(id: p[0], of: try caller(r, c))
            return ByteBuffer(string: Endpoints.empty)
        })
    }

    /// The UI's sessions: `login` (user name and password → an HttpOnly, SameSite=Strict session cookie and the
    /// session's CSRF token), `logout`, and `session` (whether access control is on, and who is signed in, if anyone).
    func addSessions(to t: RouteTable) {
        let e = endpoints
        t.on("login", .post, access: .open) { request, context in
            let control = try Self.control(e)
            let (name, password) = try await e.object(request, context) { r in (try r.string("username"), try r.string("password")) }
            let address = context.remoteAddress
            let s = try await e.pool.run { try control.login(username: name, password: password, address: address) }
            var o = Obj()
            o.add("is_basic_auth", bool: true)
            o.add("user", raw: Self.user(s.caller))
            o.add("csrf", s.csrf)
            var answer = Endpoints.ok(o.json)
            answer.headers[.setCookie] = Self.cookie(s.token, maxAge: s.maxAgeSeconds, request, secure: e.secureCookies)
            return answer
        }
        t.on("logout", .post, access: .open) { request, _ in
            if let control = e.access, let session = AccessGate.sessionCookie(request) {
                try await e.pool.run { try control.logout(session: session) }
            }
            var answer = Endpoints.ok(Endpoints.empty)
            answer.headers[.setCookie] = Self.cookie("", maxAge: 0, request, secure: e.secureCookies)
            return answer
        }
        t.on("session", .get, access: .open) { request, context in
            var o = Obj()
            o.add("is_basic_auth", bool: e.access != nil)
            // Not signed in (or wrong credentials): no user, no error — the UI then shows its login page.
            if e.access != nil, let caller = try? await e.gate.authenticate(request, context) {
                o.add("user", raw: Self.user(caller))
                if request.headers[.authorization] == nil, let session = AccessGate.sessionCookie(request) {
                    o.add("csrf", AccessControl.csrfToken(for: session))
                }
            }
            return Endpoints.ok(o.json)
        }
    }

    /// The session cookie: HttpOnly, SameSite=Strict, for the whole site; `Secure` when served over HTTPS (by this
    /// server, or by a proxy that says so in `X-Forwarded-Proto`).
    static func cookie(_ value: String, maxAge: Int64, _ request: Request, secure: Bool) -> String {
        var c = "\(AccessControl.sessionCookie)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
        if secure || request.headers[.init("X-Forwarded-Proto")!]?.lowercased() == "https" { c += "; Secure" }
        return c
    }


    /// Access control, or 404 when it is off (as MLflow without its auth app).
    static func control(_ e: Endpoints) throws -> AccessControl {
        guard let c = e.access else {
            throw TrackingError(.endpointNotFound, "Access control is off: start the server with --auth basic to manage users, grants and tokens")
        }
        return c
    }

    /// A user as MLflow writes one: `{"id", "is_admin", "username"}` (and `roles`, always empty, where MLflow lists
    /// them).
    static func user(_ c: Caller, roles: Bool = false) -> String {
        var o = Obj()
        o.add("id", c.userID)
        o.add("is_admin", bool: c.isAdmin)
        if roles { o.add("roles", raw: "[]") }
        o.add("username", c.username)
        return o.json
    }

    /// `permissions/list`: grants as MLflow 3 lists them (each user's synthetic role `__user_<id>__`).
    static func grantList(_ g: (isAdmin: Bool, userID: Int64, grants: [Grant])) -> String {
        var o = Obj()
        o.add("is_admin", bool: g.isAdmin)
        o.add("permissions", raw: "[" + g.grants.map { x in
            var p = Obj()
            p.add("permission", x.permission.rawValue)
            p.add("resource_pattern", x.resource.id)
            p.add("resource_type", x.resource.type.rawValue)
            p.add("role_id", g.userID)
            p.add("role_name", "__user_\(g.userID)__")
            p.add("workspace", "default")
            return p.json
        }.joined(separator: ", ") + "]")
        return o.json
    }
}
