import Foundation
import TallyStore

/// `tally export mlflow`: the reverse of the import, so nothing is locked in. Experiments, runs, params, tags,
/// dataset inputs, every metric point and run artifacts go to a running MLflow server through its REST API
/// (``MLflowDestination``), from a data directory no server is using.
///
/// MLflow's API gives every experiment and run a new id: experiments are matched by name (Tally's Default is
/// MLflow's Default), runs get MLflow's ids, and `mlflow.parentRunId` tags are rewritten to the parents' new ids.
/// Deleted runs and experiments are written, then deleted. A journal (`exports/<hash of the URL>.journal`) records
/// each run's MLflow id as soon as MLflow gives it and each run finished, so a rerun after an interruption logs the
/// unfinished run again into the same MLflow run (MLflow skips what it holds) and skips finished ones; a run Tally
/// changed since it was exported (more points, params, tags, another status) is logged again the same way.
public struct MLflowExport {
    /// What to export.
    public struct Options: Sendable {
        /// Experiments by name or id (`nil`: all).
        public var experiments: [String]?

        /// Everything.
        public init() {}
    }

    /// Counts of one export.
    public struct Summary: Sendable, Equatable {
        /// Experiments created in MLflow.
        public var experiments = 0
        /// Runs exported.
        public var runs = 0
        /// Runs exported before and unchanged since.
        public var runsAlreadyExported = 0
        /// Runs exported before that Tally has more of since: logged again.
        public var runsUpdated = 0
        /// Params, tags, inputs and points sent.
        public var params = 0, tags = 0, inputs = 0, points = 0
        /// Logged models, registered models and their versions created.
        public var loggedModels = 0, registeredModels = 0, modelVersions = 0
        /// Traces sent.
        public var traces = 0
        /// Evaluation datasets and their records sent.
        public var datasets = 0, datasetRecords = 0
        /// Registered scorers and their versions sent.
        public var scorers = 0, scorerVersions = 0
        /// Label schemas, review queues and their items sent.
        public var labelSchemas = 0, reviewQueues = 0, reviewItems = 0
        /// Issues sent or brought up to date.
        public var issues = 0
        /// Registry webhooks created.
        public var webhooks = 0
        /// Artifact files and bytes uploaded.
        public var artifactFiles = 0, artifactBytes = 0
        /// One line each.
        public var warnings: [String] = []
    }

    let options: Options

    /// An export with `options`.
    public init(_ options: Options) { self.options = options }

    /// Metric points per `log-batch`, MLflow's limit.
    static let metricsPerBatch = 1000
    /// Params or tags per `log-batch`, MLflow's limit.
    static let paramsPerBatch = 100

    /// Exports from `service` to `destination`; the journal lives in `journalDirectory`.
    public func run(from service: TrackingService, to destination: any MLflowDestination, journalDirectory: String,
                    progress: (MLflowImport.Progress) -> Void = { _ in }) throws -> Summary {
        var journal = try ImportJournal(directory: journalDirectory, source: "export:" + destination.location + MLflowWorkspace.journalSuffix(destination.workspace),
                                        dryRun: false)
        var summary = Summary()
        let experiments = try MLflowImport.select(options.experiments, from: try service.metadata.experiments(), in: "this data directory")
        var plan: [(Experiment, [Run])] = []
        for e in experiments {
            let runs = try service.metadata.searchRuns(experimentIDs: [Int64(e.experimentID) ?? -1], view: .all, metricKeys: []).runs
            plan.append((e, try service.metadata.runs(ids: runs.map(\.info.runID)).sorted { ($0.info.startTime, $0.info.runID) < ($1.info.startTime, $1.info.runID) }))
        }
        // Every experiment first (a deleted one is active while runs go in), then every run, parents before their
        // children across experiments (a child's parent tag names the parent's new id), then the deletions.
        var target: [String: String] = [:]
        for (e, _) in plan { target[e.experimentID] = try exportExperiment(e, to: destination, journal: &journal, summary: &summary) }
        let ordered = Self.parentsFirst(plan.flatMap(\.1))
        for (n, r) in ordered.enumerated() {
            try exportRun(r, of: service, into: target[r.info.experimentID] ?? "0", to: destination, journal: &journal, summary: &summary, progress: progress)
            progress(MLflowImport.Progress(phase: "runs", done: n + 1, total: ordered.count))
        }
        for (e, _) in plan {
            try exportLoggedModels(of: e, into: target[e.experimentID] ?? "0", service: service, to: destination, journal: &journal,
                                   summary: &summary, progress: progress)
            try exportIssues(of: e, into: target[e.experimentID] ?? "0", service: service, to: destination, journal: &journal, summary: &summary)
            try exportTraces(of: e, into: target[e.experimentID] ?? "0", service: service, to: destination, journal: &journal,
                             summary: &summary, progress: progress)
            try exportScorers(of: e, into: target[e.experimentID] ?? "0", service: service, to: destination, journal: &journal, summary: &summary)
            try exportReview(of: e, into: target[e.experimentID] ?? "0", service: service, to: destination, journal: &journal, summary: &summary)
        }
        try exportRunOutputs(ordered, service: service, to: destination, journal: &journal)
        // The registry is global: exported whole when every experiment is.
        if options.experiments == nil { try exportRegistry(service: service, to: destination, journal: &journal, summary: &summary) }
        if options.experiments == nil { try exportDatasets(service: service, experiments: target, to: destination, journal: &journal, summary: &summary) }
        for (e, _) in plan where e.lifecycleStage == .deleted {
            if let id = target[e.experimentID], try destination.experimentStage(id: id) != .deleted { try destination.setExperimentDeleted(id: id, true) }
        }
        // Last: an MLflow that takes no webhooks (before 3.3, or a caller who is not an admin there) leaves a warning.
        if options.experiments == nil { try exportWebhooks(service: service, to: destination, journal: &journal, summary: &summary) }
        return summary
    }

