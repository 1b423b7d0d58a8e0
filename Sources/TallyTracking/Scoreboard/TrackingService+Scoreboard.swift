import TallyStore

extension TrackingService {
    /// A scoreboard: for every selected key × run the latest (or best, or at-a-step) value, ranks per key, deltas to a
    /// baseline run and per-group means. Latest values come from the runs' latest-metric records; `best` and `step`
    /// read the series.
    public func scoreboard(_ q: ScoreboardQuery) throws -> Scoreboard {
        let runs = try scoreboardRuns(q)
        let select = try Self.keySelector(q)
        let lower = (q.lowerIsBetter ?? ScoreboardQuery.defaultLowerIsBetter).map { $0.lowercased() }.filter { !$0.isEmpty }
        if let d = q.groupDepth, d < 1 { throw TrackingError.invalid("group_depth must be at least 1 (got \(d))") }
        var baselineIndex: Int?
        if let b = q.baselineRunID {
            guard let i = runs.firstIndex(where: { $0.info.runID == b }) else {
                throw TrackingError.invalid("baseline_run_id '\(b)' is not one of the runs on the scoreboard")
            }
            baselineIndex = i
        }
        // Keys of every run, and each run's latest values by key.
        var keys = Set<String>()
        let latest: [[String: Metric]] = runs.map { r in
            var byKey: [String: Metric] = [:]
            byKey.reserveCapacity(r.metrics.count)
            for m in r.metrics where select(m.key) {
                byKey[m.key] = m
                keys.insert(m.key)
            }
            return byKey
        }
        var rows: [ScoreboardRow] = []
        rows.reserveCapacity(keys.count)
        for key in keys.sorted(by: binaryLess) {
            let lowerIsBetter = lower.contains { key.lowercased().contains($0) }
            var values: [Double?] = [], steps: [Int64?] = []
            for (i, r) in runs.enumerated() {
                guard let l = latest[i][key] else {
                    values.append(nil)
                    steps.append(nil)
                    continue
                }
                let p = try scoreboardPoint(q.value, run: r.info.runID, key: key, latest: l, lowerIsBetter: lowerIsBetter)
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
    func scoreboardPoint(_ v: ScoreboardValue, run: String, key: String, latest: Metric, lowerIsBetter: Bool) throws -> MetricPoint? {
        switch v {
        case .latest:
            return MetricPoint(step: latest.step, timestamp: latest.timestamp, value: latest.value)
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

    /// A key's group: everything before its last `/` (`""` without one), or its first `depth` parts.
    static func group(of key: String, depth: Int?) -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard let depth else { return parts.dropLast().joined(separator: "/") }
        return parts.prefix(min(depth, max(0, parts.count - 1))).joined(separator: "/")
    }

    /// Competition ranks ("1224"): 1 is the best value; NaN and missing values have none.
    static func ranks(_ values: [Double?], lowerIsBetter: Bool) -> [Int?] {
        let ranked = values.indices.filter { values[$0].map { !$0.isNaN } ?? false }
            .sorted { a, b in lowerIsBetter ? values[a]! < values[b]! : values[a]! > values[b]! }
        var out = [Int?](repeating: nil, count: values.count)
        for (position, i) in ranked.enumerated() {
            if position > 0, values[ranked[position - 1]]! == values[i]! {
                out[i] = out[ranked[position - 1]]
            } else {
                out[i] = position + 1
            }
        }
        return out
    }

    /// Per group and run: mean and count of the finite values.
    static func groups(_ rows: [ScoreboardRow], runs: Int) -> [ScoreboardGroup] {
        var byGroup: [String: (keys: Int, sums: [Double], counts: [Int])] = [:]
        for row in rows {
            var g = byGroup[row.group] ?? (0, Array(repeating: 0, count: runs), Array(repeating: 0, count: runs))
            g.keys += 1
            for (i, v) in row.values.enumerated() {
                guard let v, v.isFinite else { continue }
                g.sums[i] += v
                g.counts[i] += 1
            }
            byGroup[row.group] = g
        }
        return byGroup.keys.sorted(by: binaryLess).map { name in
            let g = byGroup[name]!
            return ScoreboardGroup(group: name, keys: g.keys, means: zip(g.sums, g.counts).map { $1 > 0 ? $0 / Double($1) : nil }, counts: g.counts)
        }
    }
}
