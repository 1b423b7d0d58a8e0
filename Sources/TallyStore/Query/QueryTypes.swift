/// One metric point: a step, a wall-clock timestamp in milliseconds and a value.
public struct MetricPoint: Sendable, Hashable, CustomStringConvertible {
    /// The training step.
    public var step: Int64
    /// Wall-clock time in milliseconds since the Unix epoch.
    public var timestamp: Int64
    /// The value, kept bit for bit.
    public var value: Double

    /// Creates a point.
    public init(step: Int64, timestamp: Int64, value: Double) {
        self.step = step
        self.timestamp = timestamp
        self.value = value
    }

    /// Bitwise equality: NaN payloads and the sign of zero count.
    public static func == (a: Self, b: Self) -> Bool {
        a.step == b.step && a.timestamp == b.timestamp && a.value.bitPattern == b.value.bitPattern
    }

    /// Hashes the step, timestamp and the value's bits.
    public func hash(into h: inout Hasher) {
        h.combine(step)
        h.combine(timestamp)
        h.combine(value.bitPattern)
    }

    /// `(step, timestamp, value)`.
    public var description: String { "(\(step), \(timestamp), \(value))" }
}

/// A value at a step, as M4 and summaries report it.
public struct StepValue: Sendable, Hashable, CustomStringConvertible {
    /// The step of the point.
    public var step: Int64
    /// The value, kept bit for bit.
    public var value: Double

    /// Creates a step–value pair.
    public init(step: Int64, value: Double) {
        self.step = step
        self.value = value
    }

    /// Bitwise equality.
    public static func == (a: Self, b: Self) -> Bool { a.step == b.step && a.value.bitPattern == b.value.bitPattern }

    /// Hashes the step and the value's bits.
    public func hash(into h: inout Hasher) {
        h.combine(step)
        h.combine(value.bitPattern)
    }

    /// `value@step`.
    public var description: String { "\(value)@\(step)" }
}

/// Aggregates of a set of points: what a rollup bucket, a block summary and a query bucket hold.
///
/// Order of points is by step, then by arrival. `first`/`last` are the first and last points in that order;
/// `min`/`max` are the smallest and largest non-NaN values (infinities included), the earliest point winning ties;
/// `sum` adds the finite values only.
public struct SeriesSummary: Sendable, Equatable {
    /// Number of points.
    public var count: Int = 0
    /// Points whose value is NaN.
    public var nanCount: Int = 0
    /// Points whose value is +∞.
    public var posInfCount: Int = 0
    /// Points whose value is −∞.
    public var negInfCount: Int = 0
    /// Sum of the finite values.
    public var sum: Double = 0
    /// The first point in order.
    public var first: StepValue?
    /// The last point in order.
    public var last: StepValue?
    /// The smallest non-NaN value and its step.
    public var min: StepValue?
    /// The largest non-NaN value and its step.
    public var max: StepValue?

    /// Creates an empty summary.
    public init() {}

    /// Points whose value is finite.
    public var finiteCount: Int { count - nanCount - posInfCount - negInfCount }

    /// Mean of the finite values, `nil` when there are none.
    public var mean: Double? { finiteCount > 0 ? sum / Double(finiteCount) : nil }

    /// Adds the summary of points that all come after this one's in step order (the next bucket of a grid).
    public mutating func append(_ o: SeriesSummary) {
        guard o.count > 0 else { return }
        guard count > 0 else {
            self = o
            return
        }
        count += o.count
        nanCount += o.nanCount
        posInfCount += o.posInfCount
        negInfCount += o.negInfCount
        sum += o.sum
        last = o.last
        // Ties keep the earlier point, which is this one's.
        if let m = o.min, min.map({ m.value < $0.value }) ?? true { min = m }
        if let m = o.max, max.map({ m.value > $0.value }) ?? true { max = m }
    }

    /// Equality that compares sums exactly and values bit for bit.
    public static func == (a: Self, b: Self) -> Bool {
        a.count == b.count && a.nanCount == b.nanCount && a.posInfCount == b.posInfCount && a.negInfCount == b.negInfCount
            && a.sum.bitPattern == b.sum.bitPattern && a.first == b.first && a.last == b.last && a.min == b.min && a.max == b.max
    }
}

/// One bucket of an M4 or mean downsample: the step range it covers and the summary of its points.
public struct DownsampleBucket: Sendable, Equatable {
    /// First step of the bucket (inclusive).
    public var startStep: Int64
    /// Last step of the bucket (inclusive).
    public var endStep: Int64
    /// The aggregates of the points in the bucket (`count == 0` for an empty bucket).
    public var summary: SeriesSummary

    /// Creates a bucket.
    public init(startStep: Int64, endStep: Int64, summary: SeriesSummary) {
        self.startStep = startStep
        self.endStep = endStep
        self.summary = summary
    }
}
