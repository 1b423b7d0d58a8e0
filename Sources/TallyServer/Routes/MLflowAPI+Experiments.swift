import Hummingbird
import TallyTracking

extension MLflowAPI {
    func experimentRoutes() -> [(String, [HTTPRequest.Method], Handler)] {
        let s = service
        return [
            ("/experiments/create", [.post], { r in
                let id = try s.createExperiment(name: try r.string("name", required: true)!, artifactLocation: try r.string("artifact_location"),
                                                tags: try r.keyValues("tags"))
                var o = Obj()
                o.add("experiment_id", id)
                return o.json
            }),
            ("/experiments/get", [.get], { r in
                var o = Obj()
                o.add("experiment", raw: Render.experiment(try s.experiment(id: try r.string("experiment_id", required: true)!)))
                return o.json
            }),
            ("/experiments/get-by-name", [.get], { r in
                var o = Obj()
                o.add("experiment", raw: Render.experiment(try s.experiment(named: try r.string("experiment_name", required: true)!)))
                return o.json
            }),
            ("/experiments/search", [.post, .get], { r in
                let page = try s.searchExperiments(filter: try r.string("filter"), view: try Self.viewType(r, "view_type"),
                                                   maxResults: Int(try r.int64("max_results") ?? 0), orderBy: try r.strings("order_by"),
                                                   pageToken: try r.string("page_token"))
                var o = Obj()
                o.add("experiments", array: page.items.map(Render.experiment))
                o.add("next_page_token", page.nextPageToken)
                return o.json
            }),
            ("/experiments/update", [.post], { r in
                try s.renameExperiment(id: try r.string("experiment_id", required: true)!, to: try r.string("new_name", required: true)!)
                return Self.empty
            }),
            ("/experiments/delete", [.post], { r in
                try s.deleteExperiment(id: try r.string("experiment_id", required: true)!)
                return Self.empty
            }),
            ("/experiments/restore", [.post], { r in
                try s.restoreExperiment(id: try r.string("experiment_id", required: true)!)
                return Self.empty
            }),
            ("/experiments/set-experiment-tag", [.post], { r in
                try s.setExperimentTag(id: try r.string("experiment_id", required: true)!, key: try r.string("key", required: true)!,
                                       value: try r.string("value") ?? "")
                return Self.empty
            }),
            ("/experiments/delete-experiment-tag", [.post], { r in
                try s.deleteExperimentTag(id: try r.string("experiment_id", required: true)!, key: try r.string("key", required: true)!)
                return Self.empty
            }),
        ]
    }
}
