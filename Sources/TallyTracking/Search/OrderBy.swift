import TallyStore

/// One `order_by` item: `identifier [ASC|DESC]`.
public struct OrderKey: Sendable, Equatable {
    /// The entity.
    public var entity: SearchEntity
    /// The key (canonical attribute name for attributes).
    public var key: String
    /// Ascending unless `DESC` was given.
    public var ascending: Bool

    init(entity: SearchEntity, key: String, ascending: Bool) {
        self.entity = entity
        self.key = key
        self.ascending = ascending
    }

    /// Parses a list, refusing the same field twice.
    static func parseList(_ items: [String], kind: SearchFilter.Kind) throws -> [OrderKey] {
        let keys = try items.map { try OrderKey(parsing: $0, kind: kind) }
        var seen = Set<ExactKey>()  // by bytes: `K` and the Kelvin sign are two fields
        let dups = keys.map { "\($0.entity.rawValue).\($0.key)" }.filter { !seen.insert(ExactKey($0)).inserted }
        guard dups.isEmpty else {
            throw TrackingError.invalid("`order_by` contains duplicate fields: [\(dups.map { "'\($0)'" }.joined(separator: ", "))]")
        }
        return keys
    }
}

/// A sortable value: numbers, then NaN, then missing, whatever the direction.
enum SortValue {
    case number(Double)
    case string(String)
    case nan
    case missing

    var rank: Int {
        switch self {
        case .number, .string: 0
        case .nan: 1
        case .missing: 2
        }
    }

    /// -1, 0 or 1 in the key's direction, with NaN and missing values last in both directions. ±Infinity ties with
    /// ±1.7976931348623157e308, the value MLflow stores for it (its SQL orders what it stored); strings are
    /// compared by their bytes (equal only when the same bytes, so that the order is total).
    static func compare(_ a: SortValue, _ b: SortValue, ascending: Bool) -> Int {
        if a.rank != b.rank { return a.rank < b.rank ? -1 : 1 }
        let c: Int
        switch (a, b) {
        case (.number(let x), .number(let y)):
            let (x, y) = (min(max(x, -.greatestFiniteMagnitude), .greatestFiniteMagnitude), min(max(y, -.greatestFiniteMagnitude), .greatestFiniteMagnitude))
            c = x < y ? -1 : (x > y ? 1 : 0)
        case (.string(let x), .string(let y)): c = KeyOrder.compare(x, y)
        default: c = 0
        }
        return ascending ? c : -c
    }
}

extension OrderKey {
    /// The run's value of this key; `metric` gives its latest value of a metric key.
    func value(_ run: Run, metric: (String) -> Double?) -> SortValue {
        switch entity {
        case .metric:
            guard let v = metric(key) else { return .missing }
            return v.isNaN ? .nan : .number(v)
        case .parameter: return (run.params.first { ExactKey.sameBytes($0.key, key) }?.value).map(SortValue.string) ?? .missing
        case .tag: return (run.tags.first { ExactKey.sameBytes($0.key, key) }?.value).map(SortValue.string) ?? .missing
        case .attribute:
            switch key {
            case "start_time": return .number(Double(run.info.startTime))
            case "end_time": return run.info.endTime.map { .number(Double($0)) } ?? .missing
            case "run_id": return .string(run.info.runID)
            case "run_name": return .string(run.info.runName)
            case "status": return .string(run.info.status.rawValue)
            case "user_id": return .string(run.info.userID)
            case "artifact_uri": return .string(run.info.artifactURI)
            default: return .missing
            }
        case .dataset, .metadata, .feedback, .expectation, .issue, .prompt, .span: return .missing
        }
    }

    func value(_ e: Experiment) -> SortValue {
        switch key {
        case "name": return .string(e.name)
        case "experiment_id": return .number(Double(e.experimentID) ?? 0)
        case "creation_time": return .number(Double(e.creationTime))
        case "last_update_time": return .number(Double(e.lastUpdateTime))
        default: return .missing
        }
    }
}
