extension TrackingService {
    /// MLflow's default `max_results` of `logged-models/search` (it sets no upper limit; Tally takes the run search's).
    static let defaultLoggedModelSearchResults: Int64 = 100

    /// `logged-models` (create): a pending model in an experiment, its artifacts under the experiment's
    /// `models/<id>/artifacts`; a generated name when none is given.
    public func createLoggedModel(experimentID: String?, name: String?, modelType: String?, sourceRunID: String?, params: [KeyValue],
                                  tags: [KeyValue]) throws -> LoggedModel {
        guard let experimentID else { throw Validation.missing("experiment_id") }
        let e = try activeExperiment(experimentID)
        for t in tags { try Validation.key(t.key, entity: "Tag") }
        for p in params { try Validation.key(p.key, entity: "Param") }
        let id = "m-" + RunNames.runID()
        let now = clock()
        let model = LoggedModel(modelID: id, experimentID: e.experimentID, name: name.flatMap { $0.isEmpty ? nil : $0 } ?? RunNames.generate(),
                                creationTime: now, lastUpdatedTime: now, artifactURI: e.artifactURI("models/\(id)/artifacts"), status: .pending,
                                modelType: modelType ?? "", sourceRunID: sourceRunID ?? "",
                                tags: Self.lastWins(tags).sorted { binaryLess($0.key, $1.key) },
                                params: Self.lastWins(params).sorted { binaryLess($0.key, $1.key) })
        try metadata.insertLoggedModel(model)
        return model
    }

    /// A logged model; deleted ones only with `allowDeleted`.
    public func loggedModel(id: String, allowDeleted: Bool = false) throws -> LoggedModel {
        guard let m = try metadata.loggedModel(id: id), allowDeleted || m.lifecycleStage == .active else {
            throw Self.loggedModelNotFound(id)
        }
        return m
    }

    /// MLflow's answer for a logged model that does not exist (or is deleted).
    static func loggedModelNotFound(_ id: String) -> TrackingError { TrackingError.notFound("Logged model with ID '\(id)' not found.") }

    /// `PATCH logged-models/{id}` (finalize): sets the status. A status name MLflow's protocol does not know leaves
    /// the status as it is and only touches the model, as MLflow's server does (its client validates names first).
    public func finalizeLoggedModel(id: String, status: String?) throws -> LoggedModel {
        guard let status else { throw Validation.missing("status") }
        let m = try loggedModel(id: id)
        try metadata.setLoggedModelStatus(id: id, LoggedModelStatus(rawValue: status) ?? m.status, now: clock())
        return try loggedModel(id: id)
    }

    /// Soft-deletes a logged model: gone from get and search.
    public func deleteLoggedModel(id: String) throws {
        _ = try loggedModel(id: id)
        try metadata.deleteLoggedModel(id: id, now: clock())
    }

    /// Upserts a logged model's tags.
    public func setLoggedModelTags(id: String, _ tags: [KeyValue]) throws {
        _ = try loggedModel(id: id)
        for t in tags { try Validation.key(t.key, entity: "Tag") }
        try metadata.setLoggedModelTags(id: id, Self.lastWins(tags), now: clock())
    }

    /// Deletes a logged model's tag.
    public func deleteLoggedModelTag(id: String, key: String) throws {
        _ = try loggedModel(id: id)
        guard try metadata.deleteLoggedModelTag(id: id, key: key, now: clock()) else {
            throw TrackingError.notFound("No tag with key '\(key)' found for model with ID '\(id)'.")
        }
    }

    /// Upserts a logged model's params.
    public func logLoggedModelParams(id: String, _ params: [KeyValue]) throws {
        _ = try loggedModel(id: id)
        for p in params { try Validation.key(p.key, entity: "Param") }
        try metadata.setLoggedModelParams(id: id, Self.lastWins(params), now: clock())
    }

    /// `runs/outputs`: the models a run logged (each once, its first step kept). Each model is looked up once, however
    /// often the request names it (a request naming one large model 10,000 times read it 10,000 times).
    public func logOutputs(runID: String, models: [ModelOutput]) throws {
        _ = try activeRun(runID)
        var named: [String] = [], seen = Set<ExactKey>()
        for m in models where seen.insert(ExactKey(m.modelID)).inserted { named.append(m.modelID) }
        let active = Set(try metadata.activeLoggedModelIDs(named).map(ExactKey.init))
        if let missing = named.first(where: { !active.contains(ExactKey($0)) }) { throw Self.loggedModelNotFound(missing) }
        try metadata.insertRunOutputs(runID: runID, models)
    }

