/// The points of one append, several series in one set of flat columns: series `i` is `key(i)` with the points
/// `range(i)` of `steps`, `timestamps` and `values`. What ``MetricStore/prepareAppend(run:columns:batchID:)``
/// takes and the write-ahead log and heads read: a wide batch of 1,000 one-point series is five arrays, not three
/// per series.
public struct SeriesColumns: Sendable {
    /// One key per series.
    public private(set) var keys: [String] = []
    /// `ends[i]` is one past series `i`'s last point.
    public private(set) var ends: [Int] = []
    /// Steps, series after series.
    public private(set) var steps: [Int64] = []
    /// Wall-clock timestamps in milliseconds, aligned with `steps`.
    public private(set) var timestamps: [Int64] = []
    /// Values, aligned with `steps`, stored bit for bit.
    public private(set) var values: [Double] = []

    /// No series.
    public init() {}

    /// Room for `series` series of `points` points in all.
    public init(series: Int, points: Int) {
        keys.reserveCapacity(series)
        ends.reserveCapacity(series)
        steps.reserveCapacity(points)
        timestamps.reserveCapacity(points)
        values.reserveCapacity(points)
    }

    /// Columns built elsewhere: `ends` non-decreasing, one per key, the last one the columns' common length.
    public init(keys: [String], ends: [Int], steps: [Int64], timestamps: [Int64], values: [Double]) {
        precondition(keys.count == ends.count && steps.count == timestamps.count && steps.count == values.count
                     && (ends.last ?? 0) == steps.count && ends.indices.dropFirst().allSatisfy { ends[$0 - 1] <= ends[$0] }
                     && (ends.first ?? 0) >= 0, "series columns: one end per key, ascending, the last at the columns' length")
        (self.keys, self.ends, self.steps, self.timestamps, self.values) = (keys, ends, steps, timestamps, values)
    }

    /// The series of `batches`, in order (columns of unequal lengths are refused by ``normalized()``).
    public init(_ batches: [SeriesBatch]) {
        self.init(series: batches.count, points: batches.reduce(0) { $0 + $1.steps.count })
        for b in batches where b.steps.count == b.timestamps.count && b.steps.count == b.values.count {
            append(key: b.key, steps: b.steps, timestamps: b.timestamps, values: b.values)
        }
        invalid = batches.first { $0.steps.count != $0.timestamps.count || $0.steps.count != $0.values.count }
            .map { "series \($0.key): \($0.steps.count) steps, \($0.timestamps.count) timestamps, \($0.values.count) values" }
    }

    /// Why the batches given to ``init(_:)`` cannot be stored, reported by ``normalized()``.
    private var invalid: String?

    /// Series.
    public var count: Int { keys.count }

    /// Points in all.
    public var pointCount: Int { steps.count }

    /// The points of series `i`.
    @inline(__always)
    public func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i &- 1])..<ends[i] }

    /// Appends a series (the three columns must have equal lengths).
    public mutating func append<S: Collection, T: Collection, V: Collection>(key: String, steps s: S, timestamps t: T, values v: V)
    where S.Element == Int64, T.Element == Int64, V.Element == Double {
        precondition(s.count == t.count && s.count == v.count, "columns of one series have equal lengths")
        keys.append(key)
        steps.append(contentsOf: s)
        timestamps.append(contentsOf: t)
        values.append(contentsOf: v)
        ends.append(steps.count)
    }

    /// Series `i` as a ``SeriesBatch`` (a copy).
    public func batch(_ i: Int) -> SeriesBatch {
        let r = range(i)
        return SeriesBatch(key: keys[i], steps: Array(steps[r]), timestamps: Array(timestamps[r]), values: Array(values[r]))
    }

    /// Every series as a ``SeriesBatch``.
    public var batches: [SeriesBatch] { (0..<count).map(batch) }

    /// The series as ``MetricStore`` stores them: keys of 1 to 1,024 bytes, equal-key series merged (first
    /// appearance order, points in order), empty ones dropped. A batch whose keys are strictly increasing (a wide
    /// batch usually is) with no empty series is returned as it is.
    /// - Throws: ``StorageError/Code/invalidArgument`` for a bad key or columns of unequal lengths.
    public func normalized() throws -> SeriesColumns {
        if let invalid { throw StorageError(.invalidArgument, invalid) }
        for k in keys where k.isEmpty || k.utf8.count > 1024 { throw StorageError(.invalidArgument, "metric key must be 1 to 1024 bytes") }
        let unique = keys.indices.dropFirst().allSatisfy { KeyOrder.less(keys[$0 - 1], keys[$0]) }
        let nonEmpty = (0..<count).allSatisfy { !range($0).isEmpty }
        if unique && nonEmpty { return self }
        // Regroup: series of one key together, in order of the key's first non-empty appearance.
        var index: [String: Int] = [:]
        var parts: [[Int]] = []
        var order: [String] = []
        for i in 0..<count where !range(i).isEmpty {
            if let g = index[keys[i]] {
                parts[g].append(i)
            } else {
                index[keys[i]] = parts.count
                parts.append([i])
                order.append(keys[i])
            }
        }
        var out = SeriesColumns(series: parts.count, points: pointCount)
        for (g, members) in parts.enumerated() {
            out.keys.append(order[g])
            for i in members {
                let r = range(i)
                out.steps.append(contentsOf: steps[r])
                out.timestamps.append(contentsOf: timestamps[r])
                out.values.append(contentsOf: values[r])
            }
            out.ends.append(out.steps.count)
        }
        return out
    }

    /// Calls `body` with each series' key and columns, in order, without copying them.
    @inline(__always)
    public func forEach(_ body: (Int, String, UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Double>) throws -> Void) rethrows {
        try steps.withUnsafeBufferPointer { st in
            try timestamps.withUnsafeBufferPointer { ts in
                try values.withUnsafeBufferPointer { vs in
                    var start = 0
                    for i in 0..<keys.count {
                        let end = ends[i]
                        try body(i, keys[i], UnsafeBufferPointer(rebasing: st[start..<end]), UnsafeBufferPointer(rebasing: ts[start..<end]),
                                 UnsafeBufferPointer(rebasing: vs[start..<end]))
                        start = end
                    }
                }
            }
        }
    }
}
