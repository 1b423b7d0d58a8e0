import Hummingbird
import NIOCore
import TallyTracking

/// MLflow 3's evaluation datasets under `/api/3.0/mlflow/datasets` (and the UI's `ajax-api`), as
/// `mlflow.genai.datasets` and `MlflowClient` call them: create, get, delete, search, tags, records and experiments.
/// A dataset's permissions are those of its experiments, all of them (MLflow's auth app: ``Target/datasetPath(_:)``).
struct EvaluationDatasetRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("datasets/create", .post, access: .needs(.update, .experimentListField("experiment_ids")), use: e.json { r in
            let (d, experiments) = try s.createDataset(name: try r.string("name"), experimentIDs: try r.strings("experiment_ids"),
                                                       tags: try r.string("tags"))
            return ByteBuffer(string: Render.wrap("dataset", Self.dataset(d, experimentIDs: experiments)))
        })
        let search = e.json { r in
            let page = try s.searchDatasets(experimentIDs: try r.strings("experiment_ids"), filter: try r.string("filter_string"),
                                            maxResults: try r.int64("max_results"), orderBy: try r.strings("order_by"),
                                            pageToken: try r.string("page_token"), scope: r.grants)
            return ByteBuffer(string: Render.page("datasets", page) { Self.dataset($0) })
        }
        t.on("datasets/search", .post, access: .user, use: search)
        t.on("datasets/search", .get, access: .user, use: search)
        let dataset = { (need: Permission.Need) in Access.needs(need, .datasetPath("dataset_id")) }
        let id = ["dataset_id"]
        t.on("datasets/{dataset_id}", .get, access: dataset(.read), use: e.json(path: id) { _, p, _ in
            ByteBuffer(string: Render.wrap("dataset", Self.dataset(try s.dataset(id: p[0]))))
        })
        t.on("datasets/{dataset_id}", .delete, access: dataset(.delete), use: e.json(path: id) { _, p, _ in
            try s.deleteDataset(id: p[0])
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("datasets/{dataset_id}/tags", .patch, access: dataset(.update), use: e.json(path: id) { r, p, _ in
            try s.setDatasetTags(id: p[0], tags: try r.string("tags"))
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("datasets/{dataset_id}/tags/{key}", .delete, access: dataset(.update), use: e.json(path: ["dataset_id", "key"]) { _, p, _ in
            try s.deleteDatasetTag(id: p[0], key: p[1])
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("datasets/{dataset_id}/records", .post, access: dataset(.update), use: e.json(limit: e.largeBody, path: id) { r, p, _ in
            let (inserted, updated) = try s.upsertDatasetRecords(id: p[0], records: try r.string("records"))
            var o = Obj()
            o.add("inserted_count", Int64(inserted))
            o.add("updated_count", Int64(updated))
            return ByteBuffer(string: o.json)
        })
        t.on("datasets/{dataset_id}/records", .get, access: dataset(.read), use: e.json(path: id) { r, p, _ in
            let page = try s.datasetRecords(id: p[0], maxResults: try r.int64("max_results"), pageToken: try r.string("page_token"))
            var o = Obj()
            o.add("records", JSONValue.array(page.items.map(Self.record)).pythonDumps())
            o.add("next_page_token", page.nextPageToken)
            return ByteBuffer(string: o.json)
        })
        t.on("datasets/{dataset_id}/records", .delete, access: dataset(.update), use: e.json(path: id) { r, p, _ in
            var o = Obj()
            o.add("deleted_count", Int64(try s.deleteDatasetRecords(id: p[0], recordIDs: try r.strings("dataset_record_ids"))))
            return ByteBuffer(string: o.json)
        })
        t.on("datasets/{dataset_id}/experiment-ids", .get, access: dataset(.read), use: e.json(path: id) { _, p, _ in
            var o = Obj()
            o.add("experiment_ids", array: try s.datasetExperimentIDs(id: p[0]).map(JSONWriter.quote))
            return ByteBuffer(string: o.json)
        })
        t.on("datasets/{dataset_id}/add-experiments", .post, access: dataset(.update), use: e.json(path: id) { r, p, _ in
            let d = try s.addDatasetExperiments(id: p[0], experimentIDs: try r.strings("experiment_ids"), scope: r.grants)
            return ByteBuffer(string: Render.wrap("dataset", Self.dataset(d)))
        })
        t.on("datasets/{dataset_id}/remove-experiments", .post, access: dataset(.update), use: e.json(path: id) { r, p, _ in
            let d = try s.removeDatasetExperiments(id: p[0], experimentIDs: try r.strings("experiment_ids"))
            return ByteBuffer(string: Render.wrap("dataset", Self.dataset(d)))
        })
    }

    /// MLflow's `Dataset` message: tags, schema and profile as the text of JSON; `experiment_ids` only where MLflow
    /// sends them (the answer to `create`).
    static func dataset(_ d: EvaluationDataset, experimentIDs: [String] = []) -> String {
        var o = Obj()
        o.add("dataset_id", d.id)
        o.add("name", d.name)
        o.add("tags", d.tagsJSON)
        o.add("schema", d.schema)
        o.add("profile", d.profile)
        o.add("digest", d.digest)
        o.add("created_time", d.createdTime)
        o.add("last_update_time", d.lastUpdateTime)
        o.add("created_by", d.createdBy)
        o.add("last_updated_by", d.lastUpdatedBy)
        o.add("experiment_ids", array: experimentIDs.map(JSONWriter.quote))
        return o.json
    }

    /// A record as MLflow lists it in `records` (its fields in MLflow's order; those it leaves out when unset, left
    /// out).
    static func record(_ r: DatasetRecord) -> JSONValue {
        var m: [(String, JSONValue)] = [("dataset_record_id", .string(r.id)), ("dataset_id", .string(r.datasetID)), ("inputs", r.inputs)]
        if let e = r.expectations { m.append(("expectations", e)) }
        m.append(("tags", r.tags))
        if let s = r.source { m.append(("source", s)) }
        if let id = r.sourceID { m.append(("source_id", .string(id))) }
        if let t = r.sourceType { m.append(("source_type", .string(t))) }
        m.append(("created_time", .number(String(r.createdTime))))
        m.append(("last_update_time", .number(String(r.lastUpdateTime))))
        if let u = r.createdBy { m.append(("created_by", .string(u))) }
        if let u = r.lastUpdatedBy { m.append(("last_updated_by", .string(u))) }
        if let o = r.outputs { m.append(("outputs", o)) }
        return .object(m)
    }
}
