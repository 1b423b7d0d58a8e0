/// The answer of `users/permissions/get`.
public struct PermissionAnswer: Sendable, Equatable {
    /// MLflow's `allowed`: whether the level allows use.
    public var allowed: Bool
    /// The level in effect.
    public var permission: Permission
}

/// A token as listed (never the token itself).
public struct TokenInfo: Sendable, Equatable {
    /// The public id.
    public var id: String
    /// The owner's label.
    public var name: String
    /// Creation time (ms).
    public var creationTime: Int64
    /// Expiry (ms), `nil`: never.
    public var expiryTime: Int64?

    /// A token's description.
    public init(id: String, name: String, creationTime: Int64, expiryTime: Int64?) {
        self.id = id
        self.name = name
        self.creationTime = creationTime
        self.expiryTime = expiryTime
    }
}

extension AccessControl {
    // MARK: Users (MLflow's `/api/2.0/mlflow/users/...`)

    /// `users/create` (admins only): a user of at least 12-character password.
    public func createUser(_ username: String?, password: String?, by caller: Caller) throws -> StoredUser {
        try requireAdmin(caller)
        guard let username, !username.isEmpty, let password, !password.isEmpty else {
            throw TrackingError.invalid("Username and password cannot be empty.")
        }
        let name = try AccessRules.username(username)
        try AccessRules.checkPassword(password)
        guard let u = try store.insertUser(username: name, passwordHash: try hash(password), isAdmin: false, now: clock()) else {
            throw TrackingError(.resourceAlreadyExists, "User (username=\(name)) already exists.")
        }
        configuration.audit("audit: \(caller.username) created user '\(name)'")
        return u
    }

    /// `users/get`: an admin, or the user themselves.
    public func user(_ username: String?, by caller: Caller) throws -> StoredUser {
        let name = try Self.required(username, "username")
        try requireSelfOrAdmin(name, caller)
        guard let u = try store.user(named: name) else { throw AccessRules.noUser(name) }
        return u
    }

    /// `users/list`: every user (MLflow lets non-admins list them too).
    public func users() throws -> [StoredUser] { try store.users() }

    /// `users/update-password`: admins for anyone; users for themselves with their current password, which the new
    /// one must differ from.
    public func updatePassword(_ username: String?, password: String?, currentPassword: String?, by caller: Caller) throws {
        let name = try Self.required(username, "username")
        let password = try Self.required(password, "password")
        if caller.username == name {
            guard let current = currentPassword, !current.isEmpty else {
                throw TrackingError.invalid("Current password is required when changing your own password.")
            }
            guard let u = try store.user(named: name), Secrets.verify(current, hash: u.passwordHash) else {
                throw TrackingError.invalid("Current password does not match.")
            }
            guard password != current else { throw TrackingError.invalid("New password must differ from the current password.") }
        } else {
            try requireAdmin(caller)
        }
        try AccessRules.checkPassword(password)
        guard let u = try store.user(named: name) else { throw AccessRules.noUser(name) }
        try store.updateUser(id: u.id, passwordHash: try hash(password), isAdmin: nil)
        forgetCredentials()
        configuration.audit("audit: \(caller.username) changed the password of '\(name)'")
    }

    /// `users/update-admin` (admins only).
    public func updateAdmin(_ username: String?, isAdmin: Bool?, by caller: Caller) throws {
        try requireAdmin(caller)
        let name = try Self.required(username, "username")
        guard let isAdmin else { throw Validation.missing("is_admin") }
        guard let u = try store.user(named: name) else { throw AccessRules.noUser(name) }
        try store.updateUser(id: u.id, passwordHash: nil, isAdmin: isAdmin)
        forgetCredentials()
        configuration.audit("audit: \(caller.username) set admin=\(isAdmin) on '\(name)'")
    }

