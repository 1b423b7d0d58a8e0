import Crypto

/// MLflow 3's evaluation datasets (`mlflow.genai.datasets`, `/api/3.0/mlflow/datasets/…`): datasets, their tags and
/// experiments. Records are in TrackingService+DatasetRecords.
extension TrackingService {
    /// `datasets/search`'s page size when absent, MLflow's.
    public static let defaultDatasetSearchResults: Int64 = 1000
    /// The tag that names who made a dataset or a record (`created_by`, `last_updated_by`), as MLflow's client sets it.
    static let datasetUserTag = "mlflow.user"

    /// `datasets/create`: a new dataset named `name` (required; names need not be unique), with tags given as the text
    /// of a JSON object (MLflow's `tags` field) and linked to experiments, which must exist (each linked once).
    /// `created_by` is its `mlflow.user` tag. Returns the dataset and its experiments.
    public func createDataset(name: String?, experimentIDs: [String], tags: String?) throws -> (EvaluationDataset, [String]) {
        guard let name, !name.isEmpty else { throw Validation.missing("name") }
        let tags = try Self.datasetTags(tags, field: "tags", keepingNulls: true)
        var ids: [String] = []
        for id in experimentIDs {
            let e = try experiment(id: id).experimentID  // as the experiment's id reads (`01` is `1`), each once
            if !ids.contains(e) { ids.append(e) }
        }
        let now = clock()
        let user = tags.last { $0.key == Self.datasetUserTag }?.value
        let d = EvaluationDataset(id: "d-" + RunNames.runID(), name: name, tags: tags, digest: Self.datasetDigest(name: name, time: now),
                                  createdTime: now, lastUpdateTime: now, createdBy: user, lastUpdatedBy: user)
        try metadata.insertDataset(d, experimentIDs: ids)
        return (try dataset(id: d.id), ids)
    }

    /// `datasets/{id}` (GET): a dataset with its tags; MLflow's 404 when there is none.
    public func dataset(id: String) throws -> EvaluationDataset {
        guard let d = try metadata.datasets(ids: [id]).first else { throw TrackingError.notFound("Evaluation dataset with id '\(id)' not found") }
        return d
    }

    /// `datasets/{id}` (DELETE): the dataset with its records, tags and experiment links; deleting one that is not
    /// there is no error, as in MLflow.
    public func deleteDataset(id: String) throws { try metadata.deleteDataset(id: id) }

    /// The experiments a dataset is linked to (`datasets/{id}/experiment-ids`; none for an unknown dataset): access
    /// checks read a dataset's permissions from them.
    public func datasetExperimentIDs(id: String) throws -> [String] { try metadata.datasetExperimentIDs(id: id) }

    /// `datasets/search`: the datasets linked to any of `experimentIDs` (every dataset when none are given) that
    /// `filter` matches, in `orderBy`'s order (`name`, `created_time`, `last_update_time`; newest first by default)
    /// then by id, newest first. Only datasets every one of whose experiments `scope` may read are seen.
    public func searchDatasets(experimentIDs: [String], filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?,
                               scope: Grants = .unrestricted) throws -> SearchPage<EvaluationDataset> {
        let limit = try Validation.searchPageSize(maxResults ?? Self.defaultDatasetSearchResults)
        let offset = try PageToken.decode(pageToken)
        let f = try SearchFilter(parsing: filter, kind: .evaluationDatasets)
        let keys = try RegistryOrder.parse(orderBy, allowed: ["name", "created_time", "last_update_time"]) {
            "Invalid attribute key '\($0)' specified. Valid keys are: {'name', 'created_time', 'last_update_time'}"
        }
        var found = try metadata.datasets(experimentIDs: experimentIDs.isEmpty ? nil : experimentIDs.map(Self.canonicalExperimentID)).filter(f.matches)
        if !scope.isUnrestricted {
            let links = try metadata.datasetExperimentIDs(ids: found.map(\.id))  // one read per 300 datasets
            found = found.filter { d in links[d.id].map { $0.allSatisfy { scope.canRead(experiment: $0) } } ?? false }
        }
        found.sort { a, b in
            for k in keys.isEmpty ? [RegistryOrder(key: "created_time", ascending: false)] : keys {
                let c: Int
                switch k.key {
                case "name": c = a.name == b.name ? 0 : binaryLess(a.name, b.name) ? -1 : 1
                case "created_time": c = a.createdTime == b.createdTime ? 0 : a.createdTime < b.createdTime ? -1 : 1
                default: c = a.lastUpdateTime == b.lastUpdateTime ? 0 : a.lastUpdateTime < b.lastUpdateTime ? -1 : 1
                }
                if c != 0 { return k.ascending ? c < 0 : c > 0 }
            }
            return binaryLess(b.id, a.id)
        }
        let page = Array(found.dropFirst(offset).prefix(limit))
        return SearchPage(items: page, nextPageToken: offset + page.count < found.count ? PageToken.encode(offset: offset + page.count) : nil)
    }

