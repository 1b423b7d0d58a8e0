import Dispatch
import Synchronization
import Testing
@testable import TallyTracking

/// MLflow 3's issues on both backends: made, read, changed; searched with MLflow's filter, order (worst first, most
/// traces first, newest first, id) and pages; trace counts from issue-reference assessments; `issue.id` in a trace
/// search, decided by the database and by the service alike; the permissions of MLflow's auth app; two servers at once.
@Suite struct IssueTests {
    static func reference(_ trace: Int, _ issue: String, overrides: String? = nil) -> Assessment {
        Assessment(id: "", traceID: TraceTests.id(trace), name: issue, kind: .issue, createTime: 0, lastUpdateTime: 0, overrides: overrides, value: nil,
                   body: #"{"issue": {"issue_name": "n"}, "source": {"source_type": "LLM_JUDGE", "source_id": "discovery"}}"#)
    }

    static func make(_ s: TrackingService, _ e: String, _ name: String, status: String? = nil, severity: String? = nil, run: String? = nil) throws -> TraceIssue {
        try s.createIssue(experimentID: e, name: name, description: "d " + name, status: status, severity: severity, rootCauses: [],
                          sourceRunID: run, categories: [], createdBy: nil)
    }

    @Test(arguments: Backend.all) func madeReadAndChanged(_ backend: Backend) throws {
        let clock = Mutex<Int64>(1_700_000_000_000)
        let f = try Fixture("iss", clock: { clock.withLock { $0 += 1; return $0 } }, backend: backend)
        let s = f.service
        let e = try s.createExperiment(name: "issues")
        let run = try s.createRun(experimentID: e).info.runID
        let made = try s.createIssue(experimentID: "0" + e, name: "Slow answers", description: "p99 over 2 s", status: "resolved", severity: "high",
                                     rootCauses: ["cold cache", "é \"quoted\""], sourceRunID: run, categories: ["latency"], createdBy: "me")
        #expect(made.id.hasPrefix("iss-") && made.id.count == 36 && made.experimentID == e && made.status == .resolved && made.severity == .high)
        #expect(made.creationTime == made.lastUpdateTime && made.traceCount == nil)
        let read = try s.issue(id: made.id)
        #expect(read == made)  // lists and optional fields come back as written
        // Defaults, and empty optional fields read as none (MLflow's handler's `or None`).
        let plain = try s.createIssue(experimentID: e, name: "n", description: "d", status: nil, severity: nil, rootCauses: [], sourceRunID: "",
                                      categories: [], createdBy: "")
        #expect(plain.status == .pending && plain.severity == nil && plain.sourceRunID == nil && plain.createdBy == nil)
        #expect(try s.issue(id: plain.id) == plain)

        // MLflow's messages, in its handler's order.
        func refused(_ code: TrackingError.Code, _ message: String, experiment: String? = e, name: String? = "n", description: String? = "d",
                     status: String? = nil, severity: String? = nil, run: String? = nil) {
            expectError(code, message) {
                _ = try s.createIssue(experimentID: experiment, name: name, description: description, status: status, severity: severity, rootCauses: [],
                                      sourceRunID: run, categories: [], createdBy: nil)
            }
        }
        refused(.invalidParameterValue, "Missing value for required parameter 'name'", experiment: nil, name: "", description: nil)
        refused(.invalidParameterValue, "Missing value for required parameter 'description'", experiment: nil, description: nil)
        refused(.invalidParameterValue, "Missing value for required parameter 'experiment_id'", experiment: "")
        refused(.invalidParameterValue, "Invalid experiment ID 'abc'", experiment: "abc")
        refused(.resourceDoesNotExist, "No Experiment with id=999 exists", experiment: "999")
        refused(.invalidParameterValue, "Invalid issue status 'PENDING'. Valid values are: pending, rejected, resolved", status: "PENDING")
        refused(.invalidParameterValue, "Invalid issue severity ''. Valid values are: not_an_issue, low, medium, high", severity: "")
        refused(.resourceDoesNotExist, "Run with id=nope not found", run: "nope")
        expectError(.resourceDoesNotExist, "Issue with ID 'iss-nope' not found") { _ = try s.issue(id: "iss-nope") }

        // Changes: the fields given, the update time always; an empty name or description is none.
        let changed = try s.updateIssue(id: made.id, status: "rejected", name: "", description: "new", severity: "not_an_issue")
        #expect(changed.status == .rejected && changed.name == "Slow answers" && changed.description == "new" && changed.severity == .notAnIssue)
        #expect(changed.lastUpdateTime > made.lastUpdateTime && changed.creationTime == made.creationTime && changed.rootCauses == made.rootCauses)
        #expect(try s.issue(id: made.id) == changed)
        let touched = try s.updateIssue(id: made.id, status: nil, name: nil, description: nil, severity: nil)
        #expect(touched.lastUpdateTime > changed.lastUpdateTime && touched.status == .rejected)
        expectError(.invalidParameterValue, "Invalid issue status 'done'") { _ = try s.updateIssue(id: made.id, status: "done", name: nil, description: nil, severity: nil) }
        expectError(.resourceDoesNotExist, "Issue with ID 'iss-nope' not found") {
            _ = try s.updateIssue(id: "iss-nope", status: nil, name: "x", description: nil, severity: nil)
        }
        #expect(try s.issue(id: made.id) == touched)  // a refused change wrote nothing

        // A deleted experiment takes no new issues; its issues are still read and changed, as MLflow's are.
        try s.deleteExperiment(id: e)
        refused(.resourceDoesNotExist, "No Experiment with id=\(e) exists")
        #expect(try s.updateIssue(id: plain.id, status: "resolved", name: nil, description: nil, severity: nil).status == .resolved)
    }

    /// Ids of a search's page, by issue name.
    static func names(_ s: TrackingService, _ e: String?, _ filter: String? = nil, counts: Bool = false, max: Int64? = nil,
                      token: String? = nil) throws -> ([String], String?) {
        let (found, next) = try s.searchIssues(experimentID: e, filter: filter, maxResults: max, pageToken: token, includeTraceCount: counts)
        return (found.map { counts ? "\($0.name):\($0.traceCount ?? -1)" : $0.name }, next)
    }

    @Test(arguments: Backend.all) func searchOrdersFiltersCountsAndPages(_ backend: Backend) throws {
        let clock = Mutex<Int64>(1_700_000_000_000)
        let f = try Fixture("iss-s", clock: { clock.withLock { $0 += 1; return $0 } }, backend: backend)
        let s = f.service
        let e = try s.createExperiment(name: "a"), other = try s.createExperiment(name: "b")
        let run = try s.createRun(experimentID: e).info.runID
        // Made oldest first: none, low, high, medium, high (newer), none with a run.
        let none = try Self.make(s, e, "none")
        let low = try Self.make(s, e, "low", status: "resolved", severity: "low")
        let high = try Self.make(s, e, "high", severity: "high")
        let medium = try Self.make(s, e, "medium", severity: "medium", run: run)
        let high2 = try Self.make(s, e, "high2", severity: "high")
        _ = try Self.make(s, e, "none2", status: "rejected", run: run)
        _ = try Self.make(s, other, "elsewhere", severity: "high")

        // Worst first, none last; then newest first.
        #expect(try Self.names(s, e).0 == ["high2", "high", "medium", "low", "none2", "none"])
        #expect(try Self.names(s, nil).0 == ["elsewhere", "high2", "high", "medium", "low", "none2", "none"])
        #expect(try Self.names(s, "999").0 == [])
        expectError(.invalidParameterValue, "Invalid experiment ID 'x'") { _ = try Self.names(s, "x") }

        // Trace counts: distinct traces with a reference (valid or not); the order puts the most traces first
        // within a severity.
        for n in 1...5 { _ = try s.startTrace(TraceTests.trace(n, experiment: e)) }
        let first = try s.createAssessment(Self.reference(1, high.id), kind: .issue)
        _ = try s.createAssessment(Self.reference(1, high.id, overrides: first.id), kind: .issue)  // the same trace again, the first now invalid
        _ = try s.createAssessment(Self.reference(2, high.id), kind: .issue)
        _ = try s.createAssessment(Self.reference(3, none.id), kind: .issue)
        _ = try s.createAssessment(Self.reference(4, medium.id), kind: .issue)
        _ = try s.createAssessment(TraceTests.feedback(5, high2.id, "1"), kind: .feedback)  // a feedback of that name is no reference
        #expect(try Self.names(s, e, counts: true).0 == ["high:2", "high2:0", "medium:1", "low:0", "none:1", "none2:0"])
        _ = try s.deleteTraces(experimentID: e, maxTimestamp: nil, maxTraces: nil, ids: [TraceTests.id(2)])  // its references go with it
        #expect(try Self.names(s, e, counts: true).0 == ["high:1", "high2:0", "medium:1", "low:0", "none:1", "none2:0"])
        #expect(try s.issue(id: high.id).traceCount == nil)

        // Filters: `=`, `!=` (a missing source run is neither, as in SQL), AND, bare words, double quotes.
        #expect(try Self.names(s, e, "status = 'resolved'").0 == ["low"])
        #expect(try Self.names(s, e, "status != 'pending'").0 == ["low", "none2"])
        #expect(try Self.names(s, e, "source_run_id = '\(run)'").0 == ["medium", "none2"])
        #expect(try Self.names(s, e, "source_run_id != '\(run)'").0 == [])
        #expect(try Self.names(s, e, "status = \"pending\" AND source_run_id = '\(run)'").0 == ["medium"])
        #expect(try Self.names(s, e, "status = rejected and source_run_id <> 'x'").0 == ["none2"])
        expectError(.invalidParameterValue, "Invalid filter '  '. Could not be parsed.") { _ = try Self.names(s, e, "  ") }
        #expect(try Self.names(s, e, "status = 1").0 == [])
        _ = low

        // Pages: MLflow's offset tokens; 100 by default.
        let (p1, t1) = try Self.names(s, e, max: 4)
        let (p2, t2) = try Self.names(s, e, max: 4, token: t1)
        #expect(p1 == ["high2", "high", "medium", "low"] && t1 != nil && p2 == ["none2", "none"] && t2 == nil)
        expectError(.invalidParameterValue, "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer") { _ = try Self.names(s, e, max: 0) }
        expectError(.invalidParameterValue, "It must be at most 50000") { _ = try Self.names(s, e, max: 50_001) }
        expectError(.invalidParameterValue, "Invalid page token") { _ = try Self.names(s, e, token: "garbage") }
        for n in 0..<100 { _ = try Self.make(s, other, "bulk\(n)") }
        let (bulk, more) = try Self.names(s, other)
        #expect(bulk.count == 100 && more != nil)
    }

    @Test func filtersParseAsMLflowsDo() throws {
        func clauses(_ f: String) throws -> [String] {
            try IssueFilter(parsing: f).clauses.map { "\($0.field)\($0.negated ? "!=" : "=")\($0.value)" }
        }
        #expect(try clauses("status = 'a' AND source_run_id != \"r\"") == ["status=a", "source_run_id!=r"])
        #expect(try clauses("\"status\" = x source_run_id = 12") == ["status=x", "source_run_id=12"])  // side by side, as sqlparse reads them
        #expect(try clauses("AND status = 'a' AND") == ["status=a"])
        #expect(try clauses("\"status \" = ' a '") == ["status=a"])  // stripped, as MLflow's `.strip()`
        #expect(try IssueFilter(parsing: nil).clauses.isEmpty && IssueFilter(parsing: "").clauses.isEmpty)
        func refused(_ f: String, _ message: String) {
            expectError(.invalidParameterValue, message) { _ = try IssueFilter(parsing: f) }
        }
        refused("name = 'x'", "Invalid filter field 'name'. Supported fields: {'status', 'source_run_id'}")
        refused("STATUS = 'x'", "Invalid filter field 'STATUS'")
        refused("`status` = 'x'", "Invalid filter field '`status`'")
        refused("status > 'a'", "Invalid comparator '>'. Supported comparators: {'=', '!='}")
        refused("status LIKE 'a%'", "Invalid comparator 'LIKE'")
        refused("status IN ('a')", "Invalid comparator 'IN'")
        refused("status = 'a' OR status = 'b'", "Invalid clause(s) in filter string: OR")
        refused("status", "Invalid clause(s) in filter string: status")
        refused("status =", "Invalid clause(s) in filter string: status =")
        refused("'status' = 'a'", "Invalid comparison: left side must be an identifier, got 'status'")
        refused("status = (", "Invalid comparison: expected a value after 'status =', got (")
        refused("status = 'a", "unterminated quote")
        refused("status = AND source_run_id = 'r'", "Invalid clause(s) in filter string: status = AND")
    }

    @Test(arguments: Backend.all) func tracesAreSearchedByIssue(_ backend: Backend) throws {
        let f = try Fixture("iss-t", backend: backend)
        let s = f.service
        try TraceTests.seeded(s)
        let slow = try Self.make(s, "0", "slow"), wrong = try Self.make(s, "0", "wrong")
        let first = try s.createAssessment(Self.reference(2, slow.id), kind: .issue)
        _ = try s.createAssessment(Self.reference(2, wrong.id, overrides: first.id), kind: .issue)  // the slow one, now invalid: still a link
        _ = try s.createAssessment(Self.reference(5, slow.id), kind: .issue)
        _ = try s.createAssessment(Self.reference(8, wrong.id), kind: .issue)
        _ = try s.createAssessment(TraceTests.feedback(9, slow.id, "1"), kind: .feedback)  // a feedback named so is no link
        // Decided by the database alone, and with a clause only the service decides (a pattern): the same traces.
        #expect(try TraceTests.ids(s, "issue.id = '\(slow.id)'").sorted() == [2, 5])
        #expect(try TraceTests.ids(s, "issue.id = \"\(wrong.id)\"").sorted() == [2, 8])
        #expect(try TraceTests.ids(s, "issue.id = '\(slow.id)' AND tags.team LIKE '%'").sorted() == [2, 5])
        #expect(try TraceTests.ids(s, "issue.id = '\(slow.id)' AND issue.id = '\(wrong.id)'") == [2])
        #expect(try TraceTests.ids(s, "issue.id = 'iss-nope'") == [])
        #expect(TraceSQL.decidesAll(try SearchFilter(parsing: "issue.id = 'x'", kind: .traces)))
        // The read of a searched trace carries its references.
        let two = try s.traceInfo(id: TraceTests.id(2))
        #expect(two.assessments.filter { $0.kind == .issue }.map(\.name).sorted() == [slow.id, wrong.id].sorted())
        // MLflow's messages.
        for (filter, message) in [("issue.id != 'x'", "issue.id comparator '!=' not one of '{'='}'"), ("issue.id LIKE 'x'", "issue.id comparator 'LIKE'"),
                                  ("issue.name = 'x'", "Invalid issue attribute 'name'. Supported attributes: id"),
                                  ("issue.id = 1", "Expected a quoted string value for issue (e.g. 'my-value'). Got value 1"),
                                  ("issue.id IS NULL", "issue.id comparator 'IS NULL'")] {
            expectError(.invalidParameterValue, message) { _ = try TraceTests.ids(s, filter) }
        }
    }

    @Test(arguments: Backend.all) func referencesKeepTheirKind(_ backend: Backend) throws {
        let f = try Fixture("iss-a", backend: backend)
        let s = f.service
        _ = try s.startTrace(TraceTests.trace(1))
        let a = try s.createAssessment(Self.reference(1, "iss-1"), kind: .issue)
        #expect(a.kind == .issue && a.value == nil)
        // Rationale, metadata, validity and the issue's name change; a feedback's or expectation's value cannot.
        let renamed = try s.updateAssessment(traceID: TraceTests.id(1), id: a.id, mask: ["assessment_name"]) { $0.name = "iss-2" }
        #expect(renamed.name == "iss-2" && renamed.kind == .issue)
        for (field, message) in [("feedback", "Cannot update feedback value on an IssueReference assessment."),
                                 ("expectation", "Cannot update expectation value on an IssueReference assessment.")] {
            expectError(.invalidParameterValue, message) { _ = try s.updateAssessment(traceID: TraceTests.id(1), id: a.id, mask: [field]) { _ in } }
        }
        let fb = try s.createAssessment(TraceTests.feedback(1, "q", "1"), kind: .feedback)
        expectError(.invalidParameterValue, "Cannot update issue value on a Feedback assessment.") {
            _ = try s.updateAssessment(traceID: TraceTests.id(1), id: fb.id, mask: ["issue"]) { _ in }
        }
        #expect(try TrackingService.assessmentMask("issue,rationale") == ["issue", "rationale"])
    }

    @Test func grantsFollowMLflowsRules() throws {
        let clock = Mutex<Int64>(1_700_000_000_000)
        let f = try Fixture("iss-g", clock: { clock.withLock { $0 += 1; return $0 } })
        let s = f.service
        let e = try s.createExperiment(name: "g"), hidden = try s.createExperiment(name: "h")
        let i = try Self.make(s, e, "x")
        func g(_ list: [(Resource, Permission)]) -> Grants { Grants(defaultPermission: .noPermissions, grants: list.map { Grant(resource: $0.0, permission: $0.1) }) }
        let reader = g([(.experiment(e), .read)]), editor = g([(.experiment(e), .edit)])
        #expect(try s.issue(id: i.id, scope: reader) == i)
        expectError(.permissionDenied, "Permission denied") { _ = try s.issue(id: i.id, scope: g([])) }
        expectError(.permissionDenied, "Permission denied") { _ = try s.updateIssue(id: i.id, status: "resolved", name: nil, description: nil, severity: nil, scope: reader) }
        #expect(try s.issue(id: i.id).status == .pending)  // nothing written
        #expect(try s.updateIssue(id: i.id, status: "resolved", name: nil, description: nil, severity: nil, scope: editor).status == .resolved)
        // A search names an experiment the caller reads, or sees those it reads, paged after the filtering.
        _ = try Self.make(s, hidden, "hidden")
        for n in 0..<3 { _ = try Self.make(s, e, "more\(n)") }
        func search(_ e: String?, _ max: Int64? = nil, _ token: String? = nil, _ scope: Grants) throws -> ([String], String?) {
            let (found, next) = try s.searchIssues(experimentID: e, filter: nil, maxResults: max, pageToken: token, includeTraceCount: false, scope: scope)
            return (found.map(\.name), next)
        }
        #expect(try search(e, nil, nil, reader).0 == ["more2", "more1", "more0", "x"])
        #expect(try search(nil, nil, nil, .unrestricted).0 == ["more2", "more1", "more0", "hidden", "x"])
        let (first, next) = try search(nil, 3, nil, reader)
        #expect(first == ["more2", "more1", "more0"] && next != nil)
        let (last, end) = try search(nil, 3, next, reader)
        #expect(last == ["x"] && end == nil)
        #expect(try search(nil, nil, nil, g([])).0 == [])
        expectError(.permissionDenied, "Permission denied") {
            _ = try s.searchIssues(experimentID: hidden, filter: nil, maxResults: nil, pageToken: nil, includeTraceCount: false, scope: reader)
        }
    }

    @Test func twoServersOnOneDatabase() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("iss-c", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let e = try servers[0].createExperiment(name: "shared")
        let i = try Self.make(servers[0], e, "shared")
        // Changes of different fields through both at once: each holds the row, so none is lost.
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { n in
            do {
                if n % 2 == 0 {
                    _ = try servers[0].updateIssue(id: i.id, status: "resolved", name: nil, description: nil, severity: nil)
                } else {
                    _ = try servers[1].updateIssue(id: i.id, status: nil, name: nil, description: nil, severity: "high")
                }
            } catch { failures.withLock { $0.append("\(error)") } }
        }
        #expect(failures.withLock { $0 } == [])
        let read = try servers[1].issue(id: i.id)
        #expect(read.status == .resolved && read.severity == .high)
    }
}
