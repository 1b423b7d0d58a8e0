import Testing
import TallyStore
@testable import TallyTracking

/// Requests that carry many rows at once: each backend writes them in a few statements (PostgreSQL's arrays), with
/// the answer a row-by-row write gives — repeats within a request, rows already stored, names that differ only in
/// their bytes, positions in the order given.
@Suite struct LargeRequestTests {
    /// The fixture's store opened again (the service before it is closed): what the database holds, not a cache.
    static func reread(_ f: Fixture, _ s: TrackingService) throws -> TrackingService {
        try s.metrics.close()
        return try f.reopened()
    }

    @Test(arguments: Backend.all) func datasetInputsInOneRequest(_ backend: Backend) throws {
        let f = try Fixture("large-inputs", backend: backend)
        let s = f.service
        let run = try s.createRun(experimentID: try s.createExperiment(name: "x")).info.runID
        let tag = { (v: String) in [KeyValue(key: "mlflow.data.context", value: v)] }
        let d = { (name: String, digest: String, schema: String?) in
            Dataset(name: name, digest: digest, sourceType: "local", source: "/data/\(name)", schema: schema, profile: schema == nil ? nil : "{}")
        }
        try s.logInputs(runID: run, [DatasetInput(dataset: d("old", "1", nil), tags: tag("first"))])
        var request: [DatasetInput] = []
        for i in 0..<1_500 { request.append(DatasetInput(dataset: d("d\(i)", "\(i)", i % 3 == 0 ? nil : "{\"i\": \(i)}"), tags: tag("train"))) }
        // A repeat counts as given first; one already stored stays as it is; a decomposed twin of a name is another
        // dataset.
        request.insert(DatasetInput(dataset: d("old", "1", "{\"ignored\": 1}"), tags: tag("again")), at: 700)
        request.append(DatasetInput(dataset: d("d5", "5", "{\"ignored\": 2}"), tags: tag("eval")))
        request.append(DatasetInput(dataset: d("caf\u{E9}", "c", nil), tags: tag("nfc")))
        request.append(DatasetInput(dataset: d("cafe\u{301}", "c", nil), tags: tag("nfd")))
        try s.logInputs(runID: run, request)

        var expected = [DatasetInput(dataset: d("old", "1", nil), tags: tag("first"))]
        for i in 0..<1_500 { expected.append(DatasetInput(dataset: d("d\(i)", "\(i)", i % 3 == 0 ? nil : "{\"i\": \(i)}"), tags: tag("train"))) }
        expected += [DatasetInput(dataset: d("caf\u{E9}", "c", nil), tags: tag("nfc")), DatasetInput(dataset: d("cafe\u{301}", "c", nil), tags: tag("nfd"))]
        let stored = try Self.reread(f, s).run(id: run).inputs
        #expect(stored.count == expected.count)
        #expect(stored == expected)
        #expect(stored.suffix(2).map { Array($0.dataset.name.utf8) } == [Array("caf\u{E9}".utf8), Array("cafe\u{301}".utf8)])
    }

