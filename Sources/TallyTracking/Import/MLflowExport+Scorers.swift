/// Registered scorers, exported with their experiment: MLflow numbers the versions it is sent (1, 2, … in order, so
/// versions deleted in Tally leave no gap there) and gives them its own times.
extension MLflowExport {
    /// Exports every scorer of Tally's experiment `e` into MLflow's experiment `target`: its versions in order, then its
    /// online-scoring settings. Journaled per scorer: one unchanged since is skipped, one changed is sent again whole
    /// (MLflow's is deleted first). A scorer of the same name MLflow already has, not from this export, is left alone.
    func exportScorers(of e: Experiment, into target: String, service: TrackingService, to destination: any MLflowDestination,
                       journal: inout ImportJournal, summary: inout Summary) throws {
        let metadata = service.metadata
        for latest in try metadata.latestScorers(experimentIDs: [e.experimentID]).sorted(by: { binaryLess($0.name, $1.name) }) {
            let versions = try metadata.scorerVersions(experimentID: e.experimentID, name: latest.name) ?? []
            let configs = try metadata.onlineScoringConfigs(scorerIDs: [latest.scorerID])
            let key = "scorer:" + latest.scorerID
            let fingerprint = MLflowImport.scorerFingerprint(versions, configs: configs)
            if journal.done[key] == fingerprint { continue }
            do {
                if journal.done[key] != nil || journal.begun.contains(key) {
                    try destination.deleteScorer(experimentID: target, name: latest.name)  // sent before, or in part: sent again whole
                } else if try destination.scorerExists(experimentID: target, name: latest.name) {
                    summary.warnings.append("scorer '\(latest.name)' of experiment \(e.experimentID) not exported: MLflow's experiment \(target) "
                                            + "already has a scorer of this name")
                    continue
                }
                try journal.begin(key)
                for v in versions { try destination.registerScorer(experimentID: target, name: v.name, serialized: v.serialized) }
                for c in configs { try destination.setOnlineScoringConfig(experimentID: target, name: latest.name, c) }
            } catch let err as TrackingError where [.resourceDoesNotExist, .permissionDenied, .invalidParameterValue].contains(err.code) {
                // An MLflow without scorers (404), whose auth app refuses the caller (403), or that refuses the definition
                // (a scorer with code, which MLflow's server takes only when its operator allows it).
                summary.warnings.append("scorer '\(latest.name)' of experiment \(e.experimentID) not exported: \(err.message)")
                continue
            }
            summary.scorers += 1
            summary.scorerVersions += versions.count
            try journal.finish(key, fingerprint: fingerprint)
        }
    }
}
