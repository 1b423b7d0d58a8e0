import Testing
@testable import TallyTracking

/// Names that Swift's `String ==` calls equal because they are canonically equivalent ("café" precomposed and
/// "cafe" + U+0301, "K" and the Kelvin sign U+212A) but MLflow and both databases keep apart. Free-form names
/// (experiments, registered models) stay apart everywhere; metric, param and tag keys are accepted only in Unicode
/// normalization form C, so no two accepted keys are ever equivalent.
@Suite struct CanonicalEquivalenceTests {
    static let composed = "caf\u{E9}", decomposed = "cafe\u{301}", kelvin = "\u{212A}"

    @Test func keysOnlyInNormalizationFormC() throws {
        #expect(Self.composed == Self.decomposed && "K" == Self.kelvin, "Swift's == is canonical equivalence")
        try Validation.key("K", entity: "Metric")
        try Validation.key("z" + Self.composed, entity: "Metric")
        expectError(.invalidParameterValue, "normalization form C") { try Validation.key(Self.kelvin, entity: "Metric") }
        expectError(.invalidParameterValue, "Names may only contain") { try Validation.key("z" + Self.decomposed, entity: "Param") }
        // In one batch, the decomposed key after the composed one is checked as a key of its own, not merged into it.
        let batch = MetricBatch([Metric(key: "z" + Self.composed, value: 1, timestamp: 1, step: 0),
                                 Metric(key: "z" + Self.decomposed, value: 2, timestamp: 2, step: 0)])
        #expect(batch.error?.message.contains("Names may only contain") == true, "\(String(describing: batch.error))")
        let kelvins = MetricBatch([Metric(key: "K", value: 1, timestamp: 1, step: 0), Metric(key: Self.kelvin, value: 2, timestamp: 2, step: 0)])
        #expect(kelvins.error?.message.contains("normalization form C") == true, "\(String(describing: kelvins.error))")
    }

    @Test(arguments: Backend.all) func equivalentNamesStayApart(_ backend: Backend) throws {
        let f = try Fixture(backend: backend)
        let s = f.service
        // Experiments: two names, two experiments, each found by its own spelling only.
        let a = try s.createExperiment(name: Self.composed), b = try s.createExperiment(name: Self.decomposed)
        #expect(a != b)
        #expect(try s.experiment(named: Self.composed).experimentID == a)
        #expect(try s.experiment(named: Self.decomposed).experimentID == b)
        let found = try s.searchExperiments(filter: "name = '\(Self.composed)'", maxResults: 100).items.map(\.experimentID)
        #expect(found == [a])
        let notFound = try s.searchExperiments(filter: "name != '\(Self.composed)'", maxResults: 100).items.map(\.experimentID)
        #expect(notFound.contains(b) && !notFound.contains(a))

        // Registered models: both listed, by every search, read whole (the SQLite store's snapshot trapped on them).
        _ = try s.createRegisteredModel(name: Self.composed, tags: [KeyValue(key: "t", value: "1")], description: nil)
        _ = try s.createRegisteredModel(name: Self.decomposed, tags: [KeyValue(key: "t", value: "2")], description: nil)
        for _ in 0..<2 {
            let models = try s.searchRegisteredModels(filter: nil, maxResults: 100, orderBy: [], pageToken: nil).items
            #expect(models.count == 2)
            #expect(Set(models.map { Array($0.name.unicodeScalars) }) == [Array(Self.composed.unicodeScalars), Array(Self.decomposed.unicodeScalars)])
            #expect(models.flatMap(\.tags).map(\.value).sorted() == ["1", "2"])
        }
        #expect(try s.registeredModel(named: Self.decomposed).tags == [KeyValue(key: "t", value: "2")])
        let byName = try s.searchRegisteredModels(filter: "name = '\(Self.decomposed)'", maxResults: 100, orderBy: [], pageToken: nil).items
        #expect(byName.map { Array($0.name.unicodeScalars) } == [Array(Self.decomposed.unicodeScalars)])

        // Keys: the Kelvin sign is refused everywhere a key is logged, and nothing of the request is stored.
        let run = try s.createRun(experimentID: a).info.runID
        try s.logMetric(runID: run, Metric(key: "K", value: 1, timestamp: 1, step: 0))
        expectError(.invalidParameterValue, "normalization form C") { try s.logMetric(runID: run, Metric(key: Self.kelvin, value: 2, timestamp: 2, step: 1)) }
        expectError(.invalidParameterValue, "normalization form C") { try s.logParam(runID: run, key: Self.kelvin, value: "x") }
        expectError(.invalidParameterValue, "normalization form C") { try s.setTag(runID: run, key: Self.kelvin, value: "x") }
        expectError(.invalidParameterValue, "Names may only contain") {
            try s.logBatch(runID: run, metrics: [Metric(key: "z" + Self.composed, value: 1, timestamp: 1, step: 0),
                                                 Metric(key: "z" + Self.decomposed, value: 2, timestamp: 2, step: 0)])
        }
        let stored = try s.run(id: run)
        #expect(stored.metrics.map(\.key) == ["K"] && stored.metrics.first?.value == 1)
        #expect(stored.params.isEmpty && !stored.tags.contains { $0.key.unicodeScalars.first == Self.kelvin.unicodeScalars.first })

        // Searches tell keys apart by their bytes, as MLflow's SQL does: the Kelvin sign names nothing stored, not `K`,
        // in a filter and in an ordering, whichever of the two is named first.
        try s.logParam(runID: run, key: "K", value: "p")
        try s.setTag(runID: run, key: "K", value: "t")
        let runs = { (filter: String, order: [String]) in
            try s.searchRuns(experimentIDs: [a], filter: filter, maxResults: 100, orderBy: order).items.map(\.info.runID)
        }
        #expect(try runs("metrics.K > 0", []) == [run])
        #expect(try runs("metrics.`\(Self.kelvin)` > 0", []).isEmpty)
        #expect(try runs("metrics.`\(Self.kelvin)` > 0 AND metrics.K > 0", []).isEmpty)
        #expect(try runs("metrics.K > 0 AND metrics.`\(Self.kelvin)` > 0", []).isEmpty)
        #expect(try runs("params.`\(Self.kelvin)` = 'p'", []).isEmpty && runs("tags.`\(Self.kelvin)` = 't'", []).isEmpty)
        #expect(try runs("params.`\(Self.kelvin)` IS NULL", []) == [run])
        let other = try s.createRun(experimentID: a).info.runID
        try s.logMetric(runID: other, Metric(key: "K", value: 5, timestamp: 1, step: 0))
        #expect(try runs("", ["metrics.K DESC"]) == [other, run])
        #expect(try runs("", ["metrics.`\(Self.kelvin)` DESC", "metrics.K"]) == [run, other])  // the Kelvin key: missing everywhere
    }
}
