import Foundation
import Synchronization
import Testing
@testable import TallyTracking

/// Access control in the service: password hashes, Basic and Bearer credentials, the failed-login limit, the
/// cache and its invalidation, MLflow's user and grant rules, grant resolution (DENY, `*`, default, creator), and
/// searches filtered by grants with pages that never count what the caller may not read.
@Suite struct AccessControlTests {
    /// A service and its access control (cheap hashes, an admin), on a clock the test moves.
    static func fixture(_ backend: Backend = .sqlite, _ configure: (inout AccessConfiguration) -> Void = { _ in }) throws -> (Fixture, AccessControl, TestClock) {
        let f = try Fixture("acl", backend: backend)
        var c = AccessConfiguration()
        c.adminPassword = "admin-password-1"
        c.passwordHashRounds = 1 << 10
        configure(&c)
        let clock = TestClock()
        let a = AccessControl(store: f.service.metadata, configuration: c, clock: { clock.now })
        try a.bootstrap()
        return (f, a, clock)
    }

    /// Milliseconds the test sets.
    final class TestClock: Sendable {
        let ms = Mutex<Int64>(1_700_000_000_000)
        var now: Int64 { ms.withLock { $0 } }
        func advance(_ d: Int64) { ms.withLock { $0 += d } }
    }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func passwordHashes() throws {
        let h = try Secrets.hashPassword("correct horse battery", rounds: 1 << 10)
        #expect(h.hasPrefix("scrypt:1024:8:1$"))
        #expect(Secrets.verify("correct horse battery", hash: h))
        #expect(!Secrets.verify("correct horse batterY", hash: h))
        #expect(try Secrets.hashPassword("correct horse battery", rounds: 1 << 10) != h)  // salted
        for bad in ["", "scrypt", "scrypt:1024:8:1$$", "md5:1:1:1$AAAA$00", "scrypt:1000:8:1$AAAA$00", h + "zz"] {
            #expect(!Secrets.verify("correct horse battery", hash: bad), "\(bad)")
        }
        let t = Secrets.newToken()
        #expect(t.hasPrefix("tly_") && t.count > 40 && Secrets.newToken() != t)
        #expect(Secrets.digest(t).count == 64)
    }

    @Test(arguments: Backend.all) func bootstrapNeedsAnAdminPassword(_ backend: Backend) throws {
        let f = try Fixture("acl-boot", backend: backend)
        expectError(.invalidParameterValue, "MLFLOW_AUTH_ADMIN_PASSWORD") {
            try AccessControl(store: f.service.metadata).bootstrap()
        }
        var c = AccessConfiguration()
        c.adminPassword = "short"
        expectError(.invalidParameterValue, "at least 12") { try AccessControl(store: f.service.metadata, configuration: c).bootstrap() }
        c.adminPassword = "long-enough-pw"
        c.passwordHashRounds = 1 << 10
        try AccessControl(store: f.service.metadata, configuration: c).bootstrap()
        // Once an admin exists, no password is needed and none is changed.
        try AccessControl(store: f.service.metadata).bootstrap()
        let admin = try #require(try f.service.metadata.user(named: "admin"))
        #expect(admin.isAdmin && Secrets.verify("long-enough-pw", hash: admin.passwordHash))
    }

    @Test(arguments: Backend.all) func basicAndBearerCredentials(_ backend: Backend) throws {
        let (f, a, _) = try Self.fixture(backend)
        defer { withExtendedLifetime(f) {} }
        let admin = try a.authenticate(Self.basic("admin", "admin-password-1"), address: "10.0.0.1")
        #expect(admin.isAdmin && admin.username == "admin")
        let alice = try a.createUser("alice", password: "alice-password", by: admin)
        #expect(try a.authenticate(Self.basic("alice", "alice-password"), address: nil).userID == alice.id)
        for wrong in [Self.basic("alice", "alice-passwore"), Self.basic("nobody", "alice-password"), "Basic !!!", "Bearer ", "Digest x", "",
                      "Bearer tly_unknown"] {
            expectError(.unauthenticated, "not authenticated") { _ = try a.authenticate(wrong, address: nil) }
        }
        let me = try a.localCaller("alice")
        let (info, token) = try a.createToken(name: "ci", expiresInDays: 30, for: me)
        #expect(try a.authenticate("Bearer " + token, address: nil).username == "alice")
        #expect(try a.tokens(of: me).map(\.id) == [info.id])
        #expect(try a.tokens(of: me).first?.expiryTime == info.creationTime + 30 * 86_400_000)
        try a.revokeToken(id: info.id, of: me)
        expectError(.unauthenticated, "not authenticated") { _ = try a.authenticate("Bearer " + token, address: nil) }  // at once
        expectError(.resourceDoesNotExist, "not found") { try a.revokeToken(id: info.id, of: me) }
        expectError(.invalidParameterValue, "between 1 and") { _ = try a.createToken(name: "x", expiresInDays: 0, for: me) }
        expectError(.invalidParameterValue, "'name'") { _ = try a.createToken(name: "", expiresInDays: nil, for: me) }
    }

