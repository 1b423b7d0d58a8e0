import TallyStore

extension TrackingService {
    /// Imports an experiment's logged models (MLflow 3): each with its tags, params and metrics in one transaction,
    /// then its artifacts; journaled per model, so a rerun skips the ones done and finishes one it began.
    func importLoggedModels(of source: Experiment, into experiment: Experiment, from db: any MLflowSource, artifactsFrom: String?,
                            journal: inout ImportJournal, summary: inout MLflowImport.Summary, dryRun: Bool,
                            progress: (MLflowImport.Progress) -> Void) throws {
        for m in try db.loggedModels(experimentID: source.experimentID) {
            let key = "model:" + m.modelID
            // What changes as MLflow finishes a model or logs to it: status, update time, tags and params (values
            // too: MLflow keeps the update time when a tag is set), metrics.
            let pairs = m.tags.map { "t\u{1}" + $0.key + "\u{1}" + $0.value }.sorted() + m.params.map { "p\u{1}" + $0.key + "\u{1}" + $0.value }.sorted()
            let fingerprint = "\(m.status.number),\(m.lastUpdatedTime),\(m.tags.count),\(m.params.count),\(m.metrics.count),\(m.lifecycleStage.rawValue),"
                + MLflowImport.digest(pairs.joined(separator: "\u{2}"))
            if let before = journal.done[key] {
                guard before != fingerprint, !dryRun else { continue }
                try updateImportedModel(m, summary: &summary)
                try metadata.checkpoint()
                try journal.finish(key, fingerprint: fingerprint)
                continue
            }
            let exists = try metadata.loggedModel(id: m.modelID) != nil
            if exists && !journal.begun.contains(key) {
                summary.warnings.append("logged model \(m.modelID) skipped: a model with this id already exists in the target")
                continue
            }
            summary.loggedModels += 1
            if dryRun { continue }
            try journal.begin(key)
            var copy = m
            copy.experimentID = experiment.experimentID
            copy.artifactURI = experiment.artifactURI("models/\(m.modelID)/artifacts")
            if !exists {
                try metadata.transaction {
                    try metadata.insertLoggedModel(copy)
                    if !copy.metrics.isEmpty { try metadata.insertModelMetrics(copy.metrics) }
                }
            }
            if let tree = Self.sourceArtifactTree(db, m.artifactURI, owner: .model(m.modelID), artifactsFrom: artifactsFrom, summary: &summary) {
                try copyArtifacts(from: tree, toRunURI: copy.artifactURI, owner: .model(m.modelID), summary: &summary, progress: progress)
            }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }

    /// Imports the Model Registry: each registered model with its tags, every version (numbers kept: versions are
    /// inserted in order, soft-deleted ones included) with tags, and aliases, in one transaction; sources pointing
    /// into a renumbered experiment's artifacts follow it. A model whose name Tally already has is left alone.
    func importRegistry(from db: any MLflowSource, experiments map: [String: String], journal: inout ImportJournal,
                        summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        for (model, versions) in try db.registeredModels() {
            let key = "registered:" + model.name
            // What changes in MLflow after an import: versions (and their stages, tags), aliases, tags, update time.
            // Tag values and aliases digested too: MLflow keeps the update time when they are set.
            let values = model.tags.map { $0.key + "\u{1}" + $0.value } + model.aliases.map { $0.alias + "\u{1}\($0.version)" }
                + versions.flatMap { v in v.tags.map { "\(v.version)\u{1}" + $0.key + "\u{1}" + $0.value } }
            let fingerprint = "\(versions.count),\(model.lastUpdatedTime),\(model.tags.count),\(model.aliases.count),"
                + "\(versions.map { "\($0.lastUpdatedTime).\($0.tags.count)" }.joined(separator: ":")),"
                + MLflowImport.digest(values.sorted().joined(separator: "\u{2}"))
            if let before = journal.done[key] {
                guard before != fingerprint, !dryRun else { continue }
                // Ours, changed in MLflow since: replaced whole (its rows are metadata only; artifacts stay).
                try metadata.deleteRegisteredModel(model.name)
                summary.registeredModelsUpdated += 1
            } else if try metadata.registeredModel(named: model.name) != nil && !journal.begun.contains(key) {
                summary.warnings.append("registered model '\(model.name)' skipped: Tally already has a model of this name")
                continue
            }
            // Tally numbers a version one past the model's highest, so MLflow's numbers come back only when they
            // have no gap (MLflow keeps deleted versions, so they normally have none): otherwise nothing is
            // written and a warning says so.
            guard versions.enumerated().allSatisfy({ $0.element.version == Int64($0.offset + 1) }) else {
                summary.warnings.append("registered model '\(model.name)' skipped: its version numbers \(versions.map(\.version)) have gaps Tally cannot keep")
                continue
            }
            if journal.done[key] == nil { summary.registeredModels += 1 }
            summary.modelVersions += versions.count
            if dryRun { continue }
            try journal.begin(key)
            if try metadata.registeredModel(named: model.name) == nil {
                try metadata.transaction {
                    var m = model
                    m.aliases = []
                    _ = try metadata.insertRegisteredModel(m)
                    for v in versions {
                        var v = v
                        v.source = Self.followingExperiments(v.source, map)
                        v.storageLocation = Self.followingExperiments(v.storageLocation, map)
                        guard let stored = try metadata.insertModelVersion(v), stored.version == v.version else {
                            throw TrackingError(.internalError, "registered model '\(model.name)': version \(v.version) was not stored as itself")
                        }
                    }
                    for a in model.aliases { try metadata.setModelAlias(model.name, alias: a.alias, version: a.version) }
                    // Inserting versions touched the model: give it back MLflow's time.
                    try metadata.updateRegisteredModel(model.name, description: model.description, now: model.lastUpdatedTime)
                }
            }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }

    /// Brings an imported logged model up to MLflow's: status, tags and params (upserts), and the metrics Tally
    /// does not have yet.
    func updateImportedModel(_ m: LoggedModel, summary: inout MLflowImport.Summary) throws {
        guard let mine = try metadata.loggedModel(id: m.modelID) else { return }
        struct Point: Hashable { var key: String, step: Int64, timestamp: Int64, run: String }
        let have = Set(mine.metrics.map { Point(key: $0.metric.key, step: $0.metric.step, timestamp: $0.metric.timestamp, run: $0.runID) })
        let new = m.metrics.filter { !have.contains(Point(key: $0.metric.key, step: $0.metric.step, timestamp: $0.metric.timestamp, run: $0.runID)) }
        try metadata.transaction {
            if !m.tags.isEmpty { try metadata.setLoggedModelTags(id: m.modelID, m.tags, now: m.lastUpdatedTime) }
            if !m.params.isEmpty { try metadata.setLoggedModelParams(id: m.modelID, m.params, now: m.lastUpdatedTime) }
            if !new.isEmpty { try metadata.insertModelMetrics(new) }
            try metadata.setLoggedModelStatus(id: m.modelID, m.status, now: m.lastUpdatedTime)
        }
        summary.loggedModelsUpdated += 1
    }

    /// `uri` with a `mlflow-artifacts:/<experiment id>/…` prefix moved to the experiment's Tally id.
    static func followingExperiments(_ uri: String, _ map: [String: String]) -> String {
        guard uri.hasPrefix(proxiedScheme) else { return uri }
        let rest = uri.dropFirst(proxiedScheme.count).drop { $0 == "/" }
        let id = rest.prefix { $0 != "/" }
        guard let mapped = map[String(id)], mapped != String(id) else { return uri }
        return proxiedScheme + "/" + mapped + rest.dropFirst(id.count)
    }
}
