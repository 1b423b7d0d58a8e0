import TallyStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension TrackingService {
    /// A scoreboard: for every selected key × run the latest (or best, or at-a-step) value, ranks per key, deltas to a
    /// baseline run and per-group means. Latest values come from the runs' latest-metric records; `best` and `step`
    /// read the series.
    public func scoreboard(_ q: ScoreboardQuery) throws -> Scoreboard {
        let runs = try scoreboardRuns(q)
        let select = try Self.keySelector(q)
        let lower = (q.lowerIsBetter ?? ScoreboardQuery.defaultLowerIsBetter).map { Array($0.lowercased().utf8) }.filter { !$0.isEmpty }
        if let d = q.groupDepth, d < 1 { throw TrackingError.invalid("group_depth must be at least 1 (got \(d))") }
        var baselineIndex: Int?
        if let b = q.baselineRunID {
            guard let i = runs.firstIndex(where: { $0.info.runID == b }) else {
                throw TrackingError.invalid("baseline_run_id '\(b)' is not one of the runs on the scoreboard")
            }
            baselineIndex = i
        }
        // Every run's latest values, sorted by key; the union of their keys, filtered; then one merge walk per run puts
        // each run's value in its key's row: no hashing of 100 × 2,000 keys, one bytewise comparison per cell.
        let sortedMetrics: [[Metric]] = runs.map { r in
            r.metrics.isSortedByKey ? r.metrics : r.metrics.sorted { binaryLess($0.key, $1.key) }
        }
        // Benchmark-suite runs mostly share their keys: start from the first run's and merge only runs that add some.
        var union = sortedMetrics.first?.map(\.key) ?? []
        for ms in sortedMetrics.dropFirst() where !KeyOrder.covers(union, ms) { union = KeyOrder.merge(union, ms) }
        let keys = union.filter(select)
        // One flat key-major matrix (row k, column i at k × runs + i): no inner arrays to retain per cell.
        var cells = [MetricPoint?](repeating: nil, count: keys.count * runs.count)
        keys.withUnsafeBufferPointer { kb in
            for (i, ms) in sortedMetrics.enumerated() {
                ms.withUnsafeBufferPointer { b in
                    var k = 0
                    for j in b.indices {
                        while k < kb.count, KeyOrder.compare(kb[k], b[j].key) < 0 { k += 1 }
                        if k < kb.count, KeyOrder.compare(kb[k], b[j].key) == 0 {
                            cells[k &* runs.count &+ i] = MetricPoint(step: b[j].step, timestamp: b[j].timestamp, value: b[j].value)
                        }
                    }
                }
            }
        }
        let runIDs = runs.map(\.info.runID)  // not the runs themselves in the inner loop: copying a Run retains all it holds
        var rows: [ScoreboardRow] = []
        rows.reserveCapacity(keys.count)
        for (k, key) in keys.enumerated() {
            let lowerIsBetter = Self.containsAny(key, lower)
            var values: [Double?] = [], steps: [Int64?] = []
            values.reserveCapacity(runs.count)
            steps.reserveCapacity(runs.count)
            for i in runIDs.indices {
                guard let l = cells[k &* runIDs.count &+ i] else {
                    values.append(nil)
                    steps.append(nil)
                    continue
                }
                let p = try scoreboardPoint(q.value, run: runIDs[i], key: key, latest: l, lowerIsBetter: lowerIsBetter)
                values.append(p?.value)
                steps.append(p?.step)
            }
            let deltas: [Double?] = values.map { v in
                guard let b = baselineIndex, let v, let base = values[b] else { return nil }
                return v - base
            }
            rows.append(ScoreboardRow(key: key, group: Self.group(of: key, depth: q.groupDepth), lowerIsBetter: lowerIsBetter, values: values,
                                      steps: steps, ranks: Self.ranks(values, lowerIsBetter: lowerIsBetter), baselineDeltas: deltas))
        }
        return Scoreboard(runs: runs.map(\.info), rows: rows, groups: Self.groups(rows, runs: runs.count), baselineIndex: baselineIndex)
    }

    /// The runs of a query, in column order: as listed (each once), or the experiment's matching active runs.
    func scoreboardRuns(_ q: ScoreboardQuery) throws -> [Run] {
        if let e = q.experimentID {
            guard q.runIDs.isEmpty else { throw TrackingError.invalid("Give run_ids or experiment_id, not both") }
            let page = try searchRuns(experimentIDs: [e], filter: q.filter, maxResults: Int64(ScoreboardQuery.maxRuns))
            guard !page.items.isEmpty else { throw TrackingError.invalid("No run of experiment \(e) matches the filter") }
            return page.items
        }
        guard q.filter == nil else { throw TrackingError.invalid("filter needs experiment_id") }
        guard !q.runIDs.isEmpty, q.runIDs.count <= ScoreboardQuery.maxRuns else {
            throw TrackingError.invalid("run_ids must list 1 to \(ScoreboardQuery.maxRuns) runs (got \(q.runIDs.count))")
        }
        var seen = Set<String>()
        return try q.runIDs.filter { seen.insert($0).inserted }.map { try run(id: $0) }
    }

    /// The key filter: prefixes, a regular expression, or everything.
    static func keySelector(_ q: ScoreboardQuery) throws -> (String) -> Bool {
        if let pattern = q.keyRegex {
            guard q.keyPrefixes.isEmpty else { throw TrackingError.invalid("Give key_prefixes or key_regex, not both") }
            guard pattern.count <= ScoreboardQuery.maxRegexLength else {
                throw TrackingError.invalid("key_regex is longer than \(ScoreboardQuery.maxRegexLength) characters")
            }
            let regex: Regex<AnyRegexOutput>
            do { regex = try Regex(pattern) } catch { throw TrackingError.invalid("Invalid key_regex '\(pattern)': \(error)") }
            return { key in (try? regex.firstMatch(in: key)) != nil }
        }
        let prefixes = q.keyPrefixes
        return prefixes.isEmpty ? { _ in true } : { key in prefixes.contains { key.hasPrefix($0) } }
    }

    /// The point a scoreboard shows for one run's key.
    func scoreboardPoint(_ v: ScoreboardValue, run: String, key: String, latest: MetricPoint, lowerIsBetter: Bool) throws -> MetricPoint? {
        switch v {
        case .latest:
            return latest
        case .step(let s):
            let points = try metrics.read(run: run, key: key, steps: s...s).points
            return points.max { LatestRule.isLater($1, than: $0) }
        case .best:
            var best: MetricPoint?
            try metrics.scan(run: run, key: key) { c in
                for i in 0..<c.count where !c.values[i].isNaN {
                    let value = c.values[i]
                    if let b = best, lowerIsBetter ? value >= b.value : value <= b.value { continue }
                    best = MetricPoint(step: c.steps[i], timestamp: c.timestamps[i], value: value)
                }
            }
            return best
        }
    }

    /// Whether `key`, lowercased, contains one of `patterns` (lowercased UTF-8): a byte search, since a UTF-8 byte
    /// match is a code point match.
    static func containsAny(_ key: String, _ patterns: [[UInt8]]) -> Bool {
        guard !patterns.isEmpty else { return false }
        var lowered = key.lowercased()
        return lowered.withUTF8 { k in
            patterns.contains { p in
                guard p.count <= k.count else { return false }
                return p.withUnsafeBufferPointer { pb in
                    (0...(k.count - p.count)).contains { memcmp(k.baseAddress! + $0, pb.baseAddress!, p.count) == 0 }
                }
            }
        }
    }

    /// A key's group: everything before its last `/` (`""` without one), or its first `depth` parts.
    static func group(of key: String, depth: Int?) -> String {
        let slash = UInt8(ascii: "/")
        guard let depth else {
            guard let last = key.utf8.lastIndex(of: slash) else { return "" }
            return String(key[..<last])
        }
        // The first `depth` parts, never the last part (the metric itself).
        var seen = 0
        var end = key.startIndex
        for i in key.utf8.indices where key.utf8[i] == slash {
            seen += 1
            end = i
            if seen == depth { break }
        }
        return seen == 0 ? "" : String(key[..<end])
    }

    /// Competition ranks ("1224"): 1 is the best value; NaN and missing values have none.
    static func ranks(_ values: [Double?], lowerIsBetter: Bool) -> [Int?] {
        // (value, column) pairs sorted by value: the comparator touches no shared array.
        var ranked: [(value: Double, index: Int)] = []
        ranked.reserveCapacity(values.count)
        for (i, v) in values.enumerated() { if let v, !v.isNaN { ranked.append((v, i)) } }
        if lowerIsBetter { ranked.sort { $0.value < $1.value } } else { ranked.sort { $0.value > $1.value } }
        var out = [Int?](repeating: nil, count: values.count)
        for (position, entry) in ranked.enumerated() {
            out[entry.index] = position > 0 && ranked[position - 1].value == entry.value ? out[ranked[position - 1].index] : position + 1
        }
        return out
    }

    /// Per group and run: mean and count of the finite values.
    static func groups(_ rows: [ScoreboardRow], runs: Int) -> [ScoreboardGroup] {
        // One lookup per row, then flat per-group arrays (row-major by run).
        var index: [String: Int] = [:]
        var names: [String] = [], keys: [Int] = [], sums: [Double] = [], counts: [Int] = []
        for row in rows {
            let g: Int
            if let i = index[row.group] {
                g = i
            } else {
                g = names.count
                index[row.group] = g
                names.append(row.group)
                keys.append(0)
                sums.append(contentsOf: repeatElement(0, count: runs))
                counts.append(contentsOf: repeatElement(0, count: runs))
            }
            keys[g] += 1
            for (i, v) in row.values.enumerated() {
                guard let v, v.isFinite else { continue }
                sums[g &* runs &+ i] += v
                counts[g &* runs &+ i] += 1
            }
        }
        return names.indices.sorted { binaryLess(names[$0], names[$1]) }.map { g in
            let c = Array(counts[(g * runs)..<((g + 1) * runs)])
            let means = (0..<runs).map { i in c[i] > 0 ? sums[g * runs + i] / Double(c[i]) : nil }
            return ScoreboardGroup(group: names[g], keys: keys[g], means: means, counts: c)
        }
    }
}

