extension SearchFilter {
    /// Whether a logged model satisfies every clause (MLflow's semantics): a metric clause holds when **any** point
    /// logged against the model with that key satisfies it (only points of `datasets` when given); params and tags
    /// must exist; `status` compares the status's protocol number.
    public func matches(_ m: LoggedModel, datasets: [DatasetFilter]) -> Bool {
        clauses.allSatisfy { c in
            switch c.entity {
            case .metric:
                return m.metrics.contains { p in p.metric.key == c.key && DatasetFilter.admits(datasets, p) && c.test(p.metric.value) }
            case .parameter:
                return m.params.first { $0.key == c.key }.map { c.test($0.value) } ?? false
            case .tag:
                return m.tags.first { $0.key == c.key }.map { c.test($0.value) } ?? false
            case .attribute:
                switch c.key {
                case "name": return c.test(m.name)
                case "model_id": return c.test(m.modelID)
                case "experiment_id": return c.test(m.experimentID)
                case "source_run_id": return c.test(m.sourceRunID)
                case "model_type": return c.test(m.modelType)
                case "status": return c.test(Double(m.status.number))
                case "creation_timestamp": return c.test(Double(m.creationTime))
                case "last_updated_timestamp": return c.test(Double(m.lastUpdatedTime))
                default: return false
                }
            case .dataset, .metadata, .feedback, .expectation, .issue, .prompt, .span:
                return false
            }
        }
    }
}

/// A `datasets` entry of `logged-models/search` (or of an order key): metric points count only when logged on a
/// dataset of this name (and digest, when given).
public struct DatasetFilter: Sendable, Equatable {
    /// The dataset's name.
    public var name: String
    /// Its digest; `nil` matches any (MLflow 3.17's server required a null digest instead: a bug, not copied).
    public var digest: String?

    /// A filter.
    public init(name: String, digest: String?) {
        self.name = name
        self.digest = digest
    }

    /// Whether a point passes a list of filters (an empty list passes everything).
    static func admits(_ filters: [DatasetFilter], _ p: ModelMetric) -> Bool {
        filters.isEmpty || filters.contains { $0.name == p.datasetName && ($0.digest == nil || $0.digest == p.datasetDigest) }
    }
}

/// One `order_by` entry of `logged-models/search`: an attribute or `metrics.<key>` (ordered by the model's point of
/// that key with the latest timestamp, then step; only points of the dataset when given).
public struct LoggedModelOrder: Sendable, Equatable {
    /// `name`, `creation_timestamp`, … or `metrics.<key>`.
    public var field: String
    /// Ascending (the default) or descending.
    public var ascending: Bool
    /// Only points of this dataset count for a metric.
    public var dataset: DatasetFilter?

    /// An order key.
    public init(field: String, ascending: Bool = true, dataset: DatasetFilter? = nil) {
        self.field = field
        self.ascending = ascending
        self.dataset = dataset
    }
}
