import TallyStore

/// A key–value tag (experiments, runs, dataset inputs) or parameter.
public struct KeyValue: Sendable, Hashable {
    /// The key.
    public var key: String
    /// The value.
    public var value: String

    /// Creates a pair.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// `active` or `deleted`.
public enum LifecycleStage: String, Sendable {
    /// Visible by default.
    case active
    /// Soft-deleted; restorable.
    case deleted
}

/// Which lifecycle stages a search returns.
public enum ViewType: String, Sendable {
    /// Active only (the default).
    case activeOnly = "ACTIVE_ONLY"
    /// Deleted only.
    case deletedOnly = "DELETED_ONLY"
    /// Both.
    case all = "ALL"

    /// The names by MLflow's protocol numbers.
    public static let protocolNumbers: [Int64: String] = [1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"]

    func includes(_ stage: LifecycleStage) -> Bool {
        switch self {
        case .activeOnly: stage == .active
        case .deletedOnly: stage == .deleted
        case .all: true
        }
    }
}

/// A run's status.
public enum RunStatus: String, Sendable, CaseIterable {
    /// Running (the status at creation).
    case running = "RUNNING"
    /// Scheduled.
    case scheduled = "SCHEDULED"
    /// Finished.
    case finished = "FINISHED"
    /// Failed.
    case failed = "FAILED"
    /// Killed.
    case killed = "KILLED"

    /// The names by MLflow's protocol numbers (a client may send the number instead of the name).
    public static let protocolNumbers: [Int64: String] = [1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"]
}

/// An experiment.
public struct Experiment: Sendable, Equatable {
    /// Decimal id; `"0"` is `Default`.
    public var experimentID: String
    /// Unique name.
    public var name: String
    /// Where its runs' artifacts go.
    public var artifactLocation: String
    /// Active or deleted.
    public var lifecycleStage: LifecycleStage
    /// Milliseconds since the epoch.
    public var creationTime: Int64
    /// Milliseconds since the epoch.
    public var lastUpdateTime: Int64
    /// Tags, by key order.
    public var tags: [KeyValue]

    /// An experiment.
    public init(experimentID: String, name: String, artifactLocation: String, lifecycleStage: LifecycleStage, creationTime: Int64,
                lastUpdateTime: Int64, tags: [KeyValue]) {
        self.experimentID = experimentID
        self.name = name
        self.artifactLocation = artifactLocation
        self.lifecycleStage = lifecycleStage
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
        self.tags = tags
    }
}

extension Experiment {
    /// `path` under the experiment's artifact location, with one slash between them whatever the location ends with:
    /// a logged model's `models/<id>/artifacts`, an imported run's `<run id>/artifacts`.
    func artifactURI(_ path: String) -> String {
        (artifactLocation.hasSuffix("/") ? String(artifactLocation.dropLast()) : artifactLocation) + "/" + path
    }
}

/// A run's metadata.
public struct RunInfo: Sendable, Equatable {
    /// 32 lowercase hex characters.
    public var runID: String
    /// The run name (also the `mlflow.runName` tag).
    public var runName: String
    /// The experiment.
    public var experimentID: String
    /// Who created it.
    public var userID: String
    /// Its status.
    public var status: RunStatus
    /// Start, ms since the epoch.
    public var startTime: Int64
    /// End, ms since the epoch, when ended.
    public var endTime: Int64?
    /// `<experiment artifact location>/<run id>/artifacts`.
    public var artifactURI: String
    /// Active or deleted.
    public var lifecycleStage: LifecycleStage

    /// A run's metadata.
    public init(runID: String, runName: String, experimentID: String, userID: String, status: RunStatus, startTime: Int64, endTime: Int64?,
                artifactURI: String, lifecycleStage: LifecycleStage) {
        self.runID = runID
        self.runName = runName
        self.experimentID = experimentID
        self.userID = userID
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.artifactURI = artifactURI
        self.lifecycleStage = lifecycleStage
    }
}

/// A dataset as logged by `log-inputs`.
public struct Dataset: Sendable, Equatable {
    /// Name (≤ 500 chars).
    public var name: String
    /// Digest (≤ 36 chars).
    public var digest: String
    /// Source type.
    public var sourceType: String
    /// Source (JSON text, ≤ 64 KB).
    public var source: String
    /// Schema (JSON text, ≤ 1 MB).
    public var schema: String?
    /// Profile (JSON text).
    public var profile: String?

    /// Creates a dataset.
    public init(name: String, digest: String, sourceType: String, source: String, schema: String? = nil, profile: String? = nil) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.schema = schema
        self.profile = profile
    }
}

/// A dataset input of a run, with its tags (`mlflow.data.context` among them).
public struct DatasetInput: Sendable, Equatable {
    /// The dataset.
    public var dataset: Dataset
    /// Input tags.
    public var tags: [KeyValue]

    /// Creates an input.
    public init(dataset: Dataset, tags: [KeyValue]) {
        self.dataset = dataset
        self.tags = tags
    }
}

/// A full run: info, latest metrics, params, tags and inputs.
public struct Run: Sendable, Equatable {
    /// Metadata.
    public var info: RunInfo
    /// Latest value per metric key, sorted by key bytes (UTF-8 order).
    public var metrics: [Metric]
    /// Parameters, by key.
    public var params: [KeyValue]
    /// Tags, by key.
    public var tags: [KeyValue]
    /// Dataset inputs.
    public var inputs: [DatasetInput]
    /// The models the run logged (`runs/outputs`), when it was read with them (a `runs/search` page's runs, as
    /// MLflow answers them); `nil` when not read.
    public var outputs: [ModelOutput]? = nil
}

/// One metric point with its key, as MLflow's API logs and returns it (a logged point, or a run's latest value).
public struct Metric: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value.
    public var value: Double
    /// Timestamp, ms (≥ 0).
    public var timestamp: Int64
    /// Step (default 0).
    public var step: Int64

    /// Creates a point.
    public init(key: String, value: Double, timestamp: Int64, step: Int64 = 0) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
    }

    /// Bitwise equality on the value.
    public static func == (a: Self, b: Self) -> Bool {
        a.key == b.key && a.value.bitPattern == b.value.bitPattern && a.timestamp == b.timestamp && a.step == b.step
    }
}

extension Array where Element == Metric {
    /// The metric with `key`, by binary search: a run's latest values are sorted by key bytes (``Run/metrics``).
    func metric(_ key: String) -> Metric? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            let c = KeyOrder.compare(self[mid].key, key)
            if c == 0 { return self[mid] }
            if c < 0 { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }
}
