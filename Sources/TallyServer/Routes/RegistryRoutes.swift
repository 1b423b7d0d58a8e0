import Hummingbird
import NIOCore
import TallyStore
import TallyTracking

/// MLflow's Model Registry endpoints (`registered-models/...`, `model-versions/...`), mounted under each MLflow API
/// prefix. Names and versions travel in the query (GET) or the JSON body (every other method, DELETE included).
struct RegistryRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        let model = { (need: Permission.Need) in Access.needs(need, .modelField("name")) }
        t.on("registered-models/create", .post, access: .creates(.registeredModel), use: e.json { r in
            let m = try s.createRegisteredModel(name: try r.string("name"), tags: try r.keyValues("tags"), description: try r.string("description"))
            try e.access?.didCreate(.registeredModel(m.name), by: r.caller)
            return Render.wrap("registered_model", Self.model(m, latest: nil, aliases: false))
        })
        t.on("registered-models/get", .get, access: model(.read), use: e.json { r in
            let m = try s.registeredModel(named: try r.string("name"))
            return Render.wrap("registered_model", Self.model(m, latest: try s.latestVersions(of: m.name), aliases: true))
        })
        t.on("registered-models/rename", .post, access: model(.update), use: e.json { r in
            let m = try s.renameRegisteredModel(try r.string("name"), to: try r.string("new_name"))
            return Render.wrap("registered_model", Self.model(m, latest: try s.latestVersions(of: m.name), aliases: true))
        })
        t.on("registered-models/update", .patch, access: model(.update), use: e.json { r in
            let m = try s.updateRegisteredModel(try r.string("name"), description: try r.string("description"))
            return Render.wrap("registered_model", Self.model(m, latest: try s.latestVersions(of: m.name), aliases: true))
        })
        t.on("registered-models/delete", .delete, access: model(.delete), use: e.json { r in
            try s.deleteRegisteredModel(try r.string("name"))
            return Endpoints.empty
        })
        t.on("registered-models/set-tag", .post, access: model(.update), use: e.json { r in
            try s.setRegisteredModelTag(try r.string("name"), key: try r.string("key"), value: try r.string("value"))
            return Endpoints.empty
        })
        t.on("registered-models/delete-tag", .delete, access: model(.update), use: e.json { r in
            try s.deleteRegisteredModelTag(try r.string("name"), key: try r.string("key"))
            return Endpoints.empty
        })
        t.on("registered-models/search", .get, access: .user, use: e.json { r in
            let page = try s.searchRegisteredModels(filter: try r.string("filter"), maxResults: try r.int64("max_results"),
                                                    orderBy: try r.strings("order_by"), pageToken: try r.string("page_token"), scope: r.grants)
            // With aliases, and latest versions by stage name: as a real mlflow 3.17 server answers a search (the
            // differential test checks both).
            return try Render.page("registered_models", page) { m in
                Self.model(m, latest: try s.latestVersions(of: m.name).sorted { KeyOrder.less($0.currentStage, $1.currentStage) }, aliases: true)
            }
        })
        t.on("registered-models/get-latest-versions", .post, .get, access: model(.read), use: e.json { r in
            let name = try s.registeredModel(named: try r.string("name")).name
            let stages = try r.strings("stages")
            var o = Obj()
            o.add("model_versions", array: try s.latestVersions(of: name, stages: stages.isEmpty ? nil : stages).map { Self.version($0, aliases: true) })
            return o.json
        })
        t.on("registered-models/alias", .post, access: model(.update), use: e.json { r in
            try s.setModelAlias(try r.string("name"), alias: try r.string("alias"), version: try r.string("version"))
            return Endpoints.empty
        })
        t.on("registered-models/alias", .delete, access: model(.delete), use: e.json { r in
            try s.deleteModelAlias(try r.string("name"), alias: try r.string("alias"))
            return Endpoints.empty
        })
        t.on("registered-models/alias", .get, access: model(.read), use: e.json { r in
            Render.wrap("model_version", Self.version(try s.modelVersion(byAlias: try r.string("alias"), of: try r.string("name")), aliases: true))
        })
        t.on("model-versions/create", .post, access: model(.update), use: e.json { r in
            let v = try s.createModelVersion(try r.string("name"), source: try r.string("source"), runID: try r.string("run_id"), tags: try r.keyValues("tags"),
                                             runLink: try r.string("run_link"), description: try r.string("description"), modelID: try r.string("model_id"))
            return Render.wrap("model_version", Self.version(v, aliases: false))
        })
        t.on("model-versions/get", .get, access: model(.read), use: e.json { r in
            Render.wrap("model_version", Self.version(try s.modelVersion(try r.string("name"), try r.string("version")), aliases: true))
        })
        t.on("model-versions/update", .patch, access: model(.update), use: e.json { r in
            let v = try s.updateModelVersion(try r.string("name"), try r.string("version"), description: try r.string("description"))
            return Render.wrap("model_version", Self.version(v, aliases: false))
        })
        t.on("model-versions/transition-stage", .post, access: model(.update), use: e.json { r in
            let v = try s.transitionModelVersionStage(try r.string("name"), try r.string("version"), stage: try r.string("stage"),
                                                      archiveExisting: try r.bool("archive_existing_versions") ?? false)
            return Render.wrap("model_version", Self.version(v, aliases: true))
        })
        t.on("model-versions/delete", .delete, access: model(.delete), use: e.json { r in
            try s.deleteModelVersion(try r.string("name"), try r.string("version"))
            return Endpoints.empty
        })
        t.on("model-versions/set-tag", .post, access: model(.update), use: e.json { r in
            try s.setModelVersionTag(try r.string("name"), try r.string("version"), key: try r.string("key"), value: try r.string("value"))
            return Endpoints.empty
        })
        t.on("model-versions/delete-tag", .delete, access: model(.delete), use: e.json { r in
            try s.deleteModelVersionTag(try r.string("name"), try r.string("version"), key: try r.string("key"))
            return Endpoints.empty
        })
        t.on("model-versions/get-download-uri", .get, access: model(.read), use: e.json { r in
            var o = Obj()
            o.add("artifact_uri", try s.modelVersion(try r.string("name"), try r.string("version")).storageLocation)
            return o.json
        })
        t.on("model-versions/search", .get, access: .user, use: e.json { r in
            let page = try s.searchModelVersions(filter: try r.string("filter"), maxResults: try r.int64("max_results"),
                                                 orderBy: try r.strings("order_by"), pageToken: try r.string("page_token"), scope: r.grants)
            return Render.page("model_versions", page) { Self.version($0, aliases: false) }
        })
    }

    /// A registered model as MLflow writes it; `latest` (`nil`: left out) and `aliases` only where MLflow shows them.
    static func model(_ m: RegisteredModel, latest: [ModelVersion]?, aliases: Bool) -> String {
        var o = Obj()
        o.add("name", m.name)
        o.add("creation_timestamp", m.creationTime)
        o.add("last_updated_timestamp", m.lastUpdatedTime)
        o.add("description", m.description)
        if let latest { o.add("latest_versions", array: latest.map { version($0, aliases: false) }) }
        o.add("tags", array: Render.keyValues(m.tags))
        if aliases {
            o.add("aliases", array: m.aliases.map { a in
                var x = Obj()
                x.add("alias", a.alias)
                x.add("version", String(a.version))
                return x.json
            })
        }
        return o.json
    }

    /// A model version as MLflow writes it (the version number as a string; aliases only where MLflow shows them).
    static func version(_ v: ModelVersion, aliases: Bool) -> String {
        var o = Obj()
        o.add("name", v.name)
        o.add("version", String(v.version))
        o.add("creation_timestamp", v.creationTime)
        o.add("last_updated_timestamp", v.lastUpdatedTime)
        o.add("current_stage", v.currentStage)
        o.add("description", v.description)
        o.add("source", v.source)
        o.add("run_id", v.runID)
        o.add("status", "READY")
        o.add("run_link", v.runLink)
        if aliases { o.add("aliases", array: v.aliases.map { JSONText.quote($0) }) }
        o.add("tags", array: Render.keyValues(v.tags))
        return o.json
    }
}
