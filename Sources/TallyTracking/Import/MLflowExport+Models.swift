import Foundation
import TallyStore

/// Logged models and the Model Registry, exported after the runs (a model names its source run, a version its run
/// and model, by MLflow's new ids).
extension MLflowExport {
    /// Exports an experiment's logged models: created with their name, type, source run, params and tags, their
    /// artifacts, their metrics (through the run they were logged with), the runs' outputs naming them, and their
    /// status. Journaled per model; one finished before is skipped.
    func exportLoggedModels(of experiment: Experiment, into target: String, service: TrackingService, to destination: any MLflowDestination,
                            journal: inout ImportJournal, summary: inout Summary, progress: (MLflowImport.Progress) -> Void) throws {
        for m in try service.metadata.loggedModels(experimentIDs: [Int64(experiment.experimentID) ?? -1]) {
            let key = "model:" + m.modelID
            if journal.done[key] != nil { continue }
            let id: String, artifactURI: String
            if let known = journal.mapped[key] {
                id = known
                artifactURI = try destination.loggedModelArtifactURI(id: id)
            } else if journal.begun.contains("create:" + key),
                      let found = try destination.findLoggedModels(experimentID: target, name: m.name)
                          .first(where: { $0.sourceRunID == journal.mapped[m.sourceRunID] ?? "" && !Set(journal.mapped.values).contains($0.id) }) {
                // Created by an export killed before it journaled the id.
                (id, artifactURI) = (found.id, found.artifactURI)
                try journal.map(key, to: id)
            } else {
                try journal.begin("create:" + key)
                (id, artifactURI) = try destination.createLoggedModel(experimentID: target, name: m.name, modelType: m.modelType,
                                                                      sourceRunID: journal.mapped[m.sourceRunID] ?? "", params: m.params, tags: m.tags)
                try journal.map(key, to: id)
            }
            try journal.begin(key)
            summary.loggedModels += 1
            try exportArtifacts(from: m.artifactURI, to: artifactURI, owner: "logged model \(m.modelID)", service: service, destination: destination,
                                summary: &summary, progress: progress)
            // Metrics go through the run they were logged with; MLflow cannot take one without a run.
            for (run, metrics) in Dictionary(grouping: m.metrics, by: \.runID).sorted(by: { $0.key < $1.key }) {
                guard let mapped = journal.mapped[run] else {
                    summary.warnings.append("logged model \(m.modelID): \(metrics.count) metric(s) of run '\(run)' not exported (the run is not)")
                    continue
                }
                for chunk in metrics.chunks(of: Self.metricsPerBatch) { try destination.logModelMetrics(runID: mapped, modelID: id, chunk) }
            }
            if m.status != .pending { try destination.finalizeLoggedModel(id: id, m.status) }
            try journal.finish(key, fingerprint: "\(m.status.number)")
        }
    }

    /// Records each exported run's model outputs and model inputs by the models' new ids (once per run; a model
    /// Tally does not have keeps its id).
    func exportRunOutputs(_ runs: [Run], service: TrackingService, to destination: any MLflowDestination, journal: inout ImportJournal) throws {
        for r in runs {
            let key = "model-inputs:" + r.info.runID
            guard journal.done[key] == nil, let run = journal.mapped[r.info.runID] else { continue }
            let inputs = try service.runModelInputs(runID: r.info.runID).map { ModelInput(modelID: journal.mapped["model:" + $0.modelID] ?? $0.modelID) }
            if !inputs.isEmpty {
                if r.info.lifecycleStage == .deleted { try destination.setRunDeleted(id: run, false) }  // MLflow logs to active runs only
                try destination.logRunModelInputs(runID: run, inputs)
                if r.info.lifecycleStage == .deleted { try destination.setRunDeleted(id: run, true) }
            }
            try journal.finish(key, fingerprint: "\(inputs.count)")
        }
        for r in runs {
            let key = "outputs:" + r.info.runID
            guard journal.done[key] == nil, let run = journal.mapped[r.info.runID] else { continue }
            let outputs = try service.metadata.runOutputs(runID: r.info.runID).compactMap { o in
                journal.mapped["model:" + o.modelID].map { ModelOutput(modelID: $0, step: o.step) }
            }
            // Only those MLflow lacks: it refuses an output twice (an export killed after sending them).
            let have = try destination.runOutputs(runID: run)
            let missing = outputs.filter { o in !have.contains(o) }
            if !missing.isEmpty {
                if r.info.lifecycleStage == .deleted { try destination.setRunDeleted(id: run, false) }
                try destination.logRunOutputs(runID: run, missing)
            }
            if r.info.lifecycleStage == .deleted { try destination.setRunDeleted(id: run, true) }
            try journal.finish(key, fingerprint: "\(outputs.count)")
        }
    }

