import Testing
@testable import TallyStore
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The metadata stores the conformance suite runs every tracking test on: SQLite always, PostgreSQL when the test
/// cluster is there (`make test` always starts one and requires it).
enum Backend: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    /// The backends available here.
    static let all: [Backend] = PostgresDatabaseTests.available ? [.sqlite, .postgres] : [.sqlite]

    var testDescription: String { rawValue }
}

/// A service over a fresh temporary directory (metric store) and a fresh metadata store of the chosen backend (a
/// SQLite file in the directory, or a PostgreSQL database made for the test and dropped after it), with a
/// controllable clock.
final class Fixture {
    let dir: String
    let backend: Backend
    let clock: @Sendable () -> Int64
    /// The PostgreSQL database of a `.postgres` fixture.
    let scratch: ScratchDatabase?
    private(set) var service: TrackingService
    /// Every PostgreSQL store opened (closed at the end).
    private var opened: [PostgresMetadataStore] = []

    init(_ name: String = "trk", clock: @escaping @Sendable () -> Int64 = { 1_700_000_000_000 }, backend: Backend = .sqlite) throws {
        var template = Array("/tmp/tally-trk-\(name)-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        self.backend = backend
        self.clock = clock
        scratch = backend == .postgres ? try ScratchDatabase() : nil
        service = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: try Self.metricStore(dir + "/m0"), clock: clock)
        service = try reopened()
    }

    /// The SQLite store last opened on this fixture's file (a store holds its file exclusively: closed before the
    /// next one opens, as a restarted server's is).
    private var sqliteStore: SQLiteMetadataStore?

    /// A metadata store of this fixture's backend over its database (another server's view, for PostgreSQL; the
    /// file reopened after closing the previous store, for SQLite, which one process holds at a time).
    func metadataStore() throws -> any MetadataStore {
        switch backend {
        case .sqlite:
            sqliteStore?.close()
            let s = try SQLiteMetadataStore(path: dir + "/metadata.sqlite", now: clock())
            sqliteStore = s
            return s
        case .postgres:
            let s = try PostgresMetadataStore(uri: scratch!.uri, poolSize: 4, now: clock())
            opened.append(s)
            return s
        }
    }

    /// A service over the same metadata and metric points (close the previous one first).
    func reopened() throws -> TrackingService {
        TrackingService(metadata: try metadataStore(), metrics: try Self.metricStore(dir + "/metrics"), clock: clock)
    }

    /// Another server's service: the same metadata store, a metric store of its own (as servers sharing a
    /// PostgreSQL database have until the cluster issue). PostgreSQL only: a SQLite file has one server, and
    /// opening it again closes the fixture's first store.
    func secondServer() throws -> TrackingService {
        precondition(backend == .postgres, "servers share a PostgreSQL database, never a SQLite file")
        return TrackingService(metadata: try metadataStore(), metrics: try Self.metricStore(dir + "/metrics-\(UInt32.random(in: 0...UInt32.max))"), clock: clock)
    }

    /// A service over this fixture's metadata (reopened, for SQLite) whose registry events go through `webhooks`.
    func service(webhooks: WebhookDelivery) throws -> TrackingService {
        TrackingService(metadata: try metadataStore(), metrics: try Self.metricStore(dir + "/metrics-\(UInt32.random(in: 0...UInt32.max))"),
                        webhooks: webhooks, clock: clock)
    }

    static func metricStore(_ dir: String) throws -> MetricStore {
        var config = StoreConfiguration()
        config.durableSegments = false
        config.wal!.durability = .none
        return try MetricStore(directory: dir, configuration: config)
    }

    static func open(_ dir: String, clock: @escaping @Sendable () -> Int64 = { 1_700_000_000_000 }) throws -> TrackingService {
        let meta = try SQLiteMetadataStore(path: dir + "/metadata.sqlite", now: clock())
        return TrackingService(metadata: meta, metrics: try metricStore(dir + "/metrics"), clock: clock)
    }

    deinit {
        for s in opened { s.close() }
        try? scratch?.drop()
        try? FileIO.removeTree(dir)
    }
}