    /// A user deleted after the caller was checked (another server deleted them; that server's cache is its own):
    /// their grant, token or session is refused by the store's insert, which keeps the user row until it commits,
    /// never a foreign-key error (a 500); a grant to a deleted user is MLflow's 404, and a creator deleted meanwhile
    /// leaves the new resource without a grant.
    @Test(arguments: Backend.all) func nothingIsWrittenForAUserDeletedMeanwhile(_ backend: Backend) throws {
        let (f, a, _) = try Self.fixture(backend)
        defer { withExtendedLifetime(f) {} }
        let admin = try a.localCaller("admin")
        let bob = try a.createUser("bob", password: "bob-password-1", by: admin)
        let stale = try a.localCaller("bob")
        try f.service.metadata.deleteUser(id: bob.id)
        expectError(.unauthenticated, "not authenticated") { _ = try f.service.metadata.insertGrant(userID: bob.id, Grant(resource: .experiment("0"), permission: .read)) }
        expectError(.unauthenticated, "not authenticated") { _ = try a.createToken(name: "ci", expiresInDays: nil, for: stale) }
        try a.didCreate(.experiment("0"), by: stale)
        #expect(try f.service.metadata.grants(userID: bob.id).isEmpty && f.service.metadata.tokens(userID: bob.id).isEmpty)
        // The grant route looks the user up first; the store refuses once they are gone.
        _ = try a.createUser("carol", password: "carol-password-1", by: admin)
        #expect(try f.service.metadata.insertGrant(userID: try a.localCaller("carol").userID, Grant(resource: .experiment("0"), permission: .read)))
        #expect(try !f.service.metadata.insertGrant(userID: try a.localCaller("carol").userID, Grant(resource: .experiment("0"), permission: .edit)))
    }

    @Test(arguments: Backend.all) func expiredTokensAndTheCacheWindow(_ backend: Backend) throws {
        let (f, a, clock) = try Self.fixture(backend)
        let c = a.configuration
        let admin = try a.localCaller("admin")
        let (_, token) = try a.createToken(name: "short", expiresInDays: 1, for: admin)
        #expect(try a.authenticate("Bearer " + token, address: nil).isAdmin)
        clock.advance(86_400_000 + 10_000)  // a day and the cache window later
        expectError(.unauthenticated, "not authenticated") { _ = try a.authenticate("Bearer " + token, address: nil) }
        // A password changed behind this server (another server, or `tally token` style tools) is seen within the window.
        _ = try a.createUser("bob", password: "bob-password-1", by: admin)
        #expect(try a.authenticate(Self.basic("bob", "bob-password-1"), address: nil).username == "bob")
        try f.service.metadata.updateUser(id: try #require(try f.service.metadata.user(named: "bob")).id,
                                          passwordHash: try Secrets.hashPassword("bob-password-2", rounds: 1 << 10), isAdmin: nil)
        #expect(try a.authenticate(Self.basic("bob", "bob-password-1"), address: nil).username == "bob")  // cached
        clock.advance(c.cacheMillis)
        expectError(.unauthenticated, "not authenticated") { _ = try a.authenticate(Self.basic("bob", "bob-password-1"), address: nil) }
        // Changed on this server: the old password fails at once.
        #expect(try a.authenticate(Self.basic("bob", "bob-password-2"), address: nil).username == "bob")
        try a.updatePassword("bob", password: "bob-password-3", currentPassword: nil, by: admin)
        expectError(.unauthenticated, "not authenticated") { _ = try a.authenticate(Self.basic("bob", "bob-password-2"), address: nil) }
    }

