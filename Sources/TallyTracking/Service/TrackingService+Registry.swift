extension TrackingService {
    /// MLflow's stages, canonical spelling.
    static let stages = ["None", "Staging", "Production", "Archived"]

    /// Whether tags mark a prompt (`mlflow.prompt.is_prompt` = `true` in any case, the last of repeated keys counting).
    static func isPrompt(_ tags: [KeyValue]) -> Bool {
        tags.last { $0.key == SearchFilter.promptTag }?.value.lowercased() == "true"
    }

    // MARK: Registered models

    /// `registered-models/create`.
    public func createRegisteredModel(name: String?, tags: [KeyValue], description: String?) throws -> RegisteredModel {
        let name = try Self.modelName(name)
        try tags.forEach(Self.checkRegistryTag)
        let now = clock()
        let m = RegisteredModel(name: name, creationTime: now, lastUpdatedTime: now, description: description,
                                tags: Self.lastWins(tags))
        guard try metadata.insertRegisteredModel(m) else {
            throw TrackingError(.resourceAlreadyExists, "Registered Model (name=\(name)) already exists.")
        }
        let prompt = Self.isPrompt(tags)
        fire(prompt ? .prompt : .registeredModel, .created) {
            WebhookPayload.modelCreated(name: name, tags: tags, description: description, prompt: prompt)
        }
        return m
    }

    /// A registered model with its tags and aliases.
    public func registeredModel(named name: String?) throws -> RegisteredModel {
        guard let name, !name.isEmpty else { throw Validation.missing("name") }
        guard let m = try metadata.registeredModel(named: name) else { throw Self.modelNotFound(name) }
        return m
    }

    /// MLflow's error for a registered model that does not exist.
    static func modelNotFound(_ name: String) -> TrackingError { TrackingError.notFound("Registered Model with name=\(name) not found") }
    /// MLflow's 404 for a version a model does not have (or no longer has).
    static func versionNotFound(_ name: String, _ version: String) -> TrackingError {
        TrackingError.notFound("Model Version (name=\(name), version=\(version)) not found")
    }

    /// `latest_versions` of a model: the highest version in each stage present (or in each of `stages`), stages in
    /// the order their first version was created (as MLflow's `registered-models/get` lists them).
    public func latestVersions(of name: String, stages: [String]? = nil) throws -> [ModelVersion] {
        let wanted = try stages.map { try $0.map(Self.stage) }
        var best: [String: ModelVersion] = [:], first: [String: Int64] = [:]
        for v in try metadata.modelVersions(named: name) where wanted?.contains(v.currentStage) ?? true {
            if (best[v.currentStage]?.version ?? 0) < v.version { best[v.currentStage] = v }
            first[v.currentStage] = min(first[v.currentStage] ?? v.version, v.version)
        }
        return best.values.sorted { first[$0.currentStage]! < first[$1.currentStage]! }
    }

    /// `registered-models/rename`: the model under its new name (versions, tags and aliases follow).
    public func renameRegisteredModel(_ name: String?, to newName: String?) throws -> RegisteredModel {
        let old = try registeredModel(named: name).name
        let new = try Self.modelName(newName, field: "new_name")
        try metadata.transaction {
            guard try metadata.renameRegisteredModel(old, to: new, now: clock()) else {
                throw TrackingError(.resourceAlreadyExists, "Registered Model (name=\(new)) already exists.")
            }
            try metadata.moveGrants(from: .registeredModel(old), to: new)  // grants follow the model, as MLflow's do
        }
        return try registeredModel(named: new)
    }

    /// `registered-models/update`: sets the description (omitting it clears it, as MLflow's PATCH does).
    public func updateRegisteredModel(_ name: String?, description: String?) throws -> RegisteredModel {
        let m = try registeredModel(named: name)
        try metadata.updateRegisteredModel(m.name, description: description, now: clock())
        return try registeredModel(named: m.name)
    }

    /// `registered-models/delete`: the model, its versions, tags and aliases.
    public func deleteRegisteredModel(_ name: String?) throws {
        let m = try registeredModel(named: name).name
        try metadata.transaction {
            try metadata.deleteRegisteredModel(m)
            try metadata.deleteGrants(on: .registeredModel(m))  // a new model of the same name starts without them
        }
    }

    /// `registered-models/set-tag`.
    public func setRegisteredModelTag(_ name: String?, key: String?, value: String?) throws {
        let m = try registeredModel(named: name)
        let tag = KeyValue(key: try Self.required(key, "key"), value: value ?? "")
        try Self.checkRegistryTag(tag)
        try metadata.setRegisteredModelTag(m.name, tag)
        fire(isPromptModel(m.name) ? .promptTag : nil, .set) { WebhookPayload.tag(name: m.name, version: nil, key: tag.key, value: tag.value) }
    }

    /// `registered-models/delete-tag` (a missing key is no error).
    public func deleteRegisteredModelTag(_ name: String?, key: String?) throws {
        let m = try registeredModel(named: name)
        let key = try Self.required(key, "key")
        try metadata.deleteRegisteredModelTag(m.name, key: key)
        // Whether it is a prompt after the delete, as MLflow asks (deleting the prompt mark itself fires nothing).
        fire(isPromptModel(m.name) ? .promptTag : nil, .deleted) { WebhookPayload.tag(name: m.name, version: nil, key: key, value: nil) }
    }

    /// `registered-models/search`: filter on `name` and tags (the client's prompt clause dropped, prompts left out
    /// unless asked for), order by name or last update, 0…1,000 per page (default 100). Models `scope` may not read
    /// are left out, before paging.
    public func searchRegisteredModels(filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?,
                                       scope: Grants = .unrestricted) throws -> SearchPage<RegisteredModel> {
        let maxResults = maxResults ?? 100
        // 0 is an empty page whose token asks again from the same place, as MLflow answers it; below 0 MLflow's SQL
        // misreads the limit, so it is refused here.
        guard maxResults >= 0 else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be a positive integer")
        }
        guard maxResults <= 1000 else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be at most 1000, but got value \(maxResults)")
        }
        var f = try SearchFilter(parsing: filter, kind: .registeredModels)
        let prompts = f.takePromptClause()
        var keys = try RegistryOrder.parse(orderBy, allowed: ["name", "last_updated_timestamp"], aliases: ["timestamp": "last_updated_timestamp"]) {
            "Invalid order by key '\($0)' specified. Valid keys are '{'timestamp', 'name'}'"
        }
        if !keys.contains(where: { $0.key == "name" }) { keys.append(RegistryOrder(key: "name", ascending: true)) }
        let matched = try metadata.registeredModels().filter { f.matches($0) && (prompts || !Self.isPrompt($0.tags)) && scope.canRead(model: $0.name) }
        let sorted = matched.sorted { a, b in
            for k in keys {
                let c = k.key == "name" ? SortValue.compare(.string(a.name), .string(b.name), ascending: k.ascending)
                    : SortValue.compare(.number(Double(a.lastUpdatedTime)), .number(Double(b.lastUpdatedTime)), ascending: k.ascending)
                if c != 0 { return c < 0 }
            }
            return false
        }
        return Self.page(sorted, offset: try PageToken.decode(pageToken), maxResults: Int(maxResults))
    }

    // MARK: Aliases

    /// `registered-models/alias` (POST): points an alias at a version.
    public func setModelAlias(_ name: String?, alias: String?, version: String?) throws {
        let m = try registeredModel(named: name)
        let alias = try Self.aliasName(alias)
        let v = try modelVersion(m.name, version)
        try metadata.setModelAlias(m.name, alias: alias, version: v.version)
        fire(Self.isPrompt(m.tags) ? .promptAlias : .modelVersionAlias, .created) {
            WebhookPayload.alias(name: m.name, alias: alias, version: String(v.version))
        }
    }

    /// `registered-models/alias` (DELETE): an unknown alias is no error.
    public func deleteModelAlias(_ name: String?, alias: String?) throws {
        let m = try registeredModel(named: name)
        let alias = try Self.required(alias, "alias")
        try metadata.deleteModelAlias(m.name, alias: alias)
        fire(Self.isPrompt(m.tags) ? .promptAlias : .modelVersionAlias, .deleted) { WebhookPayload.alias(name: m.name, alias: alias, version: nil) }
    }

    /// `registered-models/alias` (GET): the version an alias points at (an unknown alias is a 400, as MLflow's).
    public func modelVersion(byAlias alias: String?, of name: String?) throws -> ModelVersion {
        let m = try registeredModel(named: name)
        let alias = try Self.required(alias, "alias")
        guard let a = m.aliases.first(where: { $0.alias == alias }) else { throw TrackingError.invalid("Registered model alias \(alias) not found.") }
        return try modelVersion(m.name, String(a.version))
    }

    // MARK: Model versions

    /// `model-versions/create`: the next version of a model from a source MLflow accepts
    /// (``checkedVersionSource(_:tags:runID:modelID:hasRunID:hasModelID:)``); status READY. `runID` and `modelID` are
    /// `nil` when the request has no such field.
    public func createModelVersion(_ name: String?, source: String?, runID: String?, tags: [KeyValue], runLink: String?, description: String?,
                                   modelID: String?) throws -> ModelVersion {
        let m = try registeredModel(named: name)
        guard let source, !source.isEmpty else { throw Validation.missing("source") }
        try tags.forEach(Self.checkRegistryTag)
        let resolved = try checkedVersionSource(source, tags: tags, runID: runID.flatMap { $0.isEmpty ? nil : $0 },
                                                modelID: modelID.flatMap { $0.isEmpty ? nil : $0 }, hasRunID: runID != nil, hasModelID: modelID != nil)
        let now = clock()
        // The model may be deleted or renamed by another request meanwhile: the store answers nil, and no version is left
        // without its model.
        guard let v = try metadata.insertModelVersion(ModelVersion(
            name: m.name, version: 0, creationTime: now, lastUpdatedTime: now, description: description ?? "", source: resolved.source,
            runID: resolved.runID ?? "", runLink: runLink ?? "", modelID: resolved.modelID.flatMap { $0.isEmpty ? nil : $0 },
            storageLocation: resolved.storage, tags: Self.lastWins(tags))) else { throw Self.modelNotFound(m.name) }
        if Self.isPrompt(tags) {
            fire(.promptVersion, .created) {
                WebhookPayload.promptVersionCreated(name: v.name, version: v.version, tags: tags, description: description.flatMap { $0.isEmpty ? nil : $0 })
            }
        } else {
            fire(.modelVersion, .created) {
                WebhookPayload.versionCreated(name: v.name, version: v.version, source: v.source, runID: v.runID.isEmpty ? nil : v.runID,
                                              tags: tags, description: description.flatMap { $0.isEmpty ? nil : $0 })
            }
        }
        return v
    }

    /// A live version of a model (`version` as MLflow sends it: a string of digits).
    public func modelVersion(_ name: String?, _ version: String?) throws -> ModelVersion {
        let m = try registeredModel(named: name)
        guard let version, !version.isEmpty else { throw Validation.missing("version") }
        guard let n = Int64(version) else { throw TrackingError.invalid("Parameter 'version' must be an integer, got '\(version)'.") }
        guard let v = try metadata.modelVersions(named: m.name).first(where: { $0.version == n }) else {
            throw Self.versionNotFound(m.name, version)
        }
        return v
    }

    /// `model-versions/update`: the description (omitting it clears it).
    public func updateModelVersion(_ name: String?, _ version: String?, description: String?) throws -> ModelVersion {
        let v = try modelVersion(name, version)
        try metadata.updateModelVersion(v.name, version: v.version, description: .some(description), stage: nil, now: clock())
        return try modelVersion(v.name, String(v.version))
    }

    /// `model-versions/transition-stage`: moves a version to a stage; with `archiveExisting`, the other versions in
    /// that stage (Staging or Production) go to Archived.
    public func transitionModelVersionStage(_ name: String?, _ version: String?, stage: String?, archiveExisting: Bool) throws -> ModelVersion {
        let v = try modelVersion(name, version)
        let stage = try Self.stage(try Self.required(stage, "stage"))
        let now = clock()
        if archiveExisting, stage == "Staging" || stage == "Production" {
            for other in try metadata.modelVersions(named: v.name) where other.version != v.version && other.currentStage == stage {
                try metadata.updateModelVersion(v.name, version: other.version, description: nil, stage: "Archived", now: now)
            }
        }
        try metadata.updateModelVersion(v.name, version: v.version, description: nil, stage: stage, now: now)
        return try modelVersion(v.name, String(v.version))
    }

    /// `model-versions/delete`: the version and its aliases (its number is not given again).
    public func deleteModelVersion(_ name: String?, _ version: String?) throws {
        let v = try modelVersion(name, version)
        try metadata.deleteModelVersion(v.name, version: v.version, now: clock())
    }

    /// `model-versions/set-tag`.
    public func setModelVersionTag(_ name: String?, _ version: String?, key: String?, value: String?) throws {
        let v = try modelVersion(name, version)
        let tag = KeyValue(key: try Self.required(key, "key"), value: value ?? "")
        try Self.checkRegistryTag(tag)
        try metadata.setModelVersionTag(v.name, version: v.version, tag)
        fire(isPromptModel(v.name) ? .promptVersionTag : .modelVersionTag, .set) {
            WebhookPayload.tag(name: v.name, version: String(v.version), key: tag.key, value: tag.value)
        }
    }

    /// `model-versions/delete-tag`.
    public func deleteModelVersionTag(_ name: String?, _ version: String?, key: String?) throws {
        let v = try modelVersion(name, version)
        let key = try Self.required(key, "key")
        try metadata.deleteModelVersionTag(v.name, version: v.version, key: key)
        fire(isPromptModel(v.name) ? .promptVersionTag : .modelVersionTag, .deleted) {
            WebhookPayload.tag(name: v.name, version: String(v.version), key: key, value: nil)
        }
    }

    /// `model-versions/search`: filter on `name`, `version_number`, `run_id`, `source_path` and tags; order by name,
    /// version number or times (default: last update, newest first, then name, then version, highest first).
    /// Versions of models `scope` may not read are left out, before paging.
    public func searchModelVersions(filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?,
                                    scope: Grants = .unrestricted) throws -> SearchPage<ModelVersion> {
        let maxResults = maxResults ?? 10_000
        guard maxResults >= 1 else { throw TrackingError.invalid("Invalid value for max_results. It must be a positive integer, but got \(maxResults)") }
        guard maxResults <= 200_000 else {
            throw TrackingError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be at most 200000, but got value \(maxResults)")
        }
        let f = try SearchFilter(parsing: filter, kind: .modelVersions)
        var keys = try RegistryOrder.parse(orderBy, allowed: ["name", "version_number", "creation_timestamp", "last_updated_timestamp"],
                                           attributeNames: true) {
            "Invalid attribute key '\($0)' specified. Valid keys are '{'version_number', 'last_updated_timestamp', 'creation_timestamp', 'name'}'"
        }
        // MLflow's order: the given keys then name and version as tie-breakers; without any, newest update first.
        if keys.isEmpty { keys.append(RegistryOrder(key: "last_updated_timestamp", ascending: false)) }
        for k in [RegistryOrder(key: "name", ascending: true), RegistryOrder(key: "version_number", ascending: false)]
        where !keys.contains(where: { $0.key == k.key }) {
            keys.append(k)
        }
        let value = { (v: ModelVersion, key: String) -> SortValue in
            switch key {
            case "name": .string(v.name)
            case "version_number": .number(Double(v.version))
            case "creation_timestamp": .number(Double(v.creationTime))
            default: .number(Double(v.lastUpdatedTime))
            }
        }
        let sorted = try metadata.modelVersions(named: nil).filter { f.matches($0) && scope.canRead(model: $0.name) }.sorted { a, b in
            for k in keys {
                let c = SortValue.compare(value(a, k.key), value(b, k.key), ascending: k.ascending)
                if c != 0 { return c < 0 }
            }
            return false
        }
        return Self.page(sorted, offset: try PageToken.decode(pageToken), maxResults: Int(maxResults))
    }

    /// The source run of a registered model version named `name@alias` or `name/<version>` (a `models:/` prefix
    /// allowed): its lineage to the run's metric curves.
    public func sourceRun(ofModel reference: String) throws -> String {
        let ref = reference.hasPrefix("models:/") ? String(reference.dropFirst("models:/".count)) : reference
        let version: ModelVersion
        if let at = ref.lastIndex(of: "@") {
            version = try modelVersion(byAlias: String(ref[ref.index(after: at)...]), of: String(ref[..<at]))
        } else if let slash = ref.lastIndex(of: "/") {
            version = try modelVersion(String(ref[..<slash]), String(ref[ref.index(after: slash)...]))
        } else {
            throw TrackingError.invalid("Invalid model reference '\(reference)': use name@alias or name/version")
        }
        guard !version.runID.isEmpty else {
            throw TrackingError.invalid("Model version \(version.name)/\(version.version) has no source run to compare")
        }
        return version.runID
    }

    // MARK: Rules

    /// A model name MLflow accepts: not empty, no `/` or `:`.
    static func modelName(_ name: String?, field: String = "name") throws -> String {
        guard let name, !name.isEmpty else { throw Validation.missing(field) }
        guard !name.contains("/"), !name.contains(":") else { throw TrackingError.invalid("Invalid model name '\(name)'. Names cannot contain '/' or ':'.") }
        return name
    }

    /// A required string field.
    static func required(_ v: String?, _ field: String) throws -> String {
        guard let v, !v.isEmpty else { throw Validation.missing(field) }
        return v
    }

    /// Registry tags: run-tag key rules, keys ≤ 250 and values ≤ 100,000 characters.
    static func checkRegistryTag(_ t: KeyValue) throws {
        guard t.key.unicodeScalars.count <= 250 else { throw TrackingError.invalid("'key' exceeds the maximum length of 250 characters") }
        try Validation.key(t.key, entity: "Tag")
        guard t.value.unicodeScalars.count <= 100_000 else { throw TrackingError.invalid("'value' exceeds the maximum length of 100000 characters") }
    }

    /// A stage in MLflow's spelling (any case in).
    static func stage(_ s: String) throws -> String {
        guard let c = stages.first(where: { $0.lowercased() == s.lowercased() }) else {
            throw TrackingError.invalid("Invalid Model Version stage: \(s). Value must be one of None, Staging, Production, Archived.")
        }
        return c
    }

    /// An alias MLflow accepts: 1–255 word characters or dashes, not `latest`, not `v<digits>`.
    static func aliasName(_ alias: String?) throws -> String {
        let alias = try required(alias, "alias")
        guard alias.count <= 255 else { throw TrackingError.invalid("'Registered model alias name' exceeds the maximum length of 255 characters") }
        guard alias.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw TrackingError.invalid("Invalid alias name: '\(alias)'. Names may only contain alphanumerics, underscores (_), and dashes (-).")
        }
        guard alias.lowercased() != "latest" else { throw TrackingError.invalid("'latest' alias name (case insensitive) is reserved.") }
        if let first = alias.first, first == "v" || first == "V", alias.count > 1, alias.dropFirst().allSatisfy(\.isASCII), alias.dropFirst().allSatisfy(\.isNumber) {
            throw TrackingError.invalid("Version alias name '\(alias)' is reserved.")
        }
        return alias
    }
}
