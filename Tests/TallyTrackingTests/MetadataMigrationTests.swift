import Testing
@testable import TallyStore
@testable import TallyTracking

/// `tally metadata migrate`: an embedded deployment's SQLite metadata copied into PostgreSQL reads back the same
/// through the service; a rerun duplicates nothing and picks up what was added since.
@Suite struct MetadataMigrationTests {
    /// Everything a service answers about the data, for comparing two stores.
    static func snapshot(_ s: TrackingService) throws -> String {
        var out = ""
        for e in try s.metadata.experiments() {
            out += "\(e)\n"
            let runs = try s.searchRuns(experimentIDs: [e.experimentID], view: .all, maxResults: 1000, orderBy: ["attributes.run_id"]).items
            for r in runs { out += "  \(r)\n  outputs \(try s.metadata.runOutputs(runID: r.info.runID))\n" }
            for m in try s.metadata.loggedModels(experimentIDs: [Int64(e.experimentID)!]).sorted(by: { $0.modelID < $1.modelID }) { out += "  \(m)\n" }
        }
        out += "\(try s.metadata.registeredModels())\n\(try s.metadata.modelVersions(named: nil))\n"
        for u in try s.metadata.users() { out += "\(u) \(try s.metadata.grants(userID: u.id)) \(try s.metadata.tokens(userID: u.id))\n" }
        return out
    }

