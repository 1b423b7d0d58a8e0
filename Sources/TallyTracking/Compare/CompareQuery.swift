import TallyStore

/// How a compare query reduces each series.
public enum CompareMode: Sendable, Equatable {
    /// Exact M4: per bucket the first, minimum, maximum and last points (from the rollup pyramid).
    case m4
    /// Per bucket the mean of the finite values, at the bucket's middle step.
    case mean
    /// Largest-Triangle-Three-Buckets over the raw points, `buckets` points per series.
    case lttb
    /// Raw points, at most `cap` per series (`truncated` says when more exist).
    case raw(cap: Int)
}

/// A compare query: several metrics of several runs, aligned on one step grid.
public struct CompareQuery: Sendable, Equatable {
    /// Runs to compare (1…`maxRuns`).
    public var runIDs: [String]
    /// Metric keys (1…`maxKeys`).
    public var keys: [String]
    /// Step window; `nil` spans every point of the series compared.
    public var steps: ClosedRange<Int64>?
    /// Buckets (pixels) of the grid, shared by every series so that curves align.
    public var buckets: Int
    /// The reduction.
    public var mode: CompareMode
    /// M4 and mean over a window taken from the data: snap the grid to the rollup pyramid (power-of-two bucket
    /// widths at aligned steps, about `buckets` of them) so no raw point is decoded. Curves stay exact.
    public var align: Bool
    /// Registered model versions whose source runs are compared too (after `runIDs`): `name@alias` or `name/3`
    /// (with or without `models:/`). "Champion vs challenger" compares their exact training curves.
    public var models: [String] = []

    /// Most runs in one query.
    public static let maxRuns = 1000
    /// Most keys in one query.
    public static let maxKeys = 100
    /// Buckets when the request names none.
    public static let defaultBuckets = 1000
    /// Points a `raw` query returns per series when the request names no cap.
    public static let defaultRawCap = 100_000
    /// Most series (runs × keys) in one query.
    public static let maxSeries = 10_000
    /// Most buckets.
    public static let maxBuckets = 10_000
    /// Largest raw cap per series.
    public static let maxRawCap = 1_000_000

    /// A query.
    public init(runIDs: [String], keys: [String], steps: ClosedRange<Int64>? = nil, buckets: Int = CompareQuery.defaultBuckets, mode: CompareMode = .m4,
                align: Bool = true) {
        self.align = align
        self.runIDs = runIDs
        self.keys = keys
        self.steps = steps
        self.buckets = buckets
        self.mode = mode
    }
}

/// One run's metric in a compare answer.
public struct CompareSeries: Sendable, Equatable {
    /// The run.
    public var runID: String
    /// The metric key.
    public var key: String
    /// Count, first, last, min and max (with steps), NaN/±∞ counts and the finite sum, over the step window.
    public var summary: SeriesSummary
    /// The reduced curve: steps ascending.
    public var steps: [Int64]
    /// The reduced curve's values.
    public var values: [Double]
    /// Raw mode only: more points exist than the cap.
    public var truncated: Bool
}

/// A parameter or tag whose values differ across the runs compared.
public struct CompareDifference: Sendable, Equatable {
    /// The param or tag key.
    public var key: String
    /// One value per run (query order); `nil` where the run does not have it.
    public var values: [String?]
}

/// The answer to a compare query.
public struct CompareResult: Sendable, Equatable {
    /// The runs, in query order.
    public var runs: [RunInfo]
    /// The step window every curve is bucketed on (`nil` when no series has points). With an aligned grid it
    /// may extend past the data on both sides.
    public var steps: ClosedRange<Int64>?
    /// Buckets of the grid (the aligned grid's count when the grid was snapped).
    public var buckets: Int
    /// The mode.
    public var mode: CompareMode
    /// One entry per run and key that has points in the window (runs in query order, then keys in query order).
    public var series: [CompareSeries]
    /// Params that differ across the runs (missing counts as different), by key.
    public var params: [CompareDifference]
    /// Tags that differ across the runs (system tags `mlflow.*` left out except `mlflow.runName`), by key.
    public var tags: [CompareDifference]
}
