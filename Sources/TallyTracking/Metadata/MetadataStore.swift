import TallyStore

/// Where experiments, runs, params, tags, inputs and latest metric values live. Metric points do not: they go to
/// TallyStore. Implementations keep SQL behind this protocol, so callers never change with the database.
///
/// Every method is synchronous and thread-safe; multi-step writes run in one transaction (`transaction(_:)`).
public protocol MetadataStore: AccessStore, WebhookStore, TraceStore, SpanStore, TraceMetricsStore, EvaluationDatasetStore, ScorerStore, ReviewStore, IssueStore, PurgeStore {
    /// Where the metadata lives, for logs: a file path, or a database URI without its password.
    var location: String { get }
    /// Whether other servers may write this store's database while this one runs (PostgreSQL): each then holds metric
    /// points of its own, so no server's points are the whole truth about a run's latest values.
    var shared: Bool { get }
    /// Runs `body` atomically: all its writes or none.
    func transaction<R>(_ body: () throws -> R) throws -> R
    /// Moves everything written into the database's main files (a clean shutdown calls it, so no journal is left
    /// behind); the store stays usable.
    func checkpoint() throws
    /// Begins a copy of the database for a backup in `directory` (``MetadataCopy``): SQLite's file as
    /// `metadata.sqlite`, a PostgreSQL database as `pg_dump`'s `metadata.pgdump`.
    func beginCopy(into directory: DataDirectory, options: MetadataCopyOptions) throws -> any MetadataCopy
    /// Reads the database once, cheaply, and throws what keeps it from answering (a readiness probe's question:
    /// ``TrackingService/readiness()``).
    func ping() throws
    /// Releases the database: SQLite's connection and the file's lock, PostgreSQL's pooled connections. The store
    /// must not be used afterwards.
    func close()

    // MARK: Experiments
    /// Inserts an experiment; the store assigns the id (the next integer). `artifactLocation` may use `{id}`.
    func insertExperiment(name: String, artifactLocation: String, tags: [KeyValue], now: Int64) throws -> String
    /// Inserts an experiment exactly as given: id, stage, times and tags (`tally import`); MLflow's
    /// `RESOURCE_ALREADY_EXISTS` when the id or the name is taken. Later experiments get ids past it.
    func insertExperiment(_ e: Experiment) throws
    /// An experiment by id, any stage.
    func experiment(id: Int64) throws -> Experiment?
    /// An experiment by exact name, any stage.
    func experiment(named name: String) throws -> Experiment?
    /// Every experiment.
    func experiments() throws -> [Experiment]
    /// Renames an experiment.
    func renameExperiment(id: Int64, to name: String, now: Int64) throws
    /// Sets an experiment's stage and the same stage on all its runs.
    func setExperimentStage(id: Int64, _ stage: LifecycleStage, now: Int64) throws
    /// Upserts an experiment tag.
    func setExperimentTag(id: Int64, _ tag: KeyValue) throws
    /// Deletes an experiment tag; `false` when it did not exist.
    func deleteExperimentTag(id: Int64, key: String) throws -> Bool

    // MARK: Runs
    /// Inserts a run with its tags.
    func insertRun(_ info: RunInfo, tags: [KeyValue]) throws
    /// A run's metadata, any stage.
    func runInfo(id: String) throws -> RunInfo?
    /// A full run (latest metrics, params, tags, inputs), any stage.
    func run(id: String) throws -> Run?
    /// Runs of some experiments in the given stages for a search: each *without* its latest values (``Run/metrics``
    /// empty), and for each of `metricKeys` every run's latest value of that key, aligned with the runs. A store
    /// answers this without materialising every run's every metric (runs of benchmark suites hold thousands).
    func searchRuns(experimentIDs: [Int64], view: ViewType, metricKeys: [String]) throws -> RunCandidates
    /// Full runs by id, in the order given; ids without a run are left out.
    func runs(ids: [String]) throws -> [Run]
    /// A search's page in full (latest values too), from candidates ``searchRuns(experimentIDs:view:metricKeys:)``
    /// just answered, in their order: by default the runs read again by id; a store that answered the search from
    /// runs it holds whole fills those in instead.
    func searchPage(_ candidates: [Run]) throws -> [Run]
    /// Changes status, end time and name (only the non-nil ones).
    func updateRun(id: String, status: RunStatus?, endTime: Int64?, name: String?) throws
    /// Soft-deletes or restores a run.
    func setRunStage(id: String, _ stage: LifecycleStage, now: Int64) throws
    /// Upserts run tags (last one wins).
    func setRunTags(id: String, _ tags: [KeyValue]) throws
    /// Replaces tag `key` of the active run `id` with `update(its current value)`, read and written while no other
    /// writer can change it (SQLite: the one writer; PostgreSQL: the run's row locked): an append that never loses a
    /// concurrent one. `false` (nothing written) when the run is missing or not active.
    func updateRunTag(activeRunID id: String, key: String, _ update: (String?) throws -> String) throws -> Bool
    /// Deletes a run tag; `false` when it did not exist.
    func deleteRunTag(id: String, key: String) throws -> Bool
    /// A run's params by key.
    func params(runID: String, keys: [String]) throws -> [String: String]
    /// Inserts params whose keys the run has not logged; returns the values already stored for the others (a caller
    /// refuses a changed value: the database decides which of two concurrent writers logged first).
    @discardableResult
    func insertParams(runID: String, _ params: [KeyValue]) throws -> [String: String]
    /// A run's latest values of `keys`, aligned with them (`nil` where a key has none). Keys in bytewise order are
    /// the fast case (one merge walk).
    func latestMetrics(runID: String, keys: [String]) throws -> [Metric?]

