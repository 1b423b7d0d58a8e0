/// The unsealed points of one series, in arrival order.
///
/// A short head keeps its points as (step, timestamp, value bits) triples in one buffer and its first WAL mark
/// inline, so a new series costs one allocation, not four: a benchmark-suite batch creates a thousand heads under
/// the store's append lock, where every allocation was serialised. Past ``smallLimit`` points the head switches to
/// three columns, which a seal of a dense series takes without copying (``sortedColumns(key:)``).
struct SeriesHead: Sendable {
    /// Step, timestamp and value bits of each point, interleaved (while the head is small).
    private var points: [UInt64] = []
    /// The columns (once the head has grown past ``smallLimit``).
    private var stepColumn: [Int64] = [], timestampColumn: [Int64] = [], valueColumn: [UInt64] = []

    /// Points a head keeps interleaved before it switches to columns.
    static let smallLimit = 16
    /// The latest point by ``LatestRule``.
    var latest: MetricPoint?
    // The flags sit in the optional's padding (declared after it): 104 bytes a head with the bounds' box, as before it.
    private var columnar = false
    /// Whether steps are non-decreasing in arrival order.
    var sorted = true
    /// A columnar head's step and timestamp ranges (a small head scans its points instead), boxed so a head pays one
    /// word for them: a benchmark-suite run holds thousands of one-point heads.
    private var box: HeadBounds?
    /// The first WAL mark (most heads only ever have one) and the later ones.
    private var firstMark: Mark?
    private var moreMarks: [Mark] = []

    /// Where a batch of head points came from: head point `start` is point `skip` of this series in record `lsn`.
    /// 16 bytes: a benchmark-suite key gets one per checkpoint.
    struct Mark {
        var lsn: UInt64
        var start: UInt32
        var skip: UInt32
    }

    /// The WAL marks in order (empty when the store has no WAL).
    var marks: [Mark] {
        get { firstMark.map { [$0] + moreMarks } ?? [] }
        set {
            firstMark = newValue.first
            moreMarks = Array(newValue.dropFirst())
        }
    }

    /// LSN of the oldest record with points still in this head.
    var minLSN: UInt64? { firstMark?.lsn }

    /// The WAL position of head point `k` (`k == count`: just past the last point), i.e. what a seal of the first
    /// `k` points has made durable.
    func walPosition(at k: Int) -> WALPosition? {
        guard var m = firstMark else { return nil }
        for x in moreMarks where Int(x.start) <= k { m = x }
        return WALPosition(lsn: m.lsn, index: UInt32(Int(m.skip) + (k - Int(m.start))))
    }

    var count: Int { columnar ? stepColumn.count : points.count / 3 }

    /// Step of head point `i`.
    @inline(__always)
    func step(_ i: Int) -> Int64 { columnar ? stepColumn[i] : Int64(bitPattern: points[3 &* i]) }

    /// The smallest and largest step and timestamp held (`.max` / `.min` when empty), so a batch outside them skips
    /// the head's duplicate check (points logged without a step share step 0 but not their timestamps).
    var bounds: (minStep: Int64, maxStep: Int64, minTimestamp: Int64, maxTimestamp: Int64) {
        if let b = box { return (b.minStep, b.maxStep, b.minTimestamp, b.maxTimestamp) }
        var r: (minStep: Int64, maxStep: Int64, minTimestamp: Int64, maxTimestamp: Int64) = (.max, .min, .max, .min)
        for i in 0..<count {
            let s = step(i), t = timestamp(i)
            r = (Swift.min(r.minStep, s), Swift.max(r.maxStep, s), Swift.min(r.minTimestamp, t), Swift.max(r.maxTimestamp, t))
        }
        return r
    }

    /// Timestamp of head point `i`.
    @inline(__always)
    func timestamp(_ i: Int) -> Int64 { columnar ? timestampColumn[i] : Int64(bitPattern: points[3 &* i &+ 1]) }

