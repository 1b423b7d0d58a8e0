import NIOHTTP1
import TallyTracking

/// Evaluation datasets through MLflow's API (3.4 and later; none from an older server, which answers 404).
extension MLflowRESTSource {
    /// Every dataset, oldest first, with its experiments and its records (ids and times kept; each record's hash is
    /// computed again from its inputs, as MLflow computes it).
    public func evaluationDatasets() throws -> [SourceDataset] {
        let listed = try MLflowRESTSource.pages("datasets") {
            try http.json(.POST, "/api/3.0/mlflow/datasets/search",
                          body: MLflowRESTSource.body([("max_results", "1000"), ("order_by", #"["created_time ASC"]"#)], token: $0), allowing: [404])
        }
        return try listed.map { d in
            let id = d["dataset_id"]?.text ?? ""
            let tags = try TrackingService.datasetTags(d["tags"]?.text, field: "dataset \(id)'s tags", keepingNulls: true)
            let dataset = EvaluationDataset(id: id, name: d["name"]?.text ?? "", tags: tags, schema: d["schema"]?.text, profile: d["profile"]?.text,
                                            digest: d["digest"]?.text ?? "", createdTime: d["created_time"]?.int64 ?? 0,
                                            lastUpdateTime: d["last_update_time"]?.int64 ?? 0, createdBy: d["created_by"]?.text,
                                            lastUpdatedBy: d["last_updated_by"]?.text)
            let path = "/api/3.0/mlflow/datasets/" + id
            let experiments = try http.json(.GET, path + "/experiment-ids")?["experiment_ids"].items.compactMap(\.text) ?? []
            var records: [DatasetRecord] = []
            var token: String?
            repeat {
                guard let page = try http.json(.GET, path + "/records", query: MLflowRESTSource.query([("max_results", "1000")], token: token)) else { break }
                // A page it cannot read fails the import (a dataset imported short would be journaled as done).
                let list: [JSONValue]
                do { list = try JSONParser.parse(Array((page["records"]?.text ?? "[]").utf8)).items } catch {
                    throw TrackingError(.internalError, "MLflow at \(http.base) gave dataset \(id) records that cannot be read: \(error)")
                }
                records += list.map { Self.record($0, dataset: id) }
                token = page["next_page_token"]?.text
            } while token != nil
            return SourceDataset(dataset: dataset, experimentIDs: experiments, records: records)
        }
    }

    /// A record as MLflow's API lists it.
    static func record(_ r: JSONValue, dataset: String) -> DatasetRecord {
        let inputs = r["inputs"] ?? .object([])
        return DatasetRecord(id: r["dataset_record_id"]?.text ?? "", datasetID: dataset, inputHash: TrackingService.datasetInputHash(inputs),
                             inputs: inputs, outputs: r["outputs"], expectations: r["expectations"], tags: r["tags"] ?? .object([]),
                             source: r["source"], sourceID: r["source_id"]?.text, sourceType: r["source_type"]?.text,
                             createdTime: r["created_time"]?.int64 ?? 0, lastUpdateTime: r["last_update_time"]?.int64 ?? 0,
                             createdBy: r["created_by"]?.text, lastUpdatedBy: r["last_updated_by"]?.text)
    }
}

/// Evaluation datasets sent to MLflow (`tally export mlflow`).
extension MLflowRESTDestination {
    public func createDataset(name: String, tags: [DatasetTag], experimentIDs: [String]) throws -> String {
        let tagText = EvaluationDataset(id: "", name: name, tags: tags, digest: "", createdTime: 0, lastUpdateTime: 0).tagsJSON
        let body = "{\"name\":" + JSONText.quote(name) + ",\"tags\":" + JSONText.quote(tagText) + ",\"experiment_ids\":["
            + experimentIDs.map(JSONText.quote).joined(separator: ",") + "]}"
        guard let id = try http.json(.POST, "/api/3.0/mlflow/datasets/create", body: body, idempotent: false)?["dataset"]?["dataset_id"]?.text else {
            throw TrackingError(.internalError, "MLflow at \(http.base) gave the evaluation dataset '\(name)' no id")
        }
        return id
    }

    public func upsertDatasetRecords(id: String, _ records: [DatasetRecord]) throws {
        let list = JSONValue.array(records.map { r in
            var m: [(String, JSONValue)] = [("inputs", r.inputs), ("outputs", r.outputs ?? .null), ("tags", r.tags)]
            if let e = r.expectations { m.append(("expectations", e)) }
            if let s = r.source { m.append(("source", s)) }
            return .object(m)
        })
        _ = try http.json(.POST, "/api/3.0/mlflow/datasets/\(id)/records", body: "{\"records\":" + JSONText.quote(list.pythonDumps()) + "}")
    }

    public func deleteDataset(id: String) throws {
        _ = try http.json(.DELETE, "/api/3.0/mlflow/datasets/\(id)", allowing: [404])
    }

    public func datasets(marked marker: KeyValue) throws -> [String] {
        let filter = "tags.\(marker.key) = '\(marker.value.filter { $0 != "'" })'"  // a dataset id: no quote in it
        return try MLflowRESTSource.pages("datasets") {
            try http.json(.POST, "/api/3.0/mlflow/datasets/search",
                          body: MLflowRESTSource.body([("max_results", "1000"), ("filter_string", JSONText.quote(filter))], token: $0))
        }.compactMap { $0["dataset_id"]?.text }
    }

    public func deleteDatasetTag(id: String, key: String) throws {
        _ = try http.json(.DELETE, "/api/3.0/mlflow/datasets/\(id)/tags/\(key)", allowing: [404])
    }
}
