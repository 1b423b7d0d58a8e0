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
    /// Where each appended batch came from in the WAL: the point at head index `start` is point `skip` of this
    /// series in record `lsn`. Empty when the store has no WAL.
    var marks: [Mark] = []

    /// Where a batch of head points came from: head point `start` is point `skip` of this series in record `lsn`.
    /// 16 bytes: a benchmark-suite key gets one per checkpoint.
    struct Mark {
        var lsn: UInt64
        var start: UInt32
        var skip: UInt32
    }

    /// LSN of the oldest record with points still in this head.
    var minLSN: UInt64? { marks.first?.lsn }

    /// The WAL position of head point `k` (`k == count`: just past the last point), i.e. what a seal of the first
    /// `k` points has made durable.
    func walPosition(at k: Int) -> WALPosition? {
        guard var m = marks.first else { return nil }
        for x in marks where Int(x.start) <= k { m = x }
        return WALPosition(lsn: m.lsn, index: UInt32(Int(m.skip) + (k - Int(m.start))))
    }

    var count: Int { steps.count }

    /// Memory held: the columns by capacity, plus what every series costs besides (three array headers, the WAL
    /// marks, its entry in the run's table), so a run of thousands of short series is counted as what it holds.
    var bytes: Int { (steps.capacity &+ timestamps.capacity &+ values.capacity) &* 8 &+ Self.overhead &+ marks.capacity &* MemoryLayout<Mark>.stride }

    /// Bytes a series head costs besides its columns and marks.
    static let overhead = 160

    /// The smallest capacity a head grows to: small, so a series of one point (a benchmark-suite key) costs about
    /// what it holds; doubling from there keeps appends to long series amortised.
    static let minimumCapacity = 4

    /// Makes room for `additional` more points at once (replay knows how many are coming).
    mutating func reserve(_ additional: Int) {
        let wanted = count + additional
        guard steps.capacity < wanted else { return }
        steps.reserveCapacity(wanted)
        timestamps.reserveCapacity(wanted)
        values.reserveCapacity(wanted)
    }

    /// Appends a batch of points (all three buffers have the same count). `lsn` (0: none) is the WAL record they
    /// came from and `skip` how many points of this series in that record came before them.
    mutating func append(steps s: UnsafeBufferPointer<Int64>, timestamps t: UnsafeBufferPointer<Int64>, values v: UnsafeBufferPointer<Double>,
                         lsn: UInt64 = 0, skip: Int = 0) {
        let n = s.count
        guard n > 0 else { return }
        if lsn != 0 { marks.append(Mark(lsn: lsn, start: UInt32(count), skip: UInt32(skip))) }
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
            let wanted = Swift.max(count + n, count * 2, Self.minimumCapacity)
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
        let wal = walPosition(at: count)
        if sorted { return SealColumns(key: key, steps: steps, timestamps: timestamps, values: values, wal: wal) }
        let order = Self.stableOrder(steps)
        return SealColumns(key: key, steps: order.map { steps[$0] }, timestamps: order.map { timestamps[$0] },
                           values: order.map { values[$0] }, wal: wal)
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
        let out = SealColumns(key: key, steps: Array(steps[..<l]), timestamps: Array(timestamps[..<l]), values: Array(values[..<l]),
                              wal: walPosition(at: l))
        if let p = out.wal {
            var kept = marks.filter { Int($0.start) > l }.map { Mark(lsn: $0.lsn, start: $0.start - UInt32(l), skip: $0.skip) }
            if l < count && kept.first?.start != 0 { kept.insert(Mark(lsn: p.lsn, start: 0, skip: p.index), at: 0) }
            marks = kept
        }
        steps.removeFirst(l)
        timestamps.removeFirst(l)
        values.removeFirst(l)
        latest = LatestRule.latest(steps: steps, timestamps: timestamps, values: values, in: 0..<count)
        return out
    }
}
