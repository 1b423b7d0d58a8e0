import Dispatch
import Synchronization
import Testing
@testable import TallyTracking

/// MLflow 3's traces on both backends: a trace's info stored and sent again, the search grammar, orders and pages,
/// tags, deletes and assessments, and traces seen at once by another server of a shared database.
@Suite struct TraceTests {
    static func trace(_ n: Int, experiment: String = "0", time: Int64 = 1_700_000_000_000, duration: Int64? = 250, state: TraceState = .ok,
                      tags: [KeyValue] = [], metadata: [KeyValue] = []) -> TraceInfo {
        TraceInfo(traceID: id(n), experimentID: experiment, requestTime: time, executionDuration: duration, state: state,
                  requestPreview: "q\(n)", metadata: metadata, tags: tags)
    }

    static func id(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        return "tr-" + String(repeating: "0", count: 32 - hex.count) + hex
    }

    static func feedback(_ trace: Int, _ name: String, _ value: String, overrides: String? = nil) -> Assessment {
        Assessment(id: "", traceID: id(trace), name: name, kind: .feedback, createTime: 0, lastUpdateTime: 0, overrides: overrides, value: value,
                   body: #"{"feedback": {"value": \#(value)}}"#)
    }

    @Test(arguments: Backend.all) func startTraceStoresAndUpdates(_ backend: Backend) throws {
        let f = try Fixture("tr", backend: backend)
        let s = f.service
        var t = Self.trace(1, tags: [KeyValue(key: "mlflow.traceName", value: "chat"), KeyValue(key: TraceKeys.spansLocation, value: "TRACKING_STORE")],
                           metadata: [KeyValue(key: "mlflow.sourceRun", value: "r1")])
        t.assessments = [Self.feedback(1, "quality", "0.5")]
        let stored = try s.startTrace(t)
        #expect(stored.tag(TraceKeys.artifactLocation) == "mlflow-artifacts:/0/traces/\(Self.id(1))/artifacts")
        #expect(stored.tag(TraceKeys.spansLocation) == nil, "no span came over OTLP: readers fetch them from the artifact store")
        #expect(stored.metadata(TraceKeys.infoFinalized) == "true" && stored.metadata("mlflow.sourceRun") == "r1")
        #expect(stored.requestTime == t.requestTime && stored.executionDuration == 250 && stored.state == .ok && stored.requestPreview == "q1")
        #expect(stored.assessments.count == 1 && stored.assessments[0].id.hasPrefix("a-") && stored.assessments[0].createTime == 1_700_000_000_000)

        // Sent again (a client retrying): fields replaced (previews not sent are kept), tags and metadata upserted, the
        // assessment kept once.
        var again = t
        again.requestPreview = nil
        again.state = .error
        again.tags = [KeyValue(key: "team", value: "a")]
        again.assessments = stored.assessments
        let updated = try s.startTrace(again)
        #expect(updated.state == .error && updated.tag("team") == "a" && updated.tag("mlflow.traceName") == "chat" && updated.assessments.count == 1)
        #expect(updated.requestPreview == "q1")
        // Times an imported database may hold are kept within what RFC 3339 writes.
        let far = try s.startTrace(Self.trace(7, time: Int64.max, duration: Int64.max))
        #expect(far.requestTime == TraceInfo.maxTime && far.executionDuration == TraceInfo.maxDuration)

        let other = try s.createExperiment(name: "other")
        expectError(.resourceAlreadyExists, "already exists in another experiment") { _ = try s.startTrace(Self.trace(1, experiment: other)) }
        expectError(.resourceDoesNotExist, "No Experiment with id=999 exists") { _ = try s.startTrace(Self.trace(2, experiment: "999")) }
        try s.deleteExperiment(id: other)
        expectError(.invalidParameterValue, "must be in the 'active' state") { _ = try s.startTrace(Self.trace(3, experiment: other)) }
        expectError(.invalidParameterValue, "Missing value for required parameter 'trace_id'") { _ = try s.startTrace(TraceInfo(traceID: "", experimentID: "0", requestTime: 0, state: .ok)) }
        expectError(.resourceDoesNotExist, "Trace with ID '\(Self.id(9))' not found.") { _ = try s.traceInfo(id: Self.id(9)) }
    }

    /// Twelve traces: names chat/embed/rerank, teams a/b, a priority on every fourth, every fifth an error, six
    /// distinct start times, durations 0–3 s (none on the last), feedback on every third.
    static func seeded(_ s: TrackingService) throws {
        for i in 0..<12 {
            var tags = [KeyValue(key: TraceKeys.traceName, value: ["chat", "embed", "rerank"][i % 3]), KeyValue(key: "team", value: ["a", "b"][i % 2])]
            if i % 4 == 0 { tags.append(KeyValue(key: "priority", value: String(i))) }
            var t = trace(i + 1, time: 1_700_000_000_000 + Int64(i % 6) * 1000, duration: i == 11 ? nil : Int64(i % 4) * 1000 + Int64(i * 7),
                          state: i % 5 == 0 ? .error : .ok, tags: tags,
                          metadata: [KeyValue(key: TraceKeys.sourceRun, value: "run-\(i % 3)"), KeyValue(key: "mlflow.user", value: "user\(i % 2)")])
            if i % 3 == 0 { t.assessments = [feedback(i + 1, "quality", String(Double(i) / 10))] }
            _ = try s.startTrace(t)
        }
    }

    static func ids(_ s: TrackingService, _ filter: String?, order: [String] = [], max: Int64? = nil) throws -> [Int] {
        try s.searchTraces(experimentIDs: ["0"], filter: filter, maxResults: max, orderBy: order, pageToken: nil).items.map { Int($0.traceID.dropFirst(3), radix: 16)! }
    }

    @Test(arguments: Backend.all) func searchFiltersOrdersAndPages(_ backend: Backend) throws {
        let f = try Fixture("trs", backend: backend)
        let s = f.service
        try Self.seeded(s)
        // Newest first, ties by id.
        #expect(try Self.ids(s, nil) == [6, 12, 5, 11, 4, 10, 3, 9, 2, 8, 1, 7])
        #expect(try Self.ids(s, "trace.status = 'ERROR'") == [6, 11, 1])
        #expect(try Self.ids(s, "tags.team = 'a' AND trace.name = 'chat'", order: ["request_id"]) == [1, 7])
        #expect(try Self.ids(s, "trace.name IN ('embed', 'rerank') AND tags.team = 'b'", order: ["request_id"]) == [2, 6, 8, 12])
        #expect(try Self.ids(s, "tags.priority IS NOT NULL", order: ["request_id"]) == [1, 5, 9])
        #expect(try Self.ids(s, "tags.priority IS NULL").count == 9)
        #expect(try Self.ids(s, "tags.team RLIKE '^(a|x)$' AND trace.timestamp_ms >= 1700000004000", order: ["request_id"]) == [5, 11])
        #expect(try Self.ids(s, "tags.team ILIKE 'A'").count == 6 && Self.ids(s, "tags.team LIKE 'A'").isEmpty)
        #expect(try Self.ids(s, "metadata.`mlflow.user` = 'user1' AND attribute.run_id = 'run-1'", order: ["request_id"]) == [2, 8])
        #expect(try Self.ids(s, "trace.execution_time_ms > 3000", order: ["request_id"]) == [4, 8])
        #expect(try Self.ids(s, "trace.end_time_ms < 1700000000100", order: ["request_id"]) == [1])
        #expect(try Self.ids(s, "trace.end_time_ms = 1700000005000") == [12])  // no duration: it ends when it starts, as in MLflow
        #expect(try Self.ids(s, "trace.timestamp_ms < 10000000000000000000").count == 12)  // past Int64: decided by the service
        #expect(try Self.ids(s, "feedback.quality > 0.5", order: ["request_id"]) == [7, 10])
        #expect(try Self.ids(s, "feedback.quality = '0.3'") == [4] && Self.ids(s, "feedback.quality IS NULL").count == 8)
        #expect(try Self.ids(s, "expectation.quality IS NOT NULL").isEmpty)
        // Orders: a missing value last either way; MLflow's ties after the given keys.
        #expect(try Self.ids(s, nil, order: ["execution_time_ms DESC"]).suffix(1) == [12])
        #expect(try Self.ids(s, nil, order: ["tags.priority DESC"]).prefix(3) == [9, 5, 1])
        #expect(try Self.ids(s, "trace.status = 'ERROR'", order: ["name ASC"]) == [1, 11, 6])
        // Pages.
        var seen: [String] = [], token: String?
        repeat {
            let page = try s.searchTraces(experimentIDs: ["0", "404"], filter: nil, maxResults: 5, orderBy: ["request_id"], pageToken: token)
            seen += page.items.map(\.traceID)
            token = page.nextPageToken
        } while token != nil
        #expect(seen == (1...12).map(Self.id))
        #expect(try s.searchTraces(experimentIDs: [], filter: nil, maxResults: nil, orderBy: [], pageToken: nil).items.isEmpty)
        // Refusals.
        expectError(.invalidParameterValue, "It must be a positive integer") { _ = try Self.ids(s, nil, max: 0) }
        expectError(.invalidParameterValue, "It must be at most 500") { _ = try Self.ids(s, nil, max: 501) }
        expectError(.invalidParameterValue, "Invalid attribute key 'foo'") { _ = try Self.ids(s, "foo = 'bar'") }
        // Span clauses search spans sent over OTLP (SpanTests): these traces have none.
        #expect(try Self.ids(s, "span.name = 'x'").isEmpty && Self.ids(s, "trace.text LIKE '%x%'").isEmpty)
        expectError(.invalidParameterValue, "Invalid regular expression") { _ = try Self.ids(s, "tags.team RLIKE '('") }
        expectError(.invalidParameterValue, "Expected numeric value type for assessment") { _ = try Self.ids(s, "feedback.quality > 'x'") }
        expectError(.invalidParameterValue, "Invalid comparator 'IN' not one of") {
            _ = try Self.ids(s, "trace.timestamp_ms IN ('1')")
        }
        expectError(.invalidParameterValue, "`order_by` contains duplicate fields") { _ = try Self.ids(s, nil, order: ["status", "status ASC"]) }
        expectError(.invalidParameterValue, "Invalid order_by entity `feedback`") { _ = try Self.ids(s, nil, order: ["feedback.quality"]) }
        expectError(.invalidParameterValue, "Invalid experiment ID 'x'") {
            _ = try s.searchTraces(experimentIDs: ["x"], filter: nil, maxResults: nil, orderBy: [], pageToken: nil)
        }
    }

    @Test(arguments: Backend.all) func tagsDeletesAndAssessments(_ backend: Backend) throws {
        let f = try Fixture("trt", backend: backend)
        let s = f.service
        try Self.seeded(s)
        try s.setTraceTag(id: Self.id(1), key: "k", value: "v")
        #expect(try s.traceInfo(id: Self.id(1)).tag("k") == "v")
        try s.deleteTraceTag(id: Self.id(1), key: "k")
        expectError(.resourceDoesNotExist, "No trace tag with key 'k' for trace with ID '\(Self.id(1))'") { try s.deleteTraceTag(id: Self.id(1), key: "k") }
        expectError(.resourceDoesNotExist, "Trace with ID '\(Self.id(99))' not found.") { try s.setTraceTag(id: Self.id(99), key: "k", value: "v") }
        expectError(.invalidParameterValue, "Missing value for required parameter 'key'") { try s.setTraceTag(id: Self.id(1), key: "", value: "v") }
        for key in [TraceKeys.artifactLocation, TraceKeys.spansLocation] {
            expectError(.invalidParameterValue, "Tag '\(key)' is immutable") { try s.setTraceTag(id: Self.id(1), key: key, value: "mlflow-artifacts:/") }
            expectError(.invalidParameterValue, "Tag '\(key)' is immutable") { try s.deleteTraceTag(id: Self.id(1), key: key) }
        }

        // Assessments: created with an id and times, overridden (the first then invalid), updated by mask, deleted.
        let a = try s.createAssessment(Self.feedback(2, "helpful", "true"), kind: .feedback)
        #expect(a.id.hasPrefix("a-") && a.id.count == 34 && a.valid && a.createTime == 1_700_000_000_000)
        let o = try s.createAssessment(Self.feedback(2, "helpful", "false", overrides: a.id), kind: .feedback)
        let both = try s.traceInfo(id: Self.id(2)).assessments
        #expect(both.first { $0.id == a.id }?.valid == false && both.first { $0.id == o.id }?.overrides == a.id)
        #expect(try Self.ids(s, "feedback.helpful = 'false'") == [2] && Self.ids(s, "feedback.helpful = 'true'").isEmpty)
        expectError(.invalidParameterValue, "Unknown assessment type: None") { _ = try s.createAssessment(Self.feedback(2, "x", "1"), kind: nil) }
        expectError(.resourceDoesNotExist, "Trace with ID '\(Self.id(99))' not found.") { _ = try s.createAssessment(Self.feedback(99, "x", "1"), kind: .feedback) }
        expectError(.resourceDoesNotExist, "Assessment with ID 'a-nope' not found") {
            _ = try s.createAssessment(Self.feedback(2, "x", "1", overrides: "a-nope"), kind: .feedback)
        }
        let mask = try TrackingService.assessmentMask("assessmentName, rationale,feedback,spanId")
        #expect(mask == ["assessment_name", "rationale", "feedback"])
        let u = try s.updateAssessment(traceID: Self.id(2), id: o.id, mask: mask) { $0.name = "useful"; $0.value = "1"; $0.id = "a-other" }
        #expect(u.id == o.id && u.name == "useful" && u.value == "1" && u.createTime == o.createTime)
        #expect(try s.assessment(traceID: Self.id(2), id: o.id) == u)
        expectError(.invalidParameterValue, "Cannot update expectation value on a Feedback assessment.") {
            _ = try s.updateAssessment(traceID: Self.id(2), id: o.id, mask: ["expectation"]) { _ in }
        }
        expectError(.invalidParameterValue, "Missing value for required parameter 'update_mask'") { _ = try TrackingService.assessmentMask("") }
        expectError(.resourceDoesNotExist, "Trace with request_id '\(Self.id(99))' not found") { _ = try s.assessment(traceID: Self.id(99), id: o.id) }
        try s.deleteAssessment(traceID: Self.id(2), id: o.id)
        #expect(try s.assessment(traceID: Self.id(2), id: a.id).valid, "the overridden one is valid again once its override is gone")
        try s.deleteAssessment(traceID: Self.id(2), id: o.id)
        expectError(.resourceDoesNotExist, "Assessment with ID '\(o.id)' not found for trace '\(Self.id(2))'") { _ = try s.assessment(traceID: Self.id(2), id: o.id) }

        // Deletes: by id (another experiment's id counts for nothing), then the oldest at or before a time.
        expectError(.invalidParameterValue, "Either `max_timestamp_millis` or `trace_ids` must be specified.") {
            _ = try s.deleteTraces(experimentID: "0", maxTimestamp: nil, maxTraces: nil, ids: nil)
        }
        expectError(.invalidParameterValue, "Only one of `max_timestamp_millis` and `trace_ids` can be specified.") {
            _ = try s.deleteTraces(experimentID: "0", maxTimestamp: 1, maxTraces: nil, ids: ["x"])
        }
        expectError(.invalidParameterValue, "Missing value for required parameter 'experiment_id'") {
            _ = try s.deleteTraces(experimentID: nil, maxTimestamp: 1, maxTraces: nil, ids: nil)
        }
        #expect(try s.deleteTraces(experimentID: "1", maxTimestamp: nil, maxTraces: nil, ids: [Self.id(1)]) == 0)
        #expect(try s.deleteTraces(experimentID: "0", maxTimestamp: nil, maxTraces: nil, ids: [Self.id(1), Self.id(2), Self.id(99)]) == 2)
        expectError(.resourceDoesNotExist, "not found") { _ = try s.traceInfo(id: Self.id(1)) }
        #expect(try s.deleteTraces(experimentID: "0", maxTimestamp: 1_700_000_001_000, maxTraces: 2, ids: nil) == 2)
        #expect(try Self.ids(s, nil, order: ["request_id"]) == [3, 4, 5, 6, 9, 10, 11, 12])  // 7 and 8: the oldest left at or before it
        #expect(try s.deleteTraces(experimentID: "0", maxTimestamp: 1_700_000_009_000, maxTraces: nil, ids: nil) == 8)
    }

    /// Differential: a search reads each candidate with only the parts its filter and order name (or lets the
    /// database page one without either); every page must be what filtering and sorting whole traces gives.
    @Test(arguments: Backend.all) func partialReadsMatchWholeOnes(_ backend: Backend) throws {
        let f = try Fixture("trd", backend: backend)
        let s = f.service
        try Self.seeded(s)
        let run = try s.createRun(experimentID: "0").info.runID
        try s.linkTracesToRun(traceIDs: [Self.id(3), Self.id(4)], runID: run)
        try s.linkPromptsToTrace(traceID: Self.id(4), prompts: [("qa", "1"), ("qa", "2")])
        try s.linkPromptsToTrace(traceID: Self.id(7), prompts: [("qa", "1")])
        let whole = try s.metadata.traces(experimentIDs: [0], parts: .whole, matching: SearchFilter(parsing: nil, kind: .traces))
        let filters: [String?] = [nil, "tags.team = 'a'", "trace.name = 'embed'", "metadata.`mlflow.user` = 'user0'", "attribute.run_id = '\(run)'",
                                  "trace.run_id LIKE 'run-%'", "feedback.quality IS NOT NULL", "tags.priority IS NULL AND trace.status = 'OK'",
                                  "tags.priority IS NOT NULL AND trace.timestamp_ms >= 1700000002000", "trace.execution_time_ms < 2000",
                                  "trace.end_time_ms > 1700000003500", "trace.request_id = '\(Self.id(3))'", "trace.timestamp_ms = 1700000001000.5",
                                  "trace.client_request_id = 'x'", "metadata.`mlflow.user` IS NOT NULL AND tags.team != 'b'",
                                  "prompt = 'qa/1'", "prompt = 'qa/1' AND tags.team = 'a'", "tags.`mlflow.linkedPrompts` = 'qa/2' AND prompt = 'qa/1'"]
        let orders: [[String]] = [[], ["tags.priority DESC"], ["name"], ["run_id DESC"], ["metadata.`mlflow.user`", "execution_time_ms"]]
        for filter in filters {
            for order in orders {
                let parsed = try SearchFilter(parsing: filter, kind: .traces), keys = try TraceOrder.list(order)
                let expected = whole.filter(parsed.matches).sorted { TraceOrder.less($0, $1, keys) }
                var got: [TraceInfo] = [], token: String?
                repeat {
                    let page = try s.searchTraces(experimentIDs: ["0"], filter: filter, maxResults: 4, orderBy: order, pageToken: token)
                    got += page.items
                    token = page.nextPageToken
                } while token != nil
                #expect(got == expected, "\(filter ?? "-") \(order)")
            }
        }
    }

    @Test(arguments: Backend.all) func linkedToRuns(_ backend: Backend) throws {
        let f = try Fixture("trl", backend: backend)
        let s = f.service
        try Self.seeded(s)
        let run = try s.createRun(experimentID: "0").info.runID
        try s.linkTracesToRun(traceIDs: [Self.id(1), Self.id(5), Self.id(99)], runID: run)
        try s.linkTracesToRun(traceIDs: [Self.id(1)], runID: run)  // again: kept once
        // `=` (by run_id or by the metadata key) finds links too; other comparisons the run a trace was made in, as MLflow's.
        #expect(try Self.ids(s, "metadata.`mlflow.sourceRun` = '\(run)'", order: ["request_id"]) == [1, 5])
        #expect(try Self.ids(s, "trace.run_id != 'run-0'", order: ["request_id"]) == [2, 3, 5, 6, 8, 9, 11, 12])
        #expect(try s.traceInfo(id: Self.id(1)).linkedRuns == [run] && s.traceInfo(id: Self.id(1)).runs == ["run-0", run])
        #expect(try Self.ids(s, "attribute.run_id = '\(run)'", order: ["request_id"]) == [1, 5])
        #expect(try Self.ids(s, "trace.run_id = 'run-0'", order: ["request_id"]) == [1, 4, 7, 10])  // made in it, as before
        expectError(.invalidParameterValue, "Cannot link more than 100 traces to a run in a single request. Provided 101 traces.") {
            try s.linkTracesToRun(traceIDs: (1...101).map(Self.id), runID: run)
        }
        expectError(.resourceDoesNotExist, "Run with id=") { try s.linkTracesToRun(traceIDs: [Self.id(1)], runID: "0123456789abcdef0123456789abcdef") }
        try s.deleteRun(id: run)
        expectError(.invalidParameterValue, "must be in the 'active' state") { try s.linkTracesToRun(traceIDs: [Self.id(2)], runID: run) }
        #expect(try s.deleteTraces(experimentID: "0", maxTimestamp: nil, maxTraces: nil, ids: [Self.id(1)]) == 1)  // its links with it
        #expect(try Self.ids(s, "attribute.run_id = '\(run)'") == [5])
    }

    @Test(arguments: Backend.all) func linkedToPrompts(_ backend: Backend) throws {
        let f = try Fixture("trp", backend: backend)
        let s = f.service
        try Self.seeded(s)
        try s.linkPromptsToTrace(traceID: Self.id(1), prompts: [("qa", "1"), ("qa", "07"), ("summary", " 3")])
        try s.linkPromptsToTrace(traceID: Self.id(1), prompts: [("qa", "1")])  // again: kept once
        try s.linkPromptsToTrace(traceID: Self.id(5), prompts: [("qa", "1")])
        try s.linkPromptsToTrace(traceID: Self.id(6), prompts: [])  // nothing to link, the trace there
        #expect(try s.traceInfo(id: Self.id(1)).linkedPrompts == ["qa/1", "qa/7", "summary/3"])
        // `prompt` and the tag it stands for, as MLflow reads them; the version as written in the link.
        #expect(try Self.ids(s, "prompt = 'qa/1'", order: ["request_id"]) == [1, 5])
        #expect(try Self.ids(s, "attributes.prompt = \"qa/7\"") == [1] && Self.ids(s, "trace.prompt = 'summary/3'") == [1])
        #expect(try Self.ids(s, "tags.`mlflow.linkedPrompts` = 'qa/1' AND trace.status = 'ERROR'") == [1])
        #expect(try Self.ids(s, "prompt = 'qa/07'").isEmpty && Self.ids(s, "prompt = 'QA/1'").isEmpty)
        #expect(try Self.ids(s, "prompt = 'qa/1' AND prompt = 'summary/3'") == [1])
        for (filter, message) in [("prompt != 'qa/1'", "Invalid comparator '!=' for prompts filter. Only '=' is supported with format: prompt = \"name/version\""),
                                  ("prompt LIKE 'qa%'", "Invalid comparator 'LIKE' for prompts filter."),
                                  ("tags.mlflow.linkedPrompts IS NOT NULL", "Invalid comparator 'IS NOT NULL' for prompts filter."),
                                  ("prompt = 'qa'", "Invalid prompts filter value 'qa'. Expected format: prompt = \"name/version\""),
                                  ("prompt = 'a/b/1'", "Invalid prompts filter value 'a/b/1'.")] {
            expectError(.invalidParameterValue, message) { _ = try Self.ids(s, filter) }
        }
        // MLflow answers these with a 500 or links what no search can find; here each is refused, naming the field.
        for (prompt, message) in [((nil, "1"), "Missing value for required parameter 'prompt_versions[0].name'"),
                                  (("qa", nil), "Missing value for required parameter 'prompt_versions[0].version'"),
                                  (("qa", "x"), "Invalid prompt version 'x' in prompt_versions[0].version: expected a positive integer"),
                                  (("qa", "0"), "Invalid prompt version '0'"), (("a/b", "1"), "a prompt name cannot contain '/'")] as [((String?, String?), String)] {
            expectError(.invalidParameterValue, message) { try s.linkPromptsToTrace(traceID: Self.id(2), prompts: [prompt]) }
        }
        #expect(try s.traceInfo(id: Self.id(2)).linkedPrompts.isEmpty, "a refused request links none of its prompts")
        expectError(.resourceDoesNotExist, "Trace with ID '\(Self.id(99))' not found.") { try s.linkPromptsToTrace(traceID: Self.id(99), prompts: [("qa", "1")]) }
        // A trace sent again keeps its links; a deleted one takes them along.
        _ = try s.startTrace(Self.trace(1))
        #expect(try s.traceInfo(id: Self.id(1)).linkedPrompts == ["qa/1", "qa/7", "summary/3"])
        #expect(try s.deleteTraces(experimentID: "0", maxTimestamp: nil, maxTraces: nil, ids: [Self.id(1)]) == 1)
        #expect(try Self.ids(s, "prompt = 'qa/1'") == [5])
        // The client's tag, which an import from an MLflow server reads links from.
        #expect(PromptLink.fromTag(#"[{"name": "qa", "version": "2"}, {"name": "x", "version": 3}, {"name": "bad"}, 7]"#) == ["qa/2", "x/3"])
        #expect(PromptLink.fromTag("not json").isEmpty && PromptLink.fromTag(nil).isEmpty)
        #expect(PromptLink.parts("qa/2")! == ("qa", "2") && PromptLink.parts("qa") == nil)
    }

    @Test func anotherServerSeesTracesAtOnce() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("trp", backend: .postgres)
        let other = try f.secondServer()
        _ = try f.service.startTrace(Self.trace(1))
        #expect(try other.traceInfo(id: Self.id(1)).state == .ok)
        try other.setTraceTag(id: Self.id(1), key: "k", value: "v")
        _ = try other.createAssessment(Self.feedback(1, "q", "1"), kind: .feedback)
        let seen = try f.service.searchTraces(experimentIDs: ["0"], filter: "tags.k = 'v' AND feedback.q = '1'", maxResults: nil, orderBy: [], pageToken: nil)
        #expect(seen.items.map(\.traceID) == [Self.id(1)])
    }

