/// What a webhook event is about (MLflow 3's `WebhookEntity`, lower-case as in payloads; upper-case in the API).
public enum WebhookEntity: String, Sendable, CaseIterable {
    /// A registered model.
    case registeredModel = "registered_model"
    /// A model version.
    case modelVersion = "model_version"
    /// A model version's tag.
    case modelVersionTag = "model_version_tag"
    /// A registered model's alias.
    case modelVersionAlias = "model_version_alias"
    /// A prompt (a registered model tagged `mlflow.prompt.is_prompt`).
    case prompt
    /// A prompt version.
    case promptVersion = "prompt_version"
    /// A prompt's tag.
    case promptTag = "prompt_tag"
    /// A prompt version's tag.
    case promptVersionTag = "prompt_version_tag"
    /// A prompt's alias.
    case promptAlias = "prompt_alias"
    /// An AI gateway budget policy (MLflow's gateway; Tally has none, so it never fires).
    case budgetPolicy = "budget_policy"
}

/// What happened to a ``WebhookEntity``.
public enum WebhookAction: String, Sendable, CaseIterable {
    /// Created.
    case created
    /// Updated.
    case updated
    /// Deleted.
    case deleted
    /// Set (tags).
    case set
    /// Exceeded (budgets).
    case exceeded
}

/// An event a webhook subscribes to: an entity and an action, in one of the combinations MLflow allows.
public struct WebhookEvent: Sendable, Hashable, CustomStringConvertible {
    /// The entity.
    public let entity: WebhookEntity
    /// The action.
    public let action: WebhookAction

    /// The combinations MLflow 3.17 accepts (`VALID_ENTITY_ACTIONS`).
    public static let valid: [WebhookEntity: [WebhookAction]] = [
        .registeredModel: [.created], .modelVersion: [.created], .modelVersionTag: [.set, .deleted],
        .modelVersionAlias: [.created, .deleted], .prompt: [.created], .promptVersion: [.created], .promptTag: [.set, .deleted],
        .promptVersionTag: [.set, .deleted], .promptAlias: [.created, .deleted], .budgetPolicy: [.exceeded],
    ]

    /// An event; MLflow's error for a combination it does not allow.
    public init(_ entity: WebhookEntity, _ action: WebhookAction) throws {
        let actions = Self.valid[entity] ?? []
        guard actions.contains(action) else {
            throw TrackingError.invalid("Invalid action '\(action.rawValue)' for entity '\(entity.rawValue)'. Valid actions are: "
                                        + "[" + actions.map(\.rawValue).sorted().map { "'\($0)'" }.joined(separator: ", ") + "]")
        }
        self.entity = entity
        self.action = action
    }

    /// An event from the API's spelling (`MODEL_VERSION`, `CREATED`); MLflow's error for names it does not know.
    public init(apiEntity: String?, apiAction: String?) throws {
        guard let e = apiEntity, let entity = WebhookEntity(rawValue: e.lowercased()), e == e.uppercased() else {
            throw TrackingError.invalid("Invalid webhook event entity \(Validation.quoted(apiEntity ?? "")). Valid entities are: "
                                        + WebhookEntity.allCases.map { $0.rawValue.uppercased() }.joined(separator: ", "))
        }
        guard let a = apiAction, let action = WebhookAction(rawValue: a.lowercased()), a == a.uppercased() else {
            throw TrackingError.invalid("Invalid webhook event action \(Validation.quoted(apiAction ?? "")) for entity '\(entity.rawValue)'.")
        }
        try self.init(entity, action)
    }

    /// An event as a database stores it (`model_version`, `created`: MLflow's columns and Tally's alike); `nil` for one
    /// this build does not know (a newer build's or MLflow's), which readers leave out rather than fail on.
    static func stored(entity: String?, action: String?) -> WebhookEvent? {
        guard let entity = WebhookEntity(rawValue: entity ?? ""), let action = WebhookAction(rawValue: action ?? "") else { return nil }
        return try? WebhookEvent(entity, action)
    }

    /// `model_version.created`: the payload's and the docs' spelling.
    public var description: String { "\(entity.rawValue).\(action.rawValue)" }
}

/// Whether a webhook is delivered to.
public enum WebhookStatus: String, Sendable {
    /// Delivered to.
    case active = "ACTIVE"
    /// Kept, not delivered to.
    case disabled = "DISABLED"
}

/// A webhook as stored: where events go, which, and the secret their signatures use (sealed by ``WebhookSecrets``,
/// never shown).
public struct Webhook: Sendable, Equatable {
    /// The id (a UUID).
    public var id: String
    /// The name (``Validation`` rules of MLflow: letters, digits, `.`, `_`, `-`, at most 63).
    public var name: String
    /// The description, `nil` when none.
    public var description: String?
    /// Where deliveries are posted.
    public var url: String
    /// The events subscribed to, in the order stored (entity, then action).
    public var events: [WebhookEvent]
    /// Active or disabled.
    public var status: WebhookStatus
    /// The signing secret as ``WebhookSecrets/seal(_:)`` stored it; `nil`: deliveries are not signed.
    public var sealedSecret: String?
    /// Creation time (ms).
    public var creationTime: Int64
    /// Last update (ms).
    public var lastUpdatedTime: Int64

    /// A webhook.
    public init(id: String, name: String, description: String?, url: String, events: [WebhookEvent], status: WebhookStatus,
                sealedSecret: String?, creationTime: Int64, lastUpdatedTime: Int64) {
        self.id = id
        self.name = name
        self.description = description
        self.url = url
        self.events = events
        self.status = status
        self.sealedSecret = sealedSecret
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
    }
}

/// What a test delivery found (`webhooks/{id}/test`).
public struct WebhookTestResult: Sendable {
    /// Whether the endpoint answered 2xx (a redirect is not followed, so it is no success).
    public var success: Bool
    /// Its status, when it answered.
    public var responseStatus: Int?
    /// Its body (at most 64 KiB), when it answered.
    public var responseBody: String?
    /// Why no answer came, when none did.
    public var errorMessage: String?
}
