import Foundation

/// The four counts and the association of two trace filters (`traces/calculate-filter-correlation`, the MLflow UI's
/// "what goes with failures" view): NPMI, normalised pointwise mutual information, in [-1, 1].
public struct TraceFilterCorrelation: Sendable, Equatable {
    /// NPMI of the counts as they are: NaN when either filter matches nothing, -1 when they never match together.
    public var npmi: Double
    /// NPMI with Jeffreys' prior (half a trace added to each cell of the 2×2 table): steadier on few traces.
    public var npmiSmoothed: Double
    /// Traces matching the first filter (within the base filter).
    public var filter1Count: Int
    /// Traces matching the second filter (within the base filter).
    public var filter2Count: Int
    /// Traces matching both.
    public var jointCount: Int
    /// Traces of the experiments (those matching the base filter, when there is one).
    public var totalCount: Int

    /// MLflow's rules (`calculate_npmi_from_counts`): undefined (NaN) without a population or with a filter that
    /// matches nothing or counts that do not add up; -1 unsmoothed for filters that never co-occur; 1 for filters that
    /// always do.
    public init(joint: Int, filter1: Int, filter2: Int, total: Int) {
        filter1Count = filter1
        filter2Count = filter2
        jointCount = joint
        totalCount = total
        let n11 = joint, n10 = filter1 - joint, n01 = filter2 - joint, n00 = total - filter1 - filter2 + joint
        guard total > 0, filter1 > 0, filter2 > 0, min(n11, n10, n01, n00) >= 0 else {
            npmi = .nan
            npmiSmoothed = .nan
            return
        }
        npmi = joint == 0 ? -1 : Self.npmi(Double(n11), Double(n10), Double(n01), Double(n00), smoothing: 0)
        npmiSmoothed = Self.npmi(Double(n11), Double(n10), Double(n01), Double(n00), smoothing: Self.jeffreysPrior)
    }

    /// The smoothing added to each cell for ``npmiSmoothed``.
    public static let jeffreysPrior = 0.5

    /// NPMI of a 2×2 table (both, only the first, only the second, neither), each cell plus `smoothing`.
    static func npmi(_ n11: Double, _ n10: Double, _ n01: Double, _ n00: Double, smoothing: Double) -> Double {
        let a = n11 + smoothing, b = n10 + smoothing, c = n01 + smoothing, d = n00 + smoothing
        let n = a + b + c + d, n1 = a + b, n2 = a + c
        guard n1 > 0, n2 > 0, a > 0 else { return .nan }
        if n10 == 0 && n01 == 0 && n00 == 0 { return 1 }
        let pmi = (log(a) + log(n)) - (log(n1) + log(n2))
        return max(-1, min(1, pmi / -(log(a) - log(n))))
    }
}

extension TrackingService {
    /// `traces/calculate-filter-correlation`: how two filters (search grammar, with `base` as the universe when
    /// given) go together over the traces of `experimentIDs`, among those `scope` may read.
    public func traceFilterCorrelation(experimentIDs: [String], filter1: String, filter2: String, base: String?,
                                       scope: Grants = .unrestricted) throws -> TraceFilterCorrelation {
        guard !experimentIDs.isEmpty else { throw Validation.missing("experiment_ids") }
        guard !filter1.isEmpty else { throw Validation.missing("filter_string1") }
        guard !filter2.isEmpty else { throw Validation.missing("filter_string2") }
        let readable = try Self.searchedExperimentIDs(experimentIDs).filter { scope.canRead(experiment: String($0)) }
        let universe: Set<String>? = try base.flatMap { $0.isEmpty ? nil : try matchingTraceIDs(readable, matching: $0) }
        func matching(_ filter: String) throws -> Set<String> {
            let ids = try matchingTraceIDs(readable, matching: filter)
            return universe.map { ids.intersection($0) } ?? ids
        }
        let one = try matching(filter1), two = try matching(filter2)
        let total = try universe?.count ?? matchingTraceIDs(readable, matching: nil).count
        return TraceFilterCorrelation(joint: one.intersection(two).count, filter1: one.count, filter2: two.count, total: total)
    }

    /// The ids of every trace of `experiments` that `filter` (search grammar; `nil`: none) matches.
    func matchingTraceIDs(_ experiments: [Int64], matching filter: String?) throws -> Set<String> {
        let f = try SearchFilter(parsing: filter, kind: .traces)
        try f.checkSummedMetadata()
        return Set(try matchingTraces(experiments, f, orderedBy: []))  // counted, not ordered
    }
}