    /// Exports the registry: each model with its description and tags, its versions in number order (a number
    /// Tally's registry has deleted is created and deleted again, so numbers stay the same), their stages and
    /// tags, and the aliases. Sources and runs follow the new ids (`models:/<id>`, `runs:/<id>/…`). A model MLflow
    /// already has (not made by this export) is left alone with a warning.
    func exportRegistry(service: TrackingService, to destination: any MLflowDestination, journal: inout ImportJournal, summary: inout Summary) throws {
        for listed in try service.metadata.registeredModels() {
            let key = "registered:" + listed.name
            if journal.done[key] != nil { continue }
            let model = try service.metadata.registeredModel(named: listed.name) ?? listed
            let versions = try service.metadata.modelVersions(named: model.name).sorted { $0.version < $1.version }
            let resumed = journal.begun.contains(key)
            if !resumed {
                // The intent is journaled before the request, so a model created by an export killed before its
                // `begin` is known as ours on the rerun (and one MLflow had already is not).
                if !journal.begun.contains("create:" + key) {
                    guard try !destination.hasRegisteredModel(model.name) else {
                        summary.warnings.append("registered model '\(model.name)' not exported: MLflow already has a model of this name")
                        continue
                    }
                    try journal.begin("create:" + key)
                }
                _ = try destination.createRegisteredModel(model)
                try journal.begin(key)
            }
            // Each number is journaled before its create (`version:`), a deleted number again between its create and
            // its delete (`gap:`), and done after (`map`). A rerun settles the one number an interruption can leave
            // open: deleted again if it was made, staged if it is a live version MLflow made, else made now.
            let live = Dictionary(versions.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
            var next = Int64(journal.mapped[key].flatMap { Int64($0) } ?? 0) + 1
            let open = "version:\(model.name):\(next)"
            if resumed, journal.begun.contains(open) {
                let gap = live[next] == nil
                let made = try destination.versionExists(name: model.name, version: next)
                if journal.begun.contains("gap:\(model.name):\(next)") || (gap && made) {
                    try destination.deleteModelVersion(name: model.name, version: next)
                    try journal.map(key, to: String(next))
                    next += 1
                } else if made, let v = live[next] {
                    if v.currentStage != "None" { try destination.transitionStage(name: model.name, version: next, stage: v.currentStage) }
                    try journal.map(key, to: String(next))
                    next += 1
                    summary.modelVersions += 1
                }
            }
            for v in versions where v.version >= next {
                var copy = v
                copy.source = Self.following(v.source, journal)
                copy.runID = journal.mapped[v.runID] ?? v.runID
                copy.modelID = v.modelID.map { journal.mapped["model:" + $0] ?? $0 }
                // MLflow wants the logged model a `models:/m-…` source names (its API does not show it on versions,
                // so an imported version may not hold it).
                if copy.modelID == nil, copy.source.hasPrefix("models:/m-") {
                    copy.modelID = String(copy.source.dropFirst("models:/".count).prefix { $0 != "/" })
                }
                while next < v.version {  // a number Tally's registry deleted: made like the next one, then deleted
                    var gap = copy
                    gap.tags = []
                    try journal.begin("version:\(model.name):\(next)")
                    let n = try destination.createModelVersion(gap)
                    try journal.begin("gap:\(model.name):\(n)")
                    try destination.deleteModelVersion(name: model.name, version: n)
                    try journal.map(key, to: String(n))
                    next = n + 1
                }
                try journal.begin("version:\(model.name):\(next)")
                let n = try destination.createModelVersion(copy)
                if v.currentStage != "None" { try destination.transitionStage(name: model.name, version: n, stage: v.currentStage) }
                try journal.map(key, to: String(n))
                next = n + 1
                summary.modelVersions += 1
            }
            for a in model.aliases { try destination.setAlias(name: model.name, alias: a.alias, version: a.version) }
            summary.registeredModels += 1
            try journal.finish(key, fingerprint: "\(versions.count)")
        }
    }

    /// A version's source with the ids it names moved to MLflow's: `models:/<model id>…` and `runs:/<run id>/…`.
    static func following(_ source: String, _ journal: ImportJournal) -> String {
        for (scheme, prefix) in [("models:/", "model:"), ("runs:/", "")] where source.hasPrefix(scheme) {
            let rest = source.dropFirst(scheme.count)
            let id = rest.prefix { $0 != "/" }
            if let mapped = journal.mapped[prefix + id] { return scheme + mapped + rest.dropFirst(id.count) }
        }
        return source
    }
}

extension MLflowExport {
    /// Exports the registry webhooks, each with its secret opened under this server's key (MLflow seals it under its
    /// own), journaled per webhook: a rerun skips those done (changes made in Tally since are not sent again), and one
    /// an interrupted export made (the same name and URL in MLflow) is not made twice. A webhook MLflow refuses (its
    /// URL rules may be stricter: `https` and public addresses only unless its `MLFLOW_WEBHOOK_*` variables say
    /// otherwise) is a warning; an MLflow that takes no webhooks at all (404 before 3.3, 403 to a caller who is not
    /// an admin) is one warning, and the export ends there.
    func exportWebhooks(service: TrackingService, to destination: any MLflowDestination, journal: inout ImportJournal, summary: inout Summary) throws {
        for hook in try service.metadata.webhooks(id: nil).reversed() {  // oldest first, so MLflow lists them in the same order
            let key = "webhook:" + hook.id
            if journal.done[key] != nil { continue }
            do {
                if journal.begun.contains(key), try destination.webhookExists(name: hook.name, url: hook.url) {
                    try journal.finish(key, fingerprint: "\(hook.lastUpdatedTime)")
                    continue
                }
                var secret: String?, unopened: String?
                if let sealed = hook.sealedSecret {
                    do { secret = try service.webhooks.secrets.unseal(sealed) } catch { unopened = WebhookDelivery.reason(error) }
                }
                try journal.begin(key)
                try destination.createWebhook(hook, secret: secret)
                if let unopened {
                    summary.warnings.append("webhook \(hook.id) (\(hook.name)) exported without its secret (\(unopened)): set it in MLflow (update_webhook)")
                }
                summary.webhooks += 1
                try journal.finish(key, fingerprint: "\(hook.lastUpdatedTime)")
            } catch let e as TrackingError where e.code == .invalidParameterValue {
                summary.warnings.append("webhook \(hook.id) (\(hook.name)) not exported: \(e.message)")
            } catch let e as TrackingError where e.code == .resourceDoesNotExist || e.code == .permissionDenied {
                summary.warnings.append("webhooks not exported: \(e.message)")
                return
            }
        }
    }
}
