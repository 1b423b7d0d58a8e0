import Hummingbird
import NIOCore
import TallyTracking

/// MLflow 3's registered scorers under `/api/3.0/mlflow/scorers` (and the UI's `ajax-api`), as `mlflow.genai.scorers`
/// calls them: register, list, versions, get, delete, and the online-scoring settings. A scorer's permissions are
/// MLflow's scorer rules (``Target/scorerFields``).
struct ScorerRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("scorers/register", .post, access: .needs(.update, .scorerFields), use: e.json { r in
            let v = try s.registerScorer(experimentID: try r.string("experiment_id"), name: try r.string("name"), serialized: try r.string("serialized_scorer"))
            // MLflow's grant is an upsert: a registrant holding a lower grant on the scorer gets MANAGE.
            try e.access?.didCreate(TrackingService.scorerResource(experimentID: v.experimentID, name: v.name), by: r.caller, raising: true)
            var o = Obj()  // RegisterScorer.Response: the experiment id as a string, the definition as sent
            o.add("version", v.version)
            o.add("scorer_id", v.scorerID)
            o.add("experiment_id", v.experimentID)
            o.add("name", v.name)
            o.add("serialized_scorer", v.serialized)
            o.add("creation_time", v.creationTime)
            return o.json
        })
        t.on("scorers/list", .get, access: .user, use: e.json { r in
            let list = try s.scorers(experimentID: try r.string("experiment_id"), experimentIDs: r.has("experiment_ids") ? try r.strings("experiment_ids") : nil,
                                     scope: r.grants)
            return Self.scorers(list)
        })
        t.on("scorers/versions", .get, access: .needs(.read, .scorerFields), use: e.json { r in
            Self.scorers(try s.scorerVersions(experimentID: try r.string("experiment_id"), name: try r.string("name")))
        })
        t.on("scorers/get", .get, access: .needs(.read, .scorerFields), use: e.json { r in
            let v = try s.scorer(experimentID: try r.string("experiment_id"), name: try r.string("name"), version: try r.int64("version"))
            return Render.wrap("scorer", Self.scorer(v, serialized: JSONWriter.quote(v.serialized)))
        })
        t.on("scorers/delete", .delete, access: .needs(.delete, .scorerFields), use: e.json { r in
            try s.deleteScorer(experimentID: try r.string("experiment_id"), name: try r.string("name"), version: try r.int64("version"))
            return Endpoints.empty
        })
        t.on("scorers/online-configs", .get, access: .user, use: e.json { r in
            let configs = try s.onlineScoringConfigs(scorerIDs: r.has("scorer_ids") ? try r.strings("scorer_ids") : nil, scope: r.grants)
            var o = Obj()
            o.add("configs", raw: "[" + configs.map(Self.config).joined(separator: ", ") + "]")
            return o.json
        })
        t.on("scorers/online-config", .put, access: .needs(.update, .experimentField("experiment_id")), use: e.json { r in
            let c = try s.setOnlineScoringConfig(experimentID: try r.string("experiment_id"), name: try r.string("name"),
                                                 sampleRate: r.raw("sample_rate"), filterString: r.body?["filter_string"])
            return Render.wrap("config", Self.config(c))
        })
    }

    /// `{"scorers": [...]}` (`{}` when none), each definition as Python's `json.dumps` writes it again (MLflow's listings re-serialize).
    static func scorers(_ list: [ScorerVersion]) -> String {
        if list.isEmpty { return Endpoints.empty }  // proto JSON leaves an empty list out
        return "{\"scorers\": [" + list.map { v in
            scorer(v, serialized: JSONWriter.quote((try? JSONParser.parse(Array(v.serialized.utf8)))?.pythonDumps() ?? v.serialized))
        }.joined(separator: ", ") + "]}"
    }

    /// MLflow's `Scorer` message: the experiment id as a number (the proto's int32).
    static func scorer(_ v: ScorerVersion, serialized: String) -> String {
        var o = Obj()
        o.add("experiment_id", raw: v.experimentID)
        o.add("scorer_name", v.name)
        o.add("scorer_version", v.version)
        o.add("serialized_scorer", raw: serialized)
        o.add("creation_time", v.creationTime)
        o.add("scorer_id", v.scorerID)
        return o.json
    }

    /// MLflow's `OnlineScoringConfig.to_dict()`: the rate as Python writes a float, the filter only when set.
    static func config(_ c: OnlineScoringConfig) -> String {
        var o = Obj()
        o.add("online_scoring_config_id", c.id)
        o.add("scorer_id", c.scorerID)
        o.add("sample_rate", raw: c.sampleRateText)
        o.add("experiment_id", c.experimentID)
        o.add("filter_string", c.filterString)
        return o.json
    }
}
