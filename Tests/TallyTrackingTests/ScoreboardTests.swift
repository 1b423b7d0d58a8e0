import TallyWorkloads
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Scoreboards against a brute-force oracle over the runs' full histories.
@Suite struct ScoreboardTests {
    static let keys = ["a/x/acc", "a/y/acc", "b/loss", "b/deep/f1", "top"]

    /// Five runs; run r logs key k at steps 0, 1000, 2000 unless (r + k) % 4 == 3; one NaN; run 2 ties run 1 on "top".
    static func fixture(_ backend: Backend) throws -> (Fixture, [String], [String: [String: [MetricPoint]]]) {
        let f = try Fixture("score", backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "suite")
        var ids: [String] = []
        var history: [String: [String: [MetricPoint]]] = [:]
        var rng = SplitMix64(seed: 7)
        for r in 0..<5 {
            let id = try s.createRun(experimentID: exp, runName: "r\(r)", startTime: Int64(r)).info.runID
            ids.append(id)
            var metrics: [Metric] = []
            for (k, key) in keys.enumerated() where (r + k) % 4 != 3 {
                for c in 0..<3 {
                    var v = Double(rng.next() % 1000) / 1000
                    if key == "top" { v = r == 2 ? 0.5 : (r == 1 ? 0.5 : v) }
                    if r == 4 && key == "a/x/acc" && c == 2 { v = .nan }
                    metrics.append(Metric(key: key, value: v, timestamp: 100 + Int64(c), step: Int64(c) * 1000))
                    history[id, default: [:]][key, default: []].append(MetricPoint(step: Int64(c) * 1000, timestamp: 100 + Int64(c), value: v))
                }
            }
            try s.logBatch(runID: id, metrics: metrics, params: [KeyValue(key: "size", value: r < 3 ? "small" : "large")])
        }
        return (f, ids, history)
    }

    static func oracle(_ points: [MetricPoint]?, _ v: ScoreboardValue, lower: Bool) -> Double? {
        guard let points, !points.isEmpty else { return nil }
        switch v {
        case .latest: return points.max { LatestRule.isLater($1, than: $0) }!.value
        case .step(let s): return points.filter { $0.step == s }.max { LatestRule.isLater($1, than: $0) }?.value
        case .best:
            let finite = points.map(\.value).filter { !$0.isNaN }
            return lower ? finite.min() : finite.max()
        }
    }

