import Synchronization

extension MetricStore {
    /// Points of a series, in step order with ties in arrival order.
    /// - Parameters:
    ///   - id: The run.
    ///   - key: The metric key.
    ///   - steps: Only points whose step lies in this range (all when `nil`).
    /// - Returns: Empty columns for an unknown run or key.
    public func read(run id: String, key: String, steps: ClosedRange<Int64>? = nil) throws -> SeriesData {
        try read(run: id, keys: [key], steps: steps)[key] ?? SeriesData()
    }

    /// Points of several series of one run. Step and timestamp columns shared by the series (metrics logged
    /// together) are decoded once.
    /// - Returns: One entry per requested key that has points in the range.
    public func read(run id: String, keys: [String], steps: ClosedRange<Int64>? = nil) throws -> [String: SeriesData] {
        guard let run = try run(id, create: false) else { return [:] }
        let lo = steps?.lowerBound ?? .min, hi = steps?.upperBound ?? .max
        let planes = PlaneCodec()
        var shared = SharedColumns()
        var out: [String: SeriesData] = [:]
        for key in keys {
            let units = try run.snapshot(key: key)
            let data = try Self.readUnits(units, lo: lo, hi: hi, planes: planes, shared: &shared)
            if data.count > 0 { out[key] = data }
        }
        return out
    }

    /// Decoded step/timestamp chunks of the current read, by segment and offset, so shared chunks decode once.
    struct SharedColumns {
        var columns: [ColumnKey: [Int64]] = [:]
        struct ColumnKey: Hashable {
            var segment: Int
            var offset: Int64
        }

        mutating func ints(_ seg: SegmentReader, _ ref: ChunkRef, count: Int, planes: PlaneCodec, what: String) throws -> [Int64] {
            let k = ColumnKey(segment: seg.uid, offset: ref.offset)
            if let c = columns[k] { return c }
            let c = try seg.readInts(ref, count: count, planes: planes, what: what)
            columns[k] = c
            return c
        }
    }

    static func readUnits(_ units: [SeriesUnit], lo: Int64, hi: Int64, planes: PlaneCodec, shared: inout SharedColumns) throws -> SeriesData {
        // Pass 1: which part of each unit is in range, and the total.
        struct Part {
            var unit: Int
            var range: Range<Int>?  // nil: the whole block, decoded straight into the output
        }
        var parts: [Part] = []
        var total = 0
        var memoryColumns: [Int: (steps: [Int64], timestamps: [Int64], values: [UInt64])] = [:]
        for (u, unit) in units.enumerated() {
            switch unit {
            case .block(let seg, let si, let bi, _):
                let meta = seg.block(si, bi)
                guard meta.maxStep >= lo && meta.minStep <= hi else { continue }
                if meta.minStep >= lo && meta.maxStep <= hi {
                    parts.append(Part(unit: u, range: nil))
                    total += meta.count
                } else {
                    let st = try shared.ints(seg, meta.steps, count: meta.count, planes: planes, what: "step column")
                    let r = Self.lowerBound(st, lo)..<Self.upperBound(st, hi)
                    guard !r.isEmpty else { continue }
                    let ts = try shared.ints(seg, meta.timestamps, count: meta.count, planes: planes, what: "timestamp column")
                    memoryColumns[u] = (st, ts, try seg.readValues(meta.values, count: meta.count, planes: planes))
                    parts.append(Part(unit: u, range: r))
                    total += r.count
                }
            case .memory(let c, _, _):
                let r = Self.lowerBound(c.steps, lo)..<Self.upperBound(c.steps, hi)
                guard !r.isEmpty else { continue }
                memoryColumns[u] = (c.steps, c.timestamps, c.values)
                parts.append(Part(unit: u, range: r))
                total += r.count
            }
        }
        guard total > 0 else { return SeriesData() }
        // Pass 2: fill the output columns in place.
        // Every element is written below (parts cover 0..<total exactly), so skip zero-filling.
        var steps = [Int64](unsafeUninitializedCapacity: total) { _, n in n = total }
        var timestamps = [Int64](unsafeUninitializedCapacity: total) { _, n in n = total }
        var values = [Double](unsafeUninitializedCapacity: total) { _, n in n = total }
        var inOrder = true
        var at = 0
        var lastStep = Int64.min
        for part in parts {
            let n: Int
            if let r = part.range {
                let c = memoryColumns[part.unit]!
                n = r.count
                steps.withUnsafeMutableBufferPointer { p in _ = UnsafeMutableBufferPointer(rebasing: p[at..<(at + n)]).update(from: c.steps[r]) }
                timestamps.withUnsafeMutableBufferPointer { p in _ = UnsafeMutableBufferPointer(rebasing: p[at..<(at + n)]).update(from: c.timestamps[r]) }
                values.withUnsafeMutableBufferPointer { p in
                    p.withMemoryRebound(to: UInt64.self) { q in _ = UnsafeMutableBufferPointer(rebasing: q[at..<(at + n)]).update(from: c.values[r]) }
                }
            } else {
                guard case .block(let seg, let si, let bi, _) = units[part.unit] else { continue }
                let meta = seg.block(si, bi)
                n = meta.count
                let st = try shared.ints(seg, meta.steps, count: n, planes: planes, what: "step column")
                let ts = try shared.ints(seg, meta.timestamps, count: n, planes: planes, what: "timestamp column")
                steps.withUnsafeMutableBufferPointer { p in _ = UnsafeMutableBufferPointer(rebasing: p[at..<(at + n)]).update(from: st) }
                timestamps.withUnsafeMutableBufferPointer { p in _ = UnsafeMutableBufferPointer(rebasing: p[at..<(at + n)]).update(from: ts) }
                try values.withUnsafeMutableBufferPointer { p in
                    try p.withMemoryRebound(to: UInt64.self) { q in
                        try seg.decodeValues(meta.values, count: n, planes: planes, into: UnsafeMutableBufferPointer(rebasing: q[at..<(at + n)]))
                    }
                }
            }
            if steps[at] < lastStep { inOrder = false }
            lastStep = steps[at + n - 1]
            at += n
        }
        if !inOrder {
            // Units overlap in steps (out-of-order logging): stable sort by step, arrival order kept on ties.
            let order = SeriesHead.stableOrder(steps)
            return SeriesData(steps: order.map { steps[$0] }, timestamps: order.map { timestamps[$0] }, values: order.map { values[$0] })
        }
        return SeriesData(steps: steps, timestamps: timestamps, values: values)
    }

