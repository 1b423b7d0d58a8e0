/// An MLflow 3 evaluation dataset (`mlflow.genai.datasets`): named records of inputs with their expectations, kept
/// by the tracking server and read by `mlflow.genai.evaluate`. Its experiments are kept apart
/// (``EvaluationDatasetStore/datasetExperimentIDs(id:)``).
public struct EvaluationDataset: Sendable, Equatable {
    /// `d-` and 32 hex digits.
    public var id: String
    /// Its name (not unique, as in MLflow).
    public var name: String
    /// Its tags, in the order first set; a value may be null (MLflow keeps one given as `null` at creation).
    public var tags: [DatasetTag]
    /// The types of its records' fields, as the text of a JSON object (``TrackingService/datasetSchema(_:adding:)``);
    /// `nil` until records are added.
    public var schema: String?
    /// `{"num_records": N}` as text; `nil` until records are added.
    public var profile: String?
    /// The first 8 hex digits of the SHA-256 of `name:last_update_time`, renewed when records are added.
    public var digest: String
    /// When it was created (ms).
    public var createdTime: Int64
    /// When it or its records last changed (ms).
    public var lastUpdateTime: Int64
    /// Its creator's `mlflow.user` tag.
    public var createdBy: String?
    /// The `mlflow.user` of the last records added.
    public var lastUpdatedBy: String?

    /// Its tags as MLflow's API gives them: the text of a JSON object (Python's `json.dumps`), a null value as `null`.
    public var tagsJSON: String {
        JSONValue.object(tags.map { ($0.key, $0.value.map(JSONValue.string) ?? .null) }).pythonDumps()
    }

    /// A dataset.
    public init(id: String, name: String, tags: [DatasetTag] = [], schema: String? = nil, profile: String? = nil, digest: String,
                createdTime: Int64, lastUpdateTime: Int64, createdBy: String? = nil, lastUpdatedBy: String? = nil) {
        self.id = id
        self.name = name
        self.tags = tags
        self.schema = schema
        self.profile = profile
        self.digest = digest
        self.createdTime = createdTime
        self.lastUpdateTime = lastUpdateTime
        self.createdBy = createdBy
        self.lastUpdatedBy = lastUpdatedBy
    }
}

/// A dataset's tag: a key and a value that may be null.
public struct DatasetTag: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value (`nil`: null).
    public var value: String?

    /// A tag.
    public init(key: String, value: String?) {
        self.key = key
        self.value = value
    }
}

/// One record of an evaluation dataset: its inputs (which identify it within the dataset), what the model should
/// answer (`expectations`), what it did (`outputs`), tags and where the record came from.
public struct DatasetRecord: Sendable, Equatable {
    /// `dr-` and 32 hex digits.
    public var id: String
    /// The dataset it belongs to.
    public var datasetID: String
    /// The SHA-256 (hex) of its inputs as Python's `json.dumps(inputs, sort_keys=True)` writes them: records with the
    /// same inputs are one record.
    public var inputHash: String
    /// Its inputs, a JSON object.
    public var inputs: JSONValue
    /// Its outputs, any JSON value; `nil` when it has none.
    public var outputs: JSONValue?
    /// Its expectations, a JSON object; `nil` when it has none.
    public var expectations: JSONValue?
    /// Its tags, a JSON object (values of any type).
    public var tags: JSONValue
    /// `{"source_type": …, "source_data": {…}}`, `nil` when none was given.
    public var source: JSONValue?
    /// The trace (`TRACE`) or the `source_data.source_id` it came from.
    public var sourceID: String?
    /// `UNSPECIFIED`, `TRACE`, `HUMAN`, `DOCUMENT` or `CODE`.
    public var sourceType: String?
    /// When it was added (ms).
    public var createdTime: Int64
    /// When it last changed (ms).
    public var lastUpdateTime: Int64
    /// The `mlflow.user` tag it was added with.
    public var createdBy: String?
    /// The `mlflow.user` tag of its last change that had one.
    public var lastUpdatedBy: String?

    /// A record.
    public init(id: String, datasetID: String, inputHash: String, inputs: JSONValue, outputs: JSONValue?, expectations: JSONValue?,
                tags: JSONValue, source: JSONValue?, sourceID: String?, sourceType: String?, createdTime: Int64, lastUpdateTime: Int64,
                createdBy: String?, lastUpdatedBy: String?) {
        self.id = id
        self.datasetID = datasetID
        self.inputHash = inputHash
        self.inputs = inputs
        self.outputs = outputs
        self.expectations = expectations
        self.tags = tags
        self.source = source
        self.sourceID = sourceID
        self.sourceType = sourceType
        self.createdTime = createdTime
        self.lastUpdateTime = lastUpdateTime
        self.createdBy = createdBy
        self.lastUpdatedBy = lastUpdatedBy
    }
}

/// Where a page of a dataset's records starts: after the record of this creation time and id (records are ordered by
/// both), or, as MLflow's older tokens say, after this many records.
public enum DatasetRecordCursor: Sendable, Equatable {
    /// After the record created at `time` with id `id`.
    case after(time: Int64, id: String)
    /// After the first `n` records.
    case offset(Int)
}