    @Test(arguments: Backend.all) func busyCredentialsAreReverifiedAhead(_ backend: Backend) throws {
        let (f, a, clock) = try Self.fixture(backend)
        let c = a.configuration
        _ = try a.createUser("eve", password: "eve-password-1", by: try a.localCaller("admin"))
        let header = Self.basic("eve", "eve-password-1")
        _ = try a.authenticate(header, address: nil)
        let hashes = { a.state.withLock { $0.hashes } }
        #expect(hashes() == 1)
        // Past the window its row is read again, but the password is not hashed again: the stored hash is the same.
        clock.advance(c.cacheMillis + 1)
        #expect(try a.authenticate(header, address: nil).username == "eve" && hashes() == 1)
        func settle() { while a.state.withLock({ !$0.refreshing.isEmpty }) { usleep(1000) } }
        // In the last quarter of its life a use re-verifies it in the background: still served, then good for
        // another full window.
        clock.advance(c.cacheMillis * 4 / 5)
        #expect(a.cachedCaller(header)?.username == "eve")
        settle()
        clock.advance(c.cacheMillis / 2)
        #expect(a.cachedCaller(header)?.username == "eve")  // past the first window
        // A password changed behind this server: the next background check drops it before the window ends.
        try f.service.metadata.updateUser(id: try #require(try f.service.metadata.user(named: "eve")).id,
                                          passwordHash: try Secrets.hashPassword("eve-password-2", rounds: 1 << 10), isAdmin: nil)
        clock.advance(c.cacheMillis * 2 / 5)
        _ = a.cachedCaller(header)
        settle()
        #expect(a.cachedCaller(header) == nil)
        expectError(.unauthenticated, "not authenticated") { _ = try a.authenticate(header, address: nil) }
        #expect(try a.authenticate(Self.basic("eve", "eve-password-2"), address: nil).username == "eve")
    }

    @Test func failedLoginsAreLimitedPerUserAndAddress() throws {
        let (f, a, clock) = try Self.fixture { $0.maxFailures = 3 }
        defer { withExtendedLifetime(f) {} }
        for _ in 0..<3 {
            expectError(.unauthenticated, "") { _ = try a.authenticate(Self.basic("admin", "guess"), address: "10.0.0.9") }
        }
        // The user is locked out for the window, even with the right password and from another address.
        for address in ["10.0.0.9", "10.0.0.10"] {
            do {
                _ = try a.authenticate(Self.basic("admin", "admin-password-1"), address: address)
                Issue.record("expected 429")
            } catch let e as TrackingError {
                #expect(e.code == .requestLimitExceeded && AccessRules.retryAfter(e) == 60, "\(e)")
            }
        }
        // So is the address, for other users.
        expectError(.requestLimitExceeded, "retry after") { _ = try a.authenticate(Self.basic("someone", "x"), address: "10.0.0.9") }
        clock.advance(60_001)
        #expect(try a.authenticate(Self.basic("admin", "admin-password-1"), address: "10.0.0.9").isAdmin)
    }

    @Test(arguments: Backend.all) func userRules(_ backend: Backend) throws {
        let (f, a, _) = try Self.fixture(backend)
        defer { withExtendedLifetime(f) {} }
        let admin = try a.localCaller("admin")
        expectError(.invalidParameterValue, "cannot be empty") { _ = try a.createUser("", password: "x", by: admin) }
        expectError(.invalidParameterValue, "at least 12 characters") { _ = try a.createUser("carol", password: "short", by: admin) }
        expectError(.invalidParameterValue, "Invalid username") { _ = try a.createUser("a:b", password: "long-enough-pw", by: admin) }
        let carol = try a.createUser("carol", password: "carol-password", by: admin)
        expectError(.resourceAlreadyExists, "User (username=carol) already exists.") { _ = try a.createUser("carol", password: "carol-password", by: admin) }
        let c = try a.localCaller("carol")
        expectError(.permissionDenied, "only an admin") { _ = try a.createUser("dave", password: "dave-password", by: c) }
        _ = try a.createUser("dave", password: "dave-password", by: admin)
        expectError(.permissionDenied, "Permission denied") { _ = try a.user("dave", by: c) }
        #expect(try a.user("carol", by: c).id == carol.id)
        #expect(try a.users().map(\.username) == ["admin", "carol", "dave"])  // non-admins may list
        expectError(.resourceDoesNotExist, "User with username=nobody not found") { _ = try a.user("nobody", by: admin) }
        // Own password: the current one is required, must match, and the new one must differ.
        expectError(.invalidParameterValue, "Current password is required") { try a.updatePassword("carol", password: "carol-password-2", currentPassword: nil, by: c) }
        expectError(.invalidParameterValue, "does not match") { try a.updatePassword("carol", password: "carol-password-2", currentPassword: "nope", by: c) }
        expectError(.invalidParameterValue, "must differ") { try a.updatePassword("carol", password: "carol-password", currentPassword: "carol-password", by: c) }
        try a.updatePassword("carol", password: "carol-password-2", currentPassword: "carol-password", by: c)
        expectError(.permissionDenied, "Permission denied") { try a.updatePassword("dave", password: "dave-password-2", currentPassword: nil, by: c) }
        expectError(.badRequest, "cannot delete their own account") { try a.deleteUser("admin", by: admin) }
        try a.updateAdmin("carol", isAdmin: true, by: admin)
        #expect(try a.authenticate(Self.basic("carol", "carol-password-2"), address: nil).isAdmin)
        try a.deleteUser("dave", by: admin)
        expectError(.resourceDoesNotExist, "not found") { try a.deleteUser("dave", by: admin) }
    }