    // Guarded by the run's stage: a store checks the run is active in the same round trip as the work (PostgreSQL:
    // the same statement). `nil`: the run is missing or not active and nothing was written; the service then reads
    // the run to give MLflow's error.

    /// ``insertParams(runID:_:)`` into an active run.
    func insertParams(activeRunID: String, _ params: [KeyValue]) throws -> [String: String]?
    /// ``insertRun(_:tags:)`` when the run's experiment is active; `false` (nothing written) when it is missing or
    /// not active.
    func insertRun(inActiveExperiment info: RunInfo, tags: [KeyValue]) throws -> Bool
    /// An experiment's artifact location, `nil` when it does not exist. It never changes once the experiment is
    /// created, so a store may remember it (PostgreSQL: no round trip per created run).
    func artifactLocation(experimentID: Int64) throws -> String?
    /// ``updateRun(id:status:endTime:name:)`` of an active run, answering the run as the update left it.
    func updateRun(activeID: String, status: RunStatus?, endTime: Int64?, name: String?) throws -> RunInfo?
    /// ``latestMetrics(runID:keys:)`` of an active run.
    func latestMetrics(activeRunID: String, keys: [String]) throws -> [Metric?]?
    /// Runs one logging request of a run (`body` reads the run's stage and latest values, then writes in a
    /// ``transaction(_:)``) so that the first read already holds what the writes need: PostgreSQL runs it all in one
    /// transaction whose first read locks the run's latest row (the read and the lock in one round trip, where a
    /// read before the transaction and the lock inside it took two); SQLite runs `body` as it is (its transactions
    /// are serialised in the process and kept short).
    func loggingRequest<R>(_ body: () throws -> R) throws -> R
    /// A ``loggingRequest(_:)`` that only logs metric points of `runID` (no params, tags or model metrics), whose
    /// `body` calls ``setLatestMetrics(runID:_:)`` once, before appending the points, even with no value to update.
    /// PostgreSQL may run it without a transaction, as one conditional write of the latest row it remembers for the
    /// run (see ``PostgresMetadataStore/metricsRequest(runID:_:)``); by default it is a ``loggingRequest(_:)``.
    func metricsRequest<R>(runID: String, _ body: () throws -> R) throws -> R
    /// The latest values of some runs as one table: the union of their keys in bytewise order, and each key's value
    /// per run (scoreboards). Runs without latest values (or unknown ids) have empty columns.
    func latestTable(runIDs: [String]) throws -> LatestTable
    /// Upserts latest metric rows (none: writes nothing; inside PostgreSQL's unlocked metrics request, checks that
    /// the row read is still the database's and the run active).
    func setLatestMetrics(runID: String, _ metrics: [Metric]) throws
    /// Makes ready, before the transaction that will write their latest values, whatever metric keys need: PostgreSQL
    /// registers new keys on a connection of its own, which a transaction must never wait for (behind a pooler in
    /// transaction mode with as many server connections as transactions open, none would come free).
    func prepareMetricKeys(_ keys: [String]) throws
    /// Adds dataset inputs: each copies its experiment's version of the dataset (name, digest), recording the given
    /// fields when the experiment has none; an input the run already has is left as it is (fields, tags, position),
    /// and a dataset (name and digest, by bytes) given twice counts as given first.
    func insertInputs(runID: String, _ inputs: [DatasetInput]) throws
    /// Records models a run logged (`runs/outputs`; a model already recorded for the run keeps its first step).
    func insertRunOutputs(runID: String, _ outputs: [ModelOutput]) throws
    /// The models a run logged, in the order they were recorded.
    func runOutputs(runID: String) throws -> [ModelOutput]
    /// The models each of some runs logged, in the order recorded (runs without any are left out).
    func runOutputs(runIDs: [String]) throws -> [String: [ModelOutput]]
    /// Records models a run used (`runs/log-inputs` with `models`; a model already recorded for the run is kept once).
    func insertRunModelInputs(runID: String, _ inputs: [ModelInput]) throws
    /// The models a run used, in the order they were recorded.
    func runModelInputs(runID: String) throws -> [ModelInput]

