extension SearchFilter {
    /// The string attributes of an evaluation dataset search.
    static let datasetStringAttributes: Set<String> = ["name", "created_by", "last_updated_by"]
    /// The numeric attributes of an evaluation dataset search.
    static let datasetNumericAttributes: Set<String> = ["created_time", "last_update_time"]

    /// Whether an evaluation dataset satisfies every clause: a clause on a tag needs the tag (with a value), one on
    /// `created_by` or `last_updated_by` needs the field, as MLflow's SQL joins and compares them.
    public func matches(_ d: EvaluationDataset) -> Bool {
        clauses.allSatisfy { c in
            switch (c.entity, c.key) {
            case (.attribute, "name"): return c.test(d.name)
            case (.attribute, "created_by"): return d.createdBy.map(c.test) ?? false
            case (.attribute, "last_updated_by"): return d.lastUpdatedBy.map(c.test) ?? false
            case (.attribute, "created_time"): return c.test(Double(d.createdTime))
            case (.attribute, "last_update_time"): return c.test(Double(d.lastUpdateTime))
            case (.tag, let key): return d.tags.first { ExactKey.sameBytes($0.key, key) }?.value.map(c.test) ?? false
            default: return false
            }
        }
    }
}
