import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// A metadata store that fails chosen operations, around a real store of either backend: for the ordering tests.
final class FailingMetadata: MetadataStore {
    let inner: any MetadataStore
    let failing = Mutex<Set<String>>([])

    init(_ inner: any MetadataStore) { self.inner = inner }

    func check(_ op: String) throws {
        if failing.withLock({ $0.contains(op) }) { throw TrackingError(.internalError, "injected failure: \(op)") }
    }

    var location: String { inner.location }
    var shared: Bool { inner.shared }
    func transaction<R>(_ body: () throws -> R) throws -> R { try inner.transaction(body) }
    func checkpoint() throws { try inner.checkpoint() }
    func beginCopy(into directory: DataDirectory, options: MetadataCopyOptions) throws -> any MetadataCopy {
        try inner.beginCopy(into: directory, options: options)
    }
    func ping() throws {
        try check("ping")
        try inner.ping()
    }
    func close() { inner.close() }
    func insertExperiment(name: String, artifactLocation: String, tags: [KeyValue], now: Int64) throws -> String {
        try inner.insertExperiment(name: name, artifactLocation: artifactLocation, tags: tags, now: now)
    }
    func insertExperiment(_ e: Experiment) throws { try inner.insertExperiment(e) }
    func experiment(id: Int64) throws -> Experiment? { try inner.experiment(id: id) }
    func experiment(named name: String) throws -> Experiment? { try inner.experiment(named: name) }
    func experiments() throws -> [Experiment] { try inner.experiments() }
    func renameExperiment(id: Int64, to name: String, now: Int64) throws { try inner.renameExperiment(id: id, to: name, now: now) }
    func setExperimentStage(id: Int64, _ stage: LifecycleStage, now: Int64) throws { try inner.setExperimentStage(id: id, stage, now: now) }
    func setExperimentTag(id: Int64, _ tag: KeyValue) throws { try inner.setExperimentTag(id: id, tag) }
    func deleteExperimentTag(id: Int64, key: String) throws -> Bool { try inner.deleteExperimentTag(id: id, key: key) }
    func insertRun(_ info: RunInfo, tags: [KeyValue]) throws { try inner.insertRun(info, tags: tags) }
    func runInfo(id: String) throws -> RunInfo? { try inner.runInfo(id: id) }
    func run(id: String) throws -> Run? { try inner.run(id: id) }
    func searchRuns(experimentIDs: [Int64], view: ViewType, metricKeys: [String]) throws -> RunCandidates {
        try inner.searchRuns(experimentIDs: experimentIDs, view: view, metricKeys: metricKeys)
    }
    func runs(ids: [String]) throws -> [Run] { try inner.runs(ids: ids) }
    func updateRun(id: String, status: RunStatus?, endTime: Int64?, name: String?) throws {
        try inner.updateRun(id: id, status: status, endTime: endTime, name: name)
    }
    func setRunStage(id: String, _ stage: LifecycleStage, now: Int64) throws { try inner.setRunStage(id: id, stage, now: now) }
    func setRunTags(id: String, _ tags: [KeyValue]) throws {
        try inner.setRunTags(id: id, tags)
        try check("setRunTags")  // after the write: the transaction must undo it
    }
    func updateRunTag(activeRunID id: String, key: String, _ update: (String?) throws -> String) throws -> Bool {
        try inner.updateRunTag(activeRunID: id, key: key, update)
    }
    func deleteRunTag(id: String, key: String) throws -> Bool { try inner.deleteRunTag(id: id, key: key) }
    func params(runID: String, keys: [String]) throws -> [String: String] { try inner.params(runID: runID, keys: keys) }
    func insertParams(runID: String, _ params: [KeyValue]) throws -> [String: String] {
        try check("insertParams")
        return try inner.insertParams(runID: runID, params)
    }
    func latestMetrics(runID: String, keys: [String]) throws -> [Metric?] { try inner.latestMetrics(runID: runID, keys: keys) }
    func latestTable(runIDs: [String]) throws -> LatestTable { try inner.latestTable(runIDs: runIDs) }
    func setLatestMetrics(runID: String, _ metrics: [Metric]) throws {
        try inner.setLatestMetrics(runID: runID, metrics)
        try check("setLatestMetrics")
    }
    func insertInputs(runID: String, _ inputs: [DatasetInput]) throws { try inner.insertInputs(runID: runID, inputs) }
    func insertRunOutputs(runID: String, _ outputs: [ModelOutput]) throws { try inner.insertRunOutputs(runID: runID, outputs) }
    func runOutputs(runID: String) throws -> [ModelOutput] { try inner.runOutputs(runID: runID) }
    func runOutputs(runIDs: [String]) throws -> [String: [ModelOutput]] { try inner.runOutputs(runIDs: runIDs) }
    func insertRunModelInputs(runID: String, _ inputs: [ModelInput]) throws { try inner.insertRunModelInputs(runID: runID, inputs) }
    func runModelInputs(runID: String) throws -> [ModelInput] { try inner.runModelInputs(runID: runID) }
    func insertLoggedModel(_ model: LoggedModel) throws { try inner.insertLoggedModel(model) }
    func loggedModel(id: String) throws -> LoggedModel? { try inner.loggedModel(id: id) }
    func activeLoggedModelIDs(_ ids: [String]) throws -> [String] { try inner.activeLoggedModelIDs(ids) }
    func loggedModels(experimentIDs: [Int64]) throws -> [LoggedModel] { try inner.loggedModels(experimentIDs: experimentIDs) }
    func setLoggedModelStatus(id: String, _ status: LoggedModelStatus, now: Int64) throws { try inner.setLoggedModelStatus(id: id, status, now: now) }
    func deleteLoggedModel(id: String, now: Int64) throws { try inner.deleteLoggedModel(id: id, now: now) }
    func setLoggedModelTags(id: String, _ tags: [KeyValue], now: Int64) throws { try inner.setLoggedModelTags(id: id, tags, now: now) }
    func deleteLoggedModelTag(id: String, key: String, now: Int64) throws -> Bool { try inner.deleteLoggedModelTag(id: id, key: key, now: now) }
    func setLoggedModelParams(id: String, _ params: [KeyValue], now: Int64) throws { try inner.setLoggedModelParams(id: id, params, now: now) }
    func insertModelMetrics(_ metrics: [ModelMetric]) throws {
        try check("insertModelMetrics")
        try inner.insertModelMetrics(metrics)
    }
    func insertRegisteredModel(_ model: RegisteredModel) throws -> Bool { try inner.insertRegisteredModel(model) }
    func registeredModel(named name: String) throws -> RegisteredModel? { try inner.registeredModel(named: name) }
    func registeredModels() throws -> [RegisteredModel] { try inner.registeredModels() }
    func renameRegisteredModel(_ name: String, to newName: String, now: Int64) throws -> Bool { try inner.renameRegisteredModel(name, to: newName, now: now) }
    func updateRegisteredModel(_ name: String, description: String?, now: Int64) throws { try inner.updateRegisteredModel(name, description: description, now: now) }
    func deleteRegisteredModel(_ name: String) throws { try inner.deleteRegisteredModel(name) }
    func setRegisteredModelTag(_ name: String, _ tag: KeyValue) throws { try inner.setRegisteredModelTag(name, tag) }
    func deleteRegisteredModelTag(_ name: String, key: String) throws { try inner.deleteRegisteredModelTag(name, key: key) }
    func setModelAlias(_ name: String, alias: String, version: Int64) throws { try inner.setModelAlias(name, alias: alias, version: version) }
    func deleteModelAlias(_ name: String, alias: String) throws { try inner.deleteModelAlias(name, alias: alias) }
    func insertModelVersion(_ version: ModelVersion) throws -> ModelVersion? { try inner.insertModelVersion(version) }
    func modelVersions(named name: String?) throws -> [ModelVersion] { try inner.modelVersions(named: name) }
    func updateModelVersion(_ name: String, version: Int64, description: String??, stage: String?, now: Int64) throws {
        try inner.updateModelVersion(name, version: version, description: description, stage: stage, now: now)
    }
    func deleteModelVersion(_ name: String, version: Int64, now: Int64) throws { try inner.deleteModelVersion(name, version: version, now: now) }
    func setModelVersionTag(_ name: String, version: Int64, _ tag: KeyValue) throws { try inner.setModelVersionTag(name, version: version, tag) }
    func deleteModelVersionTag(_ name: String, version: Int64, key: String) throws { try inner.deleteModelVersionTag(name, version: version, key: key) }
    func insertWebhook(_ hook: Webhook) throws { try inner.insertWebhook(hook) }
    func webhooks(id: String?) throws -> [Webhook] { try inner.webhooks(id: id) }
    func replaceWebhook(_ hook: Webhook) throws -> Bool { try inner.replaceWebhook(hook) }
    func deleteWebhook(id: String) throws -> Bool { try inner.deleteWebhook(id: id) }
    func insertTrace(_ trace: TraceInfo) throws -> Bool { try inner.insertTrace(trace) }
    func traces(ids: [String]) throws -> [TraceInfo] { try inner.traces(ids: ids) }
    func traceExperiment(id: String) throws -> Int64? { try inner.traceExperiment(id: id) }
    func traces(experimentIDs: [Int64], parts: TraceParts, matching filter: SearchFilter) throws -> [TraceInfo] {
        try inner.traces(experimentIDs: experimentIDs, parts: parts, matching: filter)
    }
    func traceIDs(experimentIDs: [Int64], matching filter: SearchFilter, orderedBy keys: [TraceOrder], offset: Int, limit: Int) throws -> [String] {
        try inner.traceIDs(experimentIDs: experimentIDs, matching: filter, orderedBy: keys, offset: offset, limit: limit)
    }
    func setTraceTag(traceID: String, _ tag: KeyValue) throws -> Bool { try inner.setTraceTag(traceID: traceID, tag) }
    func deleteTraceTag(traceID: String, key: String) throws -> Bool { try inner.deleteTraceTag(traceID: traceID, key: key) }
    func deleteTraces(experimentID: Int64, ids: [String]?, maxTime: Int64?, limit: Int64?) throws -> Int {
        try inner.deleteTraces(experimentID: experimentID, ids: ids, maxTime: maxTime, limit: limit)
    }
    func insertAssessment(_ a: Assessment) throws -> Bool { try inner.insertAssessment(a) }
    func updateAssessment(traceID: String, id: String, _ change: (inout Assessment) throws -> Void) throws -> Assessment? {
        try inner.updateAssessment(traceID: traceID, id: id, change)
    }
    func deleteAssessment(traceID: String, id: String) throws -> Bool { try inner.deleteAssessment(traceID: traceID, id: id) }
    func linkTraces(_ ids: [String], toRun runID: String) throws { try inner.linkTraces(ids, toRun: runID) }
    func linkPrompts(_ prompts: [String], toTrace traceID: String) throws -> Bool { try inner.linkPrompts(prompts, toTrace: traceID) }
    func insertDataset(_ d: EvaluationDataset, experimentIDs: [String]) throws { try inner.insertDataset(d, experimentIDs: experimentIDs) }
    func datasets(ids: [String]) throws -> [EvaluationDataset] { try inner.datasets(ids: ids) }
    func datasets(experimentIDs: [String]?) throws -> [EvaluationDataset] { try inner.datasets(experimentIDs: experimentIDs) }
    func datasetExperimentIDs(id: String) throws -> [String] { try inner.datasetExperimentIDs(id: id) }
    func datasetExperimentIDs(ids: [String]) throws -> [String: [String]] { try inner.datasetExperimentIDs(ids: ids) }
    func deleteDataset(id: String) throws { try inner.deleteDataset(id: id) }
    func deleteDatasetTag(id: String, key: String) throws { try inner.deleteDatasetTag(id: id, key: key) }
    func datasetRecords(id: String, after cursor: DatasetRecordCursor?, limit: Int) throws -> [DatasetRecord] {
        try inner.datasetRecords(id: id, after: cursor, limit: limit)
    }
    func changeDataset<T>(id: String, _ change: (any DatasetEdit) throws -> T) throws -> T? { try inner.changeDataset(id: id, change) }
    func registerScorer(experimentID: String, name: String, serialized: String, time: Int64, newID: String) throws -> ScorerVersion {
        try inner.registerScorer(experimentID: experimentID, name: name, serialized: serialized, time: time, newID: newID)
    }
    func latestScorers(experimentIDs: [String]) throws -> [ScorerVersion] { try inner.latestScorers(experimentIDs: experimentIDs) }
    func scorerVersions(experimentID: String, name: String) throws -> [ScorerVersion]? { try inner.scorerVersions(experimentID: experimentID, name: name) }
    func deleteScorer(experimentID: String, name: String, version: Int64?) throws -> Int? {
        try inner.deleteScorer(experimentID: experimentID, name: name, version: version)
    }
    func onlineScoringConfigs(scorerIDs: [String]) throws -> [OnlineScoringConfig] { try inner.onlineScoringConfigs(scorerIDs: scorerIDs) }
    func setOnlineScoringConfig(experimentID: String, name: String,
                                _ make: (String, ScorerVersion?) throws -> OnlineScoringConfig) throws -> OnlineScoringConfig? {
        try inner.setOnlineScoringConfig(experimentID: experimentID, name: name, make)
    }
    func importScorers(_ versions: [ScorerVersion], configs: [OnlineScoringConfig]) throws { try inner.importScorers(versions, configs: configs) }
    func logSpans(experimentID: Int64, artifactLocation: @Sendable (String) -> String, _ traces: [SpanTraceWrite]) throws {
        try inner.logSpans(experimentID: experimentID, artifactLocation: artifactLocation, traces)
    }
    func spans(traceIDs: [String]) throws -> [String: [StoredSpan]] { try inner.spans(traceIDs: traceIDs) }
    func insertSpans(traceID: String, _ spans: [StoredSpan]) throws -> Bool { try inner.insertSpans(traceID: traceID, spans) }
    func traceMetricGroups(_ selection: TraceMetricsSelection) throws -> [TraceMetricsGroup] { try inner.traceMetricGroups(selection) }
    func insertLabelSchema(_ schema: LabelSchema) throws -> Bool { try inner.insertLabelSchema(schema) }
    func labelSchema(id: String) throws -> LabelSchema? { try inner.labelSchema(id: id) }
    func labelSchema(experimentID: String, name: String) throws -> LabelSchema? { try inner.labelSchema(experimentID: experimentID, name: name) }
    func labelSchemaIDs(experimentID: String) throws -> Set<String> { try inner.labelSchemaIDs(experimentID: experimentID) }
    func labelSchemas(experimentID: String, seeding seed: LabelSchema, offset: Int, limit: Int) throws -> [LabelSchema] {
        try inner.labelSchemas(experimentID: experimentID, seeding: seed, offset: offset, limit: limit)
    }
    func updateLabelSchema(id: String, _ change: (inout LabelSchema) throws -> Void) throws -> LabelSchema? { try inner.updateLabelSchema(id: id, change) }
    func deleteLabelSchema(id: String, _ check: (LabelSchema) throws -> Void) throws -> Bool { try inner.deleteLabelSchema(id: id, check) }
    func insertReviewQueue(_ queue: ReviewQueue) throws -> Bool { try inner.insertReviewQueue(queue) }
    func reviewQueue(id: String) throws -> ReviewQueue? { try inner.reviewQueue(id: id) }
    func reviewQueue(experimentID: String, name: String) throws -> ReviewQueue? { try inner.reviewQueue(experimentID: experimentID, name: name) }
    func reviewQueues(experimentID: String, user: String?, itemID: String?, offset: Int, limit: Int) throws -> [ReviewQueue] {
        try inner.reviewQueues(experimentID: experimentID, user: user, itemID: itemID, offset: offset, limit: limit)
    }
    func updateReviewQueue(id: String, _ change: (inout ReviewQueue, Int, Set<String>) throws -> Void) throws -> ReviewQueue? {
        try inner.updateReviewQueue(id: id, change)
    }
    func deleteReviewQueue(id: String) throws -> Bool { try inner.deleteReviewQueue(id: id) }
    func addReviewItems(queueID: String, itemIDs: [String], itemType: String, time: Int64) throws -> [ReviewQueueItem]? {
        try inner.addReviewItems(queueID: queueID, itemIDs: itemIDs, itemType: itemType, time: time)
    }
    func removeReviewItems(queueID: String, itemIDs: [String]) throws -> Bool { try inner.removeReviewItems(queueID: queueID, itemIDs: itemIDs) }
    func reviewItems(queueID: String, status: ReviewStatus?, offset: Int, limit: Int) throws -> [ReviewQueueItem]? {
        try inner.reviewItems(queueID: queueID, status: status, offset: offset, limit: limit)
    }
    func updateReviewItem(queueID: String, itemID: String, _ change: (inout ReviewQueueItem) throws -> Bool) throws -> ReviewItemLookup {
        try inner.updateReviewItem(queueID: queueID, itemID: itemID, change)
    }
    func review(experimentID: String) throws -> SourceReview { try inner.review(experimentID: experimentID) }
    func importReview(schemas: [LabelSchema], queues: [ReviewQueue], items: [ReviewQueueItem]) throws {
        try inner.importReview(schemas: schemas, queues: queues, items: items)
    }
    func insertIssue(_ issue: TraceIssue) throws { try inner.insertIssue(issue) }
    func issue(id: String) throws -> TraceIssue? { try inner.issue(id: id) }
    func updateIssue(id: String, _ change: (inout TraceIssue) throws -> Void) throws -> TraceIssue? { try inner.updateIssue(id: id, change) }
    func issues(_ search: IssueSearch, offset: Int, limit: Int) throws -> [TraceIssue] { try inner.issues(search, offset: offset, limit: limit) }
    func importIssues(_ issues: [TraceIssue]) throws { try inner.importIssues(issues) }
    func deletedRunIDs(deletedBy time: Int64) throws -> [String] { try inner.deletedRunIDs(deletedBy: time) }
    func deletedLoggedModelIDs(updatedBy time: Int64?) throws -> [String] { try inner.deletedLoggedModelIDs(updatedBy: time) }
    func deletedExperimentIDs(updatedBefore time: Int64?) throws -> [Int64] { try inner.deletedExperimentIDs(updatedBefore: time) }
    func purgeableRuns(experimentID: Int64, deletedOnly: Bool) throws -> [(id: String, artifactURI: String)] {
        try inner.purgeableRuns(experimentID: experimentID, deletedOnly: deletedOnly)
    }
    func purgeRun(id: String, deletedBy: Int64?, now: Int64) throws -> Bool { try inner.purgeRun(id: id, deletedBy: deletedBy, now: now) }
    func purgeLoggedModel(id: String, updatedBy: Int64?) throws -> Bool { try inner.purgeLoggedModel(id: id, updatedBy: updatedBy) }
    func purgeExperiment(id: Int64, updatedBefore: Int64?, now: Int64) throws -> PurgedExperiment? {
        try inner.purgeExperiment(id: id, updatedBefore: updatedBefore, now: now)
    }
    func purgedRunIDs(among ids: [String]) throws -> Set<String> { try inner.purgedRunIDs(among: ids) }
}

