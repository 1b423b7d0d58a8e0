import Hummingbird
import TallyTracking

/// MLflow's experiment endpoints (`experiments/...`), mounted under each MLflow API prefix.
struct ExperimentRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        let exp = { (f: String) in Target.experimentField(f) }
        t.on("experiments/create", .post, access: .creates(.experiment), use: e.json { r in
            let id = try s.createExperiment(name: try r.string("name", required: true)!, artifactLocation: try r.string("artifact_location"),
                                            tags: try r.keyValues("tags"))
            try e.access?.didCreate(.experiment(id), by: r.caller)
            var o = Obj()
            o.add("experiment_id", id)
            return o.json
        })
        t.on("experiments/get", .get, access: .needs(.read, exp("experiment_id")), use: e.json { r in
            var o = Obj()
            o.add("experiment", raw: Render.experiment(try s.experiment(id: try r.string("experiment_id", required: true)!)))
            return o.json
        })
        t.on("experiments/get-by-name", .get, access: .needs(.read, .experimentNameField("experiment_name")), use: e.json { r in
            var o = Obj()
            o.add("experiment", raw: Render.experiment(try s.experiment(named: try r.string("experiment_name", required: true)!)))
            return o.json
        })
        t.on("experiments/search", .post, .get, access: .user, use: e.json { r in
            let page = try s.searchExperiments(filter: try r.string("filter"), view: try r.viewType("view_type"),
                                               maxResults: try r.int64("max_results"), orderBy: try r.strings("order_by"),
                                               pageToken: try r.string("page_token"), scope: r.grants)
            return Render.page("experiments", page, Render.experiment)
        })
        t.on("experiments/update", .post, access: .needs(.update, exp("experiment_id")), use: e.json { r in
            try s.renameExperiment(id: try r.string("experiment_id", required: true)!, to: try r.string("new_name", required: true)!)
            return Endpoints.empty
        })
        t.on("experiments/delete", .post, access: .needs(.delete, exp("experiment_id")), use: e.json { r in
            try s.deleteExperiment(id: try r.string("experiment_id", required: true)!)
            return Endpoints.empty
        })
        t.on("experiments/restore", .post, access: .needs(.delete, exp("experiment_id")), use: e.json { r in
            try s.restoreExperiment(id: try r.string("experiment_id", required: true)!)
            return Endpoints.empty
        })
        t.on("experiments/set-experiment-tag", .post, access: .needs(.update, exp("experiment_id")), use: e.json { r in
            try s.setExperimentTag(id: try r.string("experiment_id", required: true)!, key: try r.string("key", required: true)!,
                                   value: try r.string("value") ?? "")
            return Endpoints.empty
        })
        t.on("experiments/delete-experiment-tag", .post, access: .needs(.update, exp("experiment_id")), use: e.json { r in
            try s.deleteExperimentTag(id: try r.string("experiment_id", required: true)!, key: try r.string("key", required: true)!)
            return Endpoints.empty
        })
    }

    /// `experiments/search-datasets`: the UI's, served under the ajax prefix only (as MLflow does).
    func addUI(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("experiments/search-datasets", .post, access: .user, use: e.json { r in
            let summaries = try s.searchDatasets(experimentIDs: try r.strings("experiment_ids"), scope: r.grants)
            var o = Obj()
            o.add("dataset_summaries", array: summaries.map { d in
                var x = Obj()
                x.add("experiment_id", d.experimentID)
                x.add("name", d.name)
                x.add("digest", d.digest)
                x.add("context", d.context)
                return x.json
            })
            return o.json
        })
    }
}
