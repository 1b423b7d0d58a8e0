import Dispatch
import Synchronization
import Testing
@testable import TallyTracking

/// MLflow 3's registered scorers on both backends: versions and their numbering, the highest and a given one, deletes
/// of a version and of all, listings, the online-scoring settings; the definition checks MLflow's server makes; the
/// permissions of MLflow's auth app; two servers registering one name at once.
@Suite struct ScorerTests {
    @Test(arguments: Backend.all) func versionsListingsAndDeletes(_ backend: Backend) throws {
        let f = try Fixture("scr", clock: { 1_700_000_000_000 }, backend: backend)
        let s = f.service
        let e1 = try s.createExperiment(name: "e1"), e2 = try s.createExperiment(name: "e2")
        let v1 = try s.registerScorer(experimentID: e1, name: "tone", serialized: #"{"a":  1}"#)
        #expect(v1.version == 1 && v1.experimentID == e1 && v1.serialized == #"{"a":  1}"# && v1.creationTime == 1_700_000_000_000)
        let v2 = try s.registerScorer(experimentID: "0" + e1, name: "tone", serialized: "{}")  // `0<id>` is the same experiment
        #expect(v2.version == 2 && v2.scorerID == v1.scorerID && v2.experimentID == e1)
        let other = try s.registerScorer(experimentID: e2, name: "tone", serialized: "{}")
        #expect(other.version == 1 && other.scorerID != v1.scorerID)
        _ = try s.registerScorer(experimentID: e1, name: "a/b é", serialized: "{}")
        _ = try s.registerScorer(experimentID: e1, name: "B", serialized: "{}")

        #expect(try s.scorer(experimentID: e1, name: "tone", version: nil) == v2)
        #expect(try s.scorer(experimentID: e1, name: "tone", version: 1) == v1)
        #expect(try s.scorerVersions(experimentID: e1, name: "tone") == [v1, v2])
        // Listings: the highest version of each, by experiment (as a number) and name (by bytes).
        #expect(try s.scorers(experimentID: e1, experimentIDs: nil).map(\.name) == ["B", "a/b é", "tone"])
        #expect(try s.scorers(experimentID: nil, experimentIDs: [e2, "999", e1]).map { "\($0.experimentID):\($0.name):\($0.version)" }
                == ["\(e1):B:1", "\(e1):a/b é:1", "\(e1):tone:2", "\(e2):tone:1"])
        #expect(try s.scorers(experimentID: nil, experimentIDs: nil).count == 4)
        #expect(throws: TrackingError.self) { try s.scorers(experimentID: e1, experimentIDs: [e1]) }
        #expect(throws: TrackingError.invalid("Invalid experiment ID 'x'. Experiment ID must be a valid integer.")) { try s.scorers(experimentID: nil, experimentIDs: ["x"]) }

        // Not found, as MLflow says it.
        #expect(throws: TrackingError.notFound("Scorer with name 'tone' and version 7 not found for experiment \(e1).")) {
            try s.scorer(experimentID: e1, name: "tone", version: 7)
        }
        #expect(throws: TrackingError.notFound("Scorer with name 'zz' not found for experiment \(e1).")) { try s.scorerVersions(experimentID: e1, name: "zz") }