/// A write is visible only once all of it is accepted: a failed metadata step or a failed append leaves nothing
/// (no point in history, no latest value, no param or tag); a retry stores each point once; after a crash between
/// the WAL append and the metadata commit, recovery makes latest values match the points.
@Suite struct VisibilityTests {
    static func open(_ f: Fixture, _ dir: String, faults: Faults = []) throws -> (TrackingService, FailingMetadata) {
        var config = StoreConfiguration()
        config.durableSegments = false
        config.wal!.durability = .none
        let metrics = try MetricStore(directory: dir + "/metrics", configuration: config)
        let meta = FailingMetadata(try f.metadataStore())
        return (TrackingService(metadata: meta, metrics: metrics, faults: faults, clock: { 1_700_000_000_000 }), meta)
    }

    static let points: [Metric] = (0..<50).map { (i: Int) -> Metric in
        Metric(key: i % 2 == 0 ? "loss" : "acc", value: Double(i), timestamp: 1000 + Int64(i), step: Int64(i))
    }

    @Test(arguments: Backend.all, ["setRunTags", "insertParams", "setLatestMetrics"])
    func failedMetadataStepLeavesNothing(_ backend: Backend, _ op: String) throws {
        let f = try Fixture("vis", backend: backend)
        let (s, meta) = try Self.open(f, f.dir + "/v")
        let id = try s.createRun(experimentID: "0").info.runID
        meta.failing.withLock { $0 = [op] }
        expectError(.internalError, "injected failure") {
            try s.logBatch(runID: id, metrics: Self.points, params: [KeyValue(key: "lr", value: "1")], tags: [KeyValue(key: "t", value: "v")])
        }
        #expect(try s.history(runID: id, key: "loss").isEmpty && s.history(runID: id, key: "acc").isEmpty)
        let run = try s.run(id: id)
        #expect(run.metrics.isEmpty && run.params.isEmpty && !run.tags.contains { $0.key == "t" })
        // The retry, once the store works again, stores each point once.
        meta.failing.withLock { $0 = [] }
        try s.logBatch(runID: id, metrics: Self.points, params: [KeyValue(key: "lr", value: "1")], tags: [KeyValue(key: "t", value: "v")])
        try s.logBatch(runID: id, metrics: Self.points, params: [KeyValue(key: "lr", value: "1")])
        #expect(try s.history(runID: id, key: "loss").count == 25 && s.history(runID: id, key: "acc").count == 25)
        #expect(try s.run(id: id).metrics.first { $0.key == "loss" }?.value == 48)
    }

