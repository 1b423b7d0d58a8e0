import Synchronization
import Testing
@testable import TallyTracking

/// MLflow 3 logged models in the service: the search grammar (any metric point counts, datasets narrow it, params and
/// tags must exist, `status` is the enum number), ordering with missing values last and the default newest first,
/// paging, model metrics logged through log-batch, and the errors.
@Suite struct LoggedModelTests {
    /// Three models of one experiment, created a millisecond apart, with metrics on two datasets.
    static func fixture(_ backend: Backend) throws -> (Fixture, String, [String]) {
        let tick = Atomic<Int64>(1_700_000_000_000)
        let f = try Fixture("lm", clock: { tick.add(1, ordering: .relaxed).newValue }, backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "models")
        let run = try s.createRun(experimentID: exp).info.runID
        var ids: [String] = []
        for (name, stage) in [("a", "dev"), ("b", "prod"), ("a", "prod")] {
            ids.append(try s.createLoggedModel(experimentID: exp, name: name, modelType: nil, sourceRunID: run, params: [KeyValue(key: "lr", value: name)],
                                               tags: [KeyValue(key: "stage", value: stage)]).modelID)
        }
        // Model 0: loss 0.9 on train then 0.1 on eval (latest); model 1: loss 0.5 on train; model 2: no loss.
        var batch = MetricBatch()
        for (model, value, ts, dataset) in [(ids[0], 0.9, Int64(10), "train"), (ids[0], 0.1, 20, "eval"), (ids[1], 0.5, 10, "train")] {
            let m = Metric(key: "loss", value: value, timestamp: ts, step: 0)
            batch.append(batch.series(for: m.key), step: m.step, timestamp: m.timestamp, value: m.value)
            batch.appendModelPoint(m, modelID: model, datasetName: dataset, datasetDigest: "d-" + dataset)
        }
        try s.logBatch(runID: run, batch: batch)
        return (f, exp, ids)
    }

    static func search(_ s: TrackingService, _ exp: String, _ filter: String? = nil, datasets: [DatasetFilter] = [],
                       order: [LoggedModelOrder] = [], max: Int64? = nil, token: String? = nil) throws -> [String] {
        try s.searchLoggedModels(experimentIDs: [exp], filter: filter, datasets: datasets, maxResults: max, orderBy: order, pageToken: token).items.map(\.modelID)
    }

    @Test(arguments: Backend.all) func filtersFollowMLflowsGrammar(_ backend: Backend) throws {
        let (f, exp, ids) = try Self.fixture(backend)
        let s = f.service
        #expect(try Self.search(s, exp) == ids.reversed())  // newest first
        #expect(try Self.search(s, exp, "name = 'a'") == [ids[2], ids[0]])
        #expect(try Self.search(s, exp, "name NOT IN ('a')") == [ids[1]])
        #expect(try Self.search(s, exp, "tags.stage = 'prod' AND params.lr != 'b'") == [ids[2]])
        #expect(try Self.search(s, exp, "attributes.name LIKE 'A%'") == [])
        #expect(try Self.search(s, exp, "name ILIKE 'A%'") == [ids[2], ids[0]])
        // Any point of the key counts, not only the latest; datasets narrow the points.
        #expect(try Self.search(s, exp, "metrics.loss > 0.8") == [ids[0]])
        #expect(try Self.search(s, exp, "metrics.loss < 0.6") == [ids[1], ids[0]])
        #expect(try Self.search(s, exp, "metrics.loss < 0.6", datasets: [DatasetFilter(name: "train", digest: nil)]) == [ids[1]])
        #expect(try Self.search(s, exp, "metrics.loss < 0.6", datasets: [DatasetFilter(name: "eval", digest: "other")]) == [])
        #expect(try Self.search(s, exp, "status = 1") == ids.reversed())  // pending
        #expect(try Self.search(s, exp, "creation_timestamp > 0 AND model_id = '\(ids[1])'") == [ids[1]])
        expectError(.invalidParameterValue, "Invalid entity type: 'tag'") { _ = try Self.search(s, exp, "tag.stage = 'dev'") }
        expectError(.invalidParameterValue, "Expected a comparison with 3 tokens") { _ = try Self.search(s, exp, "params.lr IS NULL") }
        expectError(.invalidParameterValue, "Invalid attribute key 'run_id'") { _ = try Self.search(s, exp, "run_id = 'x'") }
        expectError(.invalidParameterValue, "Expected numeric value") { _ = try Self.search(s, exp, "metrics.loss > '0.1'") }
        expectError(.invalidParameterValue, "must be a valid integer") {
            _ = try s.searchLoggedModels(experimentIDs: ["abc"], filter: nil, datasets: [], maxResults: nil, orderBy: [], pageToken: nil)
        }
    }