    /// Runs reordered so each comes after the run its `mlflow.parentRunId` names, when that run is in the list.
    static func parentsFirst(_ runs: [Run]) -> [Run] {
        let ids = Set(runs.map(\.info.runID))
        var placed = Set<String>(), out: [Run] = [], waiting = runs
        while !waiting.isEmpty {
            let before = out.count
            waiting.removeAll { r in
                let parent = r.tags.last { $0.key == parentTag }?.value
                guard parent == nil || !ids.contains(parent!) || placed.contains(parent!) || parent == r.info.runID else { return false }
                out.append(r)
                placed.insert(r.info.runID)
                return true
            }
            if out.count == before {  // a cycle of parent tags: the rest as they are
                out += waiting
                break
            }
        }
        return out
    }

    static let parentTag = "mlflow.parentRunId"
    /// The tag naming the Tally run an MLflow run is being exported from (removed once it is done).
    static let markerTag = "tally.export.sourceRunID"

    /// The MLflow experiment `e` goes to: the journal's, MLflow's Default for Tally's, one of the same name (a
    /// warning says so unless this export made it), or a new one; a deleted one is restored while runs are added.
    func exportExperiment(_ e: Experiment, to destination: any MLflowDestination, journal: inout ImportJournal,
                          summary: inout Summary) throws -> String {
        let id: String
        if let known = journal.experiments[e.experimentID], try destination.experimentStage(id: known) != nil {
            id = known
        } else if e.experimentID == "0" {
            id = "0"
        } else if let existing = try destination.experiment(named: e.name) {
            // Made by an export killed before it journaled the id (the intent was), or MLflow's own: merged into.
            if !journal.begun.contains("create-experiment:" + e.experimentID) {
                summary.warnings.append("experiment '\(e.name)' (\(e.experimentID)) merged into MLflow's experiment \(existing.id) of the same name")
            }
            id = existing.id
        } else {
            try journal.begin("create-experiment:" + e.experimentID)
            id = try destination.createExperiment(name: e.name, tags: e.tags)
            summary.experiments += 1
            try journal.experiment(e.experimentID, is: id)
            return id
        }
        for t in e.tags { try destination.setExperimentTag(id: id, t) }
        if try destination.experimentStage(id: id) == .deleted { try destination.setExperimentDeleted(id: id, false) }
        try journal.experiment(e.experimentID, is: id)
        return id
    }

