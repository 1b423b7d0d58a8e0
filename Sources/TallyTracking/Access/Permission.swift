/// MLflow's permission levels (`mlflow/server/auth/permissions.py`): READ < USE < EDIT < MANAGE, `DENY` an explicit
/// refusal that beats every other grant, `NO_PERMISSIONS` only a default.
public enum Permission: String, Sendable, CaseIterable, Comparable {
    /// Reads.
    case read = "READ"
    /// Reads and uses (MLflow's gateway and scorer tier; for experiments and models the same as READ).
    case use = "USE"
    /// Also writes runs, metrics, artifacts, logged models and model versions.
    case edit = "EDIT"
    /// Also deletes, restores and grants.
    case manage = "MANAGE"
    /// Nothing (a default only: resource grants refuse it).
    case noPermissions = "NO_PERMISSIONS"
    /// Nothing, whatever else is granted.
    case deny = "DENY"

    /// What a route needs of a resource.
    public enum Need: Sendable, Hashable {
        /// `can_read`.
        case read
        /// `can_use`.
        case use
        /// `can_update` (EDIT).
        case update
        /// `can_delete` (MANAGE).
        case delete
        /// `can_manage` (MANAGE).
        case manage
    }

    /// Rank for ordering: DENY and NO_PERMISSIONS lowest.
    var rank: Int {
        switch self {
        case .deny, .noPermissions: 0
        case .read: 1
        case .use: 2
        case .edit: 3
        case .manage: 4
        }
    }

    /// Orders by what a level allows.
    public static func < (a: Permission, b: Permission) -> Bool { a.rank < b.rank }

    /// Whether this level allows `need`.
    public func allows(_ need: Need) -> Bool {
        switch need {
        case .read: rank >= 1
        case .use: rank >= 2
        case .update: rank >= 3
        case .delete, .manage: rank >= 4
        }
    }

    /// MLflow's order of the levels, as its messages list them.
    static let mlflowOrder: [Permission] = [.read, .use, .edit, .manage, .noPermissions, .deny]
    /// What a grant on a resource may carry (sorted, as MLflow's message lists them).
    static let grantable: [Permission] = [.deny, .edit, .manage, .read, .use]

    /// A level by name, with MLflow's message for an unknown one.
    public static func parse(_ name: String) throws -> Permission {
        guard let p = Permission(rawValue: name) else {
            throw TrackingError.invalid("Invalid permission '\(name)'. Valid permissions are: \(AccessRules.pythonTuple(mlflowOrder.map(\.rawValue)))")
        }
        return p
    }

    /// A level a resource grant may carry (`NO_PERMISSIONS` refused, as MLflow does).
    static func grantable(_ name: String, type: ResourceType) throws -> Permission {
        let p = try parse(name)
        guard grantable.contains(p) else {
            throw TrackingError.invalid("Invalid permission '\(name)' for resource_type='\(type.rawValue)'. Resource-level grants accept only: "
                + "\(AccessRules.pythonTuple(grantable.map(\.rawValue))).")
        }
        return p
    }
}

/// The resource types of MLflow's permission endpoints. Grants on experiments and registered models (by id or
/// `*`) decide access here; the others are kept as MLflow accepts them (wildcard-only where MLflow says so) and
/// have no resource in Tally to guard.
public enum ResourceType: String, Sendable, CaseIterable {
    case assessment, experiment, prompt, run, scorer, trace, workspace
    case registeredModel = "registered_model"
    case gatewaySecret = "gateway_secret"
    case gatewayEndpoint = "gateway_endpoint"
    case gatewayModelDefinition = "gateway_model_definition"
    case mcpServer = "mcp_server"
    case loggedModel = "logged_model"
    case reviewQueue = "review_queue"
    case registeredModelVersion = "registered_model_version"
    case promptVersion = "prompt_version"
    case scorerVersion = "scorer_version"
    case mcpServerVersion = "mcp_server_version"

    /// Types whose grants may name one resource (the rest take only `*`).
    var takesIDs: Bool {
        switch self {
        case .experiment, .registeredModel, .prompt, .scorer, .gatewaySecret, .gatewayEndpoint, .gatewayModelDefinition, .mcpServer: true
        default: false
        }
    }

    /// A type by name, with MLflow's message for an unknown one (`workspace` grants are not per user in MLflow).
    static func parse(_ name: String) throws -> ResourceType {
        guard let t = ResourceType(rawValue: name), t != .workspace else {
            let names = allCases.map(\.rawValue).sorted()
            throw TrackingError.invalid("Invalid resource type '\(name)'. Valid resource types are: \(AccessRules.pythonTuple(names))")
        }
        return t
    }
}

/// A thing a grant names: an experiment by id, a registered model by name (`*`: every one of the type). Two resources
/// are the same only when they name the same thing: an experiment id is kept as its number reads (`"05"`, `" 5"` and
/// `"+5"` are the service's experiment 5, so they are grants' `5` too), and names are compared by their bytes (two
/// models whose names are canonically equivalent are two models).
public struct Resource: Sendable, Hashable, CustomStringConvertible {
    /// The type.
    public var type: ResourceType
    /// The experiment id (canonical), model name, or `*`.
    public var id: String

    /// A resource.
    public init(_ type: ResourceType, _ id: String) {
        self.type = type
        self.id = type == .experiment && id != "*" ? PythonNumber.int(id).map { String($0) } ?? id : id
    }

    public static func == (a: Resource, b: Resource) -> Bool { a.type == b.type && ExactKey.sameBytes(a.id, b.id) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        ExactKey(id).hash(into: &hasher)
    }

    /// An experiment.
    public static func experiment(_ id: String) -> Resource { Resource(.experiment, id) }
    /// A registered model.
    public static func registeredModel(_ name: String) -> Resource { Resource(.registeredModel, name) }

    /// `type:id`.
    public var description: String { "\(type.rawValue):\(id)" }
}

/// One permission a user holds on a resource.
public struct Grant: Sendable, Hashable {
    /// What it is on.
    public var resource: Resource
    /// The level.
    public var permission: Permission

    /// A grant.
    public init(resource: Resource, permission: Permission) {
        self.resource = resource
        self.permission = permission
    }
}