    /// First index `i` with `xs[i] > x` in a sorted array.
    static func upperBound(_ xs: [Int64], _ x: Int64) -> Int {
        x == .max ? xs.count : lowerBound(xs, x &+ 1)
    }

    /// First index `i` with `xs[i] >= x` in a sorted array.
    static func lowerBound(_ xs: [Int64], _ x: Int64) -> Int {
        xs.withUnsafeBufferPointer { lowerBound($0, x) }
    }

    /// The latest point of a series by MLflow's rule (largest step, then timestamp, then value), from the index
    /// and heads without decoding any block.
    public func latest(run id: String, key: String) throws -> MetricPoint? {
        guard let run = try run(id, create: false) else { return nil }
        var best: MetricPoint?
        for unit in try run.snapshot(key: key) {
            let p: MetricPoint?
            switch unit {
            case .block(let seg, let si, let bi, _): p = seg.block(si, bi).latest
            case .memory(_, let latest, _): p = latest
            }
            if let p, best == nil || LatestRule.isLater(p, than: best!) { best = p }
        }
        return best
    }

    /// The largest bucket count ``downsample(run:key:steps:buckets:)`` accepts.
    public static let maxBuckets = 1 << 20

    /// Aggregates of a series over a step range (all steps when `nil`).
    public func summary(run id: String, key: String, steps: ClosedRange<Int64>? = nil) throws -> SeriesSummary {
        let r = steps ?? (Int64.min...Int64.max)
        return try downsample(run: id, key: key, steps: r, buckets: 1).first?.summary ?? SeriesSummary()
    }

    /// Exact M4 and mean downsampling: splits `steps` into `buckets` equal step spans and returns, for each, the
    /// count, first, last, min and max points, NaN/±∞ counts and the sum of finite values.
    ///
    /// Whole blocks inside one bucket are answered from the segment index, block interiors from the coarsest rollup
    /// level whose buckets fit, and only the partial rollup buckets at bucket edges from decoded points. The result is
    /// identical to scanning every point (sums may differ in the last bits, as floating-point addition is not
    /// associative).
    /// - Parameters:
    ///   - buckets: Number of buckets (at least 1; reduced to the number of steps in the range when larger).
    /// - Returns: One ``DownsampleBucket`` per bucket, empty ones included, in step order.
    public func downsample(run id: String, key: String, steps: ClosedRange<Int64>, buckets: Int) throws -> [DownsampleBucket] {
        guard buckets >= 1, buckets <= Self.maxBuckets else {
            throw StorageError(.invalidArgument, "buckets must be between 1 and \(Self.maxBuckets)")
        }
        let grid = BucketGrid(lo: steps.lowerBound, hi: steps.upperBound, count: buckets)
        var aggs = [Aggregate](repeating: Aggregate(), count: grid.count)
        if let run = try run(id, create: false) {
            let planes = PlaneCodec()
            for unit in try run.snapshot(key: key) {
                switch unit {
                case .block(let seg, let si, let bi, let order):
                    try aggregateBlock(seg, si, bi, order: order, grid: grid, planes: planes, into: &aggs)
                case .memory(let c, _, let order):
                    Self.aggregateSorted(c.steps, c.values, order: order, grid: grid, into: &aggs)
                }
            }
        }
        return aggs.indices.map { p in
            let (a, b) = grid.range(of: p)
            return DownsampleBucket(startStep: a, endStep: b, summary: aggs[p].summary)
        }
    }

