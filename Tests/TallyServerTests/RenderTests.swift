import Foundation
import Testing
import TallyStore
@testable import TallyTracking
@testable import TallyServer

/// Runs are written as bytes; what they say must be MLflow's run JSON, field for field.
@Suite struct RenderTests {
    static func run(end: Int64?, empty: Bool) -> Run {
        let info = RunInfo(runID: "abc", runName: "n \"q\"", experimentID: "3", userID: "u", status: .finished, startTime: 5, endTime: end,
                           artifactURI: "mlflow-artifacts:/3/abc/artifacts", lifecycleStage: .active)
        guard !empty else { return Run(info: info, metrics: [], params: [], tags: [], inputs: []) }
        return Run(info: info,
                   metrics: [Metric(key: "a/b", value: 0.5, timestamp: 1, step: 2), Metric(key: "n", value: .nan, timestamp: 3, step: -4),
                             Metric(key: "i", value: .infinity, timestamp: 0, step: 0), Metric(key: "z", value: 3, timestamp: 9, step: 9)],
                   params: [KeyValue(key: "lr", value: "0.1")], tags: [KeyValue(key: "t", value: "é\u{0}")],
                   inputs: [DatasetInput(dataset: Dataset(name: "d", digest: "x", sourceType: "local", source: "{}", schema: nil, profile: "p"),
                                         tags: [KeyValue(key: "mlflow.data.context", value: "train")])])
    }

    static func parse(_ r: Run) throws -> [String: Any] {
        var out = JSONBytes(capacity: 64)
        Render.run(&out, r)
        return try #require(try JSONSerialization.jsonObject(with: Data(out.text.utf8)) as? [String: Any])
    }

    @Test func fullRun() throws {
        let j = try Self.parse(Self.run(end: 7, empty: false))
        let info = try #require(j["info"] as? [String: Any])
        #expect(info["run_uuid"] as? String == "abc" && info["run_id"] as? String == "abc" && info["run_name"] as? String == "n \"q\"")
        #expect(info["status"] as? String == "FINISHED" && info["start_time"] as? Int == 5 && info["end_time"] as? Int == 7)
        #expect(info["lifecycle_stage"] as? String == "active" && info["experiment_id"] as? String == "3")
        let data = try #require(j["data"] as? [String: Any])
        let metrics = try #require(data["metrics"] as? [[String: Any]])
        #expect(metrics.map { $0["key"] as? String } == ["a/b", "n", "i", "z"])
        #expect(metrics[0]["value"] as? Double == 0.5 && metrics[1]["value"] as? String == "NaN")
        #expect(metrics[2]["value"] as? Double == .greatestFiniteMagnitude && metrics[1]["step"] as? Int == -4)
        #expect((data["params"] as? [[String: String]]) == [["key": "lr", "value": "0.1"]])
        #expect((data["tags"] as? [[String: String]]) == [["key": "t", "value": "é\u{0}"]])
        let inputs = try #require((j["inputs"] as? [String: Any])?["dataset_inputs"] as? [[String: Any]])
        #expect((inputs[0]["tags"] as? [[String: String]]) == [["key": "mlflow.data.context", "value": "train"]])
        let d = try #require(inputs[0]["dataset"] as? [String: String])
        #expect(d == ["name": "d", "digest": "x", "source_type": "local", "source": "{}", "profile": "p"])
    }

    @Test func emptyListsAndUnsetFieldsAreOmitted() throws {
        let j = try Self.parse(Self.run(end: nil, empty: true))
        #expect((j["info"] as? [String: Any])?["end_time"] == nil)
        #expect((j["data"] as? [String: Any])?.isEmpty == true && (j["inputs"] as? [String: Any])?.isEmpty == true)
        var out = JSONBytes(capacity: 64)
        Render.run(&out, Self.run(end: nil, empty: true))
        #expect(out.text.hasSuffix("\"data\": {}, \"inputs\": {}}"))
    }
}
