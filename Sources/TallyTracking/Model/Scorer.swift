/// One version of an MLflow 3 registered scorer (`mlflow.genai.scorers`: `Scorer.register`, `get_scorer`,
/// `list_scorers`): an LLM judge's or a built-in scorer's definition, kept for clients to load. Tally stores
/// scorers; it never runs them.
public struct ScorerVersion: Sendable, Equatable {
    /// The scorer's id (a UUID, the same for every version of one experiment's scorer of one name).
    public var scorerID: String
    /// The experiment it belongs to (canonical: `1`, never `01`).
    public var experimentID: String
    /// Its name (unique within the experiment).
    public var name: String
    /// 1, 2, …: one more than the highest version left when it was registered.
    public var version: Int64
    /// The definition as the client sent it: the text of a JSON object.
    public var serialized: String
    /// When this version was registered (ms).
    public var creationTime: Int64

    /// A scorer version.
    public init(scorerID: String, experimentID: String, name: String, version: Int64, serialized: String, creationTime: Int64) {
        self.scorerID = scorerID
        self.experimentID = experimentID
        self.name = name
        self.version = version
        self.serialized = serialized
        self.creationTime = creationTime
    }
}

/// A registered scorer's online-scoring settings (`scorers/online-config`): which share of an experiment's new traces
/// MLflow's server would score, and which traces. Tally keeps them (a rate of 0 only: it runs no scorers).
public struct OnlineScoringConfig: Sendable, Equatable {
    /// 32 hex digits.
    public var id: String
    /// The scorer it is for.
    public var scorerID: String
    /// Its experiment (canonical).
    public var experimentID: String
    /// 0.0–1.0.
    public var sampleRate: Double
    /// A trace search filter, or none.
    public var filterString: String?

    /// The rate as Python writes a float (`0.0`, `0.25`), as MLflow's answers carry it.
    public var sampleRateText: String { Validation.pythonFloat(sampleRate) }

    /// A configuration.
    public init(id: String, scorerID: String, experimentID: String, sampleRate: Double, filterString: String?) {
        self.id = id
        self.scorerID = scorerID
        self.experimentID = experimentID
        self.sampleRate = sampleRate
        self.filterString = filterString
    }
}
