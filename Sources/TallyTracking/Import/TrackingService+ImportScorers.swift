extension TrackingService {
    /// Imports an experiment's registered scorers (MLflow 3) into `experiment`: every version each has left (ids,
    /// numbers and times kept) and its online-scoring settings. Journaled per scorer: a rerun skips one MLflow has not
    /// changed since and replaces a changed one whole. A scorer of the same name Tally already holds (not from this
    /// import) is left alone, and said.
    func importScorers(of source: Experiment, into experiment: Experiment, from db: any MLflowSource, journal: inout ImportJournal,
                       summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        let (versions, configs) = try db.scorers(experimentID: source.experimentID)
        let byScorer = Dictionary(grouping: versions, by: \.scorerID)
        for id in byScorer.keys.sorted() {
            let list = byScorer[id]!.sorted { $0.version < $1.version }
            let mine = configs.filter { $0.scorerID == id }
            let name = list[0].name
            let key = "scorer:" + id
            let fingerprint = MLflowImport.scorerFingerprint(list, configs: mine)
            let before = journal.done[key]
            if before == fingerprint { continue }
            let held = try metadata.scorerVersions(experimentID: experiment.experimentID, name: name)
            if before == nil, !journal.begun.contains(key), let held, held.first.map({ $0.scorerID != id }) ?? true {
                summary.warnings.append("scorer '\(name)' of experiment \(source.experimentID) skipped: the target's experiment \(experiment.experimentID) "
                                        + "already has a scorer of this name")
                continue
            }
            summary.scorers += 1
            summary.scorerVersions += list.count
            if dryRun { continue }
            try journal.begin(key)
            let stored = list.map { v in
                var v = v
                v.experimentID = experiment.experimentID
                return v
            }
            let settings = mine.map { c in
                var c = c
                c.experimentID = experiment.experimentID
                return c
            }
            try metadata.transaction {
                if held != nil { _ = try metadata.deleteScorer(experimentID: experiment.experimentID, name: name, version: nil) }  // changed since: whole
                try metadata.importScorers(stored, configs: settings)
            }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }
}

extension MLflowImport {
    /// What an import and an export journal of a scorer: its versions (numbers, definitions, times) and settings.
    static func scorerFingerprint(_ versions: [ScorerVersion], configs: [OnlineScoringConfig]) -> String {
        digest((versions.map { "\($0.name)\u{1}\($0.version)\u{1}\($0.creationTime)\u{1}\($0.serialized)" }
                + configs.map { "\($0.sampleRate)\u{1}\($0.filterString ?? "\u{0}")" }).joined(separator: "\u{2}"))
    }
}