    /// Adds points of sorted columns that fall in the grid to their buckets.
    static func aggregateSorted(_ st: [Int64], _ vs: [UInt64], order: Int64, grid: BucketGrid, into aggs: inout [Aggregate]) {
        var i = lowerBound(st, grid.lo)
        guard i < st.count, st[i] <= grid.hi else { return }
        var p = grid.bucket(of: st[i])
        var end = grid.range(of: p).1
        // Points of this unit go into a local aggregate per bucket, merged with the order rules afterwards.
        var local = Aggregate()
        while i < st.count {
            let s = st[i]
            if s > grid.hi { break }
            if s > end {
                aggs[p].merge(local)
                local = Aggregate()
                p = grid.bucket(of: s)
                end = grid.range(of: p).1
            }
            local.add(step: s, bits: vs[i], order: order)
            i += 1
        }
        aggs[p].merge(local)
    }

    private func aggregateBlock(_ seg: SegmentReader, _ si: Int, _ bi: Int, order: Int64, grid: BucketGrid, planes: PlaneCodec,
                                into aggs: inout [Aggregate]) throws {
        let meta = seg.block(si, bi)
        guard meta.maxStep >= grid.lo && meta.minStep <= grid.hi else { return }
        let l = max(grid.lo, meta.minStep), h = min(grid.hi, meta.maxStep)
        let p0 = grid.bucket(of: l), p1 = grid.bucket(of: h)
        let whole = l == meta.minStep && h == meta.maxStep
        if whole && p0 == p1 {
            var a = meta.summary
            a.setOrder(order)
            aggs[p0].merge(a)
            return
        }
        let key = BlockKey(segment: seg.uid, series: si, block: bi)
        let pyramid: RollupPyramid
        if let c = rollupCache.get(key) {
            pyramid = c.pyramid
        } else {
            let p = CachedPyramid(try seg.readRollup(meta, planes: planes))
            rollupCache.put(key, p, bytes: p.bytes)
            pyramid = p.pyramid
        }
        var decoded: DecodedBlock?
        var failure: (any Error)?
        let top = pyramid.levels.count - 1
        for p in p0...p1 {
            let (a, b) = grid.range(of: p)
            let lo = max(a, l), hi = min(b, h)
            if lo == meta.minStep && hi == meta.maxStep {
                var s = meta.summary
                s.setOrder(order)
                aggs[p].merge(s)
                continue
            }
            // A rollup bucket cut by the block's first or last step is still exact for [lo, hi]: `cover` looks at
            // the steps its points actually span (blocks sealed mid-bucket would otherwise decode raw at every
            // block boundary).
            pyramid.cover(lo, hi, level: top, order: order, into: &aggs[p]) { rlo, rhi, agg in
                guard failure == nil else { return }
                do {
                    if decoded == nil { decoded = try self.decodedBlock(seg, si, bi, meta: meta, planes: planes) }
                    let d = decoded!
                    var i = Self.lowerBound(d.steps, rlo)
                    var local = Aggregate()
                    while i < d.steps.count && d.steps[i] <= rhi {
                        local.add(step: d.steps[i], bits: d.values[i], order: order)
                        i += 1
                    }
                    agg.merge(local)
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
        }
    }

    /// Steps and values of a block, from the cache or decoded (and cached).
    func decodedBlock(_ seg: SegmentReader, _ si: Int, _ bi: Int, meta: BlockMeta, planes: PlaneCodec) throws -> DecodedBlock {
        let key = BlockKey(segment: seg.uid, series: si, block: bi)
        if let d = blockCache.get(key) { return d }
        let d = DecodedBlock(steps: try seg.readInts(meta.steps, count: meta.count, planes: planes, what: "step column"),
                             values: try seg.readValues(meta.values, count: meta.count, planes: planes))
        blockCache.put(key, d, bytes: d.bytes)
        return d
    }
}

extension SeriesData {
    init(steps: [Int64], timestamps: [Int64], values: [Double]) {
        self.init()
        self.steps = steps
        self.timestamps = timestamps
        self.values = values
    }
}
