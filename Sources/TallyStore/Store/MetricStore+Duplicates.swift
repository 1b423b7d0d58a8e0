import Synchronization

/// Where a run's sealed data stood when a caller read what it knows of the run's stored points
/// (``MetricStore/duplicateMark(run:)``): data frozen after it carries a higher sequence number.
public struct DuplicateMark: Sendable, Equatable {
    let seq: UInt64
}

/// MLflow's exact-duplicate rule for one append: a point equal to a stored one of its series (same step, timestamp
/// and value, NaN equal to NaN) is not stored again; several values at one step are all kept.
///
/// The caller knows each series' latest stored point (MLflow's latest row). Only a point at or before it, by
/// (step, timestamp), can repeat a point stored before the caller read it, so only those are compared with data
/// sealed before ``mark``, and only where a block's step range holds their steps. Everything newer than the mark (the
/// heads, and data sealed since) is compared with every point of the batch, under the run's lock, so two concurrent
/// appends of one point store it once.
public struct DuplicateCheck: Sendable {
    /// Taken before `latest` was read.
    public var mark: DuplicateMark
    /// Per key, the latest stored point the caller knows of, for the keys with a point at or before it (absent: no
    /// point of the key can repeat one sealed before the mark).
    public var latest: [String: MetricPoint]

    /// A check against what a caller read after `mark`.
    public init(mark: DuplicateMark, latest: [String: MetricPoint]) {
        self.mark = mark
        self.latest = latest
    }
}

/// A point as MLflow compares it for its exact-duplicate rule: NaN equal to NaN, 0 equal to -0 (the one place that
/// rule lives; a batch's own repeats are dropped with it too).
public struct PointIdentity: Hashable, Sendable {
    /// The step.
    public var step: Int64
    /// The timestamp.
    public var timestamp: Int64
    /// The value's bits, NaN and -0 made canonical.
    public var value: UInt64

    /// The identity of the point (step, timestamp, value bits).
    @inline(__always)
    public init(step: Int64, timestamp: Int64, bits: UInt64) {
        self.step = step
        self.timestamp = timestamp
        let v = Double(bitPattern: bits)
        value = v.isNaN ? Double.nan.bitPattern : (v == 0 ? 0 : bits)
    }
}

extension MetricStore {
    /// The mark to take before reading the latest values a ``DuplicateCheck`` carries.
    public func duplicateMark(run id: String) throws -> DuplicateMark {
        guard let run = try run(id, create: false) else { return DuplicateMark(seq: 0) }
        return try run.state.withLock { s in
            try run.load(&s)
            // Not after an unsettled append: its points may be sealed already while its caller's metadata (the
            // latest values read next) does not show them yet.
            return DuplicateMark(seq: min(s.nextSeq, s.unsettled.keys.min() ?? .max))
        }
    }

    /// Drops the points of `batches` that repeat points sealed before the check's mark (outside the run's lock:
    /// segments are immutable and frozen sets are replaced, never changed).
    func dropSealedRepeats(_ run: RunStore, _ batches: SeriesColumns, _ check: DuplicateCheck) throws -> SeriesColumns {
        guard !check.latest.isEmpty else { return batches }
        var suspects: [(series: Int, drop: [Bool])] = []
        batches.forEach { i, key, st, ts, _ in
            guard let l = check.latest[key] else { return }
            var mask = [Bool](repeating: true, count: st.count)  // true: not a suspect (kept without comparing)
            var any = false
            for p in 0..<st.count where st[p] < l.step || (st[p] == l.step && ts[p] <= l.timestamp) {
                mask[p] = false
                any = true
            }
            if any { suspects.append((i, mask)) }
        }
        guard !suspects.isEmpty else { return batches }
        let (segments, frozen) = try run.state.withLock { s in
            try run.load(&s)
            return (s.segments, s.frozen)
        }
        var drops: [Int: [Bool]] = [:]
        for (i, notSuspect) in suspects {
            var drop = [Bool](repeating: false, count: notSuspect.count)
            let key = batches.keys[i]
            try batches.withSeries(i) { st, ts, vs in
                try markRepeats(run, key: key, st, ts, vs, skip: notSuspect, segments: segments, frozen: frozen, into: &drop)
            }
            if drop.contains(true) { drops[i] = drop }
        }
        return drops.isEmpty ? batches : batches.dropping(drops)
    }

