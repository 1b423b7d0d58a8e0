/// An MLflow 3 label schema (`mlflow.genai.label_schemas`): one question reviewers answer about a trace, its answer
/// kept as an assessment named after it. One experiment's schemas have distinct names; each experiment has one default
/// schema ("Feedback", free text), made when its schemas are first listed, which can be neither edited nor deleted.
public struct LabelSchema: Sendable, Equatable {
    /// `ls-` and 32 hex digits.
    public var id: String
    /// The experiment it belongs to (canonical).
    public var experimentID: String
    /// The question, and the name of the assessments that answer it (1–250 characters).
    public var name: String
    /// What an answer is.
    public var type: LabelSchemaType
    /// How reviewers answer.
    public var input: LabelInput
    /// Guidance shown with the question (≤ 1,000 characters), or none.
    public var instruction: String?
    /// Whether reviewers may add a comment.
    public var enableComment: Bool
    /// Who made it: none through MLflow's API (it names nobody), kept for imports.
    public var createdBy: String?
    /// When it was made (ms).
    public var creationTime: Int64
    /// When it last changed (ms).
    public var lastUpdateTime: Int64
    /// Whether it is the experiment's default question.
    public var isDefault: Bool

    /// A label schema.
    public init(id: String, experimentID: String, name: String, type: LabelSchemaType, input: LabelInput, instruction: String?,
                enableComment: Bool, createdBy: String?, creationTime: Int64, lastUpdateTime: Int64, isDefault: Bool) {
        self.id = id
        self.experimentID = experimentID
        self.name = name
        self.type = type
        self.input = input
        self.instruction = instruction
        self.enableComment = enableComment
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.isDefault = isDefault
    }
}

/// What answering a label schema records: a judgement (`feedback`) or the right answer (`expectation`).
public enum LabelSchemaType: String, Sendable, Equatable, CaseIterable, ProtoEnum {
    /// MLflow's `FEEDBACK` (1).
    case feedback
    /// MLflow's `EXPECTATION` (2).
    case expectation

    /// The proto enum's names by number.
    public static let protoNames: [Int64: String] = [0: "LABEL_SCHEMA_TYPE_UNSPECIFIED", 1: "FEEDBACK", 2: "EXPECTATION"]
}

/// How a label schema is answered: MLflow's `LabelSchemaInput` one-of.
public enum LabelInput: Sendable, Equatable {
    /// A thumbs up or down, each with its label.
    case passFail(positive: String, negative: String)
    /// One of the options, or several when `multiSelect`.
    case categorical(options: [String], multiSelect: Bool)
    /// A number, within the bounds given.
    case numeric(min: Double?, max: Double?)
    /// Free text, at most `maxLength` characters when given.
    case text(maxLength: Int64?)

    /// The one-of's member name (`pass_fail`, `categorical`, `numeric`, `text`), also the stored discriminator.
    public var kind: String {
        switch self {
        case .passFail: "pass_fail"
        case .categorical: "categorical"
        case .numeric: "numeric"
        case .text: "text"
        }
    }

    /// MLflow's class name for it (`InputPassFail`, …), as its messages name an input.
    public var className: String {
        switch self {
        case .passFail: "InputPassFail"
        case .categorical: "InputCategorical"
        case .numeric: "InputNumeric"
        case .text: "InputText"
        }
    }
}

/// An MLflow 3 review queue (`mlflow.genai.review_queues`): traces of one experiment handed to reviewers, with the
/// questions they answer. A `user` queue is one reviewer's own (named after them, with every question of the
/// experiment); a `custom` queue has a name, up to 10 reviewers and chosen questions. Names are unique in an
/// experiment regardless of case.
public struct ReviewQueue: Sendable, Equatable {
    /// `rq-` and 32 hex digits.
    public var id: String
    /// The experiment it belongs to (canonical).
    public var experimentID: String
    /// Its name, as given (a user queue's is its user, lower-case).
    public var name: String
    /// Which kind.
    public var type: ReviewQueueType
    /// Its owner: the authenticated user who made it, or none.
    public var createdBy: String?
    /// When it was made (ms).
    public var creationTime: Int64
    /// When it last changed (ms).
    public var lastUpdateTime: Int64
    /// Its reviewers, lower-case, sorted.
    public var users: [String]
    /// The label schemas a custom queue asks, sorted (none for a user queue: it asks every one).
    public var schemaIDs: [String]

    /// The name's key for uniqueness and lookups (lower-case).
    public var nameKey: String { name.lowercased() }

    /// A review queue.
    public init(id: String, experimentID: String, name: String, type: ReviewQueueType, createdBy: String?, creationTime: Int64,
                lastUpdateTime: Int64, users: [String], schemaIDs: [String]) {
        self.id = id
        self.experimentID = experimentID
        self.name = name
        self.type = type
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.users = users
        self.schemaIDs = schemaIDs
    }
}

/// A review queue's kind.
public enum ReviewQueueType: String, Sendable, Equatable, CaseIterable, ProtoEnum {
    /// One reviewer's own queue (proto `USER`, 1).
    case user
    /// A named queue of chosen reviewers and questions (proto `CUSTOM`, 2).
    case custom

    /// The proto enum's names by number.
    public static let protoNames: [Int64: String] = [0: "REVIEW_QUEUE_TYPE_UNSPECIFIED", 1: "USER", 2: "CUSTOM"]
}

/// Where a queued item stands. One status per queue and item, whoever of the queue's reviewers acts.
public enum ReviewStatus: String, Sendable, Equatable, CaseIterable, ProtoEnum {
    /// Not reviewed yet (proto 1).
    case pending
    /// Reviewed (proto 2).
    case complete
    /// Not to be reviewed in this queue (proto 3).
    case declined

    /// The proto enum's names by number.
    public static let protoNames: [Int64: String] = [0: "REVIEW_STATUS_UNSPECIFIED", 1: "PENDING", 2: "COMPLETE", 3: "DECLINED"]
}

/// One trace in a review queue, with its status there.
public struct ReviewQueueItem: Sendable, Equatable {
    /// The queue.
    public var queueID: String
    /// What the item is: `trace` (the only kind MLflow has).
    public var itemType: String
    /// The trace's id.
    public var itemID: String
    /// Where it stands.
    public var status: ReviewStatus
    /// Who completed or declined it (lower-case), while it is so.
    public var completedBy: String?
    /// When it was completed or declined (ms), while it is so.
    public var completedTime: Int64?
    /// When it was added (ms).
    public var creationTime: Int64
    /// When its status last changed (ms).
    public var lastUpdateTime: Int64

    /// A queued item.
    public init(queueID: String, itemType: String, itemID: String, status: ReviewStatus, completedBy: String?, completedTime: Int64?,
                creationTime: Int64, lastUpdateTime: Int64) {
        self.queueID = queueID
        self.itemType = itemType
        self.itemID = itemID
        self.status = status
        self.completedBy = completedBy
        self.completedTime = completedTime
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
    }
}

/// A review enum MLflow's proto spells in capitals (`FEEDBACK`, `USER`, `PENDING`), its Swift raw value in lower case.
public protocol ProtoEnum: CaseIterable, RawRepresentable where RawValue == String {
    /// The proto enum's names by number (the unspecified 0 included).
    static var protoNames: [Int64: String] { get }
}

extension ProtoEnum {
    /// The proto enum's name.
    public var protoName: String { rawValue.uppercased() }

    /// The case whose proto name this is; `nil` for another name (the unspecified one included).
    public init?(protoName: String?) {
        guard let match = Self.allCases.first(where: { $0.protoName == protoName }) else { return nil }
        self = match
    }
}
