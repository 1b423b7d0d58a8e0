import TallyTracking

/// The fields of an MLflow API request, from a JSON body (POST) or the query string (GET), read the way MLflow's
/// handlers read them: snake_case names, int64 as numbers (whole ones with a fraction or exponent too) or strings,
/// doubles as numbers or numeric strings (`"1.5"`, `"NaN"`, `"-Infinity"`),
/// unknown fields ignored, MLflow's messages for missing or mistyped values.
struct MLflowRequest {
    let body: JSONValue?
    let query: [String: [String]]
    /// Who is asking (``Caller/unrestricted`` with access control off).
    var caller: Caller = .unrestricted
    /// What they may do: searches filter with it.
    var grants: Grants = .unrestricted

    init(body: JSONValue?, query: [String: [String]]) {
        self.body = body
        self.query = query
    }

    static func missing(_ name: String) -> TrackingError { Validation.missing(name) }

    static func invalid(_ name: String, _ v: JSONValue) -> TrackingError { Validation.invalidType(name, repr: v.pythonRepr, type: v.pythonType) }

    func raw(_ name: String) -> JSONValue? {
        if let body {
            let v = body[name]
            if case .null = v { return nil }
            return v
        }
        return query[name]?.first.map(JSONValue.string)  // a repeated parameter: the first, as Flask's `args.get` in MLflow
    }

    /// Whether the request carries the field (a value that is not null, or the query parameter).
    func has(_ name: String) -> Bool { body != nil ? raw(name) != nil : query[name] != nil }

    /// A boolean field (`true`/`false`, or those words in a query string); `nil` when absent.
    func bool(_ name: String) throws -> Bool? {
        guard let v = raw(name) else { return nil }
        switch v {
        case .bool(let b): return b
        case .string(let s) where s.lowercased() == "true" || s.lowercased() == "false": return s.lowercased() == "true"
        default: throw Self.invalid(name, v)
        }
    }

    /// A string field (`nil` when absent and not required).
    func string(_ name: String, required: Bool = false) throws -> String? {
        guard let v = raw(name) else {
            if required { throw Self.missing(name) }
            return nil
        }
        guard case .string(let s) = v else { throw Self.invalid(name, v) }
        if required && s.isEmpty { throw Self.missing(name) }
        return s
    }

    /// A string member of an object the request holds (`nil` when absent or null), its type checked; `name` is its
    /// path in messages.
    static func optionalString(_ v: JSONValue?, _ name: String) throws -> String? {
        switch v {
        case .string(let s)?: return s
        case nil, .null?: return nil
        case let other?: throw invalid(name, other)
        }
    }

    /// The run id from `run_id` or its alias `run_uuid`.
    func runID() throws -> String {
        if let id = try string("run_id"), !id.isEmpty { return id }
        if let id = try string("run_uuid"), !id.isEmpty { return id }
        throw Self.missing("run_id")
    }

    /// An int64 as MLflow's server takes one: a JSON integer, a string of one (proto3's JSON form), or a JSON number
    /// with a fraction or exponent that is a whole number (`1700000000000.0`, `1e3`; clients in languages without
    /// integers send these). A fraction is refused: MLflow's server stores `1.5` as 0, Tally does not guess.
    static func int64(_ v: JSONValue, _ name: String) throws -> Int64 {
        switch v {
        case .number(let n): if let x = Int64(n) ?? wholeNumber(n) { return x }
        case .string(let s): if let x = Int64(s) ?? wholeNumber(s) { return x }  // protobuf's parser takes "5.0" and "1e1" too
        default: break
        }
        throw invalid(name, v)
    }

    /// The whole number a JSON number's text spells with a fraction of zeros or an exponent: exactly (digits, then
    /// `.` and zeros), or through a double where that is exact (below 2^53); `nil` for any other.
    static func wholeNumber(_ n: String) -> Int64? {
        guard !n.isEmpty, n.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
        if let dot = n.firstIndex(of: "."), n[n.index(after: dot)...].allSatisfy({ $0 == "0" }) { return Int64(n[..<dot]) }
        guard let d = Double(n), d.isFinite, d.rounded() == d, d.magnitude < 9_007_199_254_740_992 else { return nil }
        return Int64(d)
    }

    /// An int64 field.
    func int64(_ name: String, required: Bool = false) throws -> Int64? {
        guard let v = raw(name) else {
            if required { throw Self.missing(name) }
            return nil
        }
        return try Self.int64(v, name)
    }

    static func double(_ v: JSONValue, _ name: String) throws -> Double {
        switch v {
        case .number(let n):
            switch n {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: if let x = Double(n) { return x }
            }
        case .string(let s):
            switch s {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: if let x = numberText(s) { return x }
            }
        default: break
        }
        throw invalid(name, v)
    }

    /// A double written as a string, as MLflow's server reads one (Python's `float`, ``PythonNumber/double(_:)``).
    static func numberText(_ s: String) -> Double? { PythonNumber.double(s) }