    /// Under the run's lock: drops the points of `batches` that repeat head points or points sealed since `mark`.
    /// Returns `nil` when nothing repeats.
    func dropNewRepeats(_ run: RunStore, _ s: inout RunState, _ batches: SeriesColumns, since mark: DuplicateMark) throws -> SeriesColumns? {
        let segments = s.segments.filter { $0.seq >= mark.seq }
        let frozen = s.frozen.filter { $0.seq >= mark.seq }
        var drops: [Int: [Bool]] = [:]
        try batches.forEach { i, key, st, ts, vs in
            let head = s.heads[key].flatMap { $0.mayHold(st, ts) ? $0 : nil }
            let sealed = !(segments.isEmpty && frozen.isEmpty) && Self.sealedMayHold(key: key, st, ts, segments: segments, frozen: frozen)
            guard head != nil || sealed else { return }  // the usual case: nothing to compare, nothing allocated
            var drop = [Bool](repeating: false, count: st.count)
            head?.markRepeats(st, ts, vs, into: &drop)
            if sealed { try markRepeats(run, key: key, st, ts, vs, skip: drop, segments: segments, frozen: frozen, into: &drop) }
            if drop.contains(true) { drops[i] = drop }
        }
        return drops.isEmpty ? nil : batches.dropping(drops)
    }

    /// Sets `drop[p]` for each point `p` (not in `skip`) equal to a point of `key` in `segments` or `frozen`. Only
    /// blocks whose step and timestamp ranges hold a wanted point are decoded (through the block cache); their
    /// points at the wanted steps are probed against the batch's, hashed once.
    func markRepeats(_ run: RunStore, key: String, _ st: UnsafeBufferPointer<Int64>, _ ts: UnsafeBufferPointer<Int64>, _ vs: UnsafeBufferPointer<Double>,
                     skip: [Bool], segments: [SegmentReader], frozen: [FrozenHeads], into drop: inout [Bool]) throws {
        var want = Set<PointIdentity>()
        var tlo = Int64.max, thi = Int64.min
        for p in st.indices where !skip[p] && !drop[p] {
            want.insert(PointIdentity(step: st[p], timestamp: ts[p], bits: vs[p].bitPattern))
            tlo = min(tlo, ts[p])
            thi = max(thi, ts[p])
        }
        guard !want.isEmpty else { return }
        // The wanted steps, sorted and distinct, and their range.
        let wanted = Array(Set(want.map(\.step))).sorted()
        let lo = wanted.first!, hi = wanted.last!
        func holdsWanted(_ a: Int64, _ b: Int64, _ ta: Int64, _ tb: Int64) -> Bool {
            guard a <= hi && b >= lo && ta <= thi && tb >= tlo else { return false }
            let k = Self.lowerBound(wanted, a)
            return k < wanted.count && wanted[k] <= b
        }
        var matched = Set<PointIdentity>()
        // Probes the stored points at the wanted steps of sorted `steps`.
        func probe(steps: UnsafeBufferPointer<Int64>, timestamp: (Int) throws -> Int64, bits: (Int) -> UInt64) rethrows {
            var from = 0
            for step in wanted {
                var k = from + Self.lowerBound(UnsafeBufferPointer(rebasing: steps[from...]), step)
                while k < steps.count && steps[k] == step {
                    let id = PointIdentity(step: step, timestamp: try timestamp(k), bits: bits(k))
                    if want.contains(id) { matched.insert(id) }
                    k += 1
                }
                from = k
                if from == steps.count { break }
            }
        }
        let planes = PlaneCodec()
        for seg in segments {
            guard let si = seg.series.find(key) else { continue }
            if let slot = seg.series.slot(si) {
                let c = try run.pack(seg, slot.pack).columns(slot.ordinal, key: key)
                c.steps.withUnsafeBufferPointer { p in probe(steps: p, timestamp: { c.timestamps[$0] }, bits: { c.values[$0] }) }
            }
            for (bi, meta) in seg.series.blocks(si).enumerated()
            where holdsWanted(meta.minStep, meta.maxStep, meta.minTimestamp, meta.maxTimestamp) {
                let d = try decodedBlock(seg, si, bi, meta: meta, planes: planes)
                var timestamps: [Int64]?  // decoded only when a wanted step is in the block
                try d.steps.withUnsafeBufferPointer { p in
                    try probe(steps: p, timestamp: { k in
                        if timestamps == nil { timestamps = try seg.readInts(meta.timestamps, count: meta.count, planes: planes, what: "timestamp column") }
                        return timestamps![k]
                    }, bits: { d.values[$0] })
                }
            }
        }
        for f in frozen {
            guard let c = f.series[key], let first = c.steps.first, holdsWanted(first, c.steps.last!, .min, .max) else { continue }
            c.steps.withUnsafeBufferPointer { p in probe(steps: p, timestamp: { c.timestamps[$0] }, bits: { c.values[$0] }) }
        }
        guard !matched.isEmpty else { return }
        for p in st.indices where !skip[p] && matched.contains(PointIdentity(step: st[p], timestamp: ts[p], bits: vs[p].bitPattern)) { drop[p] = true }
    }