    // MARK: Logged models
    /// Inserts a logged model with its tags and params (its metrics are added by ``insertModelMetrics(_:)``).
    func insertLoggedModel(_ model: LoggedModel) throws
    /// A logged model with its tags, params and metrics, any stage.
    func loggedModel(id: String) throws -> LoggedModel?
    /// Which of `ids` are active logged models (each once, in no order): one question for a request naming many.
    func activeLoggedModelIDs(_ ids: [String]) throws -> [String]
    /// The active logged models of some experiments, with tags, params and metrics (a search filters, orders and
    /// pages them).
    func loggedModels(experimentIDs: [Int64]) throws -> [LoggedModel]
    /// Sets a model's status and last-update time.
    func setLoggedModelStatus(id: String, _ status: LoggedModelStatus, now: Int64) throws
    /// Soft-deletes a model.
    func deleteLoggedModel(id: String, now: Int64) throws
    /// Upserts a model's tags (last one wins).
    func setLoggedModelTags(id: String, _ tags: [KeyValue], now: Int64) throws
    /// Deletes a model tag; `false` when it did not exist.
    func deleteLoggedModelTag(id: String, key: String, now: Int64) throws -> Bool
    /// Upserts a model's params (last one wins).
    func setLoggedModelParams(id: String, _ params: [KeyValue], now: Int64) throws
    /// Appends metric points logged against models.
    func insertModelMetrics(_ metrics: [ModelMetric]) throws

    // MARK: Model Registry
    /// Inserts a registered model with its tags; `false` when the name is taken (a uniqueness constraint decides).
    func insertRegisteredModel(_ model: RegisteredModel) throws -> Bool
    /// A registered model with its tags and aliases.
    func registeredModel(named name: String) throws -> RegisteredModel?
    /// Every registered model with its tags (a search filters, orders and pages them).
    func registeredModels() throws -> [RegisteredModel]
    /// Renames a model; its versions, tags and aliases follow. `false` when `newName` is taken.
    func renameRegisteredModel(_ name: String, to newName: String, now: Int64) throws -> Bool
    /// Sets (or, with `nil`, clears) a model's description.
    func updateRegisteredModel(_ name: String, description: String?, now: Int64) throws
    /// Deletes a model with its versions, tags and aliases.
    func deleteRegisteredModel(_ name: String) throws
    /// Upserts a model tag.
    func setRegisteredModelTag(_ name: String, _ tag: KeyValue) throws
    /// Deletes a model tag (a missing key is no error).
    func deleteRegisteredModelTag(_ name: String, key: String) throws
    /// Points an alias at a version (overwriting).
    func setModelAlias(_ name: String, alias: String, version: Int64) throws
    /// Deletes an alias (a missing one is no error).
    func deleteModelAlias(_ name: String, alias: String) throws
    /// Inserts a version, numbered one past the highest version the model ever had, and touches the model; returns
    /// the version as stored, or `nil` (nothing written) when the model does not exist, deleted or renamed by a
    /// concurrent request since the caller read it.
    func insertModelVersion(_ version: ModelVersion) throws -> ModelVersion?
    /// The live versions of a model (or of every model with `nil`), with tags and aliases, by name then version.
    func modelVersions(named name: String?) throws -> [ModelVersion]
    /// Sets a version's description (`nil` clears it) and, when given, its stage.
    func updateModelVersion(_ name: String, version: Int64, description: String??, stage: String?, now: Int64) throws
    /// Deletes a version (its number is never given again) and the aliases pointing at it.
    func deleteModelVersion(_ name: String, version: Int64, now: Int64) throws
    /// Upserts a version tag.
    func setModelVersionTag(_ name: String, version: Int64, _ tag: KeyValue) throws
    /// Deletes a version tag (a missing key is no error).
    func deleteModelVersionTag(_ name: String, version: Int64, key: String) throws
}