/// A SQLite metadata file at schema `version` with experiment `0`, then filled by `fill`, in a new directory the caller
/// removes: the directory and the file's path (for a migration's test).
func olderSQLiteMetadata(version: Int, _ fill: (SQLiteDatabase) throws -> Void) throws -> (dir: String, path: String) {
    var template = Array("/tmp/tally-trk-v\(version)meta-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    let db = try SQLiteDatabase(path: dir + "/metadata.sqlite")
    defer { db.close() }
    for v in 0..<version { try SQLiteMetadataStore.migrations[v](db) }
    try db.execute("PRAGMA user_version = \(version)")
    try db.execute("INSERT INTO experiments VALUES (0, 'Default', 'a', 'active', 1, 1)")
    try fill(db)
    return (dir, dir + "/metadata.sqlite")
}

func expectError(_ code: TrackingError.Code, _ fragment: String, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected \(code.rawValue): \(fragment)", sourceLocation: sourceLocation)
    } catch let e as TrackingError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
        #expect(e.message.contains(fragment), "\(e.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct ExperimentTests {
    @Test(arguments: Backend.all) func defaultExperimentExists(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let e = try f.service.experiment(id: "0")
        #expect(e.name == "Default" && e.lifecycleStage == .active && e.artifactLocation == "mlflow-artifacts:/0")
        #expect(try f.service.experiment(named: "Default").experimentID == "0")
    }

    @Test(arguments: Backend.all) func lifecycleAndErrors(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let s = f.service
        let id = try s.createExperiment(name: "exp", tags: [KeyValue(key: "k", value: "v")])
        #expect(id == "1")
        let e = try s.experiment(id: id)
        #expect(e.artifactLocation == "mlflow-artifacts:/1" && e.tags == [KeyValue(key: "k", value: "v")])
        expectError(.resourceAlreadyExists, "Experiment(name=exp) already exists") { _ = try s.createExperiment(name: "exp") }
        expectError(.resourceDoesNotExist, "No Experiment with id=999999 exists") { _ = try s.experiment(id: "999999") }
        expectError(.invalidParameterValue, "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.") { _ = try s.experiment(id: "abc") }
        expectError(.resourceDoesNotExist, "Could not find experiment with name 'nope'") { _ = try s.experiment(named: "nope") }
        expectError(.invalidParameterValue, "Invalid experiment name") { _ = try s.createExperiment(name: "") }
        #expect(try s.experiment(id: try s.createExperiment(name: "  ")).name == "  ")  // spaces alone are a name to MLflow
        #expect(try s.experiment(id: " \(id)").experimentID == id && s.experiment(id: "+0\(id)").experimentID == id)  // as Python's int reads it
        try s.renameExperiment(id: id, to: "renamed")
        #expect(try s.experiment(named: "renamed").experimentID == id)
        let run = try s.createRun(experimentID: id)
        try s.deleteExperiment(id: id)
        #expect(try s.experiment(id: id).lifecycleStage == .deleted)
        #expect(try s.run(id: run.info.runID).info.lifecycleStage == .deleted, "deleting an experiment deletes its runs")
        expectError(.resourceDoesNotExist, "No Experiment with id=\(id) exists") { try s.deleteExperiment(id: id) }
        expectError(.invalidState, "Cannot rename a non-active experiment.") { try s.renameExperiment(id: id, to: "x") }
        expectError(.resourceAlreadyExists, "already exists") { _ = try s.createExperiment(name: "renamed") }  // deleted names stay taken
        expectError(.invalidParameterValue, "must be in the 'active' state") { try s.setExperimentTag(id: id, key: "a", value: "b") }
        expectError(.invalidParameterValue, "The experiment \(id) must be in the 'active' state. Current state is deleted.") {
            _ = try s.createRun(experimentID: id, tags: [KeyValue(key: "team", value: "a")])
        }
        expectError(.invalidParameterValue, "The experiment \(id) must be in the 'active' state.") {  // the stage before the name rule
            _ = try s.createRun(experimentID: id, runName: "a", tags: [KeyValue(key: "mlflow.runName", value: "b")])
        }
        expectError(.resourceDoesNotExist, "No Experiment with id=999999 exists") { _ = try s.createRun(experimentID: "999999") }
        expectError(.invalidParameterValue, "Invalid experiment ID 'abc'") { _ = try s.createRun(experimentID: "abc") }
        try s.restoreExperiment(id: id)
        // The refused run left nothing behind (PostgreSQL checks the stage inside the insert of the run and its tags).
        #expect(try s.searchRuns(experimentIDs: [id], view: .all).items.map(\.info.runID) == [run.info.runID])
        #expect(try s.run(id: run.info.runID).info.lifecycleStage == .active, "restoring restores its runs")
        expectError(.resourceDoesNotExist, "No Experiment with id=\(id) exists") { try s.restoreExperiment(id: id) }
        try s.setExperimentTag(id: id, key: "k", value: "v2")
        #expect(try s.experiment(id: id).tags == [KeyValue(key: "k", value: "v2")])
        try s.deleteExperimentTag(id: id, key: "k")
        expectError(.resourceDoesNotExist, "No tag with name: k in experiment with id \(id)") { try s.deleteExperimentTag(id: id, key: "k") }
    }
}