        // Online scoring: off is kept (the latest replaces), on is refused; the settings go with the scorer.
        let off = try s.setOnlineScoringConfig(experimentID: e1, name: "tone", sampleRate: .number("0"), filterString: nil)
        #expect(off.scorerID == v1.scorerID && off.sampleRate == 0 && off.sampleRateText == "0.0" && off.id.count == 32)
        let filtered = try s.setOnlineScoringConfig(experimentID: e1, name: "tone", sampleRate: .string("0"), filterString: .string("tags.a = 'b'"))
        #expect(try s.onlineScoringConfigs(scorerIDs: [v1.scorerID, "nope"]) == [filtered])
        #expect(throws: TrackingError.invalid("Scorer 'tone' does not use a gateway model. Automatic evaluation is only supported for scorers that use gateway models.")) {
            try s.setOnlineScoringConfig(experimentID: e1, name: "tone", sampleRate: .number("0.5"), filterString: nil)
        }
        #expect(throws: TrackingError.invalid("sample_rate must be between 0.0 and 1.0, got 2.0")) {
            try s.setOnlineScoringConfig(experimentID: e1, name: "tone", sampleRate: .number("2"), filterString: nil)
        }
        #expect(throws: TrackingError.self) { try s.setOnlineScoringConfig(experimentID: e1, name: "tone", sampleRate: .string("x"), filterString: nil) }
        #expect(throws: TrackingError.self) { try s.setOnlineScoringConfig(experimentID: e1, name: "tone", sampleRate: .number("0"), filterString: .string("bogus")) }
        #expect(throws: TrackingError.notFound("Scorer with name 'nope' not found for experiment \(e1).")) {
            try s.setOnlineScoringConfig(experimentID: e1, name: "nope", sampleRate: .number("0"), filterString: nil)
        }

        // Deletes: a version (twice is MLflow's 404); the last one leaves the scorer, whose next version is 1 again.
        try s.deleteScorer(experimentID: e1, name: "tone", version: 1)
        #expect(throws: TrackingError.self) { try s.deleteScorer(experimentID: e1, name: "tone", version: 1) }
        try s.deleteScorer(experimentID: e1, name: "tone", version: 2)
        #expect(throws: TrackingError.notFound("Scorer with name 'tone' not found for experiment \(e1).")) { try s.scorer(experimentID: e1, name: "tone", version: nil) }
        #expect(try s.scorers(experimentID: e1, experimentIDs: nil).map(\.name) == ["B", "a/b é"])
        #expect(try s.onlineScoringConfigs(scorerIDs: [v1.scorerID]).count == 1)
        let again = try s.registerScorer(experimentID: e1, name: "tone", serialized: "{}")
        #expect(again.version == 1 && again.scorerID == v1.scorerID)
        try s.deleteScorer(experimentID: e1, name: "tone", version: nil)  // all, with the settings
        #expect(try s.onlineScoringConfigs(scorerIDs: [v1.scorerID]).isEmpty)
        #expect(throws: TrackingError.self) { try s.deleteScorer(experimentID: e1, name: "tone", version: nil) }

        // A deleted experiment's scorers are out of reach; listings of every experiment leave them out.
        try s.deleteExperiment(id: e2)
        #expect(throws: TrackingError.invalid("The experiment \(e2) must be in the 'active' state. Current state is deleted.")) {
            try s.scorer(experimentID: e2, name: "tone", version: nil)
        }
        #expect(try s.scorers(experimentID: nil, experimentIDs: nil).allSatisfy { $0.experimentID == e1 })
        #expect(try s.scorers(experimentID: nil, experimentIDs: [e2]).isEmpty)
    }

    @Test(arguments: Backend.all) func definitionsAreCheckedAsMLflowChecksThem(_ backend: Backend) throws {
        let f = try Fixture("scd", backend: backend)
        let s = f.service
        let e = try s.createExperiment(name: "e")
        func refusal(_ serialized: String, name: String = "x") -> TrackingError? {
            do { _ = try s.registerScorer(experimentID: e, name: name, serialized: serialized); return nil } catch let err as TrackingError { return err } catch { return nil }
        }
        #expect(refusal("not json")?.message == "serialized_scorer must be valid JSON")
        #expect(refusal("[1]")?.message == "serialized_scorer must be a JSON object, got list")
        #expect(refusal("{}", name: " \t")?.message == "Scorer name cannot be empty or contain only whitespace.")
        #expect(refusal(#"{"ensemble_scorer_data": {"scorers": [{"call_source": "def f(): pass"}]}}"#)?.message.hasPrefix("Custom scorer registration") == true)
        #expect(refusal(#"{"call_source": null, "x": [{"call_source": null}]}"#) == nil)
        #expect(refusal(#"{"third_party_scorer_data": {"kwargs": {"a": {"fallbacks": [], "api_base": "h"}}}}"#)?.message
                .hasPrefix("third_party_scorer_data.kwargs must not contain 'api_base', 'fallbacks': ") == true)
        #expect(refusal(#"{"w": {"third_party_scorer_data": {"kwargs": {"o": [["base_url", "h"]]}}}}"#)?.message.contains("'base_url'") == true)
        #expect(refusal(#"{"third_party_scorer_data": {"kwargs": "x"}}"#)?.message == "third_party_scorer_data.kwargs must be a JSON object, got str.")
        #expect(refusal(#"{"instructions_judge_pydantic_data": {"model": 5}}"#)?.message == "Scorer model must be a string, got int.")
        #expect(refusal(#"{"builtin_scorer_pydantic_data": {"model": " "}}"#)?.message == "Scorer model cannot be empty or contain only whitespace.")
        #expect(refusal(#"{"memory_augmented_judge_data": {"base_judge": {"instructions_judge_pydantic_data": {"model": 1.5}}}}"#)?.message
                == "Scorer model must be a string, got float.")
        let gateway = refusal(#"{"third_party_scorer_data": {"model": "gateway:///judge"}}"#)
        #expect(gateway?.code == .resourceDoesNotExist && gateway?.message == "GatewayEndpoint not found (name='judge')")
        #expect(refusal(#"{"instructions_judge_pydantic_data": {"model": "gateway"}, "builtin_scorer_pydantic_data": {"model": 5}}"#) == nil)
        #expect(refusal(#"{"instructions_judge_pydantic_data": {}, "builtin_scorer_pydantic_data": {"model": "openai:/x"}}"#) == nil)  // {} is falsy
        // An operator who trusts every writer may allow scorers with code (MLflow's MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS).
        let trusting = TrackingService(metadata: s.metadata, metrics: s.metrics, customScorers: true)
        #expect(try trusting.registerScorer(experimentID: e, name: "code", serialized: #"{"call_source": "return 1"}"#).version == 1)
        #expect(TrackingService.usesGatewayModel(#"{"instructions_judge_pydantic_data": {"model": "gateway:/j"}}"#))
        #expect(!TrackingService.usesGatewayModel(#"{"instructions_judge_pydantic_data": {"model": "openai:/j"}}"#))
    }

    @Test func grantsFollowMLflowsScorerRules() throws {
        let e = "3", name = "a/b"
        #expect(TrackingService.scorerResource(experimentID: "03", name: "a/b é~").id == "3/a%2Fb%20%C3%A9~")
        func g(_ d: Permission, _ list: [(Resource, Permission)]) -> Grants { Grants(defaultPermission: d, grants: list.map { Grant(resource: $0.0, permission: $0.1) }) }
        let scorer = TrackingService.scorerResource(experimentID: e, name: name)
        // No grant on the scorer: its experiment's level.
        let reader = g(.noPermissions, [(.experiment(e), .read)])
        #expect(throws: Never.self) { try reader.requireScorer(.read, experimentID: e, name: name) }
        #expect(throws: TrackingError.self) { try reader.requireScorer(.update, experimentID: e, name: name) }
        #expect(throws: TrackingError.self) { try reader.requireScorer(.delete, experimentID: e, name: name, version: 1) }
        let manager = g(.read, [(.experiment(e), .manage)])
        #expect(throws: Never.self) { try manager.requireScorer(.delete, experimentID: e, name: name) }
        #expect(!g(.read, [(.experiment(e), .deny)]).canRead(scorer: name, experimentID: e))
        // A grant on the scorer decides; DENY on it or on every scorer closes it.
        let own = g(.read, [(.experiment(e), .read), (scorer, .manage)])
        #expect(throws: Never.self) { try own.requireScorer(.delete, experimentID: e, name: name) }
        #expect(throws: TrackingError.self) { try g(.read, [(.experiment(e), .edit), (scorer, .deny)]).requireScorer(.update, experimentID: e, name: name) }
        #expect(throws: TrackingError.self) { try g(.read, [(Resource(.scorer, "*"), .deny)]).requireScorer(.read, experimentID: e, name: name) }
        // The version tier: its grant governs deletes of versions, DENY on it closes reads.
        let versions = g(.read, [(.experiment(e), .read), (Resource(.scorerVersion, "*"), .manage)])
        #expect(throws: Never.self) { try versions.requireScorer(.delete, experimentID: e, name: name, version: 2) }
        #expect(throws: TrackingError.self) { try versions.requireScorer(.delete, experimentID: e, name: name) }
        #expect(throws: TrackingError.self) { try g(.read, [(Resource(.scorerVersion, "*"), .deny)]).requireScorer(.read, experimentID: e, name: name) }
        #expect(!g(.read, [(Resource(.scorerVersion, "*"), .deny)]).canRead(scorer: name, experimentID: e))
    }

    @Test func concurrentRegistrationsThroughTwoServers() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("scc", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let versions = Mutex<[Int64]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for _ in 0..<5 {
                let v = try! servers[i % 2].registerScorer(experimentID: "0", name: "shared", serialized: #"{"by": \#(i)}"#)
                versions.withLock { $0.append(v.version) }
            }
        }
        #expect(versions.withLock { $0.sorted() } == Array(1...40))
        #expect(try servers[1].scorerVersions(experimentID: "0", name: "shared").map(\.version) == Array(1...40))
    }
}
