import Synchronization
import TallyStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MLflow's tracking semantics over a ``MetadataStore`` (experiments, runs, params, tags, inputs, latest metrics)
/// and a `MetricStore` (every metric point). Knows nothing of HTTP: errors are ``TrackingError``s carrying MLflow's
/// error code and message.
public final class TrackingService: Sendable {
    /// Experiments, runs and the rest of the metadata.
    public let metadata: any MetadataStore
    /// Metric points.
    public let metrics: MetricStore
    /// Prefix of new experiments' artifact locations: `<root>/<experiment id>`.
    public let artifactRoot: String
    /// Proxied artifacts (`mlflow-artifacts:` URIs), when this server serves them.
    public let artifacts: ArtifactStore?
    /// Failures injected by tests (empty in normal operation).
    public let faults: Faults
    /// This server's membership of a cluster (docs/scale-out.md), `nil` for a single server.
    public let cluster: ClusterNode?
    /// Where registry events go (``WebhookDelivery``): its policy, its key for the webhooks' secrets.
    public let webhooks: WebhookDelivery
    /// Whether scorers with code (`@scorer`'s `call_source`) may be registered: off unless the operator trusts every
    /// writer, since each client that loads one runs its code (MLflow's `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS`).
    public let customScorers: Bool
    /// The model prices spans sent over OTLP are priced from (`--model-prices`; `nil`: none are).
    public let modelPrices: ModelPrices?
    let clock: @Sendable () -> Int64
    /// The experiment of each run the access check has looked up (a run never changes experiment): the check of a
    /// write then takes no lock the write itself holds.
    let runExperiments = Mutex<[String: String]>([:])

    /// Creates a service.
    /// - Parameters:
    ///   - artifactRoot: e.g. `mlflow-artifacts:` (proxied artifacts, MLflow's default) or a directory.
    ///   - clock: milliseconds since the epoch (tests pass a fixed one).
    ///   - faults: failures to inject (tests of the write path).
    ///   - artifacts: the store behind `mlflow-artifacts:` URIs (`nil`: this server serves no artifacts).
    ///   - cluster: the cluster this server belongs to (its metric writes then go through the shared log).
    ///   - webhooks: registry events' delivery (default: MLflow's policy, a key of this process only).
    ///   - customScorers: whether scorers with code may be registered (``customScorers``).
    ///   - modelPrices: the prices OTLP spans' costs are derived from (``modelPrices``).
    public init(metadata: any MetadataStore, metrics: MetricStore, artifactRoot: String = "mlflow-artifacts:",
                artifacts: ArtifactStore? = nil, faults: Faults = [], cluster: ClusterNode? = nil, webhooks: WebhookDelivery = WebhookDelivery(),
                customScorers: Bool = false, modelPrices: ModelPrices? = nil, clock: @escaping @Sendable () -> Int64 = TrackingService.nowMillis) {
        self.metadata = metadata
        self.metrics = metrics
        self.artifactRoot = artifactRoot
        self.artifacts = artifacts
        self.faults = faults
        self.cluster = cluster
        self.webhooks = webhooks
        self.customScorers = customScorers
        self.modelPrices = modelPrices
        self.clock = clock
    }

    /// Shuts the stores down cleanly: seals and closes the metric store, then checkpoints the metadata database so
    /// no journal is left behind, and releases it. The service must not be used afterwards.
    public func close() throws {
        cluster?.stop()
        defer { metadata.close() }
        try metrics.close()
        try metadata.checkpoint()
    }

    /// The service's clock, milliseconds since the epoch: the default timestamp of anything logged without one.
    public func now() -> Int64 { clock() }

    /// The wall clock in milliseconds.
    @Sendable public static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: Experiments

