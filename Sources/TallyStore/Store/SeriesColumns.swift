/// The points of one append, several series: what ``MetricStore/prepareAppend(run:columns:batchID:)`` takes and
/// the write-ahead log and heads read, series by series, through ``forEach(_:)``. Built from a request's points it
/// is one set of flat columns (a wide batch of 1,000 one-point series is five arrays, not three per series); built
/// from ``SeriesBatch``es (dense columns a client sent) it keeps their arrays, so they are not copied.
public struct SeriesColumns: Sendable {
    /// One key per series.
    public private(set) var keys: [String] = []
    private var storage: Storage

    private enum Storage: Sendable {
        /// Series `i` is the points `ends[i - 1]..<ends[i]` (from 0) of the three columns.
        case flat(ends: [Int], steps: [Int64], timestamps: [Int64], values: [Double])
        /// Series `i` is `batches[i]` (its key is `keys[i]`).
        case separate([SeriesBatch])
    }

    /// No series.
    public init() { storage = .flat(ends: [], steps: [], timestamps: [], values: []) }

    /// Flat columns with room for `series` series of `points` points in all.
    public init(series: Int, points: Int) {
        var ends: [Int] = [], steps: [Int64] = [], timestamps: [Int64] = [], values: [Double] = []
        keys.reserveCapacity(series)
        ends.reserveCapacity(series)
        steps.reserveCapacity(points)
        timestamps.reserveCapacity(points)
        values.reserveCapacity(points)
        storage = .flat(ends: ends, steps: steps, timestamps: timestamps, values: values)
    }

    /// Flat columns built elsewhere: `ends` non-decreasing, one per key, the last one the columns' common length.
    public init(keys: [String], ends: [Int], steps: [Int64], timestamps: [Int64], values: [Double]) {
        precondition(keys.count == ends.count && steps.count == timestamps.count && steps.count == values.count
                     && (ends.last ?? 0) == steps.count && ends.indices.dropFirst().allSatisfy { ends[$0 - 1] <= ends[$0] }
                     && (ends.first ?? 0) >= 0, "series columns: one end per key, ascending, the last at the columns' length")
        self.keys = keys
        storage = .flat(ends: ends, steps: steps, timestamps: timestamps, values: values)
    }

    /// The series of `batches`, in order, without copying their columns (unequal lengths are refused by
    /// ``normalized()``).
    public init(_ batches: [SeriesBatch]) {
        keys = batches.map(\.key)
        storage = .separate(batches)
    }

    /// Series.
    public var count: Int { keys.count }

    /// Points in all.
    public var pointCount: Int {
        switch storage {
        case .flat(_, let steps, _, _): return steps.count
        case .separate(let batches): return batches.reduce(0) { $0 + $1.steps.count }
        }
    }

    /// Points of series `i`.
    public func pointCount(_ i: Int) -> Int {
        switch storage {
        case .flat(let ends, _, _, _): return ends[i] - (i == 0 ? 0 : ends[i - 1])
        case .separate(let batches): return batches[i].steps.count
        }
    }

    /// Appends a series (the three columns must have equal lengths).
    public mutating func append<S: Collection, T: Collection, V: Collection>(key: String, steps s: S, timestamps t: T, values v: V)
    where S.Element == Int64, T.Element == Int64, V.Element == Double {
        precondition(s.count == t.count && s.count == v.count, "columns of one series have equal lengths")
        keys.append(key)
        switch storage {
        case .flat(var ends, var steps, var timestamps, var values):
            storage = .separate([])  // drop the references so the arrays grow in place
            steps.append(contentsOf: s)
            timestamps.append(contentsOf: t)
            values.append(contentsOf: v)
            ends.append(steps.count)
            storage = .flat(ends: ends, steps: steps, timestamps: timestamps, values: values)
        case .separate(var batches):
            storage = .separate([])
            batches.append(SeriesBatch(key: key, steps: Array(s), timestamps: Array(t), values: Array(v)))
            storage = .separate(batches)
        }
    }

    /// Series `i` as a ``SeriesBatch``.
    public func batch(_ i: Int) -> SeriesBatch {
        switch storage {
        case .flat(let ends, let steps, let timestamps, let values):
            let r = (i == 0 ? 0 : ends[i - 1])..<ends[i]
            return SeriesBatch(key: keys[i], steps: Array(steps[r]), timestamps: Array(timestamps[r]), values: Array(values[r]))
        case .separate(let batches):
            return batches[i]
        }
    }

    /// Every series as a ``SeriesBatch``.
    public var batches: [SeriesBatch] { (0..<count).map(batch) }

