import Dispatch
import Foundation
import Synchronization

/// Settings of access control (`tally server --auth basic`).
public struct AccessConfiguration: Sendable {
    /// The admin created on first start (`--admin-username`).
    public var adminUsername = "admin"
    /// The admin's password on first start (`MLFLOW_AUTH_ADMIN_PASSWORD`); ignored once an admin exists.
    public var adminPassword: String?
    /// The level of an authenticated user on a resource they hold no grant on (`--default-permission`).
    public var defaultPermission: Permission = .read
    /// Failed logins per user and per address within ``failureWindowMillis`` before 429 (`--auth-max-failures`).
    public var maxFailures = 10
    /// scrypt's cost N for new password hashes (a power of two; MLflow's 32,768 by default — lower only in tests).
    public var passwordHashRounds = Secrets.rounds
    /// The window failed logins are counted in.
    public var failureWindowMillis: Int64 = 60_000
    /// How long a verified credential and a user's grants are reused before being read again.
    public var cacheMillis: Int64 = 5_000
    /// Where audit lines go (who created, deleted or granted what; never a credential).
    public var audit: @Sendable (String) -> Void = { _ in }

    /// The defaults.
    public init() {}
}

/// Access control: users, passwords, access tokens and grants in the metadata store, with MLflow's basic-auth
/// rules. Verified credentials and each user's grants are cached for at most ``AccessConfiguration/cacheMillis``
/// (dropped at once when this server changes a password, an admin flag, a grant or a token; re-checked against the
/// user's row in the background while in use), and a password that verified against a stored hash is not hashed
/// again while that hash is unchanged: the slow hash is paid once per credential, not per request or per window. Failed logins are counted per user and per
/// address; past the limit the answer is 429 until the window passes.
public final class AccessControl: Sendable {
    /// Where users and grants live.
    let store: any AccessStore
    /// The settings.
    public let configuration: AccessConfiguration
    let clock: @Sendable () -> Int64
    let state = Mutex(State())
    /// A hash no password matches, of the same cost as real ones: unknown users are verified against it, so they
    /// take as long as wrong passwords. Made by ``bootstrap()`` (the server's start), not by every instance: the
    /// `tally token` commands never verify a password.
    let decoy = Mutex<String?>(nil)
    /// At most two password hashes computed at once (each takes 32 MiB and most of a core for ~0.1 s).
    let hashing = HashingGate(limit: 2)

    struct State {
        /// Verified `Authorization` values by digest: the caller and when the entry expires.
        var callers: [String: (caller: Caller, expires: Int64)] = [:]
        /// Grants by user id.
        var grants: [Int64: (grants: Grants, expires: Int64)] = [:]
        /// Failure times by `u:name` and `a:address`.
        var failures: [String: [Int64]] = [:]
        /// Credentials being re-verified in the background (by digest).
        var refreshing: Set<String> = []
        /// For each password credential that verified (by digest of its cache key), the stored hash it verified
        /// against: while the user's stored hash is still that one, the same password verifies again without
        /// hashing (verification is a function of the two). A changed password changes the hash.
        var verified: [String: String] = [:]
        /// Password hashes verified so far (tests read it).
        var hashes = 0
    }

    /// Most cached credentials and grant sets (beyond it the cache starts over).
    static let maxCached = 10_000

