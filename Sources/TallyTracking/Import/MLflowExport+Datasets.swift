/// Evaluation datasets, exported once every experiment is: MLflow's API gives a dataset and its records new ids and
/// times, so a dataset changed since the last export is sent again whole, in place of the one sent before.
extension MLflowExport {
    /// The records sent in one request.
    static let datasetRecordsPerRequest = 500

    /// Exports every dataset with its tags and records, linked to the experiments it was exported with (`experiments`
    /// maps Tally's ids to MLflow's). Journaled per dataset, with MLflow's id: one unchanged since is skipped.
    func exportDatasets(service: TrackingService, experiments: [String: String], to destination: any MLflowDestination,
                        journal: inout ImportJournal, summary: inout Summary) throws {
        let datasets = try service.metadata.datasets(experimentIDs: nil).sorted { ($0.createdTime, $0.id) < ($1.createdTime, $1.id) }
        for d in datasets {
            let key = "dataset:" + d.id
            let links = try service.metadata.datasetExperimentIDs(id: d.id)
            var records: [DatasetRecord] = [], cursor: DatasetRecordCursor?
            while true {
                let page = try service.metadata.datasetRecords(id: d.id, after: cursor, limit: 1000)
                records += page
                guard page.count == 1000, let last = page.last else { break }
                cursor = .after(time: last.createdTime, id: last.id)
            }
            let fingerprint = MLflowImport.datasetFingerprint(d, experiments: links, records: records)
            if journal.done[key] == fingerprint { continue }
            let marker = KeyValue(key: Self.datasetMarkerTag, value: d.id)
            do {
                // What an export killed before it journaled the new id left (found by its marker), and what an earlier
                // export sent: replaced.
                if journal.begun.contains("create:" + key) { for left in try destination.datasets(marked: marker) { try destination.deleteDataset(id: left) } }
                if let sent = journal.mapped[key] { try destination.deleteDataset(id: sent) }
                try journal.begin("create:" + key)
                let id = try destination.createDataset(name: d.name, tags: d.tags + [DatasetTag(key: marker.key, value: marker.value)],
                                                       experimentIDs: links.compactMap { experiments[$0] })
                try journal.map(key, to: id)
                // Records whose outputs are not an object go last: MLflow 3.17 fails on object outputs after any other kind.
                let late = { (r: DatasetRecord) -> Bool in r.outputs.map { if case .object = $0 { false } else { true } } ?? false }
                let objectFirst = records.filter { !late($0) } + records.filter(late)
                for chunk in objectFirst.chunks(of: Self.datasetRecordsPerRequest) { try destination.upsertDatasetRecords(id: id, chunk) }
                try destination.deleteDatasetTag(id: id, key: marker.key)
            } catch let e as TrackingError where e.code == .resourceDoesNotExist || e.code == .permissionDenied {
                // An MLflow before 3.4 (no datasets: 404), or one whose auth app refuses the caller (403).
                summary.warnings.append("evaluation dataset \(d.id) (\(d.name)) not exported: \(e.message)")
                continue
            }
            summary.datasets += 1
            summary.datasetRecords += records.count
            try journal.finish(key, fingerprint: fingerprint)
        }
    }

    /// The tag a dataset carries in MLflow while it is being exported: the Tally dataset it comes from.
    static let datasetMarkerTag = "tally.export.sourceDatasetID"
}
