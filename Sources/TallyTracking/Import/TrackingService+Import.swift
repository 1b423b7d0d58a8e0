import Foundation
import TallyStore

extension TrackingService {
    /// The Tally experiment a source experiment imports into, created on first sight: MLflow's Default (id 0) is
    /// Tally's Default; an experiment whose name Tally already has merges into it (a warning says so); otherwise it
    /// is created with the source's id when that id is free (else the next one), stage, times and tags, and Tally's
    /// artifact location. The mapping is journaled, so a rerun finds the same one.
    func importExperiment(_ e: Experiment, journal: inout ImportJournal, summary: inout MLflowImport.Summary, dryRun: Bool) throws -> Experiment {
        if let id = journal.experiments[e.experimentID], let mapped = try metadata.experiment(id: Int64(id) ?? -1) { return mapped }
        let existing = e.experimentID == "0" ? try metadata.experiment(id: 0) : try metadata.experiment(named: e.name)
        if let existing {
            if e.experimentID != "0" { summary.warnings.append("experiment '\(e.name)' (\(e.experimentID)) merged into Tally's experiment \(existing.experimentID) of the same name") }
            if !dryRun {
                for t in e.tags { try metadata.setExperimentTag(id: Int64(existing.experimentID) ?? 0, t) }
                try journal.experiment(e.experimentID, is: existing.experimentID)
            }
            return existing
        }
        summary.experiments += 1
        var id = Int64(e.experimentID) ?? 0
        if try metadata.experiment(id: id) != nil { id = (try metadata.experiments().compactMap { Int64($0.experimentID) }.max() ?? 0) + 1 }
        var created = e
        created.experimentID = String(id)
        created.artifactLocation = artifactRoot + "/" + String(id)
        if dryRun { return created }
        try metadata.insertExperiment(created)
        try journal.experiment(e.experimentID, is: created.experimentID)
        return created
    }

    /// Imports one run into `experiment`: metadata, every metric point in MLflow's history order, latest values
    /// by MLflow's rule over those points, and the run's artifacts. A run the journal marks done is skipped; one it
    /// began is redone (its points dropped first); one that exists without the journal knowing it is not ours and
    /// is left alone.
    func importRun(_ source: RunInfo, into experiment: Experiment, from db: any MLflowSource, artifactsFrom: String?,
                   journal: inout ImportJournal, summary: inout MLflowImport.Summary, dryRun: Bool,
                   progress: (MLflowImport.Progress) -> Void) throws {
        let id = source.runID
        let fingerprint = try db.fingerprint(source)
        if let before = journal.done[id] {
            let (imported, was) = Self.journaledRun(before)
            guard was != fingerprint else {
                summary.runsAlreadyImported += 1
                return
            }
            // MLflow logged more to it since: imported again, whole, unless Tally holds points the import did not
            // write (the run went on logging to Tally), which a re-import would drop.
            let stats = try metrics.stats(run: id)
            guard stats.sealedPoints + stats.headPoints == imported else {
                summary.warnings.append("run \(id) changed in MLflow since it was imported, but Tally holds \(stats.sealedPoints + stats.headPoints) "
                                        + "points where the import wrote \(imported): left as it is")
                summary.runsSkipped += 1
                return
            }
            summary.runsUpdated += 1
        }
        let exists = try metadata.runInfo(id: id) != nil
        if exists && !journal.begun.contains(id) {
            summary.runsSkipped += 1
            summary.warnings.append("run \(id) skipped: a run with this id already exists in the target")
            return
        }
        let params = try db.params(runID: id), tags = try db.tags(runID: id), inputs = try db.inputs(runID: id)
        if journal.done[id] == nil { summary.runs += 1 }
        summary.params += params.count
        summary.tags += tags.count
        summary.inputs += inputs.count
        var info = source
        info.experimentID = experiment.experimentID
        info.artifactURI = experiment.artifactURI("\(id)/artifacts")
        let artifactSource = Self.sourceArtifactTree(db, source.artifactURI, owner: .run(id), artifactsFrom: artifactsFrom, summary: &summary)
        if dryRun {
            summary.points += try db.metricCount(runID: id)
            if let tree = artifactSource { _ = try tree.walk { _, size in summary.artifactFiles += 1; summary.artifactBytes += size } }
            return
        }
        let begunBefore = journal.begun.contains(id)
        try journal.begin(id)
        // A run begun by an interrupted import, or one MLflow has logged more to: its points are written again (even
        // when its metadata row was lost with an unsynced commit), its fields follow the source.
        if begunBefore || exists { try metrics.deleteRun(id) }
        if exists {
            try metadata.updateRun(id: id, status: info.status, endTime: info.endTime, name: info.runName)
        } else {
            try metadata.insertRun(info, tags: tags)
        }
        // The stage, a deleted run's with the time MLflow deleted it (what `tally gc --older-than` counts from), this
        // import's time where the source does not say.
        if exists || info.lifecycleStage == .deleted {
            let deleted = info.lifecycleStage == .deleted ? try db.deletedTime(runID: id) : nil
            try metadata.setRunStage(id: id, info.lifecycleStage, now: deleted ?? clock())
        }
        try metadata.setRunTags(id: id, tags)
        _ = try metadata.insertParams(runID: id, params)
        if !inputs.isEmpty { try metadata.insertInputs(runID: id, inputs) }
        let outputs = try db.runOutputs(runID: id)
        if !outputs.isEmpty { try metadata.insertRunOutputs(runID: id, outputs) }
        let modelInputs = try db.runModelInputs(runID: id).filter { !$0.modelID.isEmpty }
        if !modelInputs.isEmpty { try metadata.insertRunModelInputs(runID: id, modelInputs) }
        let series = Self.storableSeries(try db.metrics(runID: id), run: id, summary: &summary)
        try importPoints(runID: id, series, summary: &summary, progress: progress)
        if let tree = artifactSource { try copyArtifacts(from: tree, toRunURI: info.artifactURI, owner: .run(id), summary: &summary, progress: progress) }
        // The run's metadata durable before the journal says it is done (SQLite commits are synced at checkpoints).
        try metadata.checkpoint()
        try journal.finish(id, fingerprint: "\(series.reduce(0) { $0 + $1.steps.count });\(fingerprint)")
    }