    @Test(arguments: Backend.all) func grantRulesAndResolution(_ backend: Backend) throws {
        let (f, a, _) = try Self.fixture(backend)
        let admin = try a.localCaller("admin")
        _ = try a.createUser("alice", password: "alice-password", by: admin)
        _ = try a.createUser("bob", password: "bob-password-1", by: admin)
        let alice = try a.localCaller("alice"), bob = try a.localCaller("bob")
        let exp = try f.service.createExperiment(name: "e")
        // MLflow's messages, in its order of checks.
        expectError(.invalidParameterValue, "Missing value for required parameter 'resource_id'") {
            try a.grant("alice", type: "experiment", id: nil, permission: "READ", by: admin)
        }
        expectError(.invalidParameterValue, "Invalid permission 'SUPER'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')") {
            try a.grant("alice", type: "experiment", id: exp, permission: "SUPER", by: admin)
        }
        expectError(.invalidParameterValue, "Invalid resource type 'planet'. Valid resource types are: ('assessment', 'experiment',") {
            try a.grant("alice", type: "planet", id: exp, permission: "READ", by: admin)
        }
        expectError(.invalidParameterValue, "Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').") {
            try a.grant("alice", type: "experiment", id: exp, permission: "NO_PERMISSIONS", by: admin)
        }
        expectError(.invalidParameterValue, "only '*'") { try a.grant("alice", type: "run", id: "abc", permission: "READ", by: admin) }
        expectError(.resourceDoesNotExist, "User with username=nobody not found") { try a.grant("nobody", type: "experiment", id: exp, permission: "READ", by: admin) }
        // Non-admins grant only with MANAGE; the creator has it.
        expectError(.permissionDenied, "MANAGE on experiment") { try a.grant("bob", type: "experiment", id: exp, permission: "EDIT", by: alice) }
        try a.didCreate(.experiment(exp), by: alice)
        try a.grant("bob", type: "experiment", id: exp, permission: "EDIT", by: alice)
        expectError(.resourceAlreadyExists, "already exists") { try a.grant("bob", type: "experiment", id: exp, permission: "READ", by: alice) }
        #expect(try a.permission("bob", type: "experiment", id: exp, by: bob) == PermissionAnswer(allowed: true, permission: .edit))
        #expect(try a.permission("bob", type: "experiment", id: "999", by: bob) == PermissionAnswer(allowed: false, permission: .read))
        expectError(.permissionDenied, "Permission denied") { _ = try a.permission("alice", type: "experiment", id: exp, by: bob) }
        #expect(try a.grants(for: bob).permission(on: .experiment(exp)) == .edit)  // the grant dropped bob's cached grants
        // DENY on the type's `*` beats an own grant; `*` applies where no own grant does.
        try a.grant("bob", type: "experiment", id: "*", permission: "DENY", by: admin)
        #expect(try a.grants(for: bob).permission(on: .experiment(exp)) == .deny)
        expectError(.permissionDenied, "creating a experiment is denied") { try a.grants(for: bob).requireCreate(.experiment) }
        try a.grants(for: bob).requireCreate(.registeredModel)  // the veto is per type
        try a.revoke("bob", type: "experiment", id: "*", by: admin)
        try a.grant("bob", type: "registered_model", id: "*", permission: "MANAGE", by: admin)
        #expect(try a.grants(for: bob).permission(on: .registeredModel("any")) == .manage)
        expectError(.resourceDoesNotExist, "Permission for user=bob on resource_type=experiment, resource_id=* not found.") {
            try a.revoke("bob", type: "experiment", id: "*", by: admin)
        }
        let listed = try a.grants(of: "bob", by: bob)
        #expect(!listed.isAdmin && listed.grants.map(\.permission) == [.edit, .manage])
        #expect(try a.grants(onType: "experiment", id: exp, by: alice).map(\.username) == ["alice", "bob"])
        expectError(.permissionDenied, "MANAGE") { _ = try a.grants(onType: "experiment", id: exp, by: bob) }
        // Grants follow a renamed model and go with a deleted one.
        _ = try f.service.createRegisteredModel(name: "m", tags: [], description: nil)
        try a.didCreate(.registeredModel("m"), by: alice)
        _ = try f.service.renameRegisteredModel("m", to: "m2")
        #expect(try f.service.metadata.grants(userID: alice.userID).contains(Grant(resource: .registeredModel("m2"), permission: .manage)))
        try f.service.deleteRegisteredModel("m2")
        #expect(try !f.service.metadata.grants(userID: alice.userID).contains { $0.resource.type == .registeredModel })
    }