@Suite struct RunTests {
    @Test(arguments: Backend.all) func createGetUpdateDeleteRestore(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let s = f.service
        let r = try s.createRun(experimentID: nil, userID: "root", tags: [KeyValue(key: "mlflow.user", value: "root")])
        #expect(r.info.experimentID == "0" && r.info.status == .running && r.info.endTime == nil)
        #expect(r.info.runID.count == 32 && r.info.runID.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(r.info.artifactURI == "mlflow-artifacts:/0/\(r.info.runID)/artifacts")
        #expect(r.info.runName.split(separator: "-").count == 3)
        #expect(r.tags.contains(KeyValue(key: "mlflow.runName", value: r.info.runName)))
        let named = try s.createRun(experimentID: "0", runName: "delta")
        #expect(named.info.runName == "delta" && named.tags.contains(KeyValue(key: "mlflow.runName", value: "delta")))
        expectError(.invalidParameterValue, "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='a', mlflow.runName='b').") {
            _ = try s.createRun(experimentID: "0", runName: "a", tags: [KeyValue(key: "mlflow.runName", value: "b")])
        }
        let info = try s.updateRun(id: r.info.runID, status: .finished, endTime: 1_700_000_000_500, runName: "renamed")
        #expect(info.status == .finished && info.endTime == 1_700_000_000_500 && info.runName == "renamed")
        #expect(try s.run(id: r.info.runID).tags.contains(KeyValue(key: "mlflow.runName", value: "renamed")))
        try s.setTag(runID: r.info.runID, key: "mlflow.runName", value: "via-tag")
        #expect(try s.run(id: r.info.runID).info.runName == "via-tag")
        try s.deleteRun(id: r.info.runID)
        #expect(try s.run(id: r.info.runID).info.lifecycleStage == .deleted)
        let id = r.info.runID
        for (what, body) in [("log", { try s.logMetric(runID: id, Metric(key: "m", value: 1, timestamp: 0)) }),
                             ("tag", { try s.setTag(runID: id, key: "a", value: "b") }),
                             ("param", { try s.logParam(runID: id, key: "a", value: "b") }),
                             ("update", { _ = try s.updateRun(id: id, status: .failed) })] as [(String, () throws -> Void)] {
            expectError(.invalidParameterValue, "The run \(id) must be in the 'active' state. Current state is deleted.", body)
            _ = what
        }
        try s.restoreRun(id: id)
        try s.logMetric(runID: id, Metric(key: "m", value: 1, timestamp: 0))
        // A run that does not exist: the same writes answer MLflow's not-found error.
        for body in [{ try s.logMetric(runID: "nope1", Metric(key: "m", value: 1, timestamp: 0)) }, { try s.logParam(runID: "nope1", key: "a", value: "b") },
                     { _ = try s.updateRun(id: "nope1", status: .failed) }, { try s.logBatch(runID: "nope1", params: [KeyValue(key: "a", value: "b")]) }]
            as [() throws -> Void] {
            expectError(.resourceDoesNotExist, "Run with id=nope1 not found", body)
        }
        expectError(.resourceDoesNotExist, "Run with id=nope not found") { _ = try s.run(id: "nope") }
        expectError(.resourceDoesNotExist, "No tag with name: zz in run with id \(id)") { try s.deleteTag(runID: id, key: "zz") }
    }

