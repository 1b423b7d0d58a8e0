extension MetricStore {
    /// One page of a series in MLflow's history order (timestamp, then step, then value), found without reading
    /// what comes before it — when the stored order already is that order: every sealed block flagged
    /// `timeOrdered`, units following each other in both step and time, and in-memory points checked directly.
    /// - Returns: the page and the series' total count, or `nil` when the order cannot be proven (the caller then
    ///   sorts the whole series).
    public func timeOrderedPage(run id: String, key: String, offset: Int, limit: Int) throws -> (points: [MetricPoint], total: Int)? {
        guard let run = try run(id, create: false) else { return ([], 0) }
        let units = try run.snapshot(key: key)
        // Check the order and count the points, from the index and the in-memory columns only.
        var counts: [Int] = []
        var last: (Int64, Int64)?
        for unit in units {
            switch unit {
            case .block(let seg, let si, let bi, _):
                let m = seg.block(si, bi)
                guard m.flags & BlockMeta.timeOrdered != 0 else { return nil }
                if let l = last, !(l < (m.minTimestamp, m.minStep)) { return nil }
                // In a time-ordered block the last point has both the largest step and the largest timestamp.
                last = (m.maxTimestamp, m.maxStep)
                counts.append(m.count)
            case .memory(let c, _, _):
                for i in 0..<c.count {
                    let p = (c.timestamps[i], c.steps[i])
                    if let l = last, !(l < p) { return nil }
                    last = p
                }
                counts.append(c.count)
            }
        }
        let total = counts.reduce(0, +)
        guard offset < total, limit > 0 else { return ([], total) }
        var out: [MetricPoint] = []
        out.reserveCapacity(min(limit, total - offset))
        var start = 0
        let planes = PlaneCodec()
        for (unit, n) in zip(units, counts) {
            defer { start += n }
            guard start + n > offset, out.count < limit else { continue }
            let from = max(0, offset - start)
            let take = min(n - from, limit - out.count)
            switch unit {
            case .block(let seg, let si, let bi, _):
                let m = seg.block(si, bi)
                let st = try seg.readInts(m.steps, count: m.count, planes: planes, what: "step column")
                let ts = try seg.readInts(m.timestamps, count: m.count, planes: planes, what: "timestamp column")
                let vs = try seg.readValues(m.values, count: m.count, planes: planes)
                for i in from..<(from + take) { out.append(MetricPoint(step: st[i], timestamp: ts[i], value: Double(bitPattern: vs[i]))) }
            case .memory(let c, _, _):
                for i in from..<(from + take) {
                    out.append(MetricPoint(step: c.steps[i], timestamp: c.timestamps[i], value: Double(bitPattern: c.values[i])))
                }
            }
        }
        return (out, total)
    }
}
