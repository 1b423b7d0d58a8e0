import Foundation
import Testing
@testable import TallyTracking

/// MLflow 2's `runs/log-model`: the run tag `mlflow.log-model.history` grows by one summary per call, none lost when
/// calls race (on PostgreSQL through two servers), kept whole past the 8,000-character tag limit, with MLflow's
/// errors. (Its text against a real `mlflow server`: `test_model_history_matches_mlflow`.)
@Suite struct ModelHistoryTests {
    static func model(_ path: String, run: String) -> String {
        #"{"artifact_path": "\#(path)", "run_id": "\#(run)", "utc_time_created": "2026-12-06 07:00:00", "flavors": {"sklearn": {"config": 1, "v": "1.5"}}}"#
    }

    static func history(_ s: TrackingService, _ run: String) throws -> [JSONValue] {
        let text = try #require(try s.run(id: run).tags.first { $0.key == TrackingService.modelHistoryTag }?.value)
        guard case .array(let entries) = try JSONParser.parse(Array(text.utf8)) else { Issue.record("not a list: \(text)"); return [] }
        return entries
    }

    @Test(arguments: Backend.all) func concurrentAppendsAreAllKept(_ backend: Backend) throws {
        let f = try Fixture("history", backend: backend)
        let s = f.service
        let run = try s.createRun(experimentID: try s.createExperiment(name: "h")).info.runID
        let servers = backend == .postgres ? [s, try f.secondServer()] : [s]
        let failures = NSLock(), calls = 80
        nonisolated(unsafe) var errors: [String] = []
        DispatchQueue.concurrentPerform(iterations: calls) { i in
            do {
                try servers[i % servers.count].recordLoggedModel(runID: run, modelJSON: Self.model("m\(i)", run: run))
            } catch {
                failures.withLock { errors.append("\(error)") }
            }
        }
        #expect(errors.isEmpty, "\(errors)")
        let entries = try Self.history(s, run)
        #expect(Set(entries.compactMap { if case .string(let p)? = $0["artifact_path"] { p } else { nil } }) == Set((0..<calls).map { "m\($0)" }))
        // Each entry as MLflow's get_tags_dict makes it: the flavor's `config` dropped, model_uuid null when absent.
        #expect(entries[0]["flavors"] == .object([("sklearn", .object([("v", .string("1.5"))]))]) && entries[0]["model_uuid"] == .null)
        let text = try #require(try s.run(id: run).tags.first { $0.key == TrackingService.modelHistoryTag }?.value)
        #expect(text.count > Validation.maxTagValueLength, "kept whole past the tag limit: \(text.count) characters")
    }

    @Test(arguments: Backend.all) func errors(_ backend: Backend) throws {
        let f = try Fixture("history-errors", backend: backend)
        let s = f.service
        let run = try s.createRun(experimentID: try s.createExperiment(name: "h")).info.runID
        expectError(.invalidParameterValue, "Malformed model info.") { try s.recordLoggedModel(runID: run, modelJSON: "{nope") }
        expectError(.invalidParameterValue, "is not a JSON object") { try s.recordLoggedModel(runID: run, modelJSON: "[1]") }
        expectError(.invalidParameterValue, "Model json is missing mandatory fields: {'flavors', 'utc_time_created'}") {
            try s.recordLoggedModel(runID: run, modelJSON: #"{"artifact_path": "a", "run_id": "r"}"#)
        }
        expectError(.invalidParameterValue, "'flavors'") {
            try s.recordLoggedModel(runID: run, modelJSON: #"{"artifact_path": "a", "run_id": "r", "utc_time_created": "t", "flavors": [1]}"#)
        }
        expectError(.resourceDoesNotExist, "Run with id=\(String(repeating: "0", count: 32)) not found") {
            try s.recordLoggedModel(runID: String(repeating: "0", count: 32), modelJSON: Self.model("a", run: run))
        }
        try s.setTag(runID: run, key: TrackingService.modelHistoryTag, value: "not a list")
        expectError(.invalidParameterValue, "is not a JSON list") { try s.recordLoggedModel(runID: run, modelJSON: Self.model("a", run: run)) }
        try s.deleteRun(id: run)
        expectError(.invalidParameterValue, "must be in the 'active' state") { try s.recordLoggedModel(runID: run, modelJSON: Self.model("a", run: run)) }
    }

    @Test func createdTimeAsPythonPrintsIt() {
        let now = Date(timeIntervalSince1970: 1_780_729_262.5)  // 2026-06-06 07:01:02.5
        #expect(TrackingService.createdText(nil, now: now) == "2026-06-06 07:01:02.500000")
        #expect(TrackingService.createdText(.string(""), now: Date(timeIntervalSince1970: 1_780_729_262)) == "2026-06-06 07:01:02")
        #expect(TrackingService.createdText(.string("yesterday"), now: now) == "yesterday")
        #expect(TrackingService.createdText(.number("17"), now: now) == "17" && TrackingService.createdText(.bool(true), now: now) == "True")
    }
}
