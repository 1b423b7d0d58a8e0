import TallyStore

/// Which value of a key a scoreboard shows for a run.
public enum ScoreboardValue: Sendable, Equatable {
    /// The latest value (MLflow's latest-metric rule).
    case latest
    /// The best value over the run's history (largest, or smallest for lower-is-better keys; NaN never best).
    case best
    /// The value at a step (the latest of the points at that step).
    case step(Int64)
}

/// A scoreboard query: runs (by id, or an experiment and an MLflow filter), the keys to show, and how.
public struct ScoreboardQuery: Sendable, Equatable {
    /// Runs by id (1…`maxRuns`); empty when `experimentID` selects them.
    public var runIDs: [String]
    /// An experiment whose active runs (matching `filter`) are shown, at most `maxRuns` of them, newest first.
    public var experimentID: String?
    /// MLflow's run filter, with `experimentID`.
    public var filter: String?
    /// Keys starting with any of these (none: every key).
    public var keyPrefixes: [String]
    /// Keys matching this regular expression (instead of prefixes).
    public var keyRegex: String?
    /// The value shown per key and run.
    public var value: ScoreboardValue
    /// A key's group is its first `groupDepth` `/`-separated parts; `nil`: everything before its last `/`.
    public var groupDepth: Int?
    /// Keys containing any of these (case-insensitive) rank lower-is-better; `nil`: ``defaultLowerIsBetter``.
    public var lowerIsBetter: [String]?
    /// A run to compare every other run with (`value − baseline value` per key); it must be one of the runs.
    public var baselineRunID: String?

    /// Most runs on one scoreboard.
    public static let maxRuns = 1000
    /// Longest key regular expression.
    public static let maxRegexLength = 1000
    /// Key fragments that make a key lower-is-better when the request names none.
    public static let defaultLowerIsBetter = ["loss", "error", "perplexity", "wer"]

    /// A query.
    public init(runIDs: [String] = [], experimentID: String? = nil, filter: String? = nil, keyPrefixes: [String] = [], keyRegex: String? = nil,
                value: ScoreboardValue = .latest, groupDepth: Int? = nil, lowerIsBetter: [String]? = nil, baselineRunID: String? = nil) {
        self.runIDs = runIDs
        self.experimentID = experimentID
        self.filter = filter
        self.keyPrefixes = keyPrefixes
        self.keyRegex = keyRegex
        self.value = value
        self.groupDepth = groupDepth
        self.lowerIsBetter = lowerIsBetter
        self.baselineRunID = baselineRunID
    }
}

/// One key's row of a scoreboard.
public struct ScoreboardRow: Sendable, Equatable {
    /// The key.
    public var key: String
    /// Its group.
    public var group: String
    /// Whether smaller values rank first.
    public var lowerIsBetter: Bool
    /// Per run (in the scoreboard's run order): the value, `nil` when the run has none.
    public var values: [Double?]
    /// Per run: the step of the value shown.
    public var steps: [Int64?]
    /// Per run: competition rank among the runs with a value (1 = best, ties share a rank); `nil` without a value
    /// or for NaN.
    public var ranks: [Int?]
    /// Per run: `value − baseline value` (`nil` without either value); empty without a baseline.
    public var baselineDeltas: [Double?]
}

/// One group's aggregates.
public struct ScoreboardGroup: Sendable, Equatable {
    /// The group (a key prefix).
    public var group: String
    /// Keys in the group.
    public var keys: Int
    /// Per run: the mean of the group's finite values, `nil` when it has none. Empty for a group of one key, whose
    /// row's values are its means (most of a large answer's numbers would otherwise repeat the rows').
    public var means: [Double?]
    /// Per run: how many of the group's keys have a finite value. Empty for a group of one key (1 where its row's
    /// value is finite).
    public var counts: [Int]
}

/// A scoreboard: runs as columns, keys as rows, groups aggregated.
public struct Scoreboard: Sendable, Equatable {
    /// Runs, in column order.
    public var runs: [RunInfo]
    /// Rows, by key (bytewise order).
    public var rows: [ScoreboardRow]
    /// Groups, by name.
    public var groups: [ScoreboardGroup]
    /// The baseline's column, when a baseline was given.
    public var baselineIndex: Int?
}
