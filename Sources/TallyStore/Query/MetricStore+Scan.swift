/// A run of consecutive points handed to a ``MetricStore/scan(run:key:steps:_:)`` callback. The buffers are only
/// valid during the callback.
public struct SeriesChunk {
    /// Steps, ascending.
    public let steps: UnsafeBufferPointer<Int64>
    /// Timestamps, aligned with ``steps``.
    public let timestamps: UnsafeBufferPointer<Int64>
    /// Values, aligned with ``steps``.
    public let values: UnsafeBufferPointer<Double>

    /// Number of points.
    public var count: Int { steps.count }
}

extension MetricStore {
    /// Streams a series in step order (ties in arrival order), one decoded block at a time, through reused buffers:
    /// no allocation proportional to the series. Use it to serialise or aggregate long histories.
    /// - Parameters:
    ///   - steps: Only points whose step lies in this range (all when `nil`).
    ///   - body: Called with consecutive chunks; the chunk's buffers must not escape the call.
    public func scan(run id: String, key: String, steps: ClosedRange<Int64>? = nil, _ body: (SeriesChunk) throws -> Void) throws {
        guard let run = try run(id, create: false) else { return }
        let units = try run.snapshot(key: key)
        let lo = steps?.lowerBound ?? .min, hi = steps?.upperBound ?? .max
        // Units whose step ranges overlap need a merge: fall back to a materialised read.
        var prevMax = Int64.min
        var disjoint = true
        var maxCount = 0
        for unit in units {
            let (a, b, n): (Int64, Int64, Int)
            switch unit {
            case .block(let seg, let si, let bi, _):
                let m = seg.block(si, bi)
                (a, b, n) = (m.minStep, m.maxStep, m.count)
            case .memory(let c, _, _):
                (a, b, n) = (c.steps.first!, c.steps.last!, c.count)
            }
            guard b >= lo && a <= hi else { continue }
            if a < prevMax { disjoint = false }
            prevMax = b
            maxCount = max(maxCount, n)
        }
        guard disjoint else {
            var shared = SharedColumns()
            let d = try Self.readUnits(units, lo: lo, hi: hi, planes: PlaneCodec(), shared: &shared)
            try d.steps.withUnsafeBufferPointer { s in
                try d.timestamps.withUnsafeBufferPointer { t in
                    try d.values.withUnsafeBufferPointer { v in try body(SeriesChunk(steps: s, timestamps: t, values: v)) }
                }
            }
            return
        }
        guard maxCount > 0 else { return }
        let planes = PlaneCodec()
        let st = UnsafeMutableBufferPointer<Int64>.allocate(capacity: maxCount)
        let ts = UnsafeMutableBufferPointer<Int64>.allocate(capacity: maxCount)
        let vs = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: maxCount)
        defer {
            st.deallocate()
            ts.deallocate()
            vs.deallocate()
        }
        for unit in units {
            switch unit {
            case .block(let seg, let si, let bi, _):
                let m = seg.block(si, bi)
                guard m.maxStep >= lo && m.minStep <= hi else { continue }
                let n = m.count
                try seg.decodeInts(m.steps, count: n, planes: planes, what: "step column", into: st)
                try seg.decodeInts(m.timestamps, count: n, planes: planes, what: "timestamp column", into: ts)
                try seg.decodeValues(m.values, count: n, planes: planes, into: vs)
                let all = UnsafeBufferPointer(rebasing: st[0..<n])
                let r = Self.lowerBound(all, lo)..<Self.upperBound(all, hi)
                if !r.isEmpty { try Self.deliver(st, ts, vs, r, body) }
            case .memory(let c, _, _):
                try c.steps.withUnsafeBufferPointer { s in
                    let r = Self.lowerBound(s, lo)..<Self.upperBound(s, hi)
                    guard !r.isEmpty else { return }
                    try c.timestamps.withUnsafeBufferPointer { t in
                        try c.values.withUnsafeBufferPointer { v in
                            try v.withMemoryRebound(to: Double.self) { d in
                                try body(SeriesChunk(steps: UnsafeBufferPointer(rebasing: s[r]), timestamps: UnsafeBufferPointer(rebasing: t[r]),
                                                     values: UnsafeBufferPointer(rebasing: d[r])))
                            }
                        }
                    }
                }
            }
        }
    }

    private static func deliver(_ st: UnsafeMutableBufferPointer<Int64>, _ ts: UnsafeMutableBufferPointer<Int64>,
                                _ vs: UnsafeMutableBufferPointer<UInt64>, _ r: Range<Int>, _ body: (SeriesChunk) throws -> Void) throws {
        try vs.withMemoryRebound(to: Double.self) { d in
            try body(SeriesChunk(steps: UnsafeBufferPointer(rebasing: st[r]), timestamps: UnsafeBufferPointer(rebasing: ts[r]),
                                 values: UnsafeBufferPointer(rebasing: d[r])))
        }
    }

    /// First index `i` with `xs[i] >= x`.
    static func lowerBound(_ p: UnsafeBufferPointer<Int64>, _ x: Int64) -> Int {
        var l = 0, h = p.count
        while l < h {
            let m = (l &+ h) >> 1
            if p[m] < x { l = m &+ 1 } else { h = m }
        }
        return l
    }

    /// First index `i` with `xs[i] > x`.
    static func upperBound(_ p: UnsafeBufferPointer<Int64>, _ x: Int64) -> Int {
        x == .max ? p.count : lowerBound(p, x &+ 1)
    }
}