/// Bytewise key order (SQLite's binary collation, the order runs keep their metrics in), compared with `memcmp`.
enum KeyOrder {
    /// `< 0`, `0` or `> 0` as `a` sorts before, with or after `b` (borrowing both strings' bytes, no copies).
    static func compare(_ a: String, _ b: String) -> Int {
        let fast = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y -> Int in
                let n = min(x.count, y.count)
                let c = n == 0 ? 0 : Int(memcmp(x.baseAddress!, y.baseAddress!, n))
                return c != 0 ? c : x.count - y.count
            }
        }
        if let c = fast ?? nil { return c }
        return a.utf8.elementsEqual(b.utf8) ? 0 : (a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1)
    }

    /// Whether every key of the sorted `metrics` is among the sorted `keys`.
    static func covers(_ keys: [String], _ metrics: [Metric]) -> Bool {
        var i = 0
        for m in metrics {
            while i < keys.count, compare(keys[i], m.key) < 0 { i += 1 }
            guard i < keys.count, compare(keys[i], m.key) == 0 else { return false }
        }
        return true
    }

    /// The sorted union of sorted keys and a run's sorted metrics' keys.
    static func merge(_ keys: [String], _ metrics: [Metric]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(max(keys.count, metrics.count))
        var i = 0, j = 0
        while i < keys.count || j < metrics.count {
            if j == metrics.count { out.append(keys[i]); i += 1; continue }
            if i == keys.count { out.append(metrics[j].key); j += 1; continue }
            let c = compare(keys[i], metrics[j].key)
            if c <= 0 { out.append(keys[i]); i += 1; if c == 0 { j += 1 } } else { out.append(metrics[j].key); j += 1 }
        }
        return out
    }
}

extension Array where Element == Metric {
    /// Whether the metrics are in bytewise key order (each key once).
    var isSortedByKey: Bool { indices.dropFirst().allSatisfy { KeyOrder.compare(self[$0 - 1].key, self[$0].key) < 0 } }
}
