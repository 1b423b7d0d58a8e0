import NIOCore
import TallyStore
import TallyTracking

/// MLflow's JSON shapes for entities (reference §1 "Entities as JSON").
enum Render {
    /// `{"<key>": <json>}`.
    static func wrap(_ key: String, _ json: String) -> String {
        var o = Obj()
        o.add(key, raw: json)
        return o.json
    }

    /// A page of a listing whose token is always there: `{"<key>": [...], "next_page_token": "…"}` (`""` on the last
    /// page; the list left out when empty), as MLflow writes proto2 listings that set the token.
    static func page(_ key: String, _ items: [String], next: String?) -> String {
        var o = Obj()
        o.add(key, array: items)
        o.add("next_page_token", next ?? "")
        return o.json
    }

    /// A page of a search: `{"<key>": [...], "next_page_token": "…"}`, the list left out when empty and the token when
    /// there is no next page, as MLflow writes its proto3 searches.
    static func page<Item>(_ key: String, _ page: SearchPage<Item>, _ item: (Item) throws -> String) rethrows -> String {
        var o = Obj()
        o.add(key, array: try page.items.map(item))
        o.add("next_page_token", page.nextPageToken)
        return o.json
    }

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
            out.rawText(prefix)
            out.double(p.value)
            out.raw(", \"timestamp\": ")
            out.int(p.timestamp)
            out.raw(", \"step\": ")
            out.int(p.step)
            out.rawText(suffix)
        }
    }

    // MARK: Runs, written as bytes (a wide run holds thousands of metrics; a search page a hundred such runs)

    /// `{"run_uuid": …, …, "run_id": …}`.
    static func runInfo(_ out: inout JSONBytes, _ i: RunInfo) {
        out.raw("{\"run_uuid\": ")
        out.string(i.runID)
        out.raw(", \"experiment_id\": ")
        out.string(i.experimentID)
        out.raw(", \"run_name\": ")
        out.string(i.runName)
        out.raw(", \"user_id\": ")
        out.string(i.userID)
        out.raw(", \"status\": ")
        out.string(i.status.rawValue)
        out.raw(", \"start_time\": ")
        out.int(i.startTime)
        if let end = i.endTime, end != 0 {  // MLflow leaves an end time of 0 out, as if none
            out.raw(", \"end_time\": ")
            out.int(end)
        }
        out.raw(", \"artifact_uri\": ")
        out.string(i.artifactURI)
        out.raw(", \"lifecycle_stage\": ")
        out.string(i.lifecycleStage.rawValue)
        out.raw(", \"run_id\": ")
        out.string(i.runID)
        out.raw("}")
    }

    /// `"name": [{"key": …, "value": …}, …]`, after `separator`; nothing when empty (MLflow omits empty lists).
    static func keyValues(_ out: inout JSONBytes, _ name: StaticString, _ kvs: [KeyValue], separator: inout Bool) {
        guard !kvs.isEmpty else { return }
        if separator { out.raw(", ") }
        separator = true
        out.raw("\"")
        out.raw(name)
        out.raw("\": [")
        for (i, kv) in kvs.enumerated() {
            out.raw(i == 0 ? "{\"key\": " : ", {\"key\": ")
            out.string(kv.key)
            out.raw(", \"value\": ")
            out.string(kv.value)
            out.raw("}")
        }
        out.raw("]")
    }

    /// A full run: `{"info": …, "data": {"metrics", "params", "tags"}, "inputs": {"dataset_inputs"}}`, and
    /// `"outputs": {"model_outputs"}` when `outputs` is given and `inputs.model_inputs` (`runs/get` only, as MLflow
    /// answers).
    static func run(_ out: inout JSONBytes, _ r: Run, outputs: [ModelOutput]? = nil, modelInputs: [ModelInput] = []) {
        out.raw("{\"info\": ")
        runInfo(&out, r.info)
        out.raw(", \"data\": {")
        var separator = false
        if !r.metrics.isEmpty {
            separator = true
            out.raw("\"metrics\": [")
            r.metrics.withUnsafeBufferPointer { ms in
                for i in ms.indices {
                    out.raw(i == 0 ? "{\"key\": " : ", {\"key\": ")
                    out.string(ms[i].key)
                    out.raw(", \"value\": ")
                    out.double(ms[i].value)
                    out.raw(", \"timestamp\": ")
                    out.int(ms[i].timestamp)
                    out.raw(", \"step\": ")
                    out.int(ms[i].step)
                    out.raw("}")
                }
            }
            out.raw("]")
        }
        keyValues(&out, "params", r.params, separator: &separator)
        keyValues(&out, "tags", r.tags, separator: &separator)
        out.raw("}, \"inputs\": {")
        if !r.inputs.isEmpty {
            out.raw("\"dataset_inputs\": [")
            for (i, input) in r.inputs.enumerated() {
                if i > 0 { out.raw(", ") }
                out.raw("{")
                var sep = false
                keyValues(&out, "tags", input.tags, separator: &sep)
                if sep { out.raw(", ") }
                var d = Obj()
                d.add("name", input.dataset.name)
                d.add("digest", input.dataset.digest)
                d.add("source_type", input.dataset.sourceType)
                d.add("source", input.dataset.source)
                d.add("schema", input.dataset.schema)
                d.add("profile", input.dataset.profile)
                out.raw("\"dataset\": ")
                out.rawText(d.json)
                out.raw("}")
            }
            out.raw("]")
        }
        if !modelInputs.isEmpty {
            out.raw(r.inputs.isEmpty ? "\"model_inputs\": [" : ", \"model_inputs\": [")
            for (k, m) in modelInputs.enumerated() {
                out.raw(k == 0 ? "{\"model_id\": " : ", {\"model_id\": ")
                out.string(m.modelID)
                out.raw("}")
            }
            out.raw("]")
        }
        out.raw("}")
        if let outputs {
            out.raw(", \"outputs\": {")
            if !outputs.isEmpty {
                out.raw("\"model_outputs\": [")
                for (k, o) in outputs.enumerated() {
                    out.raw(k == 0 ? "{\"model_id\": " : ", {\"model_id\": ")
                    out.string(o.modelID)
                    out.raw(", \"step\": ")
                    out.int(o.step)
                    out.raw("}")
                }
                out.raw("]")
            }
            out.raw("}")
        }
        out.raw("}")
    }

    /// Runs separated by `, ` (and one before the first unless `first`), as a buffer of their own.
    static func runs(_ runs: ArraySlice<Run>, first: Bool) -> ByteBuffer {
        var out = JSONBytes(capacity: runs.reduce(0) { $0 + 512 + $1.metrics.count * 96 })
        out.rememberDoubles()
        for (i, r) in runs.enumerated() {
            if i > 0 || !first { out.raw(", ") }
            run(&out, r, outputs: r.outputs)
        }
        return out.buffer
    }

    /// `[{"run_id", "run_name", "experiment_id", "status"}, …]`: the runs of Tally's compare and scoreboard answers.
    static func runSummaries(_ out: inout JSONBytes, _ runs: [RunInfo]) {
        out.raw("[")
        for (i, run) in runs.enumerated() {
            out.raw(i == 0 ? "{\"run_id\": " : ", {\"run_id\": ")
            out.string(run.runID)
            out.raw(", \"run_name\": ")
            out.string(run.runName)
            out.raw(", \"experiment_id\": ")
            out.string(run.experimentID)
            out.raw(", \"status\": ")
            out.string(run.status.rawValue)
            out.raw("}")
        }
        out.raw("]")
    }

    /// `{"run": …}`.
    static func runAnswer(_ r: Run, outputs: [ModelOutput]? = nil, modelInputs: [ModelInput] = []) -> ByteBuffer {
        var out = JSONBytes(capacity: 512 + r.metrics.count * ((r.metrics.first?.key.utf8.count ?? 0) + 72))
        out.raw("{\"run\": ")
        run(&out, r, outputs: outputs, modelInputs: modelInputs)
        out.raw("}")
        return out.buffer
    }
}
