/// One dataset used by an experiment's runs, as `experiments/search-datasets` returns it.
public struct DatasetSummary: Sendable, Equatable {
    /// The experiment.
    public var experimentID: String
    /// Dataset name.
    public var name: String
    /// Dataset digest.
    public var digest: String
    /// The input's `mlflow.data.context` tag (`training`, `eval`, …), when set.
    public var context: String?
}

extension TrackingService {
    /// Most experiments of one `search-datasets` request.
    public static let maxDatasetSearchExperiments = 20
    /// Most summaries one `search-datasets` answers.
    public static let maxDatasetSummaries = 1000

    /// The UI's `experiments/search-datasets`: distinct (experiment, name, digest, context) of the datasets logged
    /// to runs of the experiments, up to 1,000.
    public func searchDatasets(experimentIDs: [String], scope: Grants = .unrestricted) throws -> [DatasetSummary] {
        guard !experimentIDs.isEmpty else { throw TrackingError.invalid("SearchDatasets request must specify at least one experiment_id.") }
        guard experimentIDs.count <= Self.maxDatasetSearchExperiments else {
            throw TrackingError.invalid("SearchDatasets request cannot specify more than \(Self.maxDatasetSearchExperiments) experiment_ids. "
                + "Received \(experimentIDs.count) experiment_ids.")
        }
        let ids = try experimentIDs.map(Validation.experimentID).filter { scope.canRead(experiment: String($0)) }
        var seen = Set<[String?]>()
        var out: [DatasetSummary] = []
        for run in try metadata.searchRuns(experimentIDs: ids, view: .all, metricKeys: []).runs {
            for input in run.inputs {
                let context = input.tags.last { $0.key == "mlflow.data.context" }?.value
                let s = DatasetSummary(experimentID: run.info.experimentID, name: input.dataset.name, digest: input.dataset.digest, context: context)
                guard seen.insert([s.experimentID, s.name, s.digest, s.context]).inserted else { continue }
                out.append(s)
                if out.count == Self.maxDatasetSummaries { return out }
            }
        }
        return out
    }
}