    @Test(arguments: Backend.all) func paramsAreImmutable(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        try s.logParam(runID: id, key: "lr", value: "0.01")
        try s.logParam(runID: id, key: "lr", value: "0.01")  // idempotent
        expectError(.invalidParameterValue, "Changing param values is not allowed. Param with key='lr' was already logged with value='0.01' for run ID='\(id)'. Attempted logging new value '0.02'.") {
            try s.logParam(runID: id, key: "lr", value: "0.02")
        }
        try s.logParam(runID: id, key: "long", value: String(repeating: "x", count: 6001))
        #expect(try s.run(id: id).params.first { $0.key == "long" }?.value.count == 6000)
        try s.logParam(runID: id, key: "empty", value: "")
        expectError(.invalidParameterValue, "Names may only contain alphanumerics") { try s.logParam(runID: id, key: "bad key!", value: "1") }
        expectError(.invalidParameterValue, "must not resolve to other names") { try s.logParam(runID: id, key: "a/../b", value: "1") }
        expectError(.invalidParameterValue, "had length 251, which exceeded length limit of 250") {
            try s.logParam(runID: id, key: String(repeating: "k", count: 251), value: "1")
        }
    }

    @Test(arguments: Backend.all) func logBatchLimitsAndAtomicity(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        let many = (0..<1001).map { Metric(key: "m", value: Double($0), timestamp: 1, step: Int64($0)) }
        expectError(.invalidParameterValue, "A batch logging request can contain at most 1000 metrics. Got 1001 metrics.") { try s.logBatch(runID: id, metrics: many) }
        expectError(.invalidParameterValue, "at most 100 params") {
            try s.logBatch(runID: id, params: (0..<101).map { KeyValue(key: "p\($0)", value: "1") })
        }
        expectError(.invalidParameterValue, "Duplicate parameter keys have been submitted: ['dup']") {
            try s.logBatch(runID: id, params: [KeyValue(key: "dup", value: "1"), KeyValue(key: "dup", value: "2")])
        }
        // Each repeat in the order given, as MLflow lists them.
        expectError(.invalidParameterValue, "Duplicate parameter keys have been submitted: ['z', 'a', 'z']. Please ensure") {
            try s.logBatch(runID: id, params: ["z", "a", "z", "a", "z"].map { KeyValue(key: $0, value: "1") })
        }
        expectError(.invalidParameterValue, "Timestamp must be a nonnegative long") {
            try s.logBatch(runID: id, metrics: [Metric(key: "k3", value: 1, timestamp: -1)])
        }
        try s.logParam(runID: id, key: "lr", value: "0.01")
        // A changed param fails the batch before its metrics or tags are stored.
        expectError(.invalidParameterValue, "Changing param values is not allowed. Params were already logged='[{'key': 'lr', 'old_value': '0.01', 'new_value': '0.5'}]'") {
            try s.logBatch(runID: id, metrics: [Metric(key: "loss", value: 1, timestamp: 1)], params: [KeyValue(key: "lr", value: "0.5")],
                           tags: [KeyValue(key: "t", value: "v")])
        }
        let run = try s.run(id: id)
        #expect(run.metrics.isEmpty && !run.tags.contains { $0.key == "t" })
        #expect(try s.metrics.read(run: id, key: "loss").count == 0)
        try s.logBatch(runID: id, metrics: [], params: [], tags: [])  // an empty batch is fine
    }