    /// `users/delete` (admins only; not oneself), with the user's grants and tokens.
    public func deleteUser(_ username: String?, by caller: Caller) throws {
        try requireAdmin(caller)
        let name = try Self.required(username, "username")
        guard name != caller.username else {
            throw TrackingError(.badRequest, "Users cannot delete their own account. Ask another admin to delete this user instead.")
        }
        guard let u = try store.user(named: name) else { throw AccessRules.noUser(name) }
        try store.deleteUser(id: u.id)
        forgetCredentials()
        configuration.audit("audit: \(caller.username) deleted user '\(name)'")
    }

    // MARK: Grants (MLflow's `/api/3.0/mlflow/users/permissions/...`)

    /// `permissions/grant`: admins, or holders of MANAGE on the resource. Granting over an existing grant is 400.
    public func grant(_ username: String?, type: String?, id: String?, permission: String?, by caller: Caller) throws {
        var level = Permission.read
        let (user, resource) = try target(username, type, id, permission: permission) { level = try Permission.grantable($0, type: $1) }
        try require(.manage, on: resource, caller: caller)
        let inserted: Bool
        do {
            inserted = try store.insertGrant(userID: user.id, Grant(resource: resource, permission: level))
        } catch let e as TrackingError where e == AccessRules.unauthenticated {
            throw AccessRules.noUser(user.username)  // deleted since it was looked up
        }
        guard inserted else {
            throw TrackingError(.resourceAlreadyExists, "Permission for user=\(user.username) on resource_type=\(resource.type.rawValue), "
                + "resource_id=\(resource.id) already exists.")
        }
        forgetGrants(of: user.id)
        configuration.audit("audit: \(caller.username) granted \(level.rawValue) on \(resource) to '\(user.username)'")
    }

    /// `permissions/revoke`: admins, or holders of MANAGE on the resource; 404 when there is no such grant.
    public func revoke(_ username: String?, type: String?, id: String?, by caller: Caller) throws {
        let (user, resource) = try target(username, type, id)
        try require(.manage, on: resource, caller: caller)
        guard try store.deleteGrant(userID: user.id, resource: resource) else {
            throw TrackingError.notFound("Permission for user=\(user.username) on resource_type=\(resource.type.rawValue), "
                + "resource_id=\(resource.id) not found.")
        }
        forgetGrants(of: user.id)
        configuration.audit("audit: \(caller.username) revoked \(resource) from '\(user.username)'")
    }

    /// `permissions/get`: the level in effect for a user on a resource (an admin or the user themselves may ask).
    public func permission(_ username: String?, type: String?, id: String?, by caller: Caller) throws -> PermissionAnswer {
        let (user, resource) = try target(username, type, id)
        try requireSelfOrAdmin(user.username, caller)
        let p = user.isAdmin ? Permission.manage
            : Grants(defaultPermission: configuration.defaultPermission, grants: try store.grants(userID: user.id)).permission(on: resource)
        return PermissionAnswer(allowed: p.allows(.use), permission: p)
    }

    /// `permissions/list` (and `users/current/permissions`): a user's grants and admin flag.
    public func grants(of username: String?, by caller: Caller) throws -> (isAdmin: Bool, userID: Int64, grants: [Grant]) {
        let name = try Self.required(username, "username")
        try requireSelfOrAdmin(name, caller)
        guard let u = try store.user(named: name) else { throw AccessRules.noUser(name) }
        return (u.isAdmin, u.id, try store.grants(userID: u.id))
    }

    /// Every grant on one resource (by user name), for the holders of MANAGE on it (the UI's permissions panel).
    public func grants(onType type: String?, id: String?, by caller: Caller) throws -> [(username: String, permission: Permission)] {
        let resource = Resource(try ResourceType.parse(try Self.required(type, "resource_type")), try Self.required(id, "resource_id"))
        try require(.manage, on: resource, caller: caller)
        return try store.users().flatMap { u in
            try store.grants(userID: u.id).filter { $0.resource == resource }.map { (u.username, $0.permission) }
        }
    }

