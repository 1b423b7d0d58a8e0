import TallyStore

/// SQL `LIKE` with `%` and `_` (no escape character), optionally case-insensitive.
enum LikePattern {
    static func matches(_ value: String, _ pattern: String, caseInsensitive: Bool) -> Bool {
        let v = Array((caseInsensitive ? value.lowercased() : value).unicodeScalars)
        let p = Array((caseInsensitive ? pattern.lowercased() : pattern).unicodeScalars)
        // Iterative wildcard matching with backtracking to the last `%`.
        var i = 0, j = 0, star = -1, mark = 0
        while i < v.count {
            if j < p.count && (p[j] == "_" || (p[j] != "%" && p[j] == v[i])) {
                i += 1
                j += 1
            } else if j < p.count && p[j] == "%" {
                star = j
                mark = i
                j += 1
            } else if star >= 0 {
                j = star + 1
                mark += 1
                i = mark
            } else {
                return false
            }
        }
        while j < p.count && p[j] == "%" { j += 1 }
        return j == p.count
    }
}

/// Binary (UTF-8 byte) string order, as MLflow's SQL collation compares params and tags (`memcmp` on the bytes).
func binaryLess(_ a: String, _ b: String) -> Bool { KeyOrder.less(a, b) }

extension FilterClause {
    /// Compares a string with this clause's operator and value: equality is of the same bytes, as in MLflow's SQL
    /// (Swift's `==` would also match a canonically equivalent spelling, "é" for "e" + U+0301).
    func test(_ s: String) -> Bool {
        switch (comparator, value) {
        case ("=", .string(let v)): return ExactKey.sameBytes(s, v)
        case ("!=", .string(let v)): return !ExactKey.sameBytes(s, v)
        case ("LIKE", .string(let v)): return LikePattern.matches(s, v, caseInsensitive: false)
        case ("ILIKE", .string(let v)): return LikePattern.matches(s, v, caseInsensitive: true)
        case ("RLIKE", .string(let v)): return FilterClause.regexSearch(s, v)
        case ("<", .string(let v)): return binaryLess(s, v)
        case ("<=", .string(let v)): return !binaryLess(v, s)
        case (">", .string(let v)): return binaryLess(v, s)
        case (">=", .string(let v)): return !binaryLess(s, v)
        case ("IN", .list(let vs)): return vs.contains { ExactKey.sameBytes(s, $0) }
        case ("NOT IN", .list(let vs)): return !vs.contains { ExactKey.sameBytes(s, $0) }
        default: return false
        }
    }

    /// Compares a number with this clause's operator and value. ±Infinity counts as ±1.7976931348623157e308, the
    /// value MLflow stores for it (its SQL cannot hold infinities) and the one Tally answers with.
    func test(_ x: Double) -> Bool {
        guard case .number(let v) = value else { return false }
        let x = x.isInfinite ? (x > 0 ? Double.greatestFiniteMagnitude : -Double.greatestFiniteMagnitude) : x
        switch comparator {
        case "=": return x == v
        case "!=": return x != v
        case "<": return x < v
        case "<=": return x <= v
        case ">": return x > v
        case ">=": return x >= v
        default: return false
        }
    }

    /// Whether a run satisfies this clause (MLflow's semantics: a run lacking a metric, param or tag matches
    /// nothing but `IS NULL`; a NaN metric satisfies only `!=`). `metric` gives the run's latest value of a key.
    func matches(_ run: Run, metric: (String) -> Double?) -> Bool {
        switch entity {
        case .metric:
            guard let v = metric(key) else { return false }
            if v.isNaN { return comparator == "!=" }
            return test(v)
        case .parameter, .tag:
            let v = (entity == .parameter ? run.params : run.tags).first { ExactKey.sameBytes($0.key, key) }?.value
            switch comparator {
            case "IS NULL": return v == nil
            case "IS NOT NULL": return v != nil
            default: return v.map(test) ?? false
            }
        case .attribute:
            switch key {
            case "start_time": return test(Double(run.info.startTime))
            case "end_time": return run.info.endTime.map { test(Double($0)) } ?? false
            case "run_id": return test(run.info.runID)
            case "run_name": return (run.tags.first { $0.key == "mlflow.runName" }?.value).map(test) ?? false
            case "status": return test(run.info.status.rawValue)
            case "user_id": return test(run.info.userID)
            case "artifact_uri": return test(run.info.artifactURI)
            default: return false
            }
        case .metadata, .feedback, .expectation, .issue, .prompt, .span:
            return false  // trace entities
        case .dataset:
            return run.inputs.contains { input in
                switch key {
                case "name": return test(input.dataset.name)
                case "digest": return test(input.dataset.digest)
                case "context": return (input.tags.first { $0.key == "mlflow.data.context" }?.value).map(test) ?? false
                default: return false
                }
            }
        }
    }

    /// Whether an experiment satisfies this clause.
    func matches(_ e: Experiment) -> Bool {
        switch entity {
        case .tag:
            let v = e.tags.first { ExactKey.sameBytes($0.key, key) }?.value
            switch comparator {
            case "IS NULL": return v == nil
            case "IS NOT NULL": return v != nil
            default: return v.map(test) ?? false
            }
        default:
            switch key {
            case "name": return test(e.name)
            case "experiment_id": return test(e.experimentID)
            case "creation_time": return test(Double(e.creationTime))
            case "last_update_time": return test(Double(e.lastUpdateTime))
            default: return false
            }
        }
    }
}

extension SearchFilter {
    /// The metric keys the clauses name (each once by its bytes, in order).
    public var metricKeys: [String] {
        var seen = Set<ExactKey>()
        return clauses.filter { $0.entity == .metric && seen.insert(ExactKey($0.key)).inserted }.map(\.key)
    }

    /// Whether a run satisfies every clause; `metric` gives its latest value of a key.
    public func matches(_ run: Run, metric: (String) -> Double?) -> Bool { clauses.allSatisfy { $0.matches(run, metric: metric) } }

    /// Whether an experiment satisfies every clause.
    public func matches(_ e: Experiment) -> Bool { clauses.allSatisfy { $0.matches(e) } }
}