    static func same(_ a: Double?, _ b: Double?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case let (x?, y?): x == y || (x.isNaN && y.isNaN)
        default: false
        }
    }

    @Test(arguments: Backend.all, [ScoreboardValue.latest, .best, .step(1000), .step(5)])
    func valuesRanksGroupsAndDeltasMatchTheOracle(_ backend: Backend, _ v: ScoreboardValue) throws {
        let (f, ids, history) = try Self.fixture(backend)
        let b = try f.service.scoreboard(ScoreboardQuery(runIDs: ids, value: v, baselineRunID: ids[0]))
        #expect(b.runs.map(\.runID) == ids && b.baselineIndex == 0)
        #expect(b.rows.map(\.key) == Self.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        for row in b.rows {
            let lower = row.key.contains("loss")
            #expect(row.lowerIsBetter == lower)
            #expect(row.group == ["a/x/acc": "a/x", "a/y/acc": "a/y", "b/loss": "b", "b/deep/f1": "b/deep", "top": ""][row.key])
            let expected = ids.map { Self.oracle(history[$0]?[row.key], v, lower: lower) }
            #expect(zip(row.values, expected).allSatisfy(Self.same), "\(row.key): \(row.values) vs \(expected)")
            for (i, value) in row.values.enumerated() {
                guard let value, !value.isNaN else {
                    #expect(row.ranks[i] == nil)
                    continue
                }
                let better = row.values.compactMap { $0 }.filter { !$0.isNaN && (lower ? $0 < value : $0 > value) }.count
                #expect(row.ranks[i] == better + 1, "\(row.key) run \(i)")
                #expect(Self.same(row.baselineDeltas[i], row.values[0].map { value - $0 }))
            }
        }
        // Default groups here have one key each (no means: the row has them); depth 1 makes groups of two.
        let byTop = try f.service.scoreboard(ScoreboardQuery(runIDs: ids, value: v, groupDepth: 1))
        #expect(byTop.groups.map(\.keys) == [1, 2, 2])
        for board in [b, byTop] { for g in board.groups {
            let rows = board.rows.filter { $0.group == g.group }
            #expect(g.keys == rows.count)
            if g.keys == 1 {
                #expect(g.means.isEmpty && g.counts.isEmpty)
                continue
            }
            for i in ids.indices {
                let finite = rows.compactMap { $0.values[i] }.filter(\.isFinite)
                #expect(g.counts[i] == finite.count)
                #expect(Self.same(g.means[i], finite.isEmpty ? nil : finite.reduce(0, +) / Double(finite.count)))
            }
        } }
        if case .latest = v {
            let top = try #require(b.rows.first { $0.key == "top" })
            #expect(top.ranks[1] != nil && top.ranks[1] == top.ranks[2])  // a tie shares its rank
        }
    }

    @Test(arguments: Backend.all) func selectingRunsAndKeys(_ backend: Backend) throws {
        let (f, ids, _) = try Self.fixture(backend)
        let s = f.service
        #expect(try s.scoreboard(ScoreboardQuery(runIDs: ids, keyPrefixes: ["a/"])).rows.map(\.key) == ["a/x/acc", "a/y/acc"])
        #expect(try s.scoreboard(ScoreboardQuery(runIDs: ids, keyRegex: "acc$|^top")).rows.map(\.key) == ["a/x/acc", "a/y/acc", "top"])
        let custom = try s.scoreboard(ScoreboardQuery(runIDs: ids, lowerIsBetter: ["acc"]))
        #expect(custom.rows.filter(\.lowerIsBetter).map(\.key) == ["a/x/acc", "a/y/acc"])
        #expect(try s.scoreboard(ScoreboardQuery(runIDs: ids, groupDepth: 1)).groups.map(\.group) == ["", "a", "b"])
        let filtered = try s.scoreboard(ScoreboardQuery(experimentID: "1", filter: "params.size = 'small'"))
        #expect(Set(filtered.runs.map(\.runID)) == Set(ids.prefix(3)))
        #expect(try s.scoreboard(ScoreboardQuery(runIDs: [ids[1], ids[1], ids[0]])).runs.map(\.runID) == [ids[1], ids[0]])
        for (q, fragment) in [(ScoreboardQuery(runIDs: ids, baselineRunID: "other"), "baseline_run_id"),
                              (ScoreboardQuery(runIDs: ids, keyPrefixes: ["a"], keyRegex: "a"), "not both"),
                              (ScoreboardQuery(runIDs: ids, keyRegex: "(unclosed"), "Invalid key_regex"),
                              (ScoreboardQuery(runIDs: []), "run_ids must list"),
                              (ScoreboardQuery(runIDs: Array(repeating: "x", count: 1001)), "run_ids must list"),
                              (ScoreboardQuery(runIDs: ids, groupDepth: 0), "group_depth"),
                              (ScoreboardQuery(runIDs: ids, filter: "x"), "filter needs experiment_id"),
                              (ScoreboardQuery(experimentID: "1", filter: "params.size = 'none'"), "No run")] {
            expectError(.invalidParameterValue, fragment) { _ = try s.scoreboard(q) }
        }
        expectError(.resourceDoesNotExist, "not found") { _ = try s.scoreboard(ScoreboardQuery(runIDs: ["0123456789abcdef0123456789abcdef"])) }
    }

    /// Lower-is-better fragments match case-insensitively, ASCII keys compared in place, others lowercased first.
    @Test func lowerIsBetterFragmentsMatchAnyCase() {
        let patterns = ["loss", "wer", "é"].map { Array($0.utf8) }
        for (key, want) in [("eval/LOSS", true), ("Eval/Val_Loss/x", true), ("acc", false), ("lo", false), ("ANSWER", true),
                            ("ÜNÏ/LOSS", true), ("café/acc", true), ("CAFÉ/acc", true), ("über/acc", false), ("[loss]", true)] {
            #expect(TrackingService.containsAny(key, patterns) == want, "\(key)")
        }
        #expect(!TrackingService.containsAny("loss", []))
    }

    /// Ranks by the scoreboard's own sort against counting better values, for rows of 0…300 runs with many ties,
    /// ±∞, ±0, NaN and missing values, in both directions.
    @Test func ranksMatchCountingBetterValues() {
        var rng = SplitMix64(seed: 11)
        // Values one ulp apart differ only in the bits the sort borrows for the column.
        let specials: [Double?] = [nil, .nan, .infinity, -.infinity, 0, -0.0, 1, 1, 0.5, 1.0.nextUp, 1.0.nextDown, 0.5.nextUp,
                                   -1, (-1.0).nextUp, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for n in [0, 1, 2, 3, 15, 16, 17, 33, 100, 300, 1000] {
            for _ in 0..<20 {
                let values: [Double?] = (0..<n).map { _ in
                    rng.next() % 3 == 0 ? specials[Int(rng.next() % UInt64(specials.count))] : Double(rng.next() % 20) / 4 - 2
                }
                for lower in [false, true] {
                    var ranking = RankBuffer(capacity: values.count)
                    let ranks = ranking.ranks(values, lowerIsBetter: lower)
                    for (i, v) in values.enumerated() {
                        guard let v, !v.isNaN else {
                            #expect(ranks[i] == nil)
                            continue
                        }
                        let better = values.filter { w in w.map { !$0.isNaN && (lower ? $0 < v : $0 > v) } ?? false }.count
                        #expect(ranks[i] == better + 1, "n=\(n) lower=\(lower) value \(v)")
                    }
                }
            }
        }
    }
}