    @Test(arguments: Backend.all) func orderPagingAndModelMetrics(_ backend: Backend) throws {
        let (f, exp, ids) = try Self.fixture(backend)
        let s = f.service
        // By a metric: the latest point (by timestamp) counts; models without it last in both directions.
        #expect(try Self.search(s, exp, order: [LoggedModelOrder(field: "metrics.loss")]) == [ids[0], ids[1], ids[2]])
        #expect(try Self.search(s, exp, order: [LoggedModelOrder(field: "metrics.loss", ascending: false)]) == [ids[1], ids[0], ids[2]])
        #expect(try Self.search(s, exp, order: [LoggedModelOrder(field: "metrics.loss", dataset: DatasetFilter(name: "train", digest: nil))])
                == [ids[1], ids[0], ids[2]])
        #expect(try Self.search(s, exp, order: [LoggedModelOrder(field: "name"), LoggedModelOrder(field: "creation_timestamp")]) == [ids[0], ids[2], ids[1]])
        expectError(.invalidParameterValue, "Only metrics are supported") { _ = try Self.search(s, exp, order: [LoggedModelOrder(field: "params.lr")]) }
        expectError(.invalidParameterValue, "Invalid order by field name: bogus") { _ = try Self.search(s, exp, order: [LoggedModelOrder(field: "bogus")]) }
        let first = try s.searchLoggedModels(experimentIDs: [exp], filter: nil, datasets: [], maxResults: 2, orderBy: [], pageToken: nil)
        #expect(first.items.map(\.modelID) == [ids[2], ids[1]] && first.nextPageToken != nil)
        #expect(try Self.search(s, exp, max: 2, token: first.nextPageToken) == [ids[0]])
        // The points are the model's (with run and dataset) and the run's history.
        let m = try s.loggedModel(id: ids[0])
        #expect(m.metrics.map(\.metric.value) == [0.9, 0.1] && m.metrics.map(\.datasetName) == ["train", "eval"])
        #expect(m.metrics.allSatisfy { $0.runID == m.sourceRunID && $0.modelID == ids[0] })
        // A point logged against an unknown model fails the batch.
        var bad = MetricBatch()
        bad.append(bad.series(for: "x"), step: 0, timestamp: 1, value: 1)
        bad.appendModelPoint(Metric(key: "x", value: 1, timestamp: 1), modelID: "m-nope", datasetName: nil, datasetDigest: nil)
        expectError(.resourceDoesNotExist, "Logged model with ID 'm-nope' not found") { try s.logBatch(runID: m.sourceRunID, batch: bad) }
    }

    @Test(arguments: Backend.all) func lifecycleTagsParamsAndErrors(_ backend: Backend) throws {
        let (f, exp, ids) = try Self.fixture(backend)
        let s = f.service
        #expect(try s.loggedModel(id: ids[0]).artifactURI.hasSuffix("/\(exp)/models/\(ids[0])/artifacts"))
        #expect(try s.finalizeLoggedModel(id: ids[0], status: "LOGGED_MODEL_READY").status == .ready)
        #expect(try s.finalizeLoggedModel(id: ids[0], status: "BOGUS").status == .ready)  // MLflow ignores unknown names
        try s.setLoggedModelTags(id: ids[0], [KeyValue(key: "t", value: "1"), KeyValue(key: "t", value: "2")])
        try s.deleteLoggedModelTag(id: ids[0], key: "stage")
        try s.logLoggedModelParams(id: ids[0], [KeyValue(key: "extra", value: "x")])
        let m = try s.loggedModel(id: ids[0])
        #expect(m.tags == [KeyValue(key: "t", value: "2")] && m.params.map(\.key) == ["extra", "lr"])
        expectError(.resourceDoesNotExist, "No tag with key 'nokey'") { try s.deleteLoggedModelTag(id: ids[0], key: "nokey") }
        expectError(.invalidParameterValue, "'status'") { _ = try s.finalizeLoggedModel(id: ids[0], status: nil) }
        expectError(.invalidParameterValue, "'experiment_id'") {
            _ = try s.createLoggedModel(experimentID: nil, name: nil, modelType: nil, sourceRunID: nil, params: [], tags: [])
        }
        expectError(.resourceDoesNotExist, "No Experiment with id=9999") {
            _ = try s.createLoggedModel(experimentID: "9999", name: nil, modelType: nil, sourceRunID: nil, params: [], tags: [])
        }
        #expect(!(try s.createLoggedModel(experimentID: exp, name: nil, modelType: nil, sourceRunID: nil, params: [], tags: []).name.isEmpty))
        try s.deleteLoggedModel(id: ids[1])
        expectError(.resourceDoesNotExist, "Logged model with ID '\(ids[1])' not found.") { _ = try s.loggedModel(id: ids[1]) }
        #expect(try s.loggedModel(id: ids[1], allowDeleted: true).lifecycleStage == .deleted)
        #expect(!(try Self.search(s, exp)).contains(ids[1]))
        // Outputs: each model once per run, in order.
        let run = m.sourceRunID
        try s.logOutputs(runID: run, models: [ModelOutput(modelID: ids[2], step: 3), ModelOutput(modelID: ids[0], step: 1), ModelOutput(modelID: ids[2], step: 9)])
        #expect(try s.runOutputs(runID: run) == [ModelOutput(modelID: ids[2], step: 3), ModelOutput(modelID: ids[0], step: 1)])
        // A request naming models many times: each is looked up once (a deleted one still refuses the whole request).
        let many = Array(repeating: ModelOutput(modelID: ids[0], step: 5), count: 10_000)
        expectError(.resourceDoesNotExist, "Logged model with ID '\(ids[1])' not found.") { try s.logOutputs(runID: run, models: many + [ModelOutput(modelID: ids[1], step: 1)]) }
        try s.logOutputs(runID: run, models: many + Array(repeating: ModelOutput(modelID: ids[2], step: 4), count: 10_000))
        #expect(try s.runOutputs(runID: run) == [ModelOutput(modelID: ids[2], step: 3), ModelOutput(modelID: ids[0], step: 1)])
        // Model inputs (`log_inputs(models=…)`): each once per run, in order, beside dataset inputs; an empty id refused;
        // a deleted run takes none.
        let ds = DatasetInput(dataset: Dataset(name: "d", digest: "1", sourceType: "local", source: "/x", schema: nil, profile: nil), tags: [])
        try s.logInputs(runID: run, [ds], models: [ModelInput(modelID: ids[1]), ModelInput(modelID: ids[0])])
        try s.logInputs(runID: run, [], models: [ModelInput(modelID: ids[0]), ModelInput(modelID: "m-elsewhere")])
        #expect(try s.runModelInputs(runID: run) == [ModelInput(modelID: ids[1]), ModelInput(modelID: ids[0]), ModelInput(modelID: "m-elsewhere")])
        #expect(try s.run(id: run).inputs.count == 1)
        expectError(.invalidParameterValue, "models[1].model_id") { try s.logInputs(runID: run, [], models: [ModelInput(modelID: "m-x"), ModelInput(modelID: "")]) }
        #expect(try s.runModelInputs(runID: run).count == 3, "nothing of a refused request is kept")
        let other = try s.createRun(experimentID: exp, userID: nil, runName: "other", startTime: 1, tags: []).info.runID
        #expect(try s.runModelInputs(runID: other).isEmpty)
        try s.deleteRun(id: other)
        expectError(.invalidParameterValue, "must be in the 'active' state") { try s.logInputs(runID: other, [], models: [ModelInput(modelID: ids[0])]) }
    }
}
