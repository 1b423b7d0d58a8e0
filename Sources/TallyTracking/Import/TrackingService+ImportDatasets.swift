extension TrackingService {
    /// Imports the source's evaluation datasets (MLflow 3), ids, times, digests and records kept, each linked to the
    /// imported experiments it was linked to (`experiments` maps the source's ids to the target's; links to others
    /// are dropped, and said). Journaled per dataset: a rerun skips one MLflow has not changed since and replaces a
    /// changed one whole. A dataset id Tally already holds (not from this import) is left alone.
    func importEvaluationDatasets(from db: any MLflowSource, experiments: [String: String], journal: inout ImportJournal,
                                  summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        for s in try db.evaluationDatasets() {
            let d = s.dataset
            let key = "dataset:" + d.id
            let fingerprint = MLflowImport.datasetFingerprint(d, experiments: s.experimentIDs, records: s.records)
            let before = journal.done[key]
            if before == fingerprint { continue }
            if before == nil, !journal.begun.contains(key), try !metadata.datasets(ids: [d.id]).isEmpty {
                summary.warnings.append("evaluation dataset \(d.id) (\(d.name)) skipped: a dataset with this id already exists in the target")
                continue
            }
            let linked = s.experimentIDs.compactMap { experiments[$0] }
            if linked.count < s.experimentIDs.count {
                let dropped = s.experimentIDs.filter { experiments[$0] == nil }
                summary.warnings.append("evaluation dataset \(d.id) (\(d.name)): links to experiments not imported dropped (\(dropped.joined(separator: ", ")))")
            }
            summary.datasets += 1
            summary.datasetRecords += s.records.count
            if dryRun { continue }
            try journal.begin(key)
            try metadata.transaction {
                try metadata.deleteDataset(id: d.id)  // one MLflow changed since: replaced whole
                try metadata.insertDataset(d, experimentIDs: linked)
                _ = try metadata.changeDataset(id: d.id) { try $0.save(s.records) }  // each source gives them under the dataset's id
            }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }
}