    /// Value bits of head point `i`.
    @inline(__always)
    func valueBits(_ i: Int) -> UInt64 { columnar ? valueColumn[i] : points[3 &* i &+ 2] }

    /// Memory held: the points by capacity, plus what every series costs besides (the buffer's header, the WAL marks,
    /// its entry in the run's table), so a run of thousands of short series is counted as what it holds.
    var bytes: Int {
        (points.capacity &+ stepColumn.capacity &+ timestampColumn.capacity &+ valueColumn.capacity) &* 8 &+ Self.overhead
            &+ moreMarks.capacity &* MemoryLayout<Mark>.stride
    }

    /// Bytes a series head costs besides its points and later marks.
    static let overhead = 128

    /// The smallest capacity a head grows to, in points: small, so a series of one point (a benchmark-suite key)
    /// costs about what it holds; doubling from there keeps appends to long series amortised.
    static let minimumCapacity = 4

    /// Makes room for `additional` more points at once (replay knows how many are coming).
    mutating func reserve(_ additional: Int) {
        let wanted = count + additional
        if wanted > Self.smallLimit { becomeColumnar(capacity: wanted) }
        if columnar {
            stepColumn.reserveCapacity(wanted)
            timestampColumn.reserveCapacity(wanted)
            valueColumn.reserveCapacity(wanted)
        } else if points.capacity < wanted * 3 {
            points.reserveCapacity(wanted * 3)
        }
    }

    /// Moves interleaved points into columns with room for `capacity` points.
    private mutating func becomeColumnar(capacity: Int) {
        guard !columnar else { return }
        let c = columns(0..<count)
        stepColumn = c.steps
        timestampColumn = c.timestamps
        valueColumn = c.values
        stepColumn.reserveCapacity(capacity)
        timestampColumn.reserveCapacity(capacity)
        valueColumn.reserveCapacity(capacity)
        points = []
        columnar = true
    }

    /// Appends a batch of points (all three buffers have the same count). `lsn` (0: none) is the WAL record they
    /// came from and `skip` how many points of this series in that record came before them.
    mutating func append(steps s: UnsafeBufferPointer<Int64>, timestamps t: UnsafeBufferPointer<Int64>, values v: UnsafeBufferPointer<Double>,
                         lsn: UInt64 = 0, skip: Int = 0) {
        let n = s.count
        guard n > 0 else { return }
        if lsn != 0 {
            let m = Mark(lsn: lsn, start: UInt32(count), skip: UInt32(skip))
            if firstMark == nil { firstMark = m } else { moreMarks.append(m) }
        }
        var prev = count > 0 ? step(count - 1) : s[0]
        var isSorted = sorted
        var best = latest ?? MetricPoint(step: s[0], timestamp: t[0], value: v[0])
        var (lo, hi, tlo, thi) = bounds
        for i in 0..<n {
            let st = s[i]
            isSorted = isSorted && st >= prev
            prev = st
            lo = Swift.min(lo, st)
            hi = Swift.max(hi, st)
            tlo = Swift.min(tlo, t[i])
            thi = Swift.max(thi, t[i])
            let p = MetricPoint(step: st, timestamp: t[i], value: v[i])
            if LatestRule.isLater(p, than: best) { best = p }
        }
        sorted = isSorted
        latest = best
        defer { box = columnar ? HeadBounds(lo, hi, tlo, thi) : nil }
        let have = count
        if !columnar && have + n > Self.smallLimit { becomeColumnar(capacity: Swift.max(have + n, have * 2)) }
        if columnar {
            if stepColumn.capacity < have + n {
                let wanted = Swift.max(have + n, have * 2)
                stepColumn.reserveCapacity(wanted)
                timestampColumn.reserveCapacity(wanted)
                valueColumn.reserveCapacity(wanted)
            }
            stepColumn.append(contentsOf: s)
            timestampColumn.append(contentsOf: t)
            v.withMemoryRebound(to: UInt64.self) { valueColumn.append(contentsOf: $0) }
            return
        }
        if points.capacity < (have + n) * 3 {
            points.reserveCapacity(Swift.max(have + n, have * 2, Self.minimumCapacity) * 3)
        }
        for i in 0..<n {
            points.append(UInt64(bitPattern: s[i]))
            points.append(UInt64(bitPattern: t[i]))
            points.append(v[i].bitPattern)
        }
    }