    /// Calls `body` with each series' position, key and columns, in order, without copying them.
    @inline(__always)
    public func forEach(_ body: (Int, String, UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Double>) throws -> Void) rethrows {
        switch storage {
        case .flat(let ends, let steps, let timestamps, let values):
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
        case .separate(let batches):
            for i in batches.indices { try withSeries(i) { try body(i, keys[i], $0, $1, $2) } }
        }
    }

    /// The series as ``MetricStore`` stores them: keys of 1 to 1,024 bytes, equal-key series merged (first
    /// appearance order, points in order), empty ones dropped. A batch of distinct keys with no empty series (the
    /// usual one) is returned as it is.
    /// - Throws: ``StorageError/Code/invalidArgument`` for a bad key or columns of unequal lengths.
    public func normalized() throws -> SeriesColumns {
        if case .separate(let batches) = storage,
           let b = batches.first(where: { $0.steps.count != $0.timestamps.count || $0.steps.count != $0.values.count }) {
            throw StorageError(.invalidArgument, "series \(b.key): \(b.steps.count) steps, \(b.timestamps.count) timestamps, \(b.values.count) values")
        }
        for k in keys where k.isEmpty || k.utf8.count > 1024 { throw StorageError(.invalidArgument, "metric key must be 1 to 1024 bytes") }
        // Distinct keys: strictly increasing ones cannot repeat (no hashing for a wide batch of 1,000 keys).
        let unique = keys.indices.dropFirst().allSatisfy { KeyOrder.less(keys[$0 - 1], keys[$0]) } || Set(keys).count == keys.count
        if unique && (0..<count).allSatisfy({ pointCount($0) > 0 }) { return self }
        // Regroup into flat columns: series of one key together, in order of the key's first non-empty appearance.
        var index: [String: Int] = [:]
        var members: [[Int]] = []
        for i in 0..<count where pointCount(i) > 0 {
            if let g = index[keys[i]] {
                members[g].append(i)
            } else {
                index[keys[i]] = members.count
                members.append([i])
            }
        }
        var out = SeriesColumns(series: members.count, points: pointCount)
        for m in members {
            for (k, i) in m.enumerated() {
                withSeries(i) { st, ts, vs in
                    if k == 0 { out.append(key: keys[i], steps: st, timestamps: ts, values: vs) } else { out.extendLast(steps: st, timestamps: ts, values: vs) }
                }
            }
        }
        return out
    }

    /// Calls `body` with series `i`'s columns, without copying them.
    func withSeries<R>(_ i: Int, _ body: (UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Int64>, UnsafeBufferPointer<Double>) throws -> R) rethrows -> R {
        switch storage {
        case .flat(let ends, let steps, let timestamps, let values):
            let r = (i == 0 ? 0 : ends[i - 1])..<ends[i]
            return try steps.withUnsafeBufferPointer { st in
                try timestamps.withUnsafeBufferPointer { ts in
                    try values.withUnsafeBufferPointer { vs in
                        try body(UnsafeBufferPointer(rebasing: st[r]), UnsafeBufferPointer(rebasing: ts[r]), UnsafeBufferPointer(rebasing: vs[r]))
                    }
                }
            }
        case .separate(let batches):
            let b = batches[i]
            return try b.steps.withUnsafeBufferPointer { st in
                try b.timestamps.withUnsafeBufferPointer { ts in try b.values.withUnsafeBufferPointer { vs in try body(st, ts, vs) } }
            }
        }
    }

    /// These series without the points `drops[i][p]` marks (series `i`, point `p`); series left empty are dropped.
    func dropping(_ drops: [Int: [Bool]]) -> SeriesColumns {
        var out = SeriesColumns(series: count, points: pointCount)
        forEach { i, key, st, ts, vs in
            guard let drop = drops[i] else {
                out.append(key: key, steps: st, timestamps: ts, values: vs)
                return
            }
            let keep = st.indices.filter { !drop[$0] }
            if !keep.isEmpty { out.append(key: key, steps: keep.map { st[$0] }, timestamps: keep.map { ts[$0] }, values: keep.map { vs[$0] }) }
        }
        return out
    }

    /// Appends points to the last series of flat columns.
    private mutating func extendLast(steps s: UnsafeBufferPointer<Int64>, timestamps t: UnsafeBufferPointer<Int64>, values v: UnsafeBufferPointer<Double>) {
        guard case .flat(var ends, var steps, var timestamps, var values) = storage else { preconditionFailure("flat columns only") }
        storage = .separate([])
        steps.append(contentsOf: s)
        timestamps.append(contentsOf: t)
        values.append(contentsOf: v)
        ends[ends.count - 1] = steps.count
        storage = .flat(ends: ends, steps: steps, timestamps: timestamps, values: values)
    }
}
