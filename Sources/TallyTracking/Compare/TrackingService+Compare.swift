#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization
import TallyStore

extension TrackingService {
    /// Compares metrics across runs on one step grid: every series is reduced over the same window and buckets, so
    /// bucket `i` means the same steps in every curve. M4 and mean come from the rollup pyramid (cost follows the
    /// bucket count, not the points); LTTB and raw read points. Series are reduced in parallel.
    /// Every run (those named and those the models resolve to) must be readable by `scope` (403 otherwise).
    public func compare(_ q: CompareQuery, scope: Grants = .unrestricted) throws -> CompareResult {
        var q = q
        q.runIDs += try q.models.map(sourceRun(ofModel:))
        q.models = []
        try Self.validate(q)
        var seen = Set<String>()
        let runIDs = q.runIDs.filter { seen.insert($0).inserted }
        for id in runIDs { try requireRead(run: id, scope) }
        let runs = try runIDs.map { id -> Run in
            try Validation.runID(id)
            guard let r = try metadata.run(id: id) else { throw TrackingError.notFound("Run with id=\(id) not found") }
            return r
        }
        for id in runIDs { try readable(id) }
        let pairs = runIDs.flatMap { id in q.keys.map { (id, $0) } }
        // 1. The window: the requested one, else the union of the series' step spans.
        let window: ClosedRange<Int64>
        if let w = q.steps {
            window = w
        } else {
            let spans = try Parallel.map(pairs) { id, key -> ClosedRange<Int64>? in
                let s = try self.metrics.summary(run: id, key: key)
                guard let a = s.first?.step, let b = s.last?.step else { return nil }
                return a...b
            }.compactMap { $0 }
            guard let lo = spans.map(\.lowerBound).min(), let hi = spans.map(\.upperBound).max() else {
                return CompareResult(runs: runs.map(\.info), steps: nil, buckets: q.buckets, mode: q.mode, series: [],
                                     params: Self.differences(runs.map { $0.params }), tags: Self.differences(runs.map { Self.userTags($0.tags) }))
            }
            window = lo...hi
        }
        // 2. The grid. Over a window taken from the data, M4 and mean buckets snap to the rollup pyramid: a
        //    power-of-two width aligned at multiples of itself (the pyramid's own bucket edges), so no bucket edge
        //    falls inside a rollup bucket and no raw point has to be decoded. The count stays within ~√2 of the request.
        var grid = (window: window, buckets: q.buckets)
        if q.steps == nil, q.align, q.mode == .m4 || q.mode == .mean, let aligned = Self.alignedGrid(window, buckets: q.buckets) {
            grid = aligned
        }
        var snapped = q
        snapped.buckets = grid.buckets
        let query = snapped, gridWindow = grid.window
        // 3. Each series over the window.
        let series = try Parallel.map(pairs) { id, key in try self.reduce(run: id, key: key, window: gridWindow, query) }.compactMap { $0 }
        return CompareResult(runs: runs.map(\.info), steps: grid.window, buckets: grid.buckets, mode: q.mode, series: series,
                             params: Self.differences(runs.map { $0.params }), tags: Self.differences(runs.map { Self.userTags($0.tags) }))
    }

    /// A grid of power-of-two-wide buckets aligned at multiples of their width covering `window`, with about
    /// `buckets` buckets (the width is 2^round(log2(ideal width))); `nil` when it would not fit in Int64.
    static func alignedGrid(_ window: ClosedRange<Int64>, buckets: Int) -> (window: ClosedRange<Int64>, buckets: Int)? {
        let span = Double(window.upperBound) - Double(window.lowerBound) + 1
        let ideal = max(1, span / Double(buckets))
        let shift = min(60, max(0, Int(log2(ideal).rounded())))
        let width = Int64(1) << shift
        let lo = (window.lowerBound >> shift) << shift  // floor to a multiple of width (arithmetic shift floors)
        // Bucket indices fit easily (shifted values); the end is checked for overflow at every step.
        let (span64, o1) = (window.upperBound >> shift).subtractingReportingOverflow(lo >> shift)
        guard !o1, span64 >= 0, span64 < Int64(MetricStore.maxBuckets) else { return nil }
        let count = Int(span64) + 1
        let (size, o2) = Int64(count).multipliedReportingOverflow(by: width)
        guard !o2 else { return nil }
        let (end, o3) = lo.addingReportingOverflow(size &- 1)
        guard !o3 else { return nil }
        return (lo...end, count)
    }

