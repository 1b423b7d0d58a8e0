/// MLflow 3's `LoggedModelStatus`.
public enum LoggedModelStatus: String, Sendable, CaseIterable {
    /// Not given.
    case unspecified = "LOGGED_MODEL_STATUS_UNSPECIFIED"
    /// Created, artifacts being uploaded (the status at creation).
    case pending = "LOGGED_MODEL_PENDING"
    /// Finalized.
    case ready = "LOGGED_MODEL_READY"
    /// The upload failed.
    case uploadFailed = "LOGGED_MODEL_UPLOAD_FAILED"

    /// The protocol number (what MLflow's SQL store keeps, and what a `status = 2` filter compares).
    public var number: Int64 {
        switch self {
        case .unspecified: 0
        case .pending: 1
        case .ready: 2
        case .uploadFailed: 3
        }
    }

    /// The status of a protocol number.
    public init?(number: Int64) {
        guard let s = Self.allCases.first(where: { $0.number == number }) else { return nil }
        self = s
    }
}

/// A metric point logged against a logged model (`model_id` on `runs/log-metric` / `runs/log-batch`): kept beside
/// the run's history with its dataset, as MLflow's model view shows it.
public struct ModelMetric: Sendable, Equatable {
    /// The point.
    public var metric: Metric
    /// The logged model.
    public var modelID: String
    /// The run it was logged through (empty outside a run).
    public var runID: String
    /// The dataset's name, when given.
    public var datasetName: String?
    /// The dataset's digest, when given.
    public var datasetDigest: String?

    /// A point.
    public init(metric: Metric, modelID: String, runID: String, datasetName: String? = nil, datasetDigest: String? = nil) {
        self.metric = metric
        self.modelID = modelID
        self.runID = runID
        self.datasetName = datasetName
        self.datasetDigest = datasetDigest
    }
}

/// An MLflow 3 logged model: what every `log_model` creates, its artifacts under the experiment's
/// `models/<model_id>/artifacts`.
public struct LoggedModel: Sendable, Equatable {
    /// `m-` and 32 hex digits.
    public var modelID: String
    /// Its experiment.
    public var experimentID: String
    /// Its name (not unique: every `log_model(name="model")` makes another).
    public var name: String
    /// Creation time, ms.
    public var creationTime: Int64
    /// Last update, ms.
    public var lastUpdatedTime: Int64
    /// Where its artifacts live.
    public var artifactURI: String
    /// Its status.
    public var status: LoggedModelStatus
    /// A free-form type (`""` when unset).
    public var modelType: String
    /// The run that logged it (`""` when none).
    public var sourceRunID: String
    /// `active` or `deleted`.
    public var lifecycleStage: LifecycleStage
    /// Tags, by key.
    public var tags: [KeyValue]
    /// Params, by key.
    public var params: [KeyValue]
    /// Every metric point logged against it, in logging order.
    public var metrics: [ModelMetric]

    /// A model.
    public init(modelID: String, experimentID: String, name: String, creationTime: Int64, lastUpdatedTime: Int64, artifactURI: String,
                status: LoggedModelStatus, modelType: String, sourceRunID: String, lifecycleStage: LifecycleStage = .active,
                tags: [KeyValue] = [], params: [KeyValue] = [], metrics: [ModelMetric] = []) {
        self.modelID = modelID
        self.experimentID = experimentID
        self.name = name
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
        self.artifactURI = artifactURI
        self.status = status
        self.modelType = modelType
        self.sourceRunID = sourceRunID
        self.lifecycleStage = lifecycleStage
        self.tags = tags
        self.params = params
        self.metrics = metrics
    }
}

/// One model a run used (`runs/log-inputs` with `models`, MLflow 3): what `runs/get` lists as the run's
/// `model_inputs`.
public struct ModelInput: Sendable, Equatable {
    /// The logged model.
    public var modelID: String

    /// An input.
    public init(modelID: String) { self.modelID = modelID }
}

/// One model a run logged (`runs/outputs`): what `runs/get` lists as the run's `model_outputs`.
public struct ModelOutput: Sendable, Equatable {
    /// The logged model.
    public var modelID: String
    /// The step it was logged at.
    public var step: Int64

    /// An output.
    public init(modelID: String, step: Int64) {
        self.modelID = modelID
        self.step = step
    }
}