    /// Writes under a trace racing its delete through another server: each either lands (and is deleted with the
    /// trace) or is refused with MLflow's 404, never a database error (a foreign key broken between the existence
    /// check and the insert was a 500); an assessment overriding one deleted meanwhile is refused whole.
    @Test func writesRacingADeleteAreRefusedNotFailed() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("trrace", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let run = try servers[0].createRun(experimentID: "0").info.runID
        let unexpected = Mutex<[String]>([])
        @Sendable func attempt(_ what: String, _ body: () throws -> Void) {
            do { try body() } catch let e as TrackingError where e.code == .resourceDoesNotExist {
            } catch { unexpected.withLock { $0.append("\(what): \(error)") } }
        }
        for round in 0..<30 {
            _ = try servers[0].startTrace(Self.trace(round + 1))
            let first = try servers[0].createAssessment(Self.feedback(round + 1, "q", "1"), kind: .feedback)
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 {
                    attempt("delete") { _ = try servers[1].deleteTraces(experimentID: "0", maxTimestamp: nil, maxTraces: nil, ids: [Self.id(round + 1)]) }
                } else {
                    for k in 0..<3 {
                        attempt("tag") { try servers[0].setTraceTag(id: Self.id(round + 1), key: "k\(k)", value: "v") }
                        attempt("assessment") { _ = try servers[0].createAssessment(Self.feedback(round + 1, "q", "2", overrides: first.id), kind: .feedback) }
                        attempt("link") { try servers[0].linkTracesToRun(traceIDs: [Self.id(round + 1)], runID: run) }
                    }
                }
            }
            expectError(.resourceDoesNotExist, "not found") { _ = try servers[0].traceInfo(id: Self.id(round + 1)) }
        }
        #expect(unexpected.withLock { $0 }.isEmpty, "\(unexpected.withLock { $0 })")
        // An assessment updated while another server overrides it: the update keeps the override's mark (it reads,
        // changes and writes back holding the row), so the overridden one ends invalid every time.
        _ = try servers[0].startTrace(Self.trace(98))
        for round in 0..<15 {
            let a = try servers[0].createAssessment(Self.feedback(98, "q\(round)", "1"), kind: .feedback)
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 {
                    attempt("override") { _ = try servers[1].createAssessment(Self.feedback(98, "q\(round)", "2", overrides: a.id), kind: .feedback) }
                } else {
                    for k in 0..<3 {
                        attempt("update") { _ = try servers[0].updateAssessment(traceID: Self.id(98), id: a.id, mask: ["rationale"]) { $0.body = #"{"rationale": "r\#(k)"}"# } }
                    }
                }
            }
            #expect(try servers[0].assessment(traceID: Self.id(98), id: a.id).valid == false, "round \(round)")
        }
        #expect(unexpected.withLock { $0 }.isEmpty, "\(unexpected.withLock { $0 })")
        // The overridden assessment deleted before the override is written: refused, nothing half-written.
        _ = try servers[0].startTrace(Self.trace(99))
        let a = try servers[0].createAssessment(Self.feedback(99, "q", "1"), kind: .feedback)
        try servers[1].deleteAssessment(traceID: Self.id(99), id: a.id)
        var late = Self.feedback(99, "q", "2", overrides: a.id)
        late.id = "a-late"
        expectError(.resourceDoesNotExist, "Assessment with ID '\(a.id)' not found") { _ = try servers[0].metadata.insertAssessment(late) }
        #expect(try servers[0].traceInfo(id: Self.id(99)).assessments.isEmpty)
    }
}