/// What ``MetadataStore/searchRuns(experimentIDs:view:metricKeys:)`` answers: runs without their latest values and
/// the latest values of the keys a search names.
public struct RunCandidates: Sendable {
    /// The runs, in no particular order, with ``Run/metrics`` empty.
    public var runs: [Run]
    /// `metrics[k][i]`: run `i`'s latest value of the `k`-th requested key (`nil` when it has none).
    public var metrics: [[Double?]]

    /// Candidates.
    public init(runs: [Run], metrics: [[Double?]]) {
        self.runs = runs
        self.metrics = metrics
    }
}

/// Several runs' latest values, key-major: what ``MetadataStore/latestTable(runIDs:)`` answers.
public struct LatestTable: Sendable {
    /// The union of the runs' keys, in bytewise order.
    public var keys: [String]
    /// How many runs (columns).
    public var runCount: Int
    /// At `k × runCount + i`: run `i`'s latest step of `keys[k]` (see `present`).
    public var steps: [Int64]
    /// At `k × runCount + i`: run `i`'s latest value of `keys[k]` (see `present`).
    public var values: [Double]
    /// At `k × runCount + i`: whether run `i` has a value of `keys[k]`.
    public var present: [Bool]

    /// A table of `keys` × `runCount` empty cells.
    public init(keys: [String], runCount: Int) {
        self.keys = keys
        self.runCount = runCount
        steps = [Int64](repeating: 0, count: keys.count * runCount)
        values = [Double](repeating: 0, count: keys.count * runCount)
        present = [Bool](repeating: false, count: keys.count * runCount)
    }

    /// Run `run`'s latest (step, value) of `keys[key]`, `nil` when it has none.
    @inline(__always)
    public func cell(_ key: Int, _ run: Int) -> (step: Int64, value: Double)? {
        let c = key &* runCount &+ run
        return present[c] ? (steps[c], values[c]) : nil
    }

    /// Sets run `run`'s latest (step, value) of `keys[key]`.
    @inline(__always)
    public mutating func set(_ key: Int, _ run: Int, step: Int64, value: Double) {
        let c = key &* runCount &+ run
        steps[c] = step
        values[c] = value
        present[c] = true
    }
}

extension MetadataStore {
    /// The run's metadata when it exists and is active.
    func activeRunInfo(_ id: String) throws -> RunInfo? {
        try runInfo(id: id).flatMap { $0.lifecycleStage == .active ? $0 : nil }
    }

    /// Checks the stage, then inserts (for stores whose reads cost no round trip).
    public func insertParams(activeRunID: String, _ params: [KeyValue]) throws -> [String: String]? {
        guard try activeRunInfo(activeRunID) != nil else { return nil }
        return try insertParams(runID: activeRunID, params)
    }

    /// Checks the experiment's stage, then inserts, in one transaction.
    public func insertRun(inActiveExperiment info: RunInfo, tags: [KeyValue]) throws -> Bool {
        try transaction {
            guard try experiment(id: Int64(info.experimentID) ?? -1)?.lifecycleStage == .active else { return false }
            try insertRun(info, tags: tags)
            return true
        }
    }

    /// The experiment's, as read.
    public func artifactLocation(experimentID: Int64) throws -> String? {
        try experiment(id: experimentID)?.artifactLocation
    }

    /// Checks the stage, then updates.
    public func updateRun(activeID: String, status: RunStatus?, endTime: Int64?, name: String?) throws -> RunInfo? {
        guard var info = try activeRunInfo(activeID) else { return nil }
        try updateRun(id: activeID, status: status, endTime: endTime, name: name)
        if let status { info.status = status }
        if let endTime { info.endTime = endTime }
        if let name { info.runName = name }
        return info
    }

    /// `body` as it is.
    public func loggingRequest<R>(_ body: () throws -> R) throws -> R { try body() }

    /// A ``loggingRequest(_:)``.
    public func metricsRequest<R>(runID: String, _ body: () throws -> R) throws -> R { try loggingRequest(body) }

    /// Nothing: keys need nothing ahead of the transaction.
    public func prepareMetricKeys(_ keys: [String]) throws {}

    /// Checks the stage, then reads.
    public func latestMetrics(activeRunID: String, keys: [String]) throws -> [Metric?]? {
        guard try activeRunInfo(activeRunID) != nil else { return nil }
        return try latestMetrics(runID: activeRunID, keys: keys)
    }

    /// Reads the page's runs again by id.
    public func searchPage(_ candidates: [Run]) throws -> [Run] {
        try runs(ids: candidates.map(\.info.runID))
    }
}