    /// Whether any point of the series could lie in a block, pack or frozen set of `key` (their step and timestamp
    /// ranges; no allocation, no decoding).
    static func sealedMayHold(key: String, _ st: UnsafeBufferPointer<Int64>, _ ts: UnsafeBufferPointer<Int64>,
                              segments: [SegmentReader], frozen: [FrozenHeads]) -> Bool {
        var lo = Int64.max, hi = Int64.min, tlo = Int64.max, thi = Int64.min
        for p in st.indices {
            lo = min(lo, st[p])
            hi = max(hi, st[p])
            tlo = min(tlo, ts[p])
            thi = max(thi, ts[p])
        }
        func overlaps(_ a: Int64, _ b: Int64, _ ta: Int64, _ tb: Int64) -> Bool { a <= hi && b >= lo && ta <= thi && tb >= tlo }
        for seg in segments {
            guard let si = seg.series.find(key) else { continue }
            if let slot = seg.series.slot(si) {
                let m = seg.packs[slot.pack]
                if overlaps(m.minStep, m.maxStep, m.minTimestamp, m.maxTimestamp) { return true }
            }
            for m in seg.series.blocks(si) where overlaps(m.minStep, m.maxStep, m.minTimestamp, m.maxTimestamp) { return true }
        }
        for f in frozen {
            if let c = f.series[key], let first = c.steps.first, overlaps(first, c.steps.last!, .min, .max) { return true }
        }
        return false
    }

}

extension SeriesHead {
    /// Whether any batch point lies inside this head's step and timestamp ranges (no allocation).
    func mayHold(_ st: UnsafeBufferPointer<Int64>, _ ts: UnsafeBufferPointer<Int64>) -> Bool {
        guard count > 0 else { return false }
        let b = bounds
        for p in st.indices where st[p] >= b.minStep && st[p] <= b.maxStep && ts[p] >= b.minTimestamp && ts[p] <= b.maxTimestamp { return true }
        return false
    }

    /// Sets `drop[p]` for each batch point equal to a point of this head (MLflow's comparison). Only head points
    /// inside the batch's step and timestamp ranges are looked at (a sorted head finds its step range by binary
    /// search), each probed against the batch's points, hashed once.
    func markRepeats(_ st: UnsafeBufferPointer<Int64>, _ ts: UnsafeBufferPointer<Int64>, _ vs: UnsafeBufferPointer<Double>, into drop: inout [Bool]) {
        guard count > 0 else { return }
        let (minStep, maxStep, minTimestamp, maxTimestamp) = bounds
        var want = Set<PointIdentity>()
        var lo = Int64.max, hi = Int64.min, tlo = Int64.max, thi = Int64.min
        for p in st.indices where st[p] >= minStep && st[p] <= maxStep && ts[p] >= minTimestamp && ts[p] <= maxTimestamp {
            want.insert(PointIdentity(step: st[p], timestamp: ts[p], bits: vs[p].bitPattern))
            lo = Swift.min(lo, st[p])
            hi = Swift.max(hi, st[p])
            tlo = Swift.min(tlo, ts[p])
            thi = Swift.max(thi, ts[p])
        }
        guard !want.isEmpty else { return }
        var range = 0..<count
        if sorted { range = (lo == .min ? 0 : countThrough(step: lo - 1))..<countThrough(step: hi) }
        var matched = Set<PointIdentity>()
        for i in range {
            let s = step(i), t = timestamp(i)
            guard s >= lo && s <= hi && t >= tlo && t <= thi else { continue }
            let id = PointIdentity(step: s, timestamp: t, bits: valueBits(i))
            if want.contains(id) { matched.insert(id) }
        }
        guard !matched.isEmpty else { return }
        for p in st.indices where matched.contains(PointIdentity(step: st[p], timestamp: ts[p], bits: vs[p].bitPattern)) { drop[p] = true }
    }
}
