import Synchronization

extension MetricStore {
    /// Points of a series, in step order with ties in arrival order.
    /// - Parameters:
    ///   - id: The run.
    ///   - key: The metric key.
    ///   - steps: Only points whose step lies in this range (all when `nil`).
    /// - Returns: Empty columns for an unknown run or key.
    public func read(run id: String, key: String, steps: ClosedRange<Int64>? = nil) throws -> SeriesData {
        guard let run = try run(id, create: false) else { return SeriesData() }
        let units = try run.snapshot(key: key)
        let lo = steps?.lowerBound ?? .min, hi = steps?.upperBound ?? .max
        let planes = PlaneCodec()
        var out = SeriesData()
        var inOrder = true
        var lastStep = Int64.min
        var unitStart: [Int] = []  // first output index of each unit, for the stable merge
        for unit in units {
            switch unit {
            case .block(let seg, let si, let bi, _):
                let meta = seg.footer.series[si].blocks[bi]
                guard meta.maxStep >= lo && meta.minStep <= hi else { continue }
                let st = try seg.readInts(meta.steps, count: meta.count, planes: planes, what: "step column")
                let ts = try seg.readInts(meta.timestamps, count: meta.count, planes: planes, what: "timestamp column")
                let vs = try seg.readValues(meta.values, count: meta.count, planes: planes)
                unitStart.append(out.count)
                Self.appendRange(&out, st, ts, vs, lo: lo, hi: hi, inOrder: &inOrder, lastStep: &lastStep)
            case .memory(let c, _, _):
                unitStart.append(out.count)
                Self.appendRange(&out, c.steps, c.timestamps, c.values, lo: lo, hi: hi, inOrder: &inOrder, lastStep: &lastStep)
            }
        }
        if !inOrder {
            // Units overlap in steps (out-of-order logging): stable sort by step, arrival order kept on ties.
            let order = SeriesHead.stableOrder(out.steps)
            out = SeriesData(steps: order.map { out.steps[$0] }, timestamps: order.map { out.timestamps[$0] },
                             values: order.map { out.values[$0] })
        }
        return out
    }

    private static func appendRange(_ out: inout SeriesData, _ st: [Int64], _ ts: [Int64], _ vs: [UInt64], lo: Int64, hi: Int64,
                                    inOrder: inout Bool, lastStep: inout Int64) {
        let a = lowerBound(st, lo)
        var b = lowerBound(st, hi)
        while b < st.count && st[b] <= hi { b += 1 }
        guard a < b else { return }
        if st[a] < lastStep { inOrder = false }
        lastStep = st[b - 1]
        out.steps.append(contentsOf: st[a..<b])
        out.timestamps.append(contentsOf: ts[a..<b])
        vs[a..<b].withUnsafeBufferPointer { p in p.withMemoryRebound(to: Double.self) { out.values.append(contentsOf: $0) } }
    }

    /// First index `i` with `xs[i] >= x` in a sorted array.
    static func lowerBound(_ xs: [Int64], _ x: Int64) -> Int {
        xs.withUnsafeBufferPointer { p in
            var l = 0, h = p.count
            while l < h {
                let m = (l &+ h) >> 1
                if p[m] < x { l = m &+ 1 } else { h = m }
            }
            return l
        }
    }

    /// The latest point of a series by MLflow's rule (largest step, then timestamp, then value), from the index
    /// and heads without decoding any block.
    public func latest(run id: String, key: String) throws -> MetricPoint? {
        guard let run = try run(id, create: false) else { return nil }
        var best: MetricPoint?
        for unit in try run.snapshot(key: key) {
            let p: MetricPoint?
            switch unit {
            case .block(let seg, let si, let bi, _): p = seg.footer.series[si].blocks[bi].latest
            case .memory(_, let latest, _): p = latest
            }
            if let p, best == nil || LatestRule.isLater(p, than: best!) { best = p }
        }
        return best
    }

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
        guard buckets >= 1 else { throw StorageError(.invalidArgument, "buckets must be at least 1") }
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
        while i < st.count {
            let s = st[i]
            if s > grid.hi { break }
            if s > end {
                p = grid.bucket(of: s)
                end = grid.range(of: p).1
            }
            aggs[p].add(step: s, bits: vs[i], order: order)
            i += 1
        }
    }

    private func aggregateBlock(_ seg: SegmentReader, _ si: Int, _ bi: Int, order: Int64, grid: BucketGrid, planes: PlaneCodec,
                                into aggs: inout [Aggregate]) throws {
        let meta = seg.footer.series[si].blocks[bi]
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
            pyramid.cover(lo, hi, level: top, order: order, into: &aggs[p]) { rlo, rhi, agg in
                guard failure == nil else { return }
                do {
                    if decoded == nil { decoded = try self.decodedBlock(seg, si, bi, meta: meta, planes: planes) }
                    let d = decoded!
                    var i = Self.lowerBound(d.steps, rlo)
                    while i < d.steps.count && d.steps[i] <= rhi {
                        agg.add(step: d.steps[i], bits: d.values[i], order: order)
                        i += 1
                    }
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