    @Test(arguments: Backend.all) func searchesShowOnlyWhatTheCallerMayRead(_ backend: Backend) throws {
        let (f, a, _) = try Self.fixture(backend) { $0.defaultPermission = .noPermissions }
        let s = f.service
        let admin = try a.localCaller("admin")
        _ = try a.createUser("alice", password: "alice-password", by: admin)
        let alice = try a.localCaller("alice")
        var exps: [String] = []
        for i in 0..<6 {
            let e = try s.createExperiment(name: "e\(i)")
            exps.append(e)
            _ = try s.createRun(experimentID: e)
            _ = try s.createRegisteredModel(name: "m\(i)", tags: [], description: nil)
        }
        for i in [1, 3, 5] {
            try a.grant("alice", type: "experiment", id: exps[i], permission: "READ", by: admin)
            try a.grant("alice", type: "registered_model", id: "m\(i)", permission: "READ", by: admin)
        }
        let g = try a.grants(for: alice)
        // Pages of two over the three readable experiments: full pages, a token only while more are readable.
        let p1 = try s.searchExperiments(maxResults: 2, orderBy: ["name"], scope: g)
        #expect(p1.items.map(\.name) == ["e1", "e3"] && p1.nextPageToken != nil)
        let p2 = try s.searchExperiments(maxResults: 2, orderBy: ["name"], pageToken: p1.nextPageToken, scope: g)
        #expect(p2.items.map(\.name) == ["e5"] && p2.nextPageToken == nil)
        #expect(try s.searchExperiments(maxResults: 100).items.count == 7)  // unrestricted: Default too
        let runs = try s.searchRuns(experimentIDs: exps, maxResults: 2, scope: g)
        #expect(runs.items.count == 2 && runs.nextPageToken != nil)
        let rest = try s.searchRuns(experimentIDs: exps, maxResults: 2, pageToken: runs.nextPageToken, scope: g)
        #expect(rest.items.count == 1 && rest.nextPageToken == nil)
        #expect(Set((runs.items + rest.items).map(\.info.experimentID)) == [exps[1], exps[3], exps[5]])
        #expect(try s.searchRuns(experimentIDs: [exps[0]], scope: g).items.isEmpty)  // never a 403 for a search
        #expect(try s.searchRegisteredModels(filter: nil, maxResults: 10, orderBy: [], pageToken: nil, scope: g).items.map(\.name) == ["m1", "m3", "m5"])
        // Explicitly named runs are refused instead.
        let hidden = try s.searchRuns(experimentIDs: [exps[0]]).items[0].info.runID
        expectError(.permissionDenied, "READ on experiment '\(exps[0])'") { _ = try s.historyBulk(runIDs: [hidden], key: "loss", maxResults: nil, scope: g) }
        // An id written another way is the same experiment to the grants as to the service ("05", " 5" and "+5" were
        // the service's 5 but no grant's, so they read what a default-level caller may not).
        for other in ["0" + exps[0], " \(exps[0])", "+" + exps[0], exps[0] + "\n"] {
            #expect(try s.searchRuns(experimentIDs: [other], scope: g).items.isEmpty, "\(other)")
            #expect(!g.canRead(experiment: other))
            #expect(g.canRead(experiment: "0" + exps[1]))
        }
    }
}