    /// The models a run logged.
    public func runOutputs(runID: String) throws -> [ModelOutput] { try metadata.runOutputs(runID: runID) }

    /// `logged-models/search`: the active models of some experiments matching a filter (MLflow's logged-model
    /// grammar), ordered by attributes or metrics (missing values last), then newest first, then by id; paged.
    public func searchLoggedModels(experimentIDs: [String], filter: String?, datasets: [DatasetFilter], maxResults: Int64?,
                                   orderBy: [LoggedModelOrder], pageToken: String?, scope: Grants = .unrestricted) throws -> SearchPage<LoggedModel> {
        let maxResults = maxResults.flatMap { $0 == 0 ? nil : $0 } ?? Self.defaultLoggedModelSearchResults
        guard maxResults >= 1, maxResults <= Int64(Validation.maxSearchResults) else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied: It must be between 1 and "
                + "\(Validation.maxSearchResults).")
        }
        for d in datasets where d.name.isEmpty { throw TrackingError.invalid("`dataset_name` in the `datasets` clause must be specified.") }
        let f = try SearchFilter(parsing: filter, kind: .loggedModels)
        var keys = try orderBy.map(Self.loggedModelOrderKey)
        let ids = try Self.searchedExperimentIDs(experimentIDs)
        if !keys.contains(where: { $0.field == "creation_timestamp" }) { keys.append(LoggedModelOrder(field: "creation_timestamp", ascending: false)) }
        keys.append(LoggedModelOrder(field: "model_id", ascending: true))
        let readable = ids.filter { scope.canRead(experiment: String($0)) }
        let matched = try metadata.loggedModels(experimentIDs: readable).filter { f.matches($0, datasets: datasets) }
        let values = matched.map { m in keys.map { Self.sortValue(m, $0) } }
        let order = matched.indices.sorted { a, b in
            for (k, key) in keys.enumerated() {
                let c = SortValue.compare(values[a][k], values[b][k], ascending: key.ascending)
                if c != 0 { return c < 0 }
            }
            return false
        }
        return Self.page(order.map { matched[$0] }, offset: try PageToken.decode(pageToken), maxResults: Int(maxResults))
    }

    /// An order key with its field checked (attributes or `metrics.<key>`).
    static func loggedModelOrderKey(_ o: LoggedModelOrder) throws -> LoggedModelOrder {
        var o = o
        if o.field.hasPrefix("metrics.") {
            guard o.field.count > "metrics.".count else { throw TrackingError.invalid("Invalid order by field name: \(o.field)") }
            return o
        }
        if o.field.contains(".") { throw TrackingError.invalid("Invalid order by field name: \(o.field). Only metrics are supported.") }
        o.field = SearchFilter.loggedModelAttributeAliases[o.field] ?? o.field
        guard SearchFilter.loggedModelStringAttributes.contains(o.field) || SearchFilter.loggedModelNumericAttributes.contains(o.field) else {
            throw TrackingError.invalid("Invalid order by field name: \(o.field)")
        }
        return o
    }

    /// A model's value of an order key: a metric's point with the latest timestamp, then step.
    static func sortValue(_ m: LoggedModel, _ key: LoggedModelOrder) -> SortValue {
        if key.field.hasPrefix("metrics.") {
            let name = String(key.field.dropFirst("metrics.".count))
            let points = m.metrics.filter { $0.metric.key == name && DatasetFilter.admits(key.dataset.map { [$0] } ?? [], $0) }
            guard let p = points.max(by: { ($0.metric.timestamp, $0.metric.step) < ($1.metric.timestamp, $1.metric.step) }) else { return .missing }
            return p.metric.value.isNaN ? .nan : .number(p.metric.value)
        }
        switch key.field {
        case "name": return .string(m.name)
        case "model_id": return .string(m.modelID)
        case "experiment_id": return .number(Double(m.experimentID) ?? 0)
        case "source_run_id": return .string(m.sourceRunID)
        case "model_type": return .string(m.modelType)
        case "status": return .number(Double(m.status.number))
        case "creation_timestamp": return .number(Double(m.creationTime))
        case "last_updated_timestamp": return .number(Double(m.lastUpdatedTime))
        default: return .missing
        }
    }
}