    /// Creates an experiment; returns its id.
    public func createExperiment(name: String, artifactLocation: String? = nil, tags: [KeyValue] = []) throws -> String {
        if let l = artifactLocation, !l.isEmpty { try Validation.artifactLocation(l) }  // checked first, as MLflow's handler does
        try Validation.experimentName(name)
        for t in tags { try Self.checkExperimentTag(t) }
        // MLflow's database refuses a key twice (as RESOURCE_ALREADY_EXISTS, naming the experiment): said plainly here,
        // after the name, which its insert finds taken first.
        if !Self.repeatedKeys(tags).isEmpty {
            if try metadata.experiment(named: name) != nil {
                throw TrackingError(.resourceAlreadyExists, "Experiment(name=\(name)) already exists.")
            }
            try Self.refuseRepeatedKeys(tags, .invalidParameterValue)
        }
        let location = artifactLocation.flatMap { $0.isEmpty ? nil : Self.absoluteLocation($0) } ?? artifactRoot + "/{id}"
        return try metadata.insertExperiment(name: name, artifactLocation: location, tags: tags, now: clock())
    }

    /// MLflow's `resolve_uri_if_local`: a relative local path (no scheme, or `file:`) is made absolute against the
    /// server's working directory (`rel/x` → `/cwd/rel/x`, `file:rel` → `file:///cwd/rel`); anything else is kept.
    static func absoluteLocation(_ location: String) -> String {
        let scheme = Self.uriScheme(location)
        guard scheme == nil || scheme == "file" else { return location }
        let path = scheme == nil ? location : String(location.dropFirst("file:".count))
        guard !path.hasPrefix("/") else { return location }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return location }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // pathlib's join: empty and "." components dropped, ".." kept.
        let parts = (cwd + "/" + path).split(separator: "/").filter { $0 != "." }
        let joined = "/" + parts.joined(separator: "/")
        return scheme == nil ? joined : "file://" + joined
    }

    /// A URI's scheme as Python's `urlparse` reads it (letters, digits, `+-.`, starting with a letter), lowercased.
    static func uriScheme(_ uri: String) -> String? {
        guard let colon = uri.firstIndex(of: ":") else { return nil }
        let s = uri[..<colon]
        guard let first = s.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic,
            s.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "+-.".unicodeScalars.contains($0)) })
        else { return nil }
        return s.lowercased()
    }

    static func checkExperimentTag(_ t: KeyValue) throws {
        try Validation.key(t.key, entity: "Tag")
        guard t.value.unicodeScalars.count <= Validation.maxExperimentTagValueLength else {
            throw TrackingError.invalid("'Tag value' exceeds the maximum length of \(Validation.maxExperimentTagValueLength) characters")
        }
    }

    /// An experiment by id, any stage.
    public func experiment(id: String) throws -> Experiment {
        let n = try Validation.experimentID(id)
        guard let e = try metadata.experiment(id: n) else { throw TrackingError.notFound("No Experiment with id=\(id) exists") }
        return e
    }

    /// An experiment by name, any stage.
    public func experiment(named name: String) throws -> Experiment {
        guard let e = try metadata.experiment(named: name) else { throw TrackingError.notFound("Could not find experiment with name '\(name)'") }
        return e
    }

    func activeExperiment(_ id: String) throws -> Experiment {
        let e = try experiment(id: id)
        guard e.lifecycleStage == .active else {
            throw TrackingError.invalid("The experiment \(id) must be in the 'active' state. Current state is \(e.lifecycleStage.rawValue).")
        }
        return e
    }

    /// Renames an active experiment.
    public func renameExperiment(id: String, to name: String) throws {
        try Validation.experimentName(name)
        let e = try experiment(id: id)
        guard e.lifecycleStage == .active else { throw TrackingError(.invalidState, "Cannot rename a non-active experiment.") }
        try metadata.renameExperiment(id: Int64(e.experimentID)!, to: name, now: clock())
    }

    /// Soft-deletes an active experiment and all its runs.
    public func deleteExperiment(id: String) throws {
        try metadata.setExperimentStage(id: Int64(try liveExperiment(id))!, .deleted, now: clock())
    }

    /// Restores a deleted experiment and all its runs.
    public func restoreExperiment(id: String) throws {
        let e = try experiment(id: id)
        guard e.lifecycleStage == .deleted else { throw TrackingError.notFound("No Experiment with id=\(id) exists") }
        try metadata.setExperimentStage(id: Int64(e.experimentID)!, .active, now: clock())
    }

    /// Sets a tag on an active experiment.
    public func setExperimentTag(id: String, key: String, value: String) throws {
        let tag = KeyValue(key: key, value: value)
        try Self.checkExperimentTag(tag)
        let e = try activeExperiment(id)
        try metadata.setExperimentTag(id: Int64(e.experimentID)!, tag)
    }

    /// Deletes a tag of an active experiment.
    public func deleteExperimentTag(id: String, key: String) throws {
        let e = try activeExperiment(id)
        guard try metadata.deleteExperimentTag(id: Int64(e.experimentID)!, key: key) else {
            throw TrackingError.notFound("No tag with name: \(key) in experiment with id \(id)")
        }
    }

    // MARK: Runs

    /// The experiment of runs created without one (MLflow's `Default`).
    public static let defaultExperimentID = "0"

    /// Creates a run in an active experiment (``defaultExperimentID`` when `nil`), naming it when no name is given.
    public func createRun(experimentID: String?, userID: String? = nil, runName: String? = nil, startTime: Int64? = nil,
                          tags tags0: [KeyValue] = []) throws -> Run {
        // The experiment's artifact location (remembered by the store: it never changes), its stage checked by the
        // insert itself (one round trip on PostgreSQL); a refused insert reads the experiment for MLflow's error.
        let experimentID = experimentID.flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultExperimentID  // "" is none, as in MLflow
        let experiment = try Validation.experimentID(experimentID)
        guard let location = try metadata.artifactLocation(experimentID: experiment) else {
            throw TrackingError.notFound("No Experiment with id=\(experimentID) exists")
        }
        var tags: [KeyValue], name: String
        do {
            // MLflow's order: the name against the tag, then its database's refusal of a key twice (BAD_REQUEST), then
            // the key rule of every other tag write (which MLflow's create skips).
            tags = tags0.map { KeyValue(key: $0.key, value: $0.value.prefix(codePoints: Validation.maxTagValueLength)) }
            let tagName = tags.last { $0.key == "mlflow.runName" }?.value
            if let runName, !runName.isEmpty, let tagName, tagName != runName {
                throw TrackingError.invalid("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                    + "(run_name='\(runName)', mlflow.runName='\(tagName)').")
            }
            try Self.refuseRepeatedKeys(tags0, .badRequest)
            for t in tags0 { try Validation.key(t.key, entity: "Tag") }
            name = (runName.flatMap { $0.isEmpty ? nil : $0 }) ?? tagName ?? RunNames.generate()
            if tagName == nil { tags.append(KeyValue(key: "mlflow.runName", value: name)) }
        } catch {
            _ = try activeExperiment(experimentID)  // MLflow checks the experiment's stage first
            throw error
        }
        let id = RunNames.runID()
        let info = RunInfo(runID: id, runName: name, experimentID: String(experiment), userID: userID ?? "",
                           status: .running, startTime: startTime ?? clock(), endTime: nil, artifactURI: location + "/" + id + "/artifacts",
                           lifecycleStage: .active)
        let stored = Self.lastWins(tags)
        var inserted = try metadata.insertRun(inActiveExperiment: info, tags: stored)
        if !inserted {
            _ = try activeExperiment(experimentID)  // MLflow's error for an experiment gone or not active
            inserted = try metadata.insertRun(inActiveExperiment: info, tags: stored)  // restored meanwhile: once more
        }
        guard inserted else { throw TrackingError(.temporarilyUnavailable, "The experiment \(experimentID) changed while the run was created; try again") }
        // What a read would answer: nothing else can have been logged to a run nobody knows the id of yet.
        return Run(info: info, metrics: [], params: [], tags: stored.sorted { binaryLess($0.key, $1.key) }, inputs: [])
    }

    /// The keys given more than once (by bytes), each once, in the order they repeat.
    static func repeatedKeys(_ tags: [KeyValue]) -> [String] {
        var seen = Set<ExactKey>(), repeated: [String] = []
        for t in tags where !seen.insert(ExactKey(t.key)).inserted && !repeated.contains(where: { ExactKey.sameBytes($0, t.key) }) {
            repeated.append(t.key)
        }
        return repeated
    }

    /// Throws `code` naming the tag keys given more than once (by bytes), as a create's tags must hold each key once.
    static func refuseRepeatedKeys(_ tags: [KeyValue], _ code: TrackingError.Code) throws {
        let repeated = repeatedKeys(tags)
        guard repeated.isEmpty else {
            throw TrackingError(code, "Duplicate tag keys have been submitted: [\(repeated.map { "'\($0)'" }.joined(separator: ", "))]. "
                + "Please ensure the request contains only one tag value per tag key.")
        }
    }

    /// Tags with repeated keys reduced to the last value, in first-appearance order.
    static func lastWins(_ tags: [KeyValue]) -> [KeyValue] {
        var order: [ExactKey] = []
        var values: [ExactKey: String] = [:]
        for t in tags {
            let key = ExactKey(t.key)
            if values.updateValue(t.value, forKey: key) == nil { order.append(key) }
        }
        return order.map { KeyValue(key: $0.string, value: values[$0]!) }
    }

    /// A full run, any stage.
    public func run(id: String) throws -> Run {
        guard let r = try metadata.run(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
        return r
    }

    func activeRun(_ id: String) throws -> RunInfo {
        try Validation.runID(id)
        guard let info = try metadata.runInfo(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
        guard info.lifecycleStage == .active else {
            throw TrackingError.invalid("The run \(id) must be in the 'active' state. Current state is \(info.lifecycleStage.rawValue).")
        }
        return info
    }

    /// Runs a write guarded by the run's stage (`nil`: the run is missing or not active, nothing written). Then
    /// throws MLflow's error for the run as it is now — or, should it be active again (restored in between), writes
    /// once more.
    func whileActive<R>(_ id: String, _ write: () throws -> R?) throws -> R {
        try Validation.runID(id)
        for _ in 0..<2 {
            if let r = try write() { return r }
            _ = try activeRun(id)
        }
        throw TrackingError(.temporarilyUnavailable, "The run \(id) changed its state while being written; retry the request.")
    }

    /// Updates status, end time and name (only those given) of an active run; answers the run as the update left it.
    public func updateRun(id: String, status: RunStatus? = nil, endTime: Int64? = nil, runName: String? = nil) throws -> RunInfo {
        let name = runName.flatMap { $0.isEmpty ? nil : $0 }
        return try whileActive(id) { try metadata.updateRun(activeID: id, status: status, endTime: endTime, name: name) }
    }

    /// Soft-deletes a run.
    public func deleteRun(id: String) throws {
        guard try metadata.runInfo(id: id) != nil else { throw TrackingError.notFound("Run with id=\(id) not found") }
        try metadata.setRunStage(id: id, .deleted, now: clock())
    }

    /// Restores a run.
    public func restoreRun(id: String) throws {
        guard try metadata.runInfo(id: id) != nil else { throw TrackingError.notFound("Run with id=\(id) not found") }
        try metadata.setRunStage(id: id, .active, now: clock())
    }

    /// Sets (upserts) a tag on an active run; `mlflow.runName` renames it. Values over 8,000 characters are truncated.
    public func setTag(runID: String, key: String, value: String) throws {
        if key == "mlflow.runName", value.isEmpty {  // MLflow's set-tag renames only to a name: an empty one changes nothing
            _ = try activeRun(runID)
            return
        }
        try logBatch(runID: runID, tags: [KeyValue(key: key, value: value)])
    }

    /// Deletes a tag of an active run.
    public func deleteTag(runID: String, key: String) throws {
        _ = try activeRun(runID)
        guard try metadata.deleteRunTag(id: runID, key: key) else {
            throw TrackingError.notFound("No tag with name: \(key) in run with id \(runID)")
        }
    }

    /// Logs a param (immutable: the same value again is fine, another value is an error).
    public func logParam(runID: String, key: String, value: String) throws {
        try Validation.key(key, entity: "Param")
        let v = value.prefix(codePoints: Validation.maxParamValueLength)
        // The insert decides: a value stored first (by any server) makes a different one fail, never vanish.
        let stored = try whileActive(runID) { try metadata.insertParams(activeRunID: runID, [KeyValue(key: key, value: v)]) }
        if let old = stored[key], old != v {
            throw TrackingError.invalid("Changing param values is not allowed. Param with key='\(key)' was already logged with value='\(old)' "
                + "for run ID='\(runID)'. Attempted logging new value '\(v)'.")
        }
    }

    /// Logs one metric point.
    public func logMetric(runID: String, _ m: Metric) throws {
        try logBatch(runID: runID, metrics: [m])
    }
}