    @Test(arguments: Backend.all) func modelVersionTagsAndModelParamsInOneRequest(_ backend: Backend) throws {
        let f = try Fixture("large-registry", backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "x")
        let run = try s.createRun(experimentID: exp).info.runID
        let many = (0..<3_000).map { KeyValue(key: "k\($0)", value: "v") } + [KeyValue(key: "k9", value: "last")]
        _ = try s.createRegisteredModel(name: "big", tags: many, description: nil)
        // An experiment's tags hold each key once (a repeat is refused); the registered model's last one wins.
        expectError(.invalidParameterValue, "Duplicate tag keys have been submitted: ['k9']") { _ = try s.createExperiment(name: "repeated", tags: many) }
        let tagged = try s.createExperiment(name: "tagged", tags: Array(many.dropLast()))
        let tags = (0..<3_000).map { KeyValue(key: "t\($0)", value: "v\($0)") } + [KeyValue(key: "t7", value: "last")]
        let v = try s.createModelVersion("big", source: "runs:/\(run)/model", runID: run, tags: tags, runLink: nil, description: nil, modelID: nil)

        let model = try s.createLoggedModel(experimentID: exp, name: "m", modelType: nil, sourceRunID: run, params: [], tags: []).modelID
        try s.logLoggedModelParams(id: model, (0..<3_000).map { KeyValue(key: "p\($0)", value: "a") } + [KeyValue(key: "p1", value: "b")])
        try s.setLoggedModelTags(id: model, (0..<3_000).map { KeyValue(key: "t\($0)", value: "a") })
        try s.setLoggedModelTags(id: model, [KeyValue(key: "t2", value: "c"), KeyValue(key: "new", value: "d")])
        let r = try Self.reread(f, s)
        let read = try r.modelVersion("big", String(v.version))
        #expect(read.tags.count == 3_000)
        #expect(Dictionary(uniqueKeysWithValues: read.tags.map { ($0.key, $0.value) })["t7"] == "last")
        let model0 = try r.registeredModel(named: "big").tags, experiment = try r.experiment(id: tagged).tags
        #expect(model0.count == 3_000 && model0.first { $0.key == "k9" }?.value == "last")
        #expect(experiment.count == 3_000 && experiment.first { $0.key == "k9" }?.value == "v")
        let m = try r.loggedModel(id: model)
        #expect(m.params.count == 3_000 && m.params.first { $0.key == "p1" }?.value == "b")
        #expect(m.tags.count == 3_001 && m.tags.first { $0.key == "t2" }?.value == "c" && m.tags.first { $0.key == "new" }?.value == "d")
    }

    @Test(arguments: Backend.all) func manyModelsOutputAtOnce(_ backend: Backend) throws {
        let f = try Fixture("large-outputs", backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "x")
        let run = try s.createRun(experimentID: exp).info.runID
        let ids = try (0..<600).map { _ in
            try s.createLoggedModel(experimentID: exp, name: nil, modelType: nil, sourceRunID: run, params: [], tags: []).modelID
        }
        try s.deleteLoggedModel(id: ids[400])
        let outputs = ids.enumerated().map { ModelOutput(modelID: $0.element, step: Int64($0.offset)) }
        // The first model that is missing or deleted, in the order given, refuses the whole request.
        expectError(.resourceDoesNotExist, "Logged model with ID '\(ids[400])' not found.") {
            try s.logOutputs(runID: run, models: outputs + [ModelOutput(modelID: "m-missing", step: 0)])
        }
        expectError(.resourceDoesNotExist, "Logged model with ID 'm-missing' not found.") {
            try s.logOutputs(runID: run, models: [ModelOutput(modelID: "m-missing", step: 0)] + [outputs[1]])
        }
        #expect(try s.runOutputs(runID: run).isEmpty)
        var live = outputs
        live.remove(at: 400)
        try s.logOutputs(runID: run, models: [live[3]])
        try s.logOutputs(runID: run, models: live + live.reversed().map { ModelOutput(modelID: $0.modelID, step: 99) })
        #expect(try Self.reread(f, s).runOutputs(runID: run) == [live[3]] + live.filter { $0 != live[3] })
    }

    @Test(arguments: Backend.all) func searchOverManyExperimentIDs(_ backend: Backend) throws {
        let f = try Fixture("large-search", backend: backend)
        let s = f.service
        let a = try s.createExperiment(name: "a"), b = try s.createExperiment(name: "b"), empty = try s.createExperiment(name: "empty")
        let runs = try [a, b, b].map { try s.createRun(experimentID: $0).info.runID }
        var ids = (0..<20_000).map { String(1_000_000 + $0) }
        ids.insert(b, at: 15_000)
        ids.insert(empty, at: 9_000)
        ids.insert(a, at: 3)
        ids.append(a)
        let found = try s.searchRuns(experimentIDs: ids, maxResults: 100).items.map(\.info.runID)
        #expect(Set(found) == Set(runs) && found.count == 3)
        // A run created meanwhile in the experiment that had none is found on the next search (no stale answer).
        let late = try s.createRun(experimentID: empty).info.runID
        #expect(try s.searchRuns(experimentIDs: ids, maxResults: 100).items.map(\.info.runID).contains(late))
    }
}