    /// Exports one run: created (or found in the journal), its params, tags, inputs, every point in 1,000-metric
    /// batches, artifacts, status and end time, then its stage.
    func exportRun(_ run: Run, of service: TrackingService, into experiment: String, to destination: any MLflowDestination,
                   journal: inout ImportJournal, summary: inout Summary, progress: (MLflowImport.Progress) -> Void) throws {
        let info = run.info
        try service.readable(info.runID)
        let stats = try service.metrics.stats(run: info.runID)
        // Counts, fields, and a digest of the values (a tag set again with another value, a rename).
        let values = (run.params.map { "p\u{1}" + $0.key + "\u{1}" + $0.value } + run.tags.map { "t\u{1}" + $0.key + "\u{1}" + $0.value }).sorted()
        let fingerprint = "\(stats.sealedPoints + stats.headPoints),\(run.params.count),\(run.tags.count),\(run.inputs.count),"
            + "\(info.status.rawValue),\(info.endTime ?? -1),\(info.lifecycleStage.rawValue),"
            + MLflowImport.digest(info.runName + "\u{2}" + values.joined(separator: "\u{2}"))
        if let before = journal.done[info.runID] {
            guard before != fingerprint else {
                summary.runsAlreadyExported += 1
                return
            }
            summary.runsUpdated += 1
        } else {
            summary.runs += 1
        }
        // The tag a created run carries until it is finished: how a rerun finds a run MLflow made but the journal
        // never heard of (a kill between the answer and the journal line), whatever its name.
        let marker = KeyValue(key: Self.markerTag, value: info.runID)
        let id: String, artifactURI: String
        if let known = journal.mapped[info.runID] {
            id = known
            artifactURI = try destination.runArtifactURI(id: id)
            try destination.setRunDeleted(id: id, false)  // logged to again: active while it is
        } else if journal.begun.contains("create:" + info.runID), let found = try destination.findRuns(experimentID: experiment, marker: marker).first {
            // Created by an export killed before it journaled the id: that run, not a second one.
            (id, artifactURI) = found
            try journal.map(info.runID, to: id)
            try destination.setRunDeleted(id: id, false)
        } else {
            try journal.begin("create:" + info.runID)
            (id, artifactURI) = try destination.createRun(experimentID: experiment, userID: info.userID, startTime: info.startTime, runName: info.runName,
                                                          marker: marker)
            try journal.map(info.runID, to: id)
        }
        try journal.begin(info.runID)
        for chunk in run.params.chunks(of: Self.paramsPerBatch) { try destination.logBatch(runID: id, metrics: [], params: chunk, tags: []) }
        summary.params += run.params.count
        // The parent tag names the parent's MLflow id when the parent was exported.
        let tags = run.tags.map { t in
            t.key == Self.parentTag ? KeyValue(key: t.key, value: journal.mapped[t.value] ?? t.value) : t
        }
        for chunk in tags.chunks(of: Self.paramsPerBatch) { try destination.logBatch(runID: id, metrics: [], params: [], tags: chunk) }
        summary.tags += tags.count
        if !run.inputs.isEmpty { try destination.logInputs(runID: id, run.inputs) }
        summary.inputs += run.inputs.count
        var batch: [Metric] = []
        batch.reserveCapacity(Self.metricsPerBatch)
        for key in try service.metrics.keys(run: info.runID) {
            let s = try service.metrics.read(run: info.runID, key: key)
            for i in 0..<s.count {
                batch.append(Metric(key: key, value: s.values[i], timestamp: s.timestamps[i], step: s.steps[i]))
                if batch.count == Self.metricsPerBatch {
                    try destination.logBatch(runID: id, metrics: batch, params: [], tags: [])
                    summary.points += batch.count
                    batch.removeAll(keepingCapacity: true)
                    progress(MLflowImport.Progress(phase: "points", done: summary.points, total: nil))
                }
            }
        }
        if !batch.isEmpty {
            try destination.logBatch(runID: id, metrics: batch, params: [], tags: [])
            summary.points += batch.count
        }
        try exportArtifacts(from: info.artifactURI, to: artifactURI, owner: "run \(info.runID)", service: service, destination: destination,
                            summary: &summary, progress: progress)
        if info.status != .running || info.endTime != nil { try destination.updateRun(id: id, status: info.status, endTime: info.endTime) }
        try destination.deleteRunTag(id: id, key: Self.markerTag)
        if info.lifecycleStage == .deleted { try destination.setRunDeleted(id: id, true) }
        try journal.finish(info.runID, fingerprint: fingerprint)
    }

    /// Uploads the artifacts under Tally's artifact root `uri` (a run's or logged model's, in Tally's proxied store)
    /// under MLflow's root `target`, file by file.
    func exportArtifacts(from uri: String, to target: String, owner: String, service: TrackingService, destination: any MLflowDestination,
                         summary: inout Summary, progress: (MLflowImport.Progress) -> Void) throws {
        guard let root = TrackingService.proxiedRoot(of: uri), let store = try? service.proxiedStore() else { return }
        var refused = false
        for (rel, size) in try store.files(under: root) where !refused {
            let sent = try store.withLocalFile(root + "/" + rel, scratch: NSTemporaryDirectory()) { file in
                try destination.uploadArtifact(artifactURI: target, path: rel, file: file, size: size)
            }
            guard sent else {
                refused = true
                break
            }
            summary.artifactFiles += 1
            summary.artifactBytes += size
            progress(MLflowImport.Progress(phase: "artifacts", done: summary.artifactBytes, total: nil))
        }
        if refused {
            summary.warnings.append("\(owner): artifacts not exported: MLflow's artifact root \(target) is not served by its proxy (mlflow-artifacts:)")
        }
    }
}

extension Array {
    /// The array in consecutive slices of at most `n` elements.
    func chunks(of n: Int) -> [[Element]] {
        stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) }
    }
}
