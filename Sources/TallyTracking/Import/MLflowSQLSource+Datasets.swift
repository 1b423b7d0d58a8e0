/// MLflow 3's evaluation datasets, read from the same database (none where the schema predates them): each dataset
/// with its tags, the experiments its `entity_associations` link it to, and its records.
extension MLflowSQLSource {
    func evaluationDatasets() throws -> [SourceDataset] {
        guard has("evaluation_datasets") else { return [] }
        var out: [SourceDataset] = []
        let scope = ofWorkspace("evaluation_datasets")
        try query("SELECT dataset_id, name, schema, profile, digest, created_time, last_update_time, created_by, last_updated_by "
                  + "FROM evaluation_datasets WHERE \(scope.sql) ORDER BY created_time, dataset_id", scope.args) { r in
            out.append(SourceDataset(dataset: EvaluationDataset(id: r[0].string ?? "", name: r[1].string ?? "", schema: r[2].string, profile: r[3].string,
                                                                digest: r[4].string ?? "", createdTime: r[5].int ?? 0, lastUpdateTime: r[6].int ?? 0,
                                                                createdBy: r[7].string, lastUpdatedBy: r[8].string),
                                     experimentIDs: [], records: []))
        }
        guard !out.isEmpty else { return [] }
        let index = Dictionary(out.enumerated().map { ($0.element.dataset.id, $0.offset) }) { a, _ in a }
        // The workspace's datasets: their tags, links and records (not every workspace's).
        func ofDatasets(_ column: String = "dataset_id") -> String { "\(column) IN (SELECT dataset_id FROM evaluation_datasets WHERE \(scope.sql))" }
        if has("evaluation_dataset_tags") {
            // In the order MLflow shows them (its rows' order).
            try query("SELECT dataset_id, key, value FROM evaluation_dataset_tags WHERE \(ofDatasets()) ORDER BY \(order)", scope.args) { r in
                guard let i = index[r[0].string ?? ""] else { return }
                out[i].dataset.tags.append(DatasetTag(key: r[1].string ?? "", value: r[2].string))
            }
        }
        if has("entity_associations") {
            try query("SELECT source_id, destination_id FROM entity_associations WHERE source_type = 'evaluation_dataset' "
                      + "AND destination_type = 'experiment' AND \(ofDatasets("source_id")) "
                      + "ORDER BY created_time, destination_id", scope.args) { r in
                guard let i = index[r[0].string ?? ""], let e = r[1].string else { return }
                out[i].experimentIDs.append(e)
            }
        }
        if has("evaluation_dataset_records") {
            // A column MLflow left empty may hold JSON's `null`: none, as MLflow's API shows it.
            func json(_ v: SQLValue) -> JSONValue? { v.string.flatMap { try? JSONParser.parse(Array($0.utf8)) }.flatMap { $0 == .null ? nil : $0 } }
            try query("SELECT dataset_record_id, dataset_id, input_hash, inputs, outputs, expectations, tags, source, source_id, source_type, "
                      + "created_time, last_update_time, created_by, last_updated_by FROM evaluation_dataset_records WHERE \(ofDatasets()) "
                      + "ORDER BY created_time, dataset_record_id", scope.args) { r in
                guard let i = index[r[1].string ?? ""] else { return }
                // MLflow keeps outputs wrapped (`{"mlflow_wrapped": …}`), so that any JSON value fits its column.
                var outputs = json(r[4])
                if let o = outputs, o.pythonMembers.count == 1, let inner = o["mlflow_wrapped"] { outputs = inner == .null ? nil : inner }
                guard let inputs = json(r[3]) else {  // unreadable: the import stops rather than store other inputs under MLflow's hash
                    throw TrackingError(.internalError, "\(location): record \(r[0].string ?? "") of dataset \(r[1].string ?? "") has inputs that are not JSON")
                }
                out[i].records.append(DatasetRecord(id: r[0].string ?? "", datasetID: r[1].string ?? "", inputHash: r[2].string ?? "",
                                                    inputs: inputs, outputs: outputs, expectations: json(r[5]),
                                                    tags: json(r[6]) ?? .object([]), source: json(r[7]), sourceID: r[8].string, sourceType: r[9].string,
                                                    createdTime: r[10].int ?? 0, lastUpdateTime: r[11].int ?? 0, createdBy: r[12].string,
                                                    lastUpdatedBy: r[13].string))
            }
        }
        return out
    }
}
