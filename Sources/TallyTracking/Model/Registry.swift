/// A registered model of the Model Registry: a name under which model versions are numbered.
public struct RegisteredModel: Sendable, Equatable {
    /// The name (unique, case-sensitive).
    public var name: String
    /// Creation time, ms.
    public var creationTime: Int64
    /// Last update, ms (a new version counts).
    public var lastUpdatedTime: Int64
    /// The description (`nil`: none given, or cleared by an update that omitted it).
    public var description: String?
    /// Tags, by key.
    public var tags: [KeyValue]
    /// Aliases with the version each points at, by alias.
    public var aliases: [ModelAlias]

    /// A model.
    public init(name: String, creationTime: Int64, lastUpdatedTime: Int64, description: String?, tags: [KeyValue] = [],
                aliases: [ModelAlias] = []) {
        self.name = name
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
        self.description = description
        self.tags = tags
        self.aliases = aliases
    }
}

/// One version of a registered model.
public struct ModelVersion: Sendable, Equatable {
    /// The registered model's name.
    public var name: String
    /// The version number: one more than the highest ever given under the name (deleted ones included).
    public var version: Int64
    /// Creation time, ms.
    public var creationTime: Int64
    /// Last update, ms.
    public var lastUpdatedTime: Int64
    /// `None`, `Staging`, `Production` or `Archived` (MLflow's deprecated stages).
    public var currentStage: String
    /// The description (`""` when none was given at creation; `nil` after an update that omitted it).
    public var description: String?
    /// The source as given (`models:/m-…`, `runs:/<run>/path`, an artifact URI).
    public var source: String
    /// The run it came from (`""`: none).
    public var runID: String
    /// A link to the run (`""`: none).
    public var runLink: String
    /// The logged model it registers, when known.
    public var modelID: String?
    /// Where its files are: what `get-download-uri` answers and `load_model` reads.
    public var storageLocation: String
    /// Tags, by key.
    public var tags: [KeyValue]
    /// The aliases pointing at it, by alias.
    public var aliases: [String]

    /// The stage a deleted version keeps, MLflow's: its number stays taken, it is never shown.
    public static let deletedStage = "Deleted_Internal"

    /// A version.
    public init(name: String, version: Int64, creationTime: Int64, lastUpdatedTime: Int64, currentStage: String = "None",
                description: String?, source: String, runID: String, runLink: String, modelID: String?, storageLocation: String,
                tags: [KeyValue] = [], aliases: [String] = []) {
        self.name = name
        self.version = version
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
        self.currentStage = currentStage
        self.description = description
        self.source = source
        self.runID = runID
        self.runLink = runLink
        self.modelID = modelID
        self.storageLocation = storageLocation
        self.tags = tags
        self.aliases = aliases
    }
}

/// An alias of a registered model and the version it points at.
public struct ModelAlias: Sendable, Equatable {
    /// The alias (case-sensitive).
    public var alias: String
    /// The version.
    public var version: Int64

    /// An alias.
    public init(alias: String, version: Int64) {
        self.alias = alias
        self.version = version
    }
}