    @Test(arguments: Backend.all) func latestMetricRuleAndRetries(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        try s.logMetric(runID: id, Metric(key: "loss", value: 0.5, timestamp: 100, step: 10))
        try s.logMetric(runID: id, Metric(key: "loss", value: 0.1, timestamp: 999, step: 3))  // lower step: not latest
        #expect(try s.run(id: id).metrics == [Metric(key: "loss", value: 0.5, timestamp: 100, step: 10)])
        try s.logMetric(runID: id, Metric(key: "loss", value: 0.7, timestamp: 100, step: 10))  // same step and time, larger value
        #expect(try s.run(id: id).metrics.first?.value == 0.7)
        try s.logMetric(runID: id, Metric(key: "loss", value: 0.2, timestamp: 100, step: 10))  // smaller value: kept 0.7
        #expect(try s.run(id: id).metrics.first?.value == 0.7)
        try s.logMetric(runID: id, Metric(key: "nanm", value: .nan, timestamp: 1, step: 2))
        #expect(try s.run(id: id).metrics.first { $0.key == "nanm" }?.value.isNaN == true)
        #expect(try s.metrics.read(run: id, key: "loss").count == 4, "every point is kept, several per step")
        // A retried batch (same content) is not stored twice; exact repeats inside a batch are stored once.
        let batch = (0..<50).map { Metric(key: "acc", value: Double($0) / 50, timestamp: 5, step: Int64($0)) }
        try s.logBatch(runID: id, metrics: batch + [batch[0]])
        try s.logBatch(runID: id, metrics: batch + [batch[0]])
        #expect(try s.metrics.read(run: id, key: "acc").count == 50)
        #expect(try s.run(id: id).metrics.first { $0.key == "acc" } == Metric(key: "acc", value: 49.0 / 50, timestamp: 5, step: 49))
    }

    @Test(arguments: Backend.all) func inputsAndPersistence(_ backend: Backend) throws {
        let f = try Fixture("persist", backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "p")
        let id = try s.createRun(experimentID: exp, userID: "u").info.runID
        let ds = Dataset(name: "tiny", digest: "cd5cd803", sourceType: "code", source: "{}", schema: "{}", profile: "{\"num_rows\": 2}")
        try s.logInputs(runID: id, [DatasetInput(dataset: ds, tags: [KeyValue(key: "mlflow.data.context", value: "training")])])
        try s.logInputs(runID: id, [DatasetInput(dataset: ds, tags: [KeyValue(key: "mlflow.data.context", value: "eval")])])
        // Logged again, the run's input stays as first logged (MLflow's rule: DatasetTests).
        #expect(try s.run(id: id).inputs == [DatasetInput(dataset: ds, tags: [KeyValue(key: "mlflow.data.context", value: "training")])])
        expectError(.invalidParameterValue, "Missing value for required parameter 'datasets[].dataset.digest'") {
            try s.logInputs(runID: id, [DatasetInput(dataset: Dataset(name: "x", digest: "", sourceType: "code", source: "{}"), tags: [])])
        }
        try s.logBatch(runID: id, metrics: [Metric(key: "m", value: 2, timestamp: 3, step: 4)], params: [KeyValue(key: "p", value: "1")],
                       tags: [KeyValue(key: "t", value: "x")])
        try s.metrics.close()
        let reopened = try f.reopened()
        let run = try reopened.run(id: id)
        #expect(run.params == [KeyValue(key: "p", value: "1")])
        #expect(run.tags.contains(KeyValue(key: "t", value: "x")))
        #expect(run.metrics == [Metric(key: "m", value: 2, timestamp: 3, step: 4)])
        #expect(run.inputs.count == 1)
        #expect(try reopened.metrics.read(run: id, key: "m").points == [MetricPoint(step: 4, timestamp: 3, value: 2)])
        #expect(try reopened.experiment(named: "p").experimentID == exp)
    }
}