    /// Points `range` as columns, in arrival order (the columns themselves, without a copy, when the head is columnar
    /// and the range is all of it).
    private func columns(_ range: Range<Int>) -> (steps: [Int64], timestamps: [Int64], values: [UInt64]) {
        if columnar {
            if range == 0..<count { return (stepColumn, timestampColumn, valueColumn) }
            return (Array(stepColumn[range]), Array(timestampColumn[range]), Array(valueColumn[range]))
        }
        return points.withUnsafeBufferPointer { p in
            let n = range.count
            let steps = [Int64](unsafeUninitializedCapacity: n) { b, c in
                for i in 0..<n { b[i] = Int64(bitPattern: p[3 &* (range.lowerBound &+ i)]) }
                c = n
            }
            let timestamps = [Int64](unsafeUninitializedCapacity: n) { b, c in
                for i in 0..<n { b[i] = Int64(bitPattern: p[3 &* (range.lowerBound &+ i) &+ 1]) }
                c = n
            }
            let values = [UInt64](unsafeUninitializedCapacity: n) { b, c in
                for i in 0..<n { b[i] = p[3 &* (range.lowerBound &+ i) &+ 2] }
                c = n
            }
            return (steps, timestamps, values)
        }
    }

    /// The columns sorted by step, ties kept in arrival order.
    func sortedColumns(key: String) -> SealColumns {
        let wal = walPosition(at: count)
        let (steps, timestamps, values) = columns(0..<count)
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
        while l < h {
            let m = (l + h) >> 1
            if step(m) <= cut { l = m + 1 } else { h = m }
        }
        return l
    }

    /// Removes and returns the points with step ≤ `cut` (only for sorted heads).
    mutating func removePrefix(throughStep cut: Int64, key: String) -> SealColumns {
        let l = countThrough(step: cut)
        let (steps, timestamps, values) = columns(0..<l)
        let out = SealColumns(key: key, steps: steps, timestamps: timestamps, values: values, wal: walPosition(at: l))
        if let p = out.wal {
            var kept = marks.filter { Int($0.start) > l }.map { Mark(lsn: $0.lsn, start: $0.start - UInt32(l), skip: $0.skip) }
            if l < count && kept.first?.start != 0 { kept.insert(Mark(lsn: p.lsn, start: 0, skip: p.index), at: 0) }
            marks = kept
        }
        if columnar {
            stepColumn.removeFirst(l)
            timestampColumn.removeFirst(l)
            valueColumn.removeFirst(l)
        } else {
            points.removeFirst(l * 3)
        }
        let rest = columns(0..<count)
        latest = LatestRule.latest(steps: rest.steps, timestamps: rest.timestamps, values: rest.values, in: 0..<count)
        box = nil
        if columnar {
            let b = bounds  // scans the rest (a seal's cost, not an append's)
            box = HeadBounds(b.minStep, b.maxStep, b.minTimestamp, b.maxTimestamp)
        }
        return out
    }
}

/// The step and timestamp ranges of a columnar ``SeriesHead``, replaced (not changed) by each append.
final class HeadBounds: Sendable {
    let minStep: Int64, maxStep: Int64, minTimestamp: Int64, maxTimestamp: Int64
    init(_ minStep: Int64, _ maxStep: Int64, _ minTimestamp: Int64, _ maxTimestamp: Int64) {
        (self.minStep, self.maxStep, self.minTimestamp, self.maxTimestamp) = (minStep, maxStep, minTimestamp, maxTimestamp)
    }
}
