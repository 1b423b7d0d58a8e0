import Hummingbird
import NIOCore
import TallyTracking

/// MLflow 3's logged-model endpoints (`logged-models...`, ids in the path) and `runs/outputs`, mounted under each
/// MLflow API prefix.
struct LoggedModelRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("logged-models", .post, access: .needs(.update, .experimentField("experiment_id")), use: e.json { r in
            Self.answer(try s.createLoggedModel(experimentID: try r.string("experiment_id", required: true), name: try r.string("name"),
                                                modelType: try r.string("model_type"), sourceRunID: try r.string("source_run_id"),
                                                params: try r.keyValues("params"), tags: try r.keyValues("tags")))
        })
        t.on("logged-models/search", .post, access: .user, use: e.json { r in
            guard r.raw("experiment_ids") != nil else { throw MLflowRequest.missing("experiment_ids") }
            let datasets = try r.objects("datasets").map { d in
                let q = MLflowRequest(body: d, query: [:])
                return DatasetFilter(name: try q.string("dataset_name") ?? "", digest: try q.string("dataset_digest"))
            }
            let order = try r.objects("order_by").map { o in
                let q = MLflowRequest(body: o, query: [:])
                let dataset = try q.string("dataset_name").map { DatasetFilter(name: $0, digest: try q.string("dataset_digest")) }
                return LoggedModelOrder(field: try q.string("field_name", required: true)!, ascending: try q.bool("ascending") ?? true, dataset: dataset)
            }
            let page = try s.searchLoggedModels(experimentIDs: try r.strings("experiment_ids"), filter: try r.string("filter"), datasets: datasets,
                                                maxResults: try r.int64("max_results"), orderBy: order, pageToken: try r.string("page_token"),
                                                scope: r.grants)
            return ByteBuffer(string: Render.page("models", page, Self.model))
        })
        let model = { (need: Permission.Need) in Access.needs(need, .loggedModelPath("model_id")) }
        t.on("logged-models/{model_id}", .get, access: model(.read), use: e.json(path: ["model_id"]) { r, p, _ in
            Self.answer(try s.loggedModel(id: p[0], allowDeleted: try r.string("allow_deleted")?.lowercased() == "true"))
        })
        t.on("logged-models/{model_id}", .patch, access: model(.update), use: e.json(path: ["model_id"]) { r, p, _ in
            Self.answer(try s.finalizeLoggedModel(id: p[0], status: try r.string("status")))
        })
        t.on("logged-models/{model_id}", .delete, access: model(.delete), use: e.json(path: ["model_id"]) { _, p, _ in
            try s.deleteLoggedModel(id: p[0])
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("logged-models/{model_id}/tags", .patch, access: model(.update), use: e.json(path: ["model_id"]) { r, p, _ in
            try s.setLoggedModelTags(id: p[0], try r.keyValues("tags"))
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("logged-models/{model_id}/tags/{tag_key}", .delete, access: model(.update), use: e.json(path: ["model_id", "tag_key"]) { _, p, _ in
            try s.deleteLoggedModelTag(id: p[0], key: p[1])
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("logged-models/{model_id}/params", .post, access: model(.update), use: e.json(path: ["model_id"]) { r, p, _ in
            _ = try r.string("model_id", required: true)  // MLflow requires it in the body too
            try s.logLoggedModelParams(id: p[0], try r.keyValues("params"))
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("logged-models/{model_id}/artifacts/directories", .get, access: model(.read), use: e.json(path: ["model_id"]) { r, p, _ in
            ByteBuffer(string: ArtifactRoutes.listing(try s.listLoggedModelArtifacts(id: p[0], path: try r.string("artifact_directory_path"))))
        })
        t.on("runs/outputs", .post, access: .needs(.update, .runField), use: e.json { r in
            let models = try r.objects("models").enumerated().map { i, o in
                let q = MLflowRequest(body: o, query: [:])
                guard let id = try q.string("model_id"), !id.isEmpty else { throw MLflowRequest.missing("models[\(i)].model_id") }
                return ModelOutput(modelID: id, step: try q.int64("step") ?? 0)
            }
            try s.logOutputs(runID: try r.runID(), models: models)
            return Endpoints.empty
        })
    }

    /// `{"model": …}`.
    static func answer(_ m: LoggedModel) -> ByteBuffer {
        ByteBuffer(string: Render.wrap("model", model(m)))
    }

    /// A logged model as MLflow writes it: `info` (empty `model_type` and `source_run_id` written as `""`, tags by
    /// key) and `data` (params by key, every metric point with its model, run and dataset; `{}` when neither).
    static func model(_ m: LoggedModel) -> String {
        var info = Obj()
        info.add("model_id", m.modelID)
        info.add("experiment_id", m.experimentID)
        info.add("name", m.name)
        info.add("creation_timestamp_ms", m.creationTime)
        info.add("last_updated_timestamp_ms", m.lastUpdatedTime)
        info.add("artifact_uri", m.artifactURI)
        info.add("status", m.status.rawValue)
        info.add("model_type", m.modelType)
        info.add("source_run_id", m.sourceRunID)
        info.add("tags", array: Render.keyValues(m.tags))
        var data = Obj()
        data.add("params", array: Render.keyValues(m.params))
        data.add("metrics", array: m.metrics.map { p in
            var o = Obj()
            o.add("key", p.metric.key)
            o.add("value", double: p.metric.value)
            o.add("timestamp", p.metric.timestamp)
            o.add("step", p.metric.step)
            o.add("dataset_name", p.datasetName)
            o.add("dataset_digest", p.datasetDigest)
            o.add("model_id", p.modelID)
            o.add("run_id", p.runID.isEmpty ? nil : p.runID)
            return o.json
        })
        var o = Obj()
        o.add("info", raw: info.json)
        o.add("data", raw: data.json)
        return o.json
    }
}
