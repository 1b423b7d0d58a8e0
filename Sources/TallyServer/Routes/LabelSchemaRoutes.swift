import Hummingbird
import TallyTracking

/// MLflow 3's label schemas under `/api/3.0/mlflow/label-schemas` (and the UI's `ajax-api`), as
/// `mlflow.genai.label_schemas` calls them. Creating one needs MANAGE on its experiment, reading one READ, changing or
/// deleting one MANAGE (MLflow's auth app's rules; by id, the service checks them once it has found the schema).
struct LabelSchemaRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("label-schemas/create", .post, access: .needs(.manage, .experimentField("experiment_id")), use: e.json { r in
            let created = try s.createLabelSchema(experimentID: try r.string("experiment_id"), name: try r.string("name"),
                                                  type: try r.enumName("type", numbers: LabelSchemaType.protoNames), input: r.raw("input"),
                                                  instruction: try r.string("instruction"), enableComment: try r.bool("enable_comment"))
            return Render.wrap("label_schema", Self.schema(created))
        })
        t.on("label-schemas/get", .get, access: .user, use: e.json { r in
            Render.wrap("label_schema", Self.schema(try s.labelSchema(id: try r.string("schema_id"), scope: r.grants)))
        })
        t.on("label-schemas/get-by-name", .get, access: .needs(.read, .experimentField("experiment_id")), use: e.json { r in
            Render.wrap("label_schema", Self.schema(try s.labelSchema(experimentID: try r.string("experiment_id"), name: try r.string("name"))))
        })
        t.on("label-schemas/list", .get, access: .needs(.read, .experimentField("experiment_id")), use: e.json { r in
            let (list, next) = try s.labelSchemas(experimentID: try r.string("experiment_id"), maxResults: try r.int64("max_results"),
                                                  pageToken: try r.string("page_token"))
            return Render.page("label_schemas", list.map(Self.schema), next: next)
        })
        t.on("label-schemas/update", .patch, access: .user, use: e.json { r in
            let updated = try s.updateLabelSchema(id: try r.string("schema_id"), name: try r.string("name"), instruction: try r.string("instruction"),
                                                  enableComment: try r.bool("enable_comment"), input: r.raw("input"), scope: r.grants)
            return Render.wrap("label_schema", Self.schema(updated))
        })
        t.on("label-schemas/delete", .delete, access: .user, use: e.json { r in
            try s.deleteLabelSchema(id: try r.string("schema_id"), scope: r.grants)
            return Endpoints.empty
        })
    }

    /// MLflow's `LabelSchema` message, its fields in the proto's order.
    static func schema(_ l: LabelSchema) -> String {
        var o = Obj()
        o.add("schema_id", l.id)
        o.add("experiment_id", l.experimentID)
        o.add("name", l.name)
        o.add("type", l.type.protoName)
        o.add("instruction", l.instruction)
        o.add("enable_comment", bool: l.enableComment)
        o.add("input", raw: input(l.input))
        o.add("created_by", l.createdBy)
        o.add("created_at", l.creationTime)
        o.add("last_updated_at", l.lastUpdateTime)
        o.add("is_default", bool: l.isDefault)
        return o.json
    }

    /// The `LabelSchemaInput` one-of: `{"<kind>": {fields}}`, unset fields left out.
    static func input(_ i: LabelInput) -> String {
        var f = Obj()
        switch i {
        case .passFail(let positive, let negative):
            f.add("positive_label", positive)
            f.add("negative_label", negative)
        case .categorical(let options, let multi):
            f.add("options", array: options.map(JSONWriter.quote))
            f.add("multi_select", bool: multi)
        case .numeric(let lo, let hi):
            if let lo { f.add("min_value", raw: protoDouble(lo)) }
            if let hi { f.add("max_value", raw: protoDouble(hi)) }
        case .text(let n):
            f.add("max_length", n)
        }
        var o = Obj()
        o.add(i.kind, raw: f.json)
        return o.json
    }

    /// A proto double as MLflow's JSON has it: the non-finite ones as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    static func protoDouble(_ v: Double) -> String {
        if v.isNaN { return "\"NaN\"" }
        if v.isInfinite { return v > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return JSONWriter.double(v)
    }
}