    /// Access control over `store` (no admin is created: see ``bootstrap()``).
    public init(store: any AccessStore, configuration: AccessConfiguration = AccessConfiguration(),
                clock: @escaping @Sendable () -> Int64 = TrackingService.nowMillis) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
    }

    /// The decoy hash (made on first use when ``bootstrap()`` did not).
    var decoyHash: String {
        if let d = decoy.withLock({ $0 }) { return d }
        let d = (try? Secrets.hashPassword(UUID().uuidString, rounds: configuration.passwordHashRounds)) ?? "scrypt:2:1:1$$"
        decoy.withLock { $0 = $0 ?? d }
        return d
    }

    /// Makes sure an admin exists: on a store without one, creates ``AccessConfiguration/adminUsername`` with
    /// ``AccessConfiguration/adminPassword``; without a password that is a clear error (the server refuses to start).
    public func bootstrap() throws {
        _ = decoyHash
        if try store.users().contains(where: \.isAdmin) { return }
        guard let password = configuration.adminPassword, !password.isEmpty else {
            throw TrackingError(.invalidParameterValue, "Access control is on and no admin user exists: set MLFLOW_AUTH_ADMIN_PASSWORD "
                + "to the password of the admin '\(configuration.adminUsername)' to create on first start")
        }
        try AccessRules.checkPassword(password)
        let name = try AccessRules.username(configuration.adminUsername)
        if let existing = try store.user(named: name) {
            throw TrackingError(.invalidParameterValue, "Access control is on and no admin user exists, but '\(existing.username)' is a "
                + "user who is not an admin: choose another --admin-username")
        }
        _ = try store.insertUser(username: name, passwordHash: try hash(password), isAdmin: true, now: clock())
        configuration.audit("audit: created admin user '\(name)' on first start")
    }

    /// A new hash of `password` at the configured cost.
    func hash(_ password: String) throws -> String { try Secrets.hashPassword(password, rounds: configuration.passwordHashRounds) }

    // MARK: Authentication

    /// The caller an `Authorization` header names, when verified in the last few seconds (no hashing, no database):
    /// the request path's first try.
    public func cachedCaller(_ authorization: String) -> Caller? { cached(key: "header " + authorization) }

    /// A verified caller by cache key (`header …`, `session …`, `login …`: the kinds never share keys). In the last
    /// quarter of an entry's life one background re-verification starts: a busy client is checked again every few
    /// seconds without its requests waiting for the password hash (an entry is never trusted longer than
    /// ``AccessConfiguration/cacheMillis`` after its last successful check; a failed one drops it).
    func cached(key raw: String) -> Caller? {
        let key = Secrets.digest(raw), now = clock(), early = configuration.cacheMillis / 4
        let (caller, refresh) = state.withLock { s -> (Caller?, Bool) in
            guard let e = s.callers[key], e.expires > now else { return (nil, false) }
            let due = e.expires - now < early && !raw.hasPrefix("login ") && s.refreshing.insert(key).inserted
            return (e.caller, due)
        }
        if refresh { DispatchQueue.global(qos: .utility).async { self.refresh(raw, digest: key) } }
        return caller
    }

    /// Re-verifies a cached credential (see ``cached(key:)``).
    func refresh(_ raw: String, digest: String) {
        let credentials: AccessRules.Credentials? = raw.hasPrefix("header ") ? AccessRules.credentials(String(raw.dropFirst("header ".count)))
            : raw.hasPrefix("session ") ? .session(String(raw.dropFirst("session ".count))) : nil
        let caller = credentials.flatMap { try? check($0, cacheKey: raw, recheck: true) ?? nil }
        let expires = clock() + configuration.cacheMillis
        state.withLock { s in
            s.refreshing.remove(digest)
            // Dropped meanwhile (a password or token changed on this server): stays dropped.
            guard s.callers[digest] != nil else { return }
            s.callers[digest] = caller.map { ($0, expires) }
        }
    }

    /// The caller an `Authorization` header names: `Basic` (user and password, as `MLFLOW_TRACKING_USERNAME` and
    /// `MLFLOW_TRACKING_PASSWORD` send) or `Bearer` (a Tally access token, as `MLFLOW_TRACKING_TOKEN` sends).
    /// Missing or wrong credentials: 401 (an unknown user takes as long as a wrong password); too many failures
    /// for the user or the address within the window: 429. Blocks for a password hash: call off the event loop.
    public func authenticate(_ authorization: String?, address: String?) throws -> Caller {
        guard let authorization, !authorization.isEmpty else { throw AccessRules.unauthenticated }
        return try verify(AccessRules.credentials(authorization), key: "header " + authorization, address: address)
    }

    /// The caller of a UI session (the `tally_session` cookie's value); 401 when it is unknown or expired.
    public func authenticate(session: String, address: String?) throws -> Caller {
        try verify(.session(session), key: Self.sessionKey(session), address: address)
    }

    /// The cache key of a session (never an `Authorization` value).
    static func sessionKey(_ session: String) -> String { "session " + session }

    /// The caller of a session verified in the last few seconds.
    public func cachedCaller(session: String) -> Caller? { cached(key: Self.sessionKey(session)) }

    /// Verifies credentials, cached under `key`.
    func verify(_ credentials: AccessRules.Credentials?, key: String, address: String?) throws -> Caller {
        if let c = cached(key: key) { return c }
        var keys = address.map { ["a:" + $0] } ?? []
        if case .basic(let user, _)? = credentials { keys.append("u:" + user) }
        try checkFailures(keys)
        let caller = try credentials.flatMap { try check($0, cacheKey: key) }
        guard let caller else {
            recordFailure(keys)
            throw AccessRules.unauthenticated
        }
        let expires = clock() + configuration.cacheMillis, digest = Secrets.digest(key)
        state.withLock { s in
            if s.callers.count >= Self.maxCached { s.callers = [:] }
            s.callers[digest] = (caller, expires)
        }
        return caller
    }

    /// The caller credentials name, checked now (password hash, token or session lookup), `nil` when they are wrong.
    /// With `cacheKey`, a password verified against the same stored hash before is not hashed again, nor (unless this
    /// is a `recheck` of a cached entry) one verified by another request while this one waited for the hashing gate.
    func check(_ credentials: AccessRules.Credentials, cacheKey: String? = nil, recheck: Bool = false) throws -> Caller? {
        switch credentials {
        case .basic(let user, let password):
            let memo = cacheKey.map(Secrets.digest)
            let u = try store.user(named: user)
            let caller = u.map(Caller.init)
            // The user's row is read every time (deleted users, changed passwords and admin flags are seen); the
            // hash is computed only when this password has not verified against this stored hash before.
            if let u, let memo, state.withLock({ $0.verified[memo] }) == u.passwordHash { return caller }
            return try hashing.run {
                if !recheck, let cacheKey, let c = cached(key: cacheKey) { return c }
                state.withLock { $0.hashes += 1 }
                guard Secrets.verify(password, hash: u?.passwordHash ?? decoyHash), let u else { return nil }
                if let memo {
                    state.withLock { s in
                        if s.verified.count >= Self.maxCached { s.verified = [:] }
                        s.verified[memo] = u.passwordHash
                    }
                }
                return caller
            }
        case .bearer(let token): return try tokenCaller(token, kind: .token)
        case .session(let token): return try tokenCaller(token, kind: .session)
        }
    }

    /// The user a token belongs to, if it is known and unexpired.
    func tokenCaller(_ token: String, kind: TokenKind) throws -> Caller? {
        guard let t = try store.token(digest: Secrets.digest(token)), t.kind == kind, t.expiryTime.map({ $0 > clock() }) ?? true,
              let u = try store.user(id: t.userID) else { return nil }
        return Caller(u)
    }

    /// 429 when any key has failed ``AccessConfiguration/maxFailures`` times within the window.
    func checkFailures(_ keys: [String]) throws {
        let now = clock(), window = configuration.failureWindowMillis, limit = configuration.maxFailures
        let retry: Int64? = state.withLock { s in
            var wait: Int64?
            for k in keys {
                guard var times = s.failures[k] else { continue }
                times.removeAll { $0 <= now - window }
                s.failures[k] = times.isEmpty ? nil : times
                if times.count >= limit { wait = max(wait ?? 0, times[times.count - limit] + window - now) }
            }
            return wait
        }
        if let retry { throw AccessRules.tooManyFailures(retryAfterSeconds: Int((retry + 999) / 1000)) }
    }

    func recordFailure(_ keys: [String]) {
        let now = clock(), window = configuration.failureWindowMillis
        state.withLock { s in
            if s.failures.count >= Self.maxCached {
                s.failures = s.failures.filter { $0.value.last.map { $0 > now - window } ?? false }
            }
            for k in keys { s.failures[k, default: []].append(now) }
        }
    }

    // MARK: Authorization

    /// What `caller` may do, when read in the last few seconds (no database): the request path's first try.
    public func cachedGrants(for caller: Caller) -> Grants? {
        if caller.isAdmin { return .unrestricted }
        let now = clock()
        return state.withLock { s in s.grants[caller.userID].flatMap { $0.expires > now ? $0.grants : nil } }
    }

    /// What `caller` may do (admins: everything), read again at most every few seconds.
    public func grants(for caller: Caller) throws -> Grants {
        if let g = cachedGrants(for: caller) { return g }
        let now = clock()
        let g = Grants(defaultPermission: configuration.defaultPermission, grants: try store.grants(userID: caller.userID))
        state.withLock { s in
            if s.grants.count >= Self.maxCached { s.grants = [:] }
            s.grants[caller.userID] = (g, now + configuration.cacheMillis)
        }
        return g
    }

    /// Throws 403 unless `caller` has `need` on `resource`.
    public func require(_ need: Permission.Need, on resource: Resource, caller: Caller) throws {
        if caller.isAdmin { return }
        try grants(for: caller).require(need, on: resource)
    }

    /// Gives the creator of an experiment, registered model or scorer MANAGE on it (MLflow's after-request rule); with
    /// `raising`, a lower grant they hold on it is raised to MANAGE (MLflow's upsert for a scorer's registrant).
    public func didCreate(_ resource: Resource, by caller: Caller, raising: Bool = false) throws {
        guard caller.userID > 0 else { return }
        do {
            let grant = Grant(resource: resource, permission: .manage)
            if raising { try store.setGrant(userID: caller.userID, grant) } else { _ = try store.insertGrant(userID: caller.userID, grant) }
        } catch let e as TrackingError where e == AccessRules.unauthenticated {
            return  // the creator was deleted meanwhile: the resource stays, with nobody's grant
        }
        forgetGrants(of: caller.userID)
    }

    /// Drops one user's cached grants.
    func forgetGrants(of userID: Int64) {
        state.withLock { $0.grants[userID] = nil }
    }

    /// Drops every cached credential (a password, admin flag, user or token changed).
    func forgetCredentials() {
        state.withLock { s in
            s.callers = [:]
            s.grants = [:]
            s.verified = [:]
        }
    }
}

/// Lets at most `limit` password hashes run at once; the others wait.
final class HashingGate: Sendable {
    let semaphore: DispatchSemaphore

    init(limit: Int) { semaphore = DispatchSemaphore(value: limit) }

    func run<R>(_ body: () throws -> R) throws -> R {
        semaphore.wait()
        defer { semaphore.signal() }
        return try body()
    }
}
