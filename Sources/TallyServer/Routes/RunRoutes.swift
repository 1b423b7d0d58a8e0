import Hummingbird
import NIOCore
import TallyTracking

/// MLflow's run endpoints (`runs/...`), mounted under each MLflow API prefix. `runs/log-batch`, the hot one, reads
/// its body with ``LogBatchParser`` (no JSON tree) and falls back to the general reader for unusual bodies.
struct RunRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("runs/create", .post, access: .needs(.update, .experimentField("experiment_id", default: TrackingService.defaultExperimentID)), use: e.json(fast: nil) { r in
            Render.runAnswer(try s.createRun(experimentID: try r.string("experiment_id"), userID: try r.string("user_id"),
                                             runName: try r.string("run_name"), startTime: try r.int64("start_time"), tags: try r.keyValues("tags")))
        })
        t.on("runs/get", .get, access: .needs(.read, .runField), use: e.json(fast: nil) { r in
            let run = try s.run(id: try r.runID())
            return Render.runAnswer(run, outputs: try s.runOutputs(runID: run.info.runID), modelInputs: try s.runModelInputs(runID: run.info.runID))
        })
        t.on("runs/update", .post, access: .needs(.update, .runField), use: e.json { r in
            let status = try r.enumName("status", numbers: RunStatus.protocolNumbers).flatMap(RunStatus.init(rawValue:))
            let info = try s.updateRun(id: try r.runID(), status: status, endTime: try r.int64("end_time"), runName: try r.string("run_name"))
            var out = JSONBytes(capacity: 512)
            out.raw("{\"run_info\": ")
            Render.runInfo(&out, info)
            out.raw("}")
            return out.text
        })
        t.on("runs/delete", .post, access: .needs(.delete, .runField), use: e.json { r in
            try s.deleteRun(id: try r.runID())
            return Endpoints.empty
        })
        t.on("runs/restore", .post, access: .needs(.delete, .runField), use: e.json { r in
            try s.restoreRun(id: try r.runID())
            return Endpoints.empty
        })
        t.on("runs/set-tag", .post, access: .needs(.update, .runField), use: e.json { r in
            try s.setTag(runID: try r.runID(), key: try r.string("key", required: true)!, value: try r.string("value") ?? "")
            return Endpoints.empty
        })
        t.on("runs/delete-tag", .post, access: .needs(.update, .runField), use: e.json { r in
            try s.deleteTag(runID: try r.runID(), key: try r.string("key", required: true)!)
            return Endpoints.empty
        })
        t.on("runs/log-metric", .post, access: .needs(.update, .runField), use: e.json { r in
            let id = try r.runID()
            var batch = MetricBatch()
            try r.metric(into: &batch, nil)
            try s.logBatch(runID: id, batch: batch)
            return Endpoints.empty
        })
        t.on("runs/log-parameter", .post, access: .needs(.update, .runField), use: e.json { r in
            try s.logParam(runID: try r.runID(), key: try r.string("key", required: true)!, value: try r.string("value") ?? "")
            return Endpoints.empty
        })
        let fast: Endpoints.FastPath = { bytes in
            guard let b = LogBatchParser.parse(bytes) else { return nil }
            return {
                try s.logBatch(runID: b.runID, batch: b.metrics, params: b.params, tags: b.tags)
                return ByteBuffer(string: Endpoints.empty)
            }
        }
        t.on("runs/log-batch", .post, access: .needs(.update, .runField), use: e.json(limit: e.largeBody, fast: fast) { r in
            let id = try r.runID()
            var batch = MetricBatch()
            for (i, m) in try r.objects("metrics").enumerated() { try MLflowRequest(body: m, query: [:]).metric(into: &batch, i) }
            try s.logBatch(runID: id, batch: batch, params: try r.keyValues("params"), tags: try r.keyValues("tags"))
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("runs/log-model", .post, access: .needs(.update, .runField), use: e.json { r in
            try s.recordLoggedModel(runID: try r.string("run_id", required: true)!, modelJSON: try r.string("model_json", required: true)!)
            return Endpoints.empty
        })
        t.on("runs/log-inputs", .post, access: .needs(.update, .runField), use: e.json(limit: e.largeBody) { r in
            try s.logInputs(runID: try r.runID(), try r.datasetInputs(), models: try r.modelInputs())
            return Endpoints.empty
        })
        t.on("runs/search", .post, .get, access: .user, use: e.json(parts: { r in
            let page = try s.searchRuns(experimentIDs: try r.strings("experiment_ids"), filter: try r.string("filter"),
                                        view: try r.viewType("run_view_type"), maxResults: try r.int64("max_results"),
                                        orderBy: try r.strings("order_by"), pageToken: try r.string("page_token"), scope: r.grants)
            // Runs of thousands of metrics make answers of tens of megabytes: rendered in parallel chunks, sent in turn.
            let items = page.items, weight = items.reduce(0) { $0 + 1 + $1.metrics.count }
            let chunks = weight < 20_000 ? [items.indices] : Parallel.chunks(items.count, minimum: 1)
            var parts = [ByteBuffer(string: items.isEmpty ? "{" : "{\"runs\": [")]
            parts += Parallel.map(chunks) { range in Render.runs(items[range], first: range.lowerBound == 0) }
            var out = JSONBytes(capacity: 64)
            if !items.isEmpty { out.raw("]") }
            if let token = page.nextPageToken {
                out.raw(items.isEmpty ? "\"next_page_token\": " : ", \"next_page_token\": ")
                out.string(token)
            }
            out.raw("}")
            return parts + [out.buffer]
        }))
    }
}
