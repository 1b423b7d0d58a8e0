import Dispatch
import Synchronization
import Testing
@testable import TallyTracking

/// MLflow 3's evaluation datasets on both backends: datasets, tags and experiments; records merged by their inputs,
/// the schema and profile MLflow derives from them, pages and deletes; the search grammar; the JSON text Python
/// writes (golden values from Python 3.11 and a real MLflow 3.17 server); two servers upserting at once.
@Suite struct EvaluationDatasetTests {
    /// The time of MLflow's example whose digest the spec captured: `sha256("ds1:1796464272589")[:8]` = `9a584276`.
    static let mlflowTime: Int64 = 1_796_464_272_589

    @Test func pythonDumpsAsPythonWritesIt() throws {
        func dumps(_ json: String, sorted: Bool = false) throws -> String { try JSONParser.parse(Array(json.utf8)).pythonDumps(sortKeys: sorted) }
        // Each expected text is what Python 3.11 printed for json.dumps(json.loads(input)) (and with sort_keys=True).
        let mixed = #"{"b":[1,2.5,{"z":null,"a":true}],"a":"é\u2028\ud83d\ude00","c":1E5,"d":-0,"e":1e-7,"f":123456789012345678901234567890,"g":0.1}"#
        #expect(try dumps(mixed) == #"{"b": [1, 2.5, {"z": null, "a": true}], "a": "\u00e9\u2028\ud83d\ude00", "c": 100000.0, "d": 0, "e": 1e-07, "f": 123456789012345678901234567890, "g": 0.1}"#)
        #expect(try dumps(mixed, sorted: true) == #"{"a": "\u00e9\u2028\ud83d\ude00", "b": [1, 2.5, {"a": true, "z": null}], "c": 100000.0, "d": 0, "e": 1e-07, "f": 123456789012345678901234567890, "g": 0.1}"#)
        #expect(try dumps(#"{"k":1,"k":2,"j":3}"#) == #"{"k": 2, "j": 3}"#)  // a repeated key: its first place, its last value
        #expect(try dumps(#"{"k":1,"k":2,"j":3}"#, sorted: true) == #"{"j": 3, "k": 2}"#)
        #expect(try dumps(#""x\"y\\\n\u007f""#) == #""x\"y\\\n\u007f""#)
        #expect(try dumps("[NaN, Infinity, -Infinity, 1e999]") == "[NaN, Infinity, -Infinity, Infinity]")
        #expect(try dumps("[-0.0, 0.0, -0, 0e0, -0E5]") == "[-0.0, 0.0, 0, 0.0, -0.0]")
        #expect(try dumps(#""a\bb\fc\u0001\u2028""#) == #""a\bb\fc\u0001\u2028""#)  // Python's short escapes for \b and \f
        for bad in ["01", "-012", "[00]"] { #expect(throws: JSONSyntaxError.self) { _ = try dumps(bad) } }  // as Python's json refuses them
        // MLflow's record identity: sha256(json.dumps(inputs, sort_keys=True)), keys in any order.
        let hash = try TrackingService.recordInputs(#"[{"inputs": {"q": "a", "n": 1}}, {"inputs": {"n": 1, "q": "a"}}, {}]"#).map(\.inputHash)
        #expect(hash[0] == "0ec0629e470471df5b925063287e0e9ed2c9f19496c9ebee2d4eb716fe0a6055" && hash[1] == hash[0])
        #expect(hash[2] == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")  // no inputs: {}
    }

    @Test(arguments: Backend.all) func datasetsTagsAndExperiments(_ backend: Backend) throws {
        let f = try Fixture("eds", clock: { EvaluationDatasetTests.mlflowTime }, backend: backend)
        let s = f.service
        let e1 = try s.createExperiment(name: "e1"), e2 = try s.createExperiment(name: "e2")
        let (d, linked) = try s.createDataset(name: "ds1", experimentIDs: [e1, e2, e1],
                                              tags: #"{"mlflow.user": "alice", "k": "v", "n": 5, "b": true, "none": null}"#)
        #expect(d.id.hasPrefix("d-") && d.id.count == 34 && linked == [e1, e2])
        #expect(d.digest == "9a584276" && d.createdTime == Self.mlflowTime && d.lastUpdateTime == Self.mlflowTime)
        #expect(d.createdBy == "alice" && d.lastUpdatedBy == "alice" && d.schema == nil && d.profile == nil)
        #expect(d.tags == [DatasetTag(key: "mlflow.user", value: "alice"), DatasetTag(key: "k", value: "v"), DatasetTag(key: "n", value: "5"),
                           DatasetTag(key: "b", value: "True"), DatasetTag(key: "none", value: nil)])
        #expect(try s.dataset(id: d.id) == d && s.datasetExperimentIDs(id: d.id) == [e1, e2])
        // An experiment id as MLflow reads it (`0\(e1)` is e1), linked once; keys that differ only by normalization are two.
        let (spelled, links) = try s.createDataset(name: "spelled", experimentIDs: ["0" + e1, e1], tags: #"{"\u00e9": "1", "e\u0301": "2"}"#)
        #expect(try links == [e1] && spelled.tags.count == 2 && s.datasetExperimentIDs(id: spelled.id) == [e1])
        #expect(try s.searchDatasets(experimentIDs: ["0" + e1], filter: "tags.e\u{301} = '2'", maxResults: nil, orderBy: [], pageToken: nil).items.map(\.id) == [spelled.id])
        // A search naming more experiments than a statement can bind: no trap, the same answer.
        #expect(try s.searchDatasets(experimentIDs: (0..<40_000).map(String.init), filter: nil, maxResults: nil, orderBy: [], pageToken: nil).items.count == 2)
        try s.deleteDataset(id: spelled.id)

        // Tags: merged key by key (a key already there keeps its place), null left as it is, deleted.
        try s.setDatasetTags(id: d.id, tags: #"{"k": "w", "new": 1.5, "mlflow.user": null}"#)
        #expect(try s.dataset(id: d.id).tags.map { "\($0.key)=\($0.value ?? "nil")" } == ["mlflow.user=alice", "k=w", "n=5", "b=True", "none=nil", "new=1.5"])
        try s.deleteDatasetTag(id: d.id, key: "n")
        try s.deleteDatasetTag(id: d.id, key: "n")  // no error, as in MLflow
        #expect(try s.dataset(id: d.id).tags.map(\.key) == ["mlflow.user", "k", "b", "none", "new"])

        // Experiments: added once each, removed; the dataset marked updated.
        let e3 = try s.createExperiment(name: "e3")
        _ = try s.addDatasetExperiments(id: d.id, experimentIDs: [e3, e1])
        #expect(try s.datasetExperimentIDs(id: d.id) == [e1, e2, e3])
        _ = try s.removeDatasetExperiments(id: d.id, experimentIDs: [e2, "999"])
        #expect(try s.datasetExperimentIDs(id: d.id) == [e1, e3])

        // MLflow's errors.
        expectError(.invalidParameterValue, "Missing value for required parameter 'name'") { _ = try s.createDataset(name: "", experimentIDs: [], tags: nil) }
        expectError(.resourceDoesNotExist, "No Experiment with id=999") { _ = try s.createDataset(name: "x", experimentIDs: ["999"], tags: nil) }
        expectError(.invalidParameterValue, "expected the text of a JSON object") { _ = try s.createDataset(name: "x", experimentIDs: [], tags: "[1]") }
        expectError(.invalidParameterValue, "not JSON") { _ = try s.createDataset(name: "x", experimentIDs: [], tags: "{") }
        expectError(.resourceDoesNotExist, "Evaluation dataset with id 'd-nope' not found") { _ = try s.dataset(id: "d-nope") }
        expectError(.resourceDoesNotExist, "Could not find evaluation dataset with ID d-nope") { try s.setDatasetTags(id: "d-nope", tags: "{}") }
        expectError(.invalidParameterValue, "Missing value for required parameter 'tags'") { try s.setDatasetTags(id: d.id, tags: nil) }
        expectError(.resourceDoesNotExist, "Dataset 'd-nope' not found") { _ = try s.addDatasetExperiments(id: "d-nope", experimentIDs: []) }
        expectError(.resourceDoesNotExist, "No Experiment with id=998") { _ = try s.addDatasetExperiments(id: d.id, experimentIDs: ["998"]) }

        // Deleted with its tags, records and links; a second delete is no error.
        _ = try s.upsertDatasetRecords(id: d.id, records: #"[{"inputs": {"q": 1}}]"#)
        try s.deleteDataset(id: d.id)
        try s.deleteDataset(id: d.id)
        expectError(.resourceDoesNotExist, "not found") { _ = try s.dataset(id: d.id) }
        #expect(try s.datasetExperimentIDs(id: d.id).isEmpty && s.datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items.isEmpty)
        // An experiment deleted keeps its datasets (MLflow leaves the links).
        let (kept, _) = try s.createDataset(name: "kept", experimentIDs: [e3], tags: nil)
        try s.deleteExperiment(id: e3)
        #expect(try s.datasetExperimentIDs(id: kept.id) == [e3])
    }

    @Test(arguments: Backend.all) func recordsMergeByTheirInputs(_ backend: Backend) throws {
        let now = Atomic<Int64>(1_000)
        let f = try Fixture("edr", clock: { now.add(1, ordering: .relaxed).newValue }, backend: backend)
        let s = f.service
        let (d, _) = try s.createDataset(name: "qa", experimentIDs: ["0"], tags: #"{"mlflow.user": "alice"}"#)
        // MLflow's example (the spec's capture): the second record has the first's inputs in another order.
        let first = try s.upsertDatasetRecords(id: d.id, records: #"""
            [{"inputs": {"q": "a", "n": 1}, "expectations": {"ans": "A"}, "tags": {"t": "1"}},
             {"inputs": {"n": 1, "q": "a"}, "expectations": {"x": 2}},
             {"inputs": {"q": "c"}, "outputs": {"o": [1, 2]}, "tags": {"mlflow.user": "bob"}, "source": {"source_type": "human", "source_data": {"source_id": "h1"}}}]
            """#)
        #expect(first == (inserted: 2, updated: 1))
        var stored = try s.dataset(id: d.id)
        #expect(stored.schema == #"{"inputs": {"q": "string", "n": "integer"}, "outputs": {"o": "array"}, "expectations": {"ans": "string", "x": "integer"}, "version": "1.0"}"#)
        #expect(stored.profile == #"{"num_records": 2}"# && stored.lastUpdatedBy == "bob" && stored.createdBy == "alice")
        #expect(stored.digest == TrackingService.datasetDigest(name: "qa", time: stored.lastUpdateTime) && stored.digest != d.digest)
        var records = try s.datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items
        #expect(records.count == 2 && records.allSatisfy { $0.id.hasPrefix("dr-") && $0.id.count == 35 })
        let a = try #require(records.first { $0.inputs["q"] == .string("a") }), c = try #require(records.first { $0.inputs["q"] == .string("c") })
        #expect(a.expectations == .object([("ans", .string("A")), ("x", .number("2"))]) && a.tags == .object([("t", .string("1"))]))
        #expect(a.outputs == .object([]) && a.source == nil && a.createdBy == nil)  // outputs not sent: {}, as MLflow stores them
        #expect(c.sourceType == "HUMAN" && c.sourceID == "h1" && c.createdBy == "bob" && c.lastUpdatedBy == "bob")
        #expect(c.source == .object([("source_type", .string("HUMAN")), ("source_data", .object([("source_id", .string("h1"))]))]))

        // A merge: outputs replaced (null clears), expectations and tags merged, inputs and source kept; types already
        // in the schema stay, new ones are added; outputs of another shape after object outputs add nothing.
        #expect(try s.upsertDatasetRecords(id: d.id, records: #"""
            [{"inputs": {"q": "c"}, "outputs": null, "expectations": {"e": 1.5}, "tags": {"mlflow.user": "carol", "u": true}},
             {"inputs": {"q": "d", "flag": false, "none": null}, "outputs": "text", "expectations": NaN, "tags": NaN}]
            """#) == (inserted: 1, updated: 1))
        stored = try s.dataset(id: d.id)
        #expect(stored.schema == #"{"inputs": {"q": "string", "n": "integer", "flag": "boolean", "none": "null"}, "outputs": {"o": "array"}, "expectations": {"ans": "string", "x": "integer", "e": "float"}, "version": "1.0"}"#)
        #expect(stored.profile == #"{"num_records": 3}"# && stored.lastUpdatedBy == "carol")
        records = try s.datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items
        let merged = try #require(records.first { $0.inputs["q"] == .string("c") })
        #expect(merged.outputs == nil && merged.expectations == .object([("e", .number("1.5"))]) && merged.lastUpdatedBy == "carol" && merged.createdBy == "bob")
        #expect(merged.tags == .object([("mlflow.user", .string("carol")), ("u", .bool(true))]) && merged.sourceID == "h1")
        #expect(records.first { $0.inputs["q"] == .string("d") }?.outputs == .string("text"))
        // An upsert without mlflow.user keeps the dataset's last author (MLflow clears it).
        _ = try s.upsertDatasetRecords(id: d.id, records: #"[{"inputs": {"q": "e"}}]"#)
        #expect(try s.dataset(id: d.id).lastUpdatedBy == "carol")

        // Pages: oldest first, MLflow's token (base64 of time:id); a bare number skips that many.
        let all = try s.datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items
        #expect(all.count == 4 && all == all.sorted { ($0.createdTime, $0.id) < ($1.createdTime, $1.id) })
        var pages: [[String]] = [], token: String?
        repeat {
            let page = try s.datasetRecords(id: d.id, maxResults: 3, pageToken: token)
            pages.append(page.items.map(\.id))
            token = page.nextPageToken
        } while token != nil
        #expect(pages == [Array(all.prefix(3).map(\.id)), [all[3].id]])
        #expect(try s.datasetRecords(id: d.id, maxResults: 0, pageToken: "1").items.map(\.id) == all.dropFirst().map(\.id))
        expectError(.invalidParameterValue, "Invalid page token") { _ = try s.datasetRecords(id: d.id, maxResults: nil, pageToken: "garbage!!") }
        expectError(.invalidParameterValue, "It must be a positive integer") { _ = try s.datasetRecords(id: d.id, maxResults: -1, pageToken: nil) }

        // Deletes: only this dataset's records, the profile recounted.
        #expect(try s.deleteDatasetRecords(id: d.id, recordIDs: [all[0].id, all[0].id, "dr-unknown"]) == 1)
        #expect(try s.dataset(id: d.id).profile == #"{"num_records": 3}"#)
        #expect(try s.deleteDatasetRecords(id: "d-nope", recordIDs: [all[1].id]) == 0)

        // Bad records: refused whole, with what is wrong.
        expectError(.invalidParameterValue, "Missing value for required parameter 'records'") { _ = try s.upsertDatasetRecords(id: d.id, records: nil) }
        expectError(.invalidParameterValue, "expected the text of a JSON list") { _ = try s.upsertDatasetRecords(id: d.id, records: #"{"a": 1}"#) }
        expectError(.invalidParameterValue, "record 1 is not a JSON object") { _ = try s.upsertDatasetRecords(id: d.id, records: #"[{}, 3]"#) }
        expectError(.invalidParameterValue, "record 0's 'inputs' must be a JSON object") { _ = try s.upsertDatasetRecords(id: d.id, records: #"[{"inputs": 1}]"#) }
        expectError(.invalidParameterValue, "Invalid dataset record source type: BOGUS. Valid source types: ['UNSPECIFIED', 'TRACE', 'HUMAN', 'DOCUMENT', 'CODE']") {
            _ = try s.upsertDatasetRecords(id: d.id, records: #"[{"inputs": {"z": 1}}, {"inputs": {"y": 1}, "source": {"source_type": "bogus"}}]"#)
        }
        #expect(try s.datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items.count == 3)  // nothing of the refused request
        expectError(.resourceDoesNotExist, "Evaluation dataset with id 'd-nope' not found") {
            _ = try s.upsertDatasetRecords(id: "d-nope", records: #"[{"inputs": {}}]"#)
        }
        // A trace's record: its source id is the trace's.
        _ = try s.upsertDatasetRecords(id: d.id, records: #"[{"inputs": {"t": 1}, "source": {"source_type": "TRACE", "source_data": {"trace_id": "tr-1"}}}]"#)
        #expect(try s.datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items.last?.sourceID == "tr-1")
    }

    @Test(arguments: Backend.all) func searchFiltersOrdersAndPages(_ backend: Backend) throws {
        let now = Atomic<Int64>(1_000)
        let f = try Fixture("edq", clock: { now.add(10, ordering: .relaxed).newValue }, backend: backend)
        let s = f.service
        let e1 = try s.createExperiment(name: "e1"), e2 = try s.createExperiment(name: "e2")
        var ids: [String: String] = [:]
        for (name, exp, user, env) in [("beta", e1, "u1", "prod"), ("alpha", e1, "u2", "dev"), ("Gamma", e2, "u1", "prod"), ("delta", e2, "u3", "")] {
            let tags = env.isEmpty ? #"{"mlflow.user": "\#(user)"}"# : #"{"mlflow.user": "\#(user)", "env": "\#(env)"}"#
            ids[name] = try s.createDataset(name: name, experimentIDs: [exp], tags: tags).0.id
        }
        func names(_ filter: String?, experiments: [String] = [], order: [String] = []) throws -> [String] {
            try s.searchDatasets(experimentIDs: experiments, filter: filter, maxResults: nil, orderBy: order, pageToken: nil).items.map(\.name)
        }
        #expect(try names(nil) == ["delta", "Gamma", "alpha", "beta"])  // newest first
        #expect(try names(nil, experiments: [e1]) == ["alpha", "beta"])
        #expect(try names(nil, order: ["name ASC"]) == ["Gamma", "alpha", "beta", "delta"])  // by bytes
        #expect(try names(nil, order: ["`name` desc"]) == ["delta", "beta", "alpha", "Gamma"])
        #expect(try names(nil, order: ["created_time"]) == ["beta", "alpha", "Gamma", "delta"])
        #expect(try names("name LIKE '%a'", order: ["name"]) == ["Gamma", "alpha", "beta", "delta"])
        #expect(try names("name LIKE 'g%'") == [] && names("name ILIKE 'g%'") == ["Gamma"])
        #expect(try names("name IN ('alpha', 'delta')", order: ["name"]) == ["alpha", "delta"])
        #expect(try names("name > 'alpha'", order: ["name"]) == ["beta", "delta"] && names("name <= 'alpha'", order: ["name"]) == ["Gamma", "alpha"])
        expectError(.invalidParameterValue, "Invalid comparator for tag: IS NULL") { _ = try names("tags.env IS NULL") }
        expectError(.invalidParameterValue, "Invalid value for numeric attribute 'created_time': '1.5'") { _ = try names("created_time > 1.5") }
        #expect(try names("tags.env = 'prod'", order: ["name"]) == ["Gamma", "beta"])
        #expect(try names("tags.env != 'prod'") == ["alpha"])  // a dataset without the tag never matches
        #expect(try names("tags.mlflow.user = 'u1' AND created_by = 'u1'", order: ["name"]) == ["Gamma", "beta"])
        let alphaTime = try s.dataset(id: ids["alpha"]!).createdTime
        #expect(try names("created_time > \(alphaTime)", order: ["name"]) == ["Gamma", "delta"])
        let page1 = try s.searchDatasets(experimentIDs: [], filter: nil, maxResults: 3, orderBy: ["name"], pageToken: nil)
        let page2 = try s.searchDatasets(experimentIDs: [], filter: nil, maxResults: 3, orderBy: ["name"], pageToken: page1.nextPageToken)
        #expect(page1.items.map(\.name) == ["Gamma", "alpha", "beta"] && page2.items.map(\.name) == ["delta"] && page2.nextPageToken == nil)

        expectError(.invalidParameterValue, "Invalid attribute key 'foo' specified") { _ = try names("foo = 'x'") }
        expectError(.invalidParameterValue, "Invalid identifier token 'params' specified") { _ = try names("params.x = 'x'") }
        expectError(.invalidParameterValue, "Invalid comparator") { _ = try names("tags.env IN ('x')") }
        expectError(.invalidParameterValue, "Invalid attribute key 'created_by' specified") { _ = try names(nil, order: ["created_by"]) }
        expectError(.invalidParameterValue, "It must be a positive integer") {
            _ = try s.searchDatasets(experimentIDs: [], filter: nil, maxResults: 0, orderBy: [], pageToken: nil)
        }
        expectError(.invalidParameterValue, "It must be at most 50000") {
            _ = try s.searchDatasets(experimentIDs: [], filter: nil, maxResults: 50001, orderBy: [], pageToken: nil)
        }
        // A caller sees only datasets whose every experiment they may read.
        _ = try s.addDatasetExperiments(id: ids["alpha"]!, experimentIDs: [e2])
        let grants = Grants(defaultPermission: .noPermissions, grants: [Grant(resource: .experiment(e1), permission: .read)])
        #expect(try s.searchDatasets(experimentIDs: [], filter: nil, maxResults: nil, orderBy: [], pageToken: nil, scope: grants).items.map(\.name) == ["beta"])
        #expect(try s.metadata.datasetExperimentIDs(ids: [ids["alpha"]!, ids["beta"]!, "d-unknown"]) == [ids["alpha"]!: [e1, e2], ids["beta"]!: [e1]])
    }

    /// Two servers of one database upserting the same inputs at once: one record each, every request counted once
    /// as an insert or an update, the profile exact (each upsert holds the dataset's row).
    @Test func concurrentUpsertsThroughTwoServers() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("edc", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let (d, _) = try servers[0].createDataset(name: "shared", experimentIDs: ["0"], tags: nil)
        let counts = Mutex<(Int, Int)>((0, 0))
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for k in 0..<5 {
                let r = try! servers[i % 2].upsertDatasetRecords(id: d.id, records: #"[{"inputs": {"k": \#(k)}, "tags": {"by\#(i)": 1}}]"#)
                counts.withLock { $0.0 += r.inserted; $0.1 += r.updated }
            }
        }
        #expect(counts.withLock { $0 } == (5, 35))
        let records = try servers[1].datasetRecords(id: d.id, maxResults: nil, pageToken: nil).items
        #expect(records.count == 5 && records.allSatisfy { $0.tags.pythonMembers.count == 8 })
        #expect(try servers[1].dataset(id: d.id).profile == #"{"num_records": 5}"#)
    }
}
