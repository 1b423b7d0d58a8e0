import TallyStore
import TallyWorkloads

extension EngineBench {
    /// Bytes per point, seal and decode speed of a recorded training run (`scripts/gen-training-curves.py`), written
    /// as a training loop's log-batch calls send it: every metric of 1,000 consecutive steps per append.
    func measureRecorded(_ recorded: RecordedRun, config: StoreConfiguration, root: String) throws -> JSONObject {
        var out = try measureRecorded(recorded, config: config, directory: root + "/recorded")
        // As a server stores it: heads sealed as they fill (cut at a common step), segments merged by size tiers.
        var served = StoreConfiguration()
        served.compression = config.compression
        served.compactionCompression = config.compactionCompression
        served.blockPoints = config.blockPoints
        served.wal = nil
        served.durableSegments = false
        let asServed = try measureRecorded(recorded, config: served, directory: root + "/recorded-served")
        out.add("as_a_server_seals", object: asServed)
        return out
    }

    private func measureRecorded(_ recorded: RecordedRun, config: StoreConfiguration, directory: String) throws -> JSONObject {
        let store = try MetricStore(directory: directory, configuration: config)
        let window: Int64 = 1_000
        var cursors = [Int](repeating: 0, count: recorded.series.count)
        let lastStep = recorded.series.compactMap { $0.steps.last }.max() ?? 0
        let firstStep = recorded.series.compactMap { $0.steps.first }.min() ?? 0
        var batches: [[SeriesBatch]] = []
        var lo = firstStep
        while lo <= lastStep {
            let hi = lo + window
            var batch: [SeriesBatch] = []
            for (i, s) in recorded.series.enumerated() {
                var j = cursors[i]
                while j < s.steps.count && s.steps[j] < hi { j += 1 }
                if j > cursors[i] {
                    let r = cursors[i]..<j
                    batch.append(SeriesBatch(key: s.key, steps: Array(s.steps[r]), timestamps: Array(s.timestamps[r]), values: Array(s.values[r])))
                }
                cursors[i] = j
            }
            if !batch.isEmpty { batches.append(batch) }
            lo = hi
        }
        for b in batches { try store.append(run: "recorded", series: b) }
        let seal = try seconds { try store.flush(run: "recorded") }
        let total = recorded.points
        let stats = try store.stats(run: "recorded")
        let (bySeries, valuesOnly) = try Self.bytesPerPoint(store, run: "recorded", keys: recorded.series.map(\.key))
        var scans: [Double] = []
        for _ in 0..<3 {
            scans.append(try seconds {
                for s in recorded.series { try store.scan(run: "recorded", key: s.key) { _ in } }
            })
        }
        let back = try store.read(run: "recorded", keys: recorded.series.map(\.key))
        let exact = recorded.series.allSatisfy { s in
            let d = back[s.key]!
            return d.steps == s.steps && d.timestamps == s.timestamps && d.values.map(\.bitPattern) == s.values.map(\.bitPattern)
        }
        try store.close()
        var out = JSONObject()
        out.add("points", total)
        out.add("bytes_per_point", Double(stats.segmentBytes) / Double(total))
        out.add("segments", stats.segments)
        out.add("bytes_per_point_by_series", object: bySeries)
        out.add("value_bytes_per_point", object: valuesOnly)
        out.add("seal_points_per_s", Double(total) / seal, digits: 0)
        out.add("decode_points_per_s", Double(total) / median(scans), digits: 0)
        out.add("bit_exact", exact)
        return out
    }
}
