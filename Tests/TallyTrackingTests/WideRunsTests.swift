import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore
@testable import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// Benchmark-suite runs through the service: hundreds of short keys (packed in segments) beside dense ones, some
/// short keys growing into blocks as compaction merges them; every read path against a brute-force oracle, before
/// and after compaction and after a reopen.
@Suite struct WideRunsTests {
    /// A service on `dir` whose store packs series of fewer than 16 points and compacts after 4 segments.
    static func open(_ f: Fixture) throws -> TrackingService {
        let dir = f.dir + "/wide"
        var config = StoreConfiguration()
        config.durableSegments = false
        config.wal!.durability = .none
        config.blockPoints = 256
        config.packPoints = 16
        config.compactionThreshold = 4
        let metrics = try MetricStore(directory: dir + "/metrics", configuration: config)
        let meta = try f.metadataStore()
        return TrackingService(metadata: meta, metrics: metrics, clock: { 1_700_000_000_000 })
    }

    typealias Oracle = [String: [String: [MetricPoint]]]  // run → key → points in arrival order

    static func latest(_ pts: [MetricPoint]) -> MetricPoint {
        pts.dropFirst().reduce(pts[0]) { LatestRule.isLater($1, than: $0) ? $1 : $0 }
    }

    static func sameBits(_ a: [MetricPoint], _ b: [MetricPoint]) -> Bool {
        func key(_ p: MetricPoint) -> [Int64] { [p.step, p.timestamp, Int64(bitPattern: p.value.bitPattern)] }
        return a.map(key).sorted { $0.lexicographicallyPrecedes($1) } == b.map(key).sorted { $0.lexicographicallyPrecedes($1) }
    }

    static func check(_ s: TrackingService, _ ids: [String], _ oracle: Oracle, _ what: String) throws {
        let probe = "s1/t101/acc"
        for id in ids {
            let run = try s.run(id: id)
            let want = oracle[id]!
            #expect(run.metrics.map(\.key) == want.keys.sorted(by: binaryLess), "\(what): keys of \(id)")
            for m in run.metrics {
                let l = latest(want[m.key]!)
                #expect(m.step == l.step && m.timestamp == l.timestamp && m.value.bitPattern == l.value.bitPattern, "\(what): latest \(m.key)")
            }
            for key in ["loss", probe, "s0/t0/acc", "grow/3"] {
                #expect(sameBits(try s.history(runID: id, key: key), want[key]!), "\(what): history \(key) of \(id)")
            }
        }
        // Search: filter and order on one short key, as MLflow does (NaN and missing values fail `>`).
        let page = try s.searchRuns(experimentIDs: ["0"], filter: "metrics.`\(probe)` > 0.3", orderBy: ["metrics.`\(probe)` DESC"])
        let expected = ids.compactMap { id -> (String, Double)? in
            let v = latest(oracle[id]![probe]!).value
            return v > 0.3 ? (id, v) : nil
        }.sorted { $0.1 > $1.1 }.map(\.0)
        #expect(!expected.isEmpty && expected.count < ids.count, "\(what): the filter must select some runs, not all")
        #expect(page.items.map(\.info.runID) == expected, "\(what): search")
        // Scoreboard: every key × run is the oracle's latest value.
        let board = try s.scoreboard(ScoreboardQuery(runIDs: ids))
        #expect(board.rows.count == oracle[ids[0]]!.count, "\(what): scoreboard rows")
        for row in board.rows {
            for (i, id) in ids.enumerated() {
                #expect(row.values[i]?.bitPattern == oracle[id]![row.key].map { latest($0).value.bitPattern }, "\(what): scoreboard \(row.key)")
            }
        }
    }

    @Test(arguments: Backend.all) func everyReadPathMatchesTheOracleAcrossLayouts(_ backend: Backend) throws {
        let f = try Fixture("wide", backend: backend)
        var s = try Self.open(f)
        var rng = SplitMix64(seed: 12)
        let ids = try (0..<5).map { _ in try s.createRun(experimentID: "0", startTime: 1).info.runID }
        var oracle: Oracle = [:]
        for checkpoint in 0..<4 {
            for id in ids {
                var metrics: [Metric] = []
                let t = 1_700_000_000_000 + Int64(checkpoint) * 60_000
                for k in 0..<300 {  // one point per key per checkpoint: packed
                    let v = Int.random(in: 0..<40, using: &rng) == 0 ? Double.nan : Double(Float(rng.unit()))
                    metrics.append(Metric(key: "s\(k % 5)/t\(k)/acc", value: v, timestamp: t, step: Int64(checkpoint) * 100))
                }
                for k in 0..<6 {  // six points per checkpoint: 24 after four, blocks once compacted
                    for i in 0..<6 { metrics.append(Metric(key: "grow/\(k)", value: rng.unit(), timestamp: t + Int64(i), step: Int64(checkpoint * 6 + i))) }
                }
                for i in 0..<300 {  // a dense curve: blocks from the first seal
                    metrics.append(Metric(key: "loss", value: rng.unit(), timestamp: t + Int64(i), step: Int64(checkpoint * 300 + i)))
                }
                for start in stride(from: 0, to: metrics.count, by: 1_000) {
                    try s.logBatch(runID: id, metrics: Array(metrics[start..<min(metrics.count, start + 1_000)]))
                }
                for m in metrics { oracle[id, default: [:]][m.key, default: []].append(MetricPoint(step: m.step, timestamp: m.timestamp, value: m.value)) }
            }
            try s.metrics.flush()
        }
        let sealed = try #require(try s.metrics.run(ids[0], create: false)?.state.withLock { $0.segments })
        #expect(sealed.count > 1 && sealed.contains { !$0.packs.isEmpty })
        try Self.check(s, ids, oracle, "sealed")
        for id in ids { _ = try s.metrics.compact(run: id) }
        let merged = try #require(try s.metrics.run(ids[0], create: false)?.state.withLock { $0.segments })
        #expect(merged.count == 1)
        let table = merged[0].series
        #expect(table.slot(table.find("s0/t0/acc")!) != nil && table.slot(table.find("grow/0")!) == nil && table.slot(table.find("loss")!) == nil)
        try Self.check(s, ids, oracle, "compacted")
        try s.close()
        s = try Self.open(f)
        try Self.check(s, ids, oracle, "reopened")
    }
}