    /// `datasets/{id}/tags` (PATCH): sets tags given as the text of a JSON object; a key whose value is null is left
    /// as it is, other values are stored as Python's `str()` prints them (as MLflow stores them).
    public func setDatasetTags(id: String, tags: String?) throws {
        guard let tags, !tags.isEmpty else { throw Validation.missing("tags") }
        let parsed = try Self.datasetTags(tags, field: "tags", keepingNulls: false)
        guard try metadata.changeDataset(id: id, { try $0.setTags(parsed) }) != nil else {
            throw TrackingError.notFound("Could not find evaluation dataset with ID \(id)")
        }
    }

    /// `datasets/{id}/tags/{key}` (DELETE): no error when the tag or the dataset is not there, as in MLflow.
    public func deleteDatasetTag(id: String, key: String) throws { try metadata.deleteDatasetTag(id: id, key: key) }

    /// `datasets/{id}/add-experiments`: links experiments (which must exist, and which `scope` may edit, as MLflow's
    /// auth app asks of each; any already linked is skipped) and marks the dataset updated. Returns the dataset.
    public func addDatasetExperiments(id: String, experimentIDs: [String], scope: Grants = .unrestricted) throws -> EvaluationDataset {
        // MLflow's auth app wants experiments to check: a caller held to grants may not add none.
        guard scope.isUnrestricted || !experimentIDs.isEmpty else { throw AccessRules.deniedUnnamed }
        var ids: [String] = []
        for e in experimentIDs {
            try scope.require(.update, on: .experiment(Self.canonicalExperimentID(e)))  // before whether it exists is told
            ids.append(try experiment(id: e).experimentID)
        }
        let now = clock()
        let changed = try metadata.changeDataset(id: id) { edit -> EvaluationDataset in
            try edit.addExperiments(ids, time: now)
            var d = edit.dataset
            d.lastUpdateTime = now
            try edit.update(d)
            return d
        }
        guard let changed else { throw TrackingError.notFound("Dataset '\(id)' not found") }
        return changed
    }

    /// `datasets/{id}/remove-experiments`: unlinks experiments (those not linked are ignored); the dataset is marked
    /// updated when one was. Returns the dataset.
    public func removeDatasetExperiments(id: String, experimentIDs: [String]) throws -> EvaluationDataset {
        let now = clock()
        let changed = try metadata.changeDataset(id: id) { edit -> EvaluationDataset in
            var d = edit.dataset
            if try edit.removeExperiments(experimentIDs.map(Self.canonicalExperimentID)) > 0 {
                d.lastUpdateTime = now
                try edit.update(d)
            }
            return d
        }
        guard let changed else { throw TrackingError.notFound("Dataset '\(id)' not found") }
        return changed
    }

    /// An experiment id as the experiment's own reads (`01` and ` 1` are `1`, as MLflow reads them); one that is no
    /// integer as it is (it names no experiment).
    static func canonicalExperimentID(_ id: String) -> String {
        (try? Validation.experimentID(id)).map { String($0) } ?? id
    }

    /// MLflow's dataset digest: the first 8 hex digits of the SHA-256 of `name:time`.
    static func datasetDigest(name: String, time: Int64) -> String {
        String(Secrets.hex(SHA256.hash(data: Array("\(name):\(time)".utf8))).prefix(8))
    }

    /// Tags sent as the text of a JSON object (`{"k": "v"}`; `null` or `{}` for none). A null value is kept as null
    /// with `keepingNulls` (creation, as MLflow stores it) and skipped otherwise; other values are stored as Python's
    /// `str()` prints a scalar, and an array or object as its JSON.
    public static func datasetTags(_ text: String?, field: String, keepingNulls: Bool) throws -> [DatasetTag] {
        guard let text, !text.isEmpty else { return [] }
        let v: JSONValue
        do { v = try JSONParser.parse(Array(text.utf8), refusingNUL: true) } catch let e as JSONSyntaxError {
            throw TrackingError.invalid("Invalid value for parameter '\(field)': not JSON (\(e.message) at byte \(e.offset))")
        }
        if case .null = v { return [] }
        guard case .object = v else { throw TrackingError.invalid("Invalid value for parameter '\(field)': expected the text of a JSON object, got \(v.pythonRepr)") }
        return v.pythonMembers.compactMap { k, value in
            if case .null = value { return keepingNulls ? DatasetTag(key: k, value: nil) : nil }
            return DatasetTag(key: k, value: value.pythonScalarText ?? value.pythonDumps())
        }
    }
}