@Suite struct ValidationTests {
    @Test(arguments: Backend.all) func everyLimitOfTheReference(_ backend: Backend) throws {
        let f = try Fixture("limits", backend: backend)
        let s = f.service
        let id = try s.createRun(experimentID: nil).info.runID
        // Run tags: values over 8,000 characters are truncated.
        try s.setTag(runID: id, key: "long", value: String(repeating: "v", count: 8_001))
        #expect(try s.run(id: id).tags.first { $0.key == "long" }?.value.count == 8_000)
        // Experiment tags: key ≤ 250, value ≤ 20,000, not truncated.
        expectError(.invalidParameterValue, "exceeds the maximum length of 20000") {
            try s.setExperimentTag(id: "0", key: "k", value: String(repeating: "x", count: 20_001))
        }
        try s.setExperimentTag(id: "0", key: "k", value: String(repeating: "x", count: 20_000))
        expectError(.invalidParameterValue, "exceeded length limit of 250") {
            try s.setExperimentTag(id: "0", key: String(repeating: "k", count: 251), value: "v")
        }
        // Experiment names: ≤ 500 characters.
        expectError(.invalidParameterValue, "Experiment name exceeds the maximum length of 500") {
            _ = try s.createExperiment(name: String(repeating: "n", count: 501))
        }
        _ = try s.createExperiment(name: String(repeating: "n", count: 500))
        // log-batch: 100 tags, 1,000 entities in total.
        expectError(.invalidParameterValue, "at most 100 tags. Got 101 tags.") {
            try s.logBatch(runID: id, tags: (0..<101).map { KeyValue(key: "t\($0)", value: "v") })
        }
        expectError(.invalidParameterValue, "at most 1000 metrics, params, and tags in total. Got 1001 total entities.") {
            try s.logBatch(runID: id, metrics: (0..<950).map { Metric(key: "m", value: 1, timestamp: 1, step: Int64($0)) },
                           params: (0..<51).map { KeyValue(key: "p\($0)", value: "1") })
        }
        // Metric keys follow the same rules as param and tag keys.
        expectError(.invalidParameterValue, "Names may only contain alphanumerics") {
            try s.logMetric(runID: id, Metric(key: "bad key!", value: 1, timestamp: 1))
        }
        expectError(.invalidParameterValue, "This name would resolve to 'a'") { try s.logMetric(runID: id, Metric(key: "./a", value: 1, timestamp: 1)) }
        expectError(.invalidParameterValue, "must not resolve to other names") { try s.logMetric(runID: id, Metric(key: "/abs", value: 1, timestamp: 1)) }
        expectError(.invalidParameterValue, "Metric 'kkk") { try s.logMetric(runID: id, Metric(key: String(repeating: "k", count: 251), value: 1, timestamp: 1)) }
        expectError(.invalidParameterValue, "Invalid value -1 for parameter 'timestamp' supplied: metric 'k3' (value=1.0). Timestamp must be a nonnegative long (64-bit integer) ") {
            try s.logMetric(runID: id, Metric(key: "k3", value: 1, timestamp: -1))
        }
        // Allowed key characters: letters, digits, _ - . space : /
        try s.logMetric(runID: id, Metric(key: "ok_key-1.2 a:b/c", value: 1, timestamp: 1))
        // Negative steps are fine.
        try s.logMetric(runID: id, Metric(key: "neg", value: 1, timestamp: 1, step: -2))
        #expect(try s.run(id: id).metrics.first { $0.key == "neg" }?.step == -2)
        // Run ids: ^[a-zA-Z0-9][\w\-]{0,255}$.
        try Validation.runID("abc_1-2")
        expectError(.invalidParameterValue, "Invalid value \"-x\" for parameter 'run_id' supplied") { try Validation.runID("-x") }
        expectError(.invalidParameterValue, "for parameter 'run_id'") { try Validation.runID(String(repeating: "a", count: 257)) }
        try Validation.runID("Z9" + String(repeating: "_", count: 254))
        for bad in ["", "aé", "a b", "a.b", "a/b", "_a", "é", "a\u{0}"] {
            expectError(.invalidParameterValue, "for parameter 'run_id'") { try Validation.runID(bad) }
        }
        // Input limits.
        expectError(.invalidParameterValue, "exceeds a size limit") {
            try s.logInputs(runID: id, [DatasetInput(dataset: Dataset(name: "d", digest: String(repeating: "x", count: 37), sourceType: "code", source: "{}"), tags: [])])
        }
        #expect(Validation.normalizePath("a//b/./c/..") == "a/b")
        #expect(Validation.normalizePath("../x") == "../x")
    }
}