    @Test(arguments: Backend.all) func failedAppendLeavesNoMetadata(_ backend: Backend) throws {
        let f = try Fixture("vis-append", backend: backend)
        let (s, _) = try Self.open(f, f.dir + "/v", faults: .failAppend)
        let id = try s.createRun(experimentID: "0").info.runID
        expectError(.internalError, "injected failure: append") {
            try s.logBatch(runID: id, metrics: Self.points, params: [KeyValue(key: "lr", value: "1")], tags: [KeyValue(key: "t", value: "v")])
        }
        let run = try s.run(id: id)
        #expect(run.metrics.isEmpty && run.params.isEmpty && !run.tags.contains { $0.key == "t" })
        #expect(try s.history(runID: id, key: "loss").isEmpty)
    }

    @Test(arguments: Backend.all) func recoveryReconcilesLatestValues(_ backend: Backend) throws {
        let f = try Fixture("vis-crash", backend: backend)
        let dir = f.dir + "/v"
        var id = ""
        do {
            let (s, _) = try Self.open(f, dir)
            id = try s.createRun(experimentID: "0").info.runID
            try s.logBatch(runID: id, metrics: [Metric(key: "loss", value: 9, timestamp: 1, step: 1)])
            // What a crash between the WAL append and the metadata commit leaves: points logged, latest not.
            try s.metrics.append(run: id, series: [SeriesBatch(key: "loss", steps: [5, 6], timestamps: [2, 3], values: [0.5, 0.25]),
                                                   SeriesBatch(key: "new", steps: [1], timestamps: [4], values: [7])])
            // No clean close: the heads are only in the WAL.
        }
        let (s, _) = try Self.open(f, dir)
        #expect(s.metrics.recovery.replayedSeries[id] == ["loss", "new"])
        #expect(try s.reconcileLatest() == 2)
        let latest = try s.run(id: id).metrics.sorted { $0.key < $1.key }
        #expect(latest == [Metric(key: "loss", value: 0.25, timestamp: 3, step: 6), Metric(key: "new", value: 7, timestamp: 4, step: 1)])
        #expect(try s.reconcileLatest() == 0)
    }

