/// Who sent a request: an authenticated user (by password or access token), or — with access control off —
/// ``unrestricted``.
public struct Caller: Sendable, Hashable {
    /// The user's id (0 for ``unrestricted``).
    public var userID: Int64
    /// The user name.
    public var username: String
    /// Admins pass every check.
    public var isAdmin: Bool

    /// A caller.
    public init(userID: Int64, username: String, isAdmin: Bool) {
        self.userID = userID
        self.username = username
        self.isAdmin = isAdmin
    }

    /// A stored user as a caller.
    public init(_ u: StoredUser) {
        self.init(userID: u.id, username: u.username, isAdmin: u.isAdmin)
    }

    /// Every request when access control is off: allowed everything, filtered nothing.
    public static let unrestricted = Caller(userID: 0, username: "", isAdmin: true)
}

/// What one caller may do: the default level plus their grants. Searches filter with it (``canRead(experiment:)``,
/// ``canRead(model:)``), routes check with ``permission(on:)``.
public struct Grants: Sendable {
    /// The level where no grant applies (admins: MANAGE).
    public let defaultPermission: Permission
    /// Explicit grants by resource (ids and `*`).
    let grants: [Resource: Permission]
    /// Admins (and access control off): everything.
    public let isUnrestricted: Bool

    /// A user's view.
    init(defaultPermission: Permission, grants: [Grant]) {
        self.defaultPermission = defaultPermission
        var g: [Resource: Permission] = [:]
        for x in grants { g[x.resource] = x.permission }
        self.grants = g
        isUnrestricted = false
    }

    private init() {
        defaultPermission = .manage
        grants = [:]
        isUnrestricted = true
    }

    /// Everything allowed (admins; access control off).
    public static let unrestricted = Grants()

    /// The level on `resource`: DENY on it or on its type's `*` beats everything; else its own grant, the `*` grant,
    /// or the default.
    public func permission(on resource: Resource) -> Permission {
        if isUnrestricted { return .manage }
        let own = grants[resource], wildcard = grants[Resource(resource.type, "*")]
        if own == .deny || wildcard == .deny { return .deny }
        return own ?? wildcard ?? defaultPermission
    }

    /// Throws 403 unless this allows `need` on `resource`.
    public func require(_ need: Permission.Need, on resource: Resource) throws {
        guard isUnrestricted || permission(on: resource).allows(need) else { throw AccessRules.denied(need, resource) }
    }

    /// Throws 403 when a DENY on every resource of the type (`*`) bars the caller from creating one.
    public func requireCreate(_ type: ResourceType) throws {
        guard isUnrestricted || grants[Resource(type, "*")] != .deny else {
            throw TrackingError(.permissionDenied, "Permission denied: creating a \(type.rawValue) is denied ('*' is DENY)")
        }
    }

    /// Whether the caller may read the experiment (and so its runs, metrics, artifacts and logged models).
    public func canRead(experiment id: String) -> Bool { isUnrestricted || permission(on: .experiment(id)).allows(.read) }

    /// Whether the caller may read the registered model (and its versions).
    public func canRead(model name: String) -> Bool { isUnrestricted || permission(on: .registeredModel(name)).allows(.read) }
}