    // MARK: Tokens

    /// Most days a token may live.
    public static let maxTokenDays = 3650

    /// A new access token for `caller` (shown once; stored as its digest).
    public func createToken(name: String?, expiresInDays: Int64?, for caller: Caller) throws -> (info: TokenInfo, token: String) {
        guard caller.userID > 0 else { throw AccessRules.unauthenticated }
        let name = try Self.required(name, "name")
        guard name.count <= 256 else { throw TrackingError.invalid("Token name '\(name.prefix(32))…' is longer than 256 characters") }
        if let d = expiresInDays, !(1...Int64(Self.maxTokenDays)).contains(d) {
            throw TrackingError.invalid("Invalid value \(d) for parameter 'expires_in_days' supplied: it must be between 1 and \(Self.maxTokenDays)")
        }
        let token = Secrets.newToken(), now = clock()
        let stored = StoredToken(id: Secrets.newTokenID(), userID: caller.userID, name: name, digest: Secrets.digest(token),
                                 creationTime: now, expiryTime: expiresInDays.map { now + $0 * 86_400_000 })
        try store.insertToken(stored)
        configuration.audit("audit: \(caller.username) created token \(stored.id) '\(name)'")
        return (Self.info(stored), token)
    }

    /// `caller`'s tokens.
    public func tokens(of caller: Caller) throws -> [TokenInfo] { try store.tokens(userID: caller.userID).map(Self.info) }

    /// Revokes one of `caller`'s tokens (404 when they have none with that id).
    public func revokeToken(id: String, of caller: Caller) throws {
        guard try store.deleteToken(id: id, userID: caller.userID) else { throw TrackingError.notFound("Token with id=\(id) not found") }
        forgetCredentials()
        configuration.audit("audit: \(caller.username) revoked token \(id)")
    }

    /// The caller a user name stands for, for the `tally token` commands run by whoever owns the data directory.
    public func localCaller(_ username: String) throws -> Caller {
        guard let u = try store.user(named: username) else { throw AccessRules.noUser(username) }
        return Caller(u)
    }

    static func info(_ t: StoredToken) -> TokenInfo { TokenInfo(id: t.id, name: t.name, creationTime: t.creationTime, expiryTime: t.expiryTime) }

    // MARK: Checks

    /// 403 unless an admin.
    public func requireAdmin(_ caller: Caller) throws {
        guard caller.isAdmin else { throw AccessRules.adminOnly }
    }

    func requireSelfOrAdmin(_ username: String, _ caller: Caller) throws {
        guard caller.isAdmin || caller.username == username else { throw AccessRules.otherUser }
    }

    /// The user and resource a permission request names (MLflow's order of checks: fields, type, user).
    /// With `permission`, it is required and checked (by `level`, given its name and the type) before the user is
    /// looked up.
    func target(_ username: String?, _ type: String?, _ id: String?, permission: String? = nil,
                level: ((String, ResourceType) throws -> Void)? = nil) throws -> (StoredUser, Resource) {
        let name = try Self.required(username, "username")
        let typeName = try Self.required(type, "resource_type")
        let id = try Self.required(id, "resource_id")
        let permissionName = try level.map { _ in try Self.required(permission, "permission") }
        if let permissionName { _ = try Permission.parse(permissionName) }
        let t = try ResourceType.parse(typeName)
        guard t.takesIDs || id == "*" else {
            throw TrackingError.invalid("Invalid resource_id '\(id)' for resource_type='\(t.rawValue)': only '*' is accepted.")
        }
        if let level, let permissionName { try level(permissionName, t) }
        guard let u = try store.user(named: name) else { throw AccessRules.noUser(name) }
        return (u, Resource(t, id))
    }

    static func required(_ v: String?, _ name: String) throws -> String {
        guard let v, !v.isEmpty else { throw Validation.missing(name) }
        return v
    }
}