    @Test(arguments: Backend.all) func sealedBeforeTheCrashIsReconciledToo(_ backend: Backend) throws {
        let f = try Fixture("vis-sealed", backend: backend)
        let dir = f.dir + "/v"
        var id = ""
        do {
            let (s, _) = try Self.open(f, dir)
            id = try s.createRun(experimentID: "0").info.runID
            // Points appended and then sealed by another request's seal before this request's COMMIT, then a crash.
            try s.metrics.append(run: id, series: [SeriesBatch(key: "loss", steps: [1, 2], timestamps: [5, 6], values: [0.5, 0.25])])
            try s.metrics.flush(run: id)
        }
        let (s, _) = try Self.open(f, dir)
        #expect(s.metrics.recovery.replayedPoints == 0 && s.metrics.recovery.replayedSeries[id] == ["loss"])
        #expect(try s.reconcileLatest() == 1)
        #expect(try s.run(id: id).metrics == [Metric(key: "loss", value: 0.25, timestamp: 6, step: 2)])
    }

    @Test(arguments: Backend.all) func duplicateNativeBatchChangesNothing(_ backend: Backend) throws {
        let f = try Fixture("vis-dup", backend: backend)
        let (s, _) = try Self.open(f, f.dir + "/v")
        let id = try s.createRun(experimentID: "0").info.runID
        let first = SeriesBatch(key: "loss", steps: Array(0..<100), timestamps: Array(repeating: 1, count: 100), values: (0..<100).map(Double.init))
        #expect(try s.logColumns(runID: id, series: [first], batchID: "b1").stored)
        // A client reusing the id for other points: refused as a retry, and the latest value is untouched.
        let reused = try s.logColumns(runID: id, series: [SeriesBatch(key: "loss", steps: [1000], timestamps: [2], values: [5])], batchID: "b1")
        #expect(!reused.stored && reused.points == 0)
        #expect(try s.run(id: id).metrics == [Metric(key: "loss", value: 99, timestamp: 1, step: 99)])
        #expect(try s.history(runID: id, key: "loss").count == 100)
    }
}

