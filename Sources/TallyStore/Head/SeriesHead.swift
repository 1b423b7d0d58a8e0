/// The unsealed points of one series, in arrival order, as three columns.
struct SeriesHead: Sendable {
    var steps: [Int64] = []
    var timestamps: [Int64] = []
    /// Double bit patterns.
    var values: [UInt64] = []
    /// Whether steps are non-decreasing in arrival order.
    var sorted = true
    /// The latest point by ``LatestRule``.
    var latest: MetricPoint?

    var count: Int { steps.count }

    /// Memory held by the columns, by capacity.
    var bytes: Int { (steps.capacity &+ timestamps.capacity &+ values.capacity) &* 8 }

    /// Appends a batch of points (all three buffers have the same count).
    mutating func append(steps s: UnsafeBufferPointer<Int64>, timestamps t: UnsafeBufferPointer<Int64>, values v: UnsafeBufferPointer<Double>) {
        let n = s.count
        guard n > 0 else { return }
        var prev = steps.last ?? s[0]
        var isSorted = sorted
        var best = latest ?? MetricPoint(step: s[0], timestamp: t[0], value: v[0])
        for i in 0..<n {
            let st = s[i]
            isSorted = isSorted && st >= prev
            prev = st
            let p = MetricPoint(step: st, timestamp: t[i], value: v[i])
            if LatestRule.isLater(p, than: best) { best = p }
        }
        sorted = isSorted
        latest = best
        if steps.capacity < count + n {
            let wanted = Swift.max(count + n, count * 2, 1024)
            steps.reserveCapacity(wanted)
            timestamps.reserveCapacity(wanted)
            values.reserveCapacity(wanted)
        }
        steps.append(contentsOf: s)
        timestamps.append(contentsOf: t)
        v.withMemoryRebound(to: UInt64.self) { values.append(contentsOf: $0) }
    }

    /// The columns sorted by step, ties kept in arrival order.
    func sortedColumns(key: String) -> SealColumns {
        if sorted { return SealColumns(key: key, steps: steps, timestamps: timestamps, values: values) }
        let order = Self.stableOrder(steps)
        return SealColumns(key: key, steps: order.map { steps[$0] }, timestamps: order.map { timestamps[$0] },
                           values: order.map { values[$0] })
    }

    /// Indices that sort `steps` ascending, ties in index order.
    static func stableOrder(_ steps: [Int64]) -> [Int] {
        var idx = Array(steps.indices)
        steps.withUnsafeBufferPointer { s in
            idx.sort { a, b in s[a] < s[b] || (s[a] == s[b] && a < b) }
        }
        return idx
    }

    /// Number of points with step ≤ `cut` (only for sorted heads).
    func countThrough(step cut: Int64) -> Int {
        precondition(sorted)
        var l = 0, h = count
        steps.withUnsafeBufferPointer { s in
            while l < h {
                let m = (l + h) >> 1
                if s[m] <= cut { l = m + 1 } else { h = m }
            }
        }
        return l
    }

    /// Removes and returns the points with step ≤ `cut` (only for sorted heads).
    mutating func removePrefix(throughStep cut: Int64, key: String) -> SealColumns {
        let l = countThrough(step: cut)
        let out = SealColumns(key: key, steps: Array(steps[..<l]), timestamps: Array(timestamps[..<l]), values: Array(values[..<l]))
        steps.removeFirst(l)
        timestamps.removeFirst(l)
        values.removeFirst(l)
        latest = nil
        for i in 0..<count {
            let p = MetricPoint(step: steps[i], timestamp: timestamps[i], value: Double(bitPattern: values[i]))
            if latest == nil || LatestRule.isLater(p, than: latest!) { latest = p }
        }
        return out
    }
}
