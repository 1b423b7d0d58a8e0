import TallyStore
import TallyTracking

/// MLflow's JSON shapes for entities (reference §1 "Entities as JSON").
enum Render {
    static func keyValues(_ kvs: [KeyValue]) -> [String] {
        kvs.map { kv in
            var o = Obj()
            o.add("key", kv.key)
            o.add("value", kv.value)
            return o.json
        }
    }

    static func experiment(_ e: Experiment) -> String {
        var o = Obj()
        o.add("experiment_id", e.experimentID)
        o.add("name", e.name)
        o.add("artifact_location", e.artifactLocation)
        o.add("lifecycle_stage", e.lifecycleStage.rawValue)
        o.add("last_update_time", e.lastUpdateTime)
        o.add("creation_time", e.creationTime)
        o.add("tags", array: keyValues(e.tags))
        o.add("workspace", "default")
        return o.json
    }

    static func runInfo(_ i: RunInfo) -> String {
        var o = Obj()
        o.add("run_uuid", i.runID)
        o.add("experiment_id", i.experimentID)
        o.add("run_name", i.runName)
        o.add("user_id", i.userID)
        o.add("status", i.status.rawValue)
        o.add("start_time", i.startTime)
        o.add("end_time", i.endTime)
        o.add("artifact_uri", i.artifactURI)
        o.add("lifecycle_stage", i.lifecycleStage.rawValue)
        o.add("run_id", i.runID)
        return o.json
    }

    static func metric(key: String, value: Double, timestamp: Int64, step: Int64, runID: String? = nil) -> String {
        var o = Obj()
        o.add("key", key)
        o.add("value", double: value)
        o.add("timestamp", timestamp)
        o.add("step", step)
        o.add("run_id", runID)
        return o.json
    }

    /// Writes points as MLflow metrics (`{"key", "value", "timestamp", "step"[, "run_id"]}`), comma-separated.
    static func metrics(_ out: inout JSONBytes, key: String, _ points: [MetricPoint], runID: String? = nil) {
        let prefix = "{\"key\": " + JSONText.quote(key) + ", \"value\": "
        let suffix = runID.map { ", \"run_id\": " + JSONText.quote($0) + "}" } ?? "}"
        for (i, p) in points.enumerated() {
            if i > 0 { out.raw(", ") }
            out.raw(prefix)
            out.double(p.value)
            out.raw(", \"timestamp\": ")
            out.int(p.timestamp)
            out.raw(", \"step\": ")
            out.int(p.step)
            out.raw(suffix)
        }
    }

    static func run(_ r: Run) -> String {
        var data = Obj()
        data.add("metrics", array: r.metrics.map { metric(key: $0.key, value: $0.value, timestamp: $0.timestamp, step: $0.step) })
        data.add("params", array: keyValues(r.params))
        data.add("tags", array: keyValues(r.tags))
        var inputs = Obj()
        inputs.add("dataset_inputs", array: r.inputs.map { i in
            var d = Obj()
            d.add("name", i.dataset.name)
            d.add("digest", i.dataset.digest)
            d.add("source_type", i.dataset.sourceType)
            d.add("source", i.dataset.source)
            d.add("schema", i.dataset.schema)
            d.add("profile", i.dataset.profile)
            var di = Obj()
            di.add("tags", array: keyValues(i.tags))
            di.add("dataset", raw: d.json)
            return di.json
        })
        var o = Obj()
        o.add("info", raw: runInfo(r.info))
        o.add("data", raw: data.json)
        o.add("inputs", raw: inputs.json)
        return o.json
    }
}