extension FailingMetadata {
    func insertUser(username: String, passwordHash: String, isAdmin: Bool, now: Int64) throws -> StoredUser? {
        try inner.insertUser(username: username, passwordHash: passwordHash, isAdmin: isAdmin, now: now)
    }
    func user(named name: String) throws -> StoredUser? { try inner.user(named: name) }
    func user(id: Int64) throws -> StoredUser? { try inner.user(id: id) }
    func users() throws -> [StoredUser] { try inner.users() }
    func updateUser(id: Int64, passwordHash: String?, isAdmin: Bool?) throws { try inner.updateUser(id: id, passwordHash: passwordHash, isAdmin: isAdmin) }
    func deleteUser(id: Int64) throws { try inner.deleteUser(id: id) }
    func grants(userID: Int64) throws -> [Grant] { try inner.grants(userID: userID) }
    func insertGrant(userID: Int64, _ grant: Grant) throws -> Bool { try inner.insertGrant(userID: userID, grant) }
    func setGrant(userID: Int64, _ grant: Grant) throws { try inner.setGrant(userID: userID, grant) }
    func deleteGrant(userID: Int64, resource: Resource) throws -> Bool { try inner.deleteGrant(userID: userID, resource: resource) }
    func deleteGrants(on resource: Resource) throws { try inner.deleteGrants(on: resource) }
    func moveGrants(from resource: Resource, to id: String) throws { try inner.moveGrants(from: resource, to: id) }
    func insertToken(_ token: StoredToken) throws { try inner.insertToken(token) }
    func token(digest: String) throws -> StoredToken? { try inner.token(digest: digest) }
    func tokens(userID: Int64) throws -> [StoredToken] { try inner.tokens(userID: userID) }
    func deleteToken(id: String, userID: Int64) throws -> Bool { try inner.deleteToken(id: id, userID: userID) }
    func deleteToken(digest: String) throws -> Bool { try inner.deleteToken(digest: digest) }
    func deleteExpiredTokens(now: Int64) throws { try inner.deleteExpiredTokens(now: now) }
}