    /// Repeated string fields (JSON array, or a repeated query key).
    func strings(_ name: String) throws -> [String] {
        if let body {
            guard let v = body[name] else { return [] }
            if case .null = v { return [] }
            guard case .array(let items) = v else { throw Self.invalid(name, v) }
            return try items.map { item in
                guard case .string(let s) = item else { throw Self.invalid(name, v) }
                return s
            }
        }
        return query[name] ?? []
    }

    /// Repeated object fields.
    func objects(_ name: String) throws -> [JSONValue] {
        guard let v = body?[name] else { return [] }
        if case .null = v { return [] }
        guard case .array(let items) = v else { throw Self.invalid(name, v) }
        for item in items { guard case .object = item else { throw Self.invalid(name, v) } }
        return items
    }

    /// `{key, value}` pairs of a repeated field (tags, params).
    func keyValues(_ name: String) throws -> [KeyValue] {
        try objects(name).enumerated().map { i, o in
            guard case .string(let k)? = o["key"] else { throw Self.missing("\(name)[\(i)].key") }
            let v: String
            switch o["value"] {
            case .string(let s)?: v = s
            case nil, .null?: v = ""
            case let other?: throw Self.invalid("\(name)[\(i)].value", other)
            }
            return KeyValue(key: k, value: v)
        }
    }

    /// An enum given by name (or number, in JSON or as a query string's digits); a name it lacks is ignored and a number
    /// it lacks refused, as MLflow's proto parser does.
    func enumName(_ name: String, numbers: [Int64: String]) throws -> String? {
        guard let v = raw(name) else { return nil }
        switch v {
        case .string(let s) where body == nil && s.allSatisfy(\.isASCII):  // a query's `?status=2`: the number's name
            return Int64(s).flatMap { numbers[$0] } ?? s
        case .string(let s): return s
        case .number(let n):  // a number the enum lacks is refused (protobuf's JSON parser), a name it lacks ignored
            guard let known = Int64(n).flatMap({ numbers[$0] }) else { throw Self.invalid(name, v) }
            return known
        default: throw Self.invalid(name, v)
        }
    }
}

extension MLflowRequest {
    /// Reads one metric object (this request's body: a `runs/log-metric` body or one element of a log-batch's
    /// `metrics`, `i` its position) into `batch`, with MLflow's messages for missing or mistyped fields.
    func metric(into batch: inout MetricBatch, _ i: Int?) throws {
        let prefix = i.map { "metrics[\($0)]." } ?? ""
        guard let o = body else { throw Self.missing(prefix + "key") }
        guard case .string(let key)? = o["key"] else {
            if let v = o["key"], v != .null { throw Self.invalid(prefix + "key", v) }
            throw Self.missing(prefix + "key")
        }
        guard let rawValue = o["value"], rawValue != .null else { throw Self.missing(prefix + "value") }
        let value = try Self.double(rawValue, prefix + "value")
        guard let rawTs = o["timestamp"], rawTs != .null else { throw Self.missing(prefix + "timestamp") }
        let ts = try Self.int64(rawTs, prefix + "timestamp")
        let step = try o["step"].flatMap { $0 == .null ? nil : try Self.int64($0, prefix + "step") } ?? 0
        batch.append(batch.series(for: key), step: step, timestamp: ts, value: value)
        // MLflow 3: a point logged against a logged model (and a dataset) is also kept beside the model.
        let field = { (name: String) throws -> String? in
            guard let v = o[name], v != .null else { return nil }
            guard case .string(let s) = v else { throw Self.invalid(prefix + name, v) }
            return s.isEmpty ? nil : s
        }
        if let model = try field("model_id") {
            batch.appendModelPoint(Metric(key: key, value: value, timestamp: ts, step: step), modelID: model,
                                   datasetName: try field("dataset_name"), datasetDigest: try field("dataset_digest"))
        }
    }

    /// The `datasets` of a `runs/log-inputs` body.
    func datasetInputs() throws -> [DatasetInput] {
        try objects("datasets").enumerated().map { i, o -> DatasetInput in
            guard let d = o["dataset"] else { throw Self.missing("datasets[\(i)].dataset") }
            func field(_ k: String) throws -> String? { try Self.optionalString(d[k], "datasets[\(i)].dataset.\(k)") }
            let tags = try MLflowRequest(body: o, query: [:]).keyValues("tags")
            return DatasetInput(dataset: Dataset(name: try field("name") ?? "", digest: try field("digest") ?? "",
                                                 sourceType: try field("source_type") ?? "", source: try field("source") ?? "",
                                                 schema: try field("schema"), profile: try field("profile")), tags: tags)
        }
    }

    /// The `models` of a `runs/log-inputs` body (MLflow 3): `[{"model_id": …}]`.
    func modelInputs() throws -> [ModelInput] {
        try objects("models").enumerated().map { i, o -> ModelInput in
            // None is refused by TallyTracking's rule, with its message.
            ModelInput(modelID: try Self.optionalString(o["model_id"], "models[\(i)].model_id") ?? "")
        }
    }

    /// A view type (`ACTIVE_ONLY` when absent or unknown, as MLflow's proto parser leaves it).
    func viewType(_ name: String) throws -> ViewType {
        guard let v = try enumName(name, numbers: ViewType.protocolNumbers) else { return .activeOnly }
        return ViewType(rawValue: v) ?? .activeOnly
    }
}