    static func validate(_ q: CompareQuery) throws {
        guard !q.runIDs.isEmpty, q.runIDs.count <= CompareQuery.maxRuns else {
            throw TrackingError.invalid("run_ids must list 1 to \(CompareQuery.maxRuns) runs (got \(q.runIDs.count))")
        }
        guard !q.keys.isEmpty, q.keys.count <= CompareQuery.maxKeys else {
            throw TrackingError.invalid("metric_keys must list 1 to \(CompareQuery.maxKeys) keys (got \(q.keys.count))")
        }
        guard q.runIDs.count * q.keys.count <= CompareQuery.maxSeries else {
            throw TrackingError.invalid("at most \(CompareQuery.maxSeries) series (runs × keys) per query, got \(q.runIDs.count * q.keys.count)")
        }
        guard (1...CompareQuery.maxBuckets).contains(q.buckets) else {
            throw TrackingError.invalid("buckets must be between 1 and \(CompareQuery.maxBuckets) (got \(q.buckets))")
        }
        if case .raw(let cap) = q.mode, !(1...CompareQuery.maxRawCap).contains(cap) {
            throw TrackingError.invalid("max_points must be between 1 and \(CompareQuery.maxRawCap) (got \(cap))")
        }
        for k in q.keys { try Validation.key(k, entity: "Metric") }
    }

    /// One series reduced over `window`, or `nil` when it has no points there.
    func reduce(run id: String, key: String, window: ClosedRange<Int64>, _ q: CompareQuery) throws -> CompareSeries? {
        switch q.mode {
        case .m4, .mean:
            let buckets = try metrics.downsample(run: id, key: key, steps: window, buckets: q.buckets)
            var summary = SeriesSummary()
            var steps: [Int64] = [], values: [Double] = []
            for b in buckets where b.summary.count > 0 {
                summary.append(b.summary)
                if q.mode == .mean {
                    guard let mean = b.summary.mean else { continue }
                    // The middle step without overflow (a bucket may span more than Int64.max steps).
                    steps.append(b.startStep &+ Int64(bitPattern: UInt64(bitPattern: b.endStep &- b.startStep) / 2))
                    values.append(mean)
                } else {
                    Self.appendM4(b.summary, &steps, &values)
                }
            }
            guard summary.count > 0 else { return nil }
            return CompareSeries(runID: id, key: key, summary: summary, steps: steps, values: values, truncated: false)
        case .lttb, .raw:
            let data = try metrics.read(run: id, key: key, steps: window)
            guard !data.steps.isEmpty else { return nil }
            let summary = try metrics.summary(run: id, key: key, steps: window)
            var keep: [Int]
            var truncated = false
            if case .raw(let cap) = q.mode {
                truncated = data.steps.count > cap
                keep = Array(0..<min(cap, data.steps.count))
            } else {
                keep = data.steps.withUnsafeBufferPointer { s in
                    data.values.withUnsafeBufferPointer { v in LTTB.select(steps: s, values: v, target: q.buckets) }
                }
            }
            return CompareSeries(runID: id, key: key, summary: summary, steps: keep.map { data.steps[$0] },
                                 values: keep.map { data.values[$0] }, truncated: truncated)
        }
    }

    /// First, min, max and last of a bucket in step order, each point once.
    static func appendM4(_ s: SeriesSummary, _ steps: inout [Int64], _ values: inout [Double]) {
        var picks: [StepValue] = []
        for p in [s.first, s.min, s.max, s.last].compactMap({ $0 }) where !picks.contains(p) { picks.append(p) }
        // Stable by step: first stays before min/max at the same step, last after them.
        for p in picks.enumerated().sorted(by: { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }).map(\.element) {
            steps.append(p.step)
            values.append(p.value)
        }
    }

    /// Keys whose values are not the same in every run (absent counts as a value), sorted by key.
    static func differences(_ perRun: [[KeyValue]]) -> [CompareDifference] {
        let maps = perRun.map { Dictionary($0.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }) }
        let keys = Set(maps.flatMap(\.keys)).sorted()
        return keys.compactMap { k in
            let values = maps.map { $0[k] }
            return Set(values).count > 1 ? CompareDifference(key: k, values: values) : nil
        }
    }

    /// Tags users set, plus the run name.
    static func userTags(_ tags: [KeyValue]) -> [KeyValue] {
        tags.filter { !$0.key.hasPrefix("mlflow.") || $0.key == "mlflow.runName" }
    }
}