    @Test(.enabled(if: PostgresDatabaseTests.available)) func copiesEverythingAndRerunsConverge() throws {
        let f = try Fixture("migrate")
        let s = f.service
        let exp = try s.createExperiment(name: "exp", tags: [KeyValue(key: "team", value: "a")])
        var runs: [String] = []
        for i in 0..<30 {
            let run = try s.createRun(experimentID: i % 3 == 0 ? "0" : exp, runName: "r\(i)").info.runID
            try s.logBatch(runID: run, metrics: (0..<(i % 4)).map { Metric(key: "m\($0)", value: $0 == 1 ? .nan : Double(i), timestamp: 1, step: Int64(i)) },
                           params: [KeyValue(key: "p", value: "\(i)")], tags: [KeyValue(key: "z", value: "1"), KeyValue(key: "a", value: "2")])
            runs.append(run)
        }
        try s.logInputs(runID: runs[1], [DatasetInput(dataset: Dataset(name: "d", digest: "x", sourceType: "code", source: "{}"), tags: [])])
        try s.deleteRun(id: runs[2])
        let model = try s.createLoggedModel(experimentID: exp, name: "lm", modelType: nil, sourceRunID: runs[1], params: [KeyValue(key: "k", value: "v")],
                                            tags: [KeyValue(key: "t", value: "u")])
        var batch = MetricBatch([Metric(key: "acc", value: 0.9, timestamp: 5, step: 1)])
        batch.appendModelPoint(Metric(key: "acc", value: 0.9, timestamp: 5, step: 1), modelID: model.modelID, datasetName: nil, datasetDigest: nil)
        try s.logBatch(runID: runs[1], batch: batch)
        _ = try s.createRegisteredModel(name: "reg", tags: [KeyValue(key: "y", value: "1"), KeyValue(key: "b", value: "2")], description: "d")
        _ = try s.createModelVersion("reg", source: "runs:/\(runs[1])/model", runID: runs[1], tags: [KeyValue(key: "q", value: "1")], runLink: nil,
                                     description: nil, modelID: nil)
        try s.setModelAlias("reg", alias: "champion", version: "1")
        let hook = try s.createWebhook(WebhookFields(name: "ci", url: "https://8.8.8.8/hook", events: [try WebhookEvent(.modelVersion, .created)],
                                                     description: "d", secret: "s"))
        var trace = TraceTests.trace(1, experiment: exp, tags: [KeyValue(key: "t", value: "1")], metadata: [KeyValue(key: "m", value: "2")])
        let issue = try s.createIssue(experimentID: exp, name: "slow", description: "d", status: nil, severity: "high", rootCauses: ["cache"],
                                      sourceRunID: runs[0], categories: ["latency"], createdBy: "alice")
        trace.assessments = [TraceTests.feedback(1, "quality", "0.5"), IssueTests.reference(1, issue.id)]
        _ = try s.startTrace(trace)
        try s.linkPromptsToTrace(traceID: trace.traceID, prompts: [("qa", "1"), ("qa", "2")])
        let storedTrace = try s.traceInfo(id: trace.traceID)
        try s.logSpans(experimentID: exp, runID: nil, [OTLPResourceSpans(resource: [], spans: [SpanTests.root, SpanTests.grandchild])])
        let storedSpans = try s.metadata.spans(traceIDs: [SpanTests.traceID])
        let (dataset, _) = try s.createDataset(name: "qa", experimentIDs: [exp, "0"], tags: #"{"mlflow.user": "alice", "k": "v"}"#)
        _ = try s.upsertDatasetRecords(id: dataset.id, records: #"[{"inputs": {"q": "a"}, "expectations": {"x": 1}, "tags": {"mlflow.user": "bob"}}, {"inputs": {"q": "b"}}]"#)
        let storedDataset = try s.dataset(id: dataset.id), storedLinks = try s.datasetExperimentIDs(id: dataset.id)
        let storedRecords = try s.datasetRecords(id: dataset.id, maxResults: nil, pageToken: nil).items
        _ = try s.registerScorer(experimentID: exp, name: "judge", serialized: #"{"v": 1}"#)
        _ = try s.registerScorer(experimentID: exp, name: "judge", serialized: #"{"v": 2}"#)
        let scorerConfig = try s.setOnlineScoringConfig(experimentID: exp, name: "judge", sampleRate: .number("0"), filterString: .string("tags.a = 'b'"))
        let storedScorers = try s.scorerVersions(experimentID: exp, name: "judge")
        let question = try s.createLabelSchema(experimentID: exp, name: "ok?", type: "FEEDBACK", input: ReviewTests.pass, instruction: "i", enableComment: true)
        let queue = try s.createReviewQueue(experimentID: exp, name: "Team", queueType: "CUSTOM", users: ["bob"], schemaIDs: [question.id])
        let queued = try s.addReviewItems(queueID: queue.id, itemIDs: [storedTrace.traceID])
        var config = AccessConfiguration()
        config.adminPassword = "admin-password-1"
        config.passwordHashRounds = 1 << 10
        let access = AccessControl(store: s.metadata, configuration: config)
        try access.bootstrap()
        let admin = try access.localCaller("admin")
        _ = try access.createUser("alice", password: "alice-password", by: admin)
        try access.grant("alice", type: "experiment", id: exp, permission: "EDIT", by: admin)
        _ = try access.createToken(name: "ci", expiresInDays: nil, for: try access.localCaller("alice"))

        // The source is a stopped server's: a running one holds its file.
        let expected = try Self.snapshot(s)
        try s.close()
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        // A target that already interned keys in another order: latest rows are re-encoded with its ids.
        let target = try PostgresMetadataStore(uri: scratch.uri, poolSize: 2, now: 1)
        defer { target.close() }
        try target.intern(["zz", "m2", "acc"])
        var lines: [String] = []
        let counts = try MetadataMigration.run(source: f.dir + "/metadata.sqlite", target: target) { t, d, n in lines.append("\(t) \(d)/\(n)") }
        #expect(counts.allSatisfy { $0.source == $0.target }, "\(counts)")
        #expect(counts.first { $0.table == "runs" }?.source == 30 && lines.contains("runs 30/30"))
        let copied = TrackingService(metadata: target, metrics: try Fixture.metricStore(f.dir + "/copied-metrics"), clock: { 1_700_000_000_000 })
        #expect(try Self.snapshot(copied) == expected)
        // Webhooks move as stored, their secrets sealed under the same key (it goes with the data directory).
        #expect(try target.webhooks(id: nil) == [hook] && counts.contains { $0.table == "webhook_events" && $0.source == 1 })
        // Traces with their tags, metadata and assessments.
        #expect(try target.traces(ids: [storedTrace.traceID]) == [storedTrace] && counts.contains { $0.table == "assessments" && $0.source == 2 })
        #expect(storedTrace.linkedPrompts == ["qa/1", "qa/2"] && counts.contains { $0.table == "trace_prompts" && $0.source == 2 })
        // Spans sent over OTLP, with the trace they made.
        #expect(try target.spans(traceIDs: [SpanTests.traceID]) == storedSpans && storedSpans.values.first?.count == 2)
        #expect(counts.contains { $0.table == "spans" && $0.source == 2 })
        // Evaluation datasets with their tags (in order), experiments and records.
        #expect(try copied.dataset(id: dataset.id) == storedDataset && copied.datasetExperimentIDs(id: dataset.id) == storedLinks && storedLinks.count == 2)
        #expect(try copied.datasetRecords(id: dataset.id, maxResults: nil, pageToken: nil).items == storedRecords && storedRecords.count == 2)
        #expect(counts.contains { $0.table == "evaluation_dataset_records" && $0.source == 2 })
        // Registered scorers with their versions and online-scoring settings.
        #expect(try copied.scorerVersions(experimentID: exp, name: "judge") == storedScorers && storedScorers.count == 2)
        #expect(try copied.onlineScoringConfigs(scorerIDs: [storedScorers[0].scorerID]) == [scorerConfig])
        #expect(counts.contains { $0.table == "scorer_versions" && $0.source == 2 })
        // Label schemas and review queues with their reviewers, questions and items.
        #expect(try copied.labelSchema(id: question.id) == question && copied.reviewQueue(id: queue.id) == queue)
        #expect(try copied.reviewItems(queueID: queue.id, status: nil, maxResults: nil, pageToken: nil).0 == queued && queued.count == 1)
        #expect(counts.contains { $0.table == "review_queue_users" && $0.source == 1 })
        // Issues, and the traces that refer to them.
        #expect(try copied.issue(id: issue.id) == issue && copied.searchIssues(experimentID: exp, filter: nil, maxResults: nil, pageToken: nil,
                                                                              includeTraceCount: true).0.map(\.traceCount) == [1])
        // The source is refused while a server holds it.
        let running = try f.reopened()
        #expect(throws: (any Error).self) { _ = try MetadataMigration.run(source: f.dir + "/metadata.sqlite", target: target) { _, _, _ in } }
        // Rerun: nothing doubles; then new writes to the source are picked up, and ids continue past the copied ones.
        try running.close()
        #expect(try MetadataMigration.run(source: f.dir + "/metadata.sqlite", target: target) { _, _, _ in } == counts)
        let again0 = try f.reopened()
        let late = try again0.createRun(experimentID: exp).info.runID
        try again0.logBatch(runID: late, metrics: [Metric(key: "new", value: 1, timestamp: 1, step: 1)])
        try again0.setExperimentTag(id: exp, key: "team", value: "b")
        let expectedAgain = try Self.snapshot(again0)
        try again0.close()
        let again = try MetadataMigration.run(source: f.dir + "/metadata.sqlite", target: target) { _, _, _ in }
        #expect(again.allSatisfy { $0.source == $0.target } && again.first { $0.table == "runs" }?.source == 31)
        #expect(try Self.snapshot(copied) == expectedAgain)
        #expect(try copied.createExperiment(name: "after") == "2")
        #expect(try AccessControl(store: target, configuration: config).localCaller("alice").userID == 2)
        // A tag deleted from the source after the copy (and a param added): the rerun would leave the tag behind, so
        // it writes nothing — the param is not there either — and says why.
        let later = try f.reopened()
        try later.deleteTag(runID: runs[3], key: "z")
        try later.logParam(runID: late, key: "after", value: "1")
        try later.close()
        #expect(try copied.run(id: late).params.isEmpty)
        do {
            _ = try MetadataMigration.run(source: f.dir + "/metadata.sqlite", target: target) { _, _, _ in }
            Issue.record("a rerun left a deleted tag behind")
        } catch let m as MetadataMigration.Mismatch {
            let differ = m.counts.filter { $0.source != $0.target }
            // The tag deleted from the source, and the experiment created on the target above.
            #expect(differ.map(\.table) == ["experiments", "tags"] && differ.allSatisfy { $0.target == $0.source + 1 }, "\(m.counts)")
            #expect(m.description.contains("Nothing was written"))
        }
        #expect(try copied.run(id: late).params.isEmpty && copied.run(id: runs[3]).tags.contains { $0.key == "z" })
    }

    /// A target that holds another deployment's data is refused before anything is written: a user id naming
    /// another user (whose grants and tokens would pass to the source's), an experiment name under another id.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func anotherDeploymentsTargetIsRefused() throws {
        let f = try Fixture("migrate-foreign")
        _ = try f.service.createExperiment(name: "exp")
        var config = AccessConfiguration()
        config.adminPassword = "admin-password-1"
        config.passwordHashRounds = 1 << 10
        let access = AccessControl(store: f.service.metadata, configuration: config)
        try access.bootstrap()
        _ = try access.createUser("alice", password: "alice-password", by: try access.localCaller("admin"))
        let runs = try (0..<3).map { _ in try f.service.createRun(experimentID: "0").info.runID }
        try f.service.close()
        for foreign in ["user", "experiment"] {
            let scratch = try ScratchDatabase()
            defer { try? scratch.drop() }
            let target = try PostgresMetadataStore(uri: scratch.uri, poolSize: 2, now: 1)
            defer { target.close() }
            let other = TrackingService(metadata: target, metrics: try Fixture.metricStore(f.dir + "/other-\(foreign)"))
            if foreign == "user" {
                let theirs = AccessControl(store: target, configuration: config)
                try theirs.bootstrap()
                _ = try theirs.createUser("bob", password: "bob-password", by: try theirs.localCaller("admin"))
            } else {
                _ = try other.createExperiment(name: "theirs")
                _ = try other.createExperiment(name: "exp")  // id 2 here, 1 in the source
            }
            let fragment = foreign == "user" ? "User id 2 is 'bob' in the target and 'alice' in the source" : "conflicts with one of the target"
            expectError(.invalidParameterValue, fragment) {
                _ = try MetadataMigration.run(source: f.dir + "/metadata.sqlite", target: target) { _, _, _ in }
            }
            #expect(try runs.allSatisfy { try target.runInfo(id: $0) == nil })
        }
    }
}