    /// A run's series as Tally can keep them: its metric store tells keys apart up to canonical equivalence, and its
    /// API takes keys in Unicode NFC only, while MLflow keeps `K` and the Kelvin sign as two keys. A key not in NFC
    /// is imported under its NFC form, unless the run has a series of that key already (then it is left out); each
    /// case is a warning naming the run and the key's code points.
    static func storableSeries(_ series: [SeriesBatch], run: String, summary: inout MLflowImport.Summary) -> [SeriesBatch] {
        var kept = Set(series.filter { Validation.isNFC($0.key) }.map { ExactKey($0.key) })
        var out: [SeriesBatch] = []
        out.reserveCapacity(series.count)
        for s in series {
            guard !Validation.isNFC(s.key) else { out.append(s); continue }
            let composed = s.key.precomposedStringWithCanonicalMapping
            let written = s.key.unicodeScalars.map { $0.isASCII ? String($0) : String(format: "U+%04X", $0.value) }.joined(separator: " ")
            if kept.insert(ExactKey(composed)).inserted {
                summary.warnings.append("run \(run): metric '\(written)' imported as '\(composed)', its Unicode NFC form (Tally keeps keys in NFC only)")
                var renamed = s
                renamed.key = composed
                out.append(renamed)
            } else {
                summary.warnings.append("run \(run): metric '\(written)' not imported: Tally keeps keys in Unicode NFC only, and the run has "
                                        + "'\(composed)', which it cannot keep apart from it")
            }
        }
        return out
    }

    /// A finished run's journal entry: the points the import wrote and the source's fingerprint then. (Entries
    /// written before the count had its own field are the SQL fingerprint alone, whose first field is the count.)
    static func journaledRun(_ entry: String) -> (points: Int, fingerprint: String) {
        if let semicolon = entry.firstIndex(of: ";") {
            return (Int(entry[..<semicolon]) ?? -1, String(entry[entry.index(after: semicolon)...]))
        }
        return (Int(entry.split(separator: ",").first ?? "") ?? -1, entry)
    }

    /// Appends a run's series (whole, in chunks of about 1 M points) with their latest values, retrying while the
    /// store sheds load (its 429).
    func importPoints(runID: String, _ series: [SeriesBatch], summary: inout MLflowImport.Summary, progress: (MLflowImport.Progress) -> Void) throws {
        var chunk: [SeriesBatch] = []
        var size = 0
        func flush() throws {
            guard !chunk.isEmpty else { return }
            let columns = SeriesColumns(chunk)
            try metadata.prepareMetricKeys(columns.keys)  // before the transaction, which must not wait for the key connection
            while true {
                do {
                    _ = try commit(runID: runID, columns, batchID: nil, metadataOnDuplicate: true) {
                        let latest = try latestUpdates(runID: runID, columns)
                        if !latest.isEmpty { try metadata.setLatestMetrics(runID: runID, latest) }
                    }
                    break
                } catch let e as TrackingError where e.code == .requestLimitExceeded {
                    usleep(20_000)  // the store is sealing: wait for it, as a client would
                }
            }
            summary.points += size
            progress(MLflowImport.Progress(phase: "points", done: summary.points, total: nil))
            chunk.removeAll()
            size = 0
        }
        for s in series {
            chunk.append(s)
            size += s.steps.count
            if size >= 1 << 20 { try flush() }
        }
        try flush()
    }
}
