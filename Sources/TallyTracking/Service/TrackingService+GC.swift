import Foundation
import Synchronization
import TallyStore

/// What a `tally gc` purged.
public struct GarbageCollectionSummary: Sendable, Equatable {
    /// Runs purged (those of purged experiments included).
    public var runs = 0
    /// Logged models purged (those of purged experiments included).
    public var loggedModels = 0
    /// Experiments purged.
    public var experiments = 0
    /// Artifact roots that could not be reached (named in the lines said), left in place.
    public var artifactsLeft = 0
    /// Runs purged through another server whose points this server still held, deleted.
    public var runsPurgedElsewhere = 0

    /// An empty summary.
    public init() {}
}

extension TrackingService {
    /// `tally gc`: permanently deletes what `gc` selects, as MLflow's `mlflow gc` does and in its order, saying each
    /// purge (MLflow's lines) through `say` as it is done.
    ///
    /// The experiments named are checked first, all of them, before anything is deleted; their deleted runs join the
    /// runs. Each run is then checked and purged, then each logged model, then each experiment with whatever it still
    /// holds: runs in any stage (their points too; their artifacts stay, as MLflow leaves them) and logged models,
    /// traces, datasets, issues, scorers, review queues and the grants on it. A check that fails stops the collection
    /// with MLflow's error; what was purged before it stays purged.
    ///
    /// A purge deletes the rows first, in one transaction that finds the thing still deleted (a restore meanwhile
    /// wins; one after it finds nothing), then the points and artifacts; ``PurgeJournal`` in `dataDirectory` carries
    /// those over a crash to the next gc, which finishes them first.
    ///
    /// A cluster's points live in its shared log and every server's copy: refused there (docs/gc.md).
    @discardableResult
    public func collectGarbage(_ gc: GarbageCollection, dataDirectory: DataDirectory, say: (String) -> Void) throws -> GarbageCollectionSummary {
        if try cluster != nil || ClusterState.servedACluster(metadata) {
            throw TrackingError(.invalidParameterValue, "tally gc cannot purge a cluster's runs yet: their points are in the cluster's shared log "
                + "and every server's copy, not in one data directory. Deleted runs stay deleted until then (docs/gc.md)")
        }
        let journal = try PurgeJournal(directory: dataDirectory)
        var summary = GarbageCollectionSummary()
        try finish(journal, summary: &summary, say: say)

        let threshold = clock() &- gc.ageMillis
        let oldRuns = try metadata.deletedRunIDs(deletedBy: threshold)
        var runIDs = gc.runIDs ?? oldRuns
        let oldRunSet = Set(oldRuns)
        let deletedModels = Set(try metadata.deletedLoggedModelIDs(updatedBy: nil))
        let oldModels = try metadata.deletedLoggedModelIDs(updatedBy: threshold)
        let oldModelSet = Set(oldModels)

        // The experiments, all checked before anything goes (MLflow's order and messages).
        var experiments: [(id: Int64, label: String)] = []
        if let ids = gc.experimentIDs {
            let named = try ids.map { try experiment(id: $0) }
            let active = named.filter { $0.lifecycleStage != .deleted }.map(\.experimentID)
            guard active.isEmpty else { throw GarbageCollection.experimentsNotDeleted(active) }
            if gc.checksAge {
                let young = named.filter { $0.lastUpdateTime >= threshold }.map(\.experimentID)
                guard young.isEmpty else { throw gc.experimentsTooYoung(young) }
            }
            experiments = try ids.map { (try Validation.experimentID($0), $0) }
        } else {
            experiments = try metadata.deletedExperimentIDs(updatedBefore: gc.checksAge ? threshold : nil).map { ($0, String($0)) }
        }
        for e in experiments { runIDs += try metadata.purgeableRuns(experimentID: e.id, deletedOnly: true).map(\.id) }

        for id in Self.once(runIDs) {
            guard let info = try metadata.runInfo(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
            guard info.lifecycleStage == .deleted else { throw GarbageCollection.runNotDeleted(id) }
            if gc.checksAge && !oldRunSet.contains(id) { throw gc.runTooYoung(id) }
            let entry = PurgeJournal.Entry(kind: .run, id: id, artifactURI: info.artifactURI)
            try journal.add([entry])
            guard try metadata.purgeRun(id: id, deletedBy: gc.checksAge ? threshold : nil, now: clock()) else {
                // Restored since it was read (and maybe deleted again), or purged by another gc.
                try journal.clear()
                guard let now = try metadata.runInfo(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
                throw now.lifecycleStage != .deleted ? GarbageCollection.runNotDeleted(id) : gc.runTooYoung(id)
            }
            try finish([entry], journal, summary: &summary, say: say)
            say(GarbageCollection.purged(run: id))
        }
        for id in Self.once(gc.loggedModelIDs ?? oldModels) {
            let model = try loggedModel(id: id, allowDeleted: true)
            guard deletedModels.contains(id) else { throw GarbageCollection.loggedModelNotDeleted(id) }
            if gc.checksAge && !oldModelSet.contains(id) { throw gc.loggedModelTooYoung(id) }
            let entry = PurgeJournal.Entry(kind: .model, id: id, artifactURI: model.artifactURI)
            try journal.add([entry])
            guard try metadata.purgeLoggedModel(id: id, updatedBy: gc.checksAge ? threshold : nil) else {
                try journal.clear()
                guard let now = try metadata.loggedModel(id: id) else { throw Self.loggedModelNotFound(id) }
                throw now.lifecycleStage != .deleted ? GarbageCollection.loggedModelNotDeleted(id) : gc.loggedModelTooYoung(id)
            }
            try finish([entry], journal, summary: &summary, say: say)
            say(GarbageCollection.purged(loggedModel: id))
        }
        for e in experiments {
            // The runs still in it lose their points (MLflow's hard delete takes their metric rows), not their artifacts,
            // nor do its logged models: MLflow leaves those files, which may back a registered model version. Journaled
            // as read; whatever else the purge found is finished after it too.
            let left = { (id: String) in PurgeJournal.Entry(kind: .run, id: id, artifactURI: "") }
            try journal.add(try metadata.purgeableRuns(experimentID: e.id, deletedOnly: false).map { left($0.id) })
            guard let purged = try metadata.purgeExperiment(id: e.id, updatedBefore: gc.checksAge ? threshold : nil, now: clock()) else {
                try journal.clear()
                guard let now = try metadata.experiment(id: e.id) else { throw TrackingError.notFound("No Experiment with id=\(e.label) exists") }
                throw now.lifecycleStage != .deleted ? GarbageCollection.experimentsNotDeleted([e.label]) : gc.experimentsTooYoung([e.label])
            }
            try finish(purged.runs.map(left), journal, summary: &summary, say: say)
            summary.loggedModels += purged.loggedModels
            summary.experiments += 1
            say(GarbageCollection.purged(experiment: e.label))
        }
        let others = try dropPointsOfPurgedRuns()
        if others > 0 { say("Deleted this server's points of \(others) run(s) purged through another server.") }
        summary.runsPurgedElsewhere = others
        try metadata.checkpoint()  // SQLite's log of the deletes folded in and truncated: the disk a gc is run for
        return summary
    }

    /// Deletes this server's points of runs purged through another server sharing the database (``PurgeStore/purgedRunIDs(among:)``):
    /// how many runs. Run at each gc and at each start; a cluster's points are not this server's alone (nothing done).
    @discardableResult
    public func dropPointsOfPurgedRuns() throws -> Int {
        guard cluster == nil else { return 0 }
        let purged = try metadata.purgedRunIDs(among: metrics.runIDs())
        for id in purged.sorted() { try dropPoints(of: id) }
        return purged.count
    }

    /// Finishes what a gc that stopped left in the journal: the points and artifacts of what is gone from the
    /// metadata (a line whose rows are still there did not commit: that thing is still deleted, and selected again).
    private func finish(_ journal: PurgeJournal, summary: inout GarbageCollectionSummary, say: (String) -> Void) throws {
        var gone: [PurgeJournal.Entry] = []
        for e in try journal.pending() {
            let there = switch e.kind {
            case .run: try metadata.runInfo(id: e.id) != nil
            case .model: try metadata.loggedModel(id: e.id) != nil
            }
            if !there { gone.append(e) }
        }
        try finish(gone, journal, summary: &summary, say: say)
    }

    /// Deletes the points and artifacts of `purged` (their rows gone), then clears the journal.
    private func finish(_ purged: [PurgeJournal.Entry], _ journal: PurgeJournal, summary: inout GarbageCollectionSummary,
                        say: (String) -> Void) throws {
        for e in purged {
            switch e.kind {
            case .run:
                try dropPoints(of: e.id)
                summary.runs += 1
            case .model:
                summary.loggedModels += 1
            }
            guard !e.artifactURI.isEmpty else { continue }  // points only
            if try !purgeArtifacts(at: e.artifactURI, of: (e.kind == .run ? "run " : "logged model ") + e.id, say: say) { summary.artifactsLeft += 1 }
        }
        try journal.clear()
    }

    /// Deletes a purged run's points here, and forgets its experiment.
    private func dropPoints(of id: String) throws {
        try metrics.deleteRun(id)
        runExperiments.withLock { $0[id] = nil }
    }

    /// `ids` without repeats, in their first order (MLflow goes through a set, in no order).
    static func once(_ ids: [String]) -> [String] {
        var seen = Set<String>()
        return ids.filter { seen.insert($0).inserted }
    }

    /// Deletes the artifact tree at `uri`: a proxied root from this server's store (a directory or an object storage
    /// prefix), a local directory (a path or `file://`) from the disk. `false`, said in a warning line, when it is
    /// neither (another server's storage, which this one cannot reach) or this server serves no artifacts: left in
    /// place, as MLflow's gc leaves what it cannot resolve, and the collection goes on.
    func purgeArtifacts(at uri: String, of owner: String, say: (String) -> Void) throws -> Bool {
        if let root = Self.proxiedRoot(of: uri), !root.isEmpty, let artifacts {
            try artifacts.delete(root)
            return true
        }
        if let path = Self.localPath(uri), path != "/" {
            var info = stat()
            if lstat(path, &info) == 0 { try FileManager.default.removeItem(atPath: path) }
            return true
        }
        say("Warning: the artifacts of \(owner) at '\(uri)' are not in storage this server reaches; left in place. Delete them by hand.")
        return false
    }
}
