import Foundation
import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore

/// Short series packed together (format version 2): every read path answers exactly what the same data answers
/// when every series has blocks, and what a brute-force oracle computes; series cross from packs to blocks as
/// compaction merges them; old (version 1) files still read.
@Suite struct PackTests {
    /// Points logged per key, in arrival order.
    typealias Log = [String: [MetricPoint]]

    /// A benchmark-suite-like run: 300 short keys (1–5 points per round, ties and out-of-order steps included,
    /// special values too) beside 3 dense keys, over `rounds` rounds each ending in a seal.
    static func wideRounds(_ rng: inout SplitMix64, rounds: Int) -> [[SeriesBatch]] {
        var out: [[SeriesBatch]] = []
        for round in 0..<rounds {
            var batch: [SeriesBatch] = []
            for k in 0..<303 {
                let dense = k >= 300
                let n = dense ? 150 : Int.random(in: 1...5, using: &rng)
                var b = SeriesBatch(key: dense ? "dense/\(k)" : "suite\(k % 7)/task_\(k)/acc", steps: [], timestamps: [], values: [])
                for i in 0..<n {
                    let base = Int64(round * 1_000 + i * (dense ? 1 : 10))
                    b.steps.append(Int.random(in: 0..<10, using: &rng) == 0 ? base - Int64.random(in: 0...1_500, using: &rng) : base)
                    b.timestamps.append(1_700_000_000_000 + Int64(round * 60_000) + Int64.random(in: 0...3, using: &rng))
                    b.values.append(Int.random(in: 0..<20, using: &rng) == 0 ? specialValues.randomElement(using: &rng)!
                        : Double(Int.random(in: 0...400, using: &rng)) / Double(Int.random(in: 100...499, using: &rng)))
                }
                batch.append(b)
            }
            out.append(batch)
        }
        return out
    }

    /// Every read of every key of run `r` equals between the two stores and the oracle.
    static func expectSameReads(_ packed: MetricStore, _ blocks: MetricStore, _ log: Log, _ what: String) throws {
        #expect(try packed.keys(run: "r") == log.keys.sorted(), "\(what): keys")
        for (key, pts) in log {
            // Oracle: step order, ties in arrival order.
            let order = pts.indices.sorted { (pts[$0].step, $0) < (pts[$1].step, $1) }
            let a = try packed.read(run: "r", key: key)
            #expect(a.steps == order.map { pts[$0].step } && a.timestamps == order.map { pts[$0].timestamp }
                && bits(a.values) == order.map { pts[$0].value.bitPattern }, "\(what): \(key) history")
            let b = try blocks.read(run: "r", key: key)
            #expect(a.steps == b.steps && a.timestamps == b.timestamps && bits(a.values) == bits(b.values), "\(what): \(key) as blocks")
            var best = pts[0]
            for p in pts.dropFirst() where LatestRule.isLater(p, than: best) { best = p }
            let latest = try packed.latest(run: "r", key: key)
            #expect(latest?.step == best.step && latest?.timestamp == best.timestamp && latest?.value.bitPattern == best.value.bitPattern,
                    "\(what): \(key) latest")
            let lo = a.steps.first!, hi = a.steps.last!
            for (range, buckets) in [(lo...hi, 1), (lo...hi, 7), ((lo - 5)...(lo + (hi - lo) / 2), 3)] {
                let x = try packed.downsample(run: "r", key: key, steps: range, buckets: buckets)
                let y = try blocks.downsample(run: "r", key: key, steps: range, buckets: buckets)
                #expect(x.count == y.count && zip(x, y).allSatisfy { Self.same($0.summary, $1.summary) }, "\(what): \(key) downsample \(range)/\(buckets)")
            }
            var scanned: [Int64] = []
            try packed.scan(run: "r", key: key) { scanned += Array($0.steps) }
            #expect(scanned == a.steps, "\(what): \(key) scan")
            if let x = try packed.timeOrderedPage(run: "r", key: key, offset: 1, limit: 3),
                let y = try blocks.timeOrderedPage(run: "r", key: key, offset: 1, limit: 3) {
                #expect(x.total == y.total && x.points.map(\.step) == y.points.map(\.step), "\(what): \(key) time page")
            }
        }
    }

    /// Summaries compared with NaN-aware values; sums may differ in the last bits (blocks add per block, packs per
    /// point).
    static func same(_ a: SeriesSummary, _ b: SeriesSummary) -> Bool {
        func eq(_ x: StepValue?, _ y: StepValue?) -> Bool { x?.step == y?.step && x?.value.bitPattern == y?.value.bitPattern }
        return a.count == b.count && a.nanCount == b.nanCount && a.posInfCount == b.posInfCount && a.negInfCount == b.negInfCount
            && (a.sum.bitPattern == b.sum.bitPattern || abs(a.sum - b.sum) <= 1e-12 * max(1, abs(a.sum))) && eq(a.first, b.first) && eq(a.last, b.last) && eq(a.min, b.min) && eq(a.max, b.max)
    }

    @Test func wideRunsReadAsBlocksDoAndAsTheOracle() throws {
        let dirP = TempDir("pack-p"), dirB = TempDir("pack-b")
        var rng = SplitMix64(seed: 44)
        let rounds = Self.wideRounds(&rng, rounds: 4)
        var config = testConfig(blockPoints: 128, pack: 12)
        let packed = try MetricStore(directory: dirP.path, configuration: config)
        config.packPoints = 0
        let blocks = try MetricStore(directory: dirB.path, configuration: config)
        var log: Log = [:]
        for (i, batch) in rounds.enumerated() {
            for s in [packed, blocks] {
                try s.append(run: "r", series: batch)
                if i < rounds.count - 1 { try s.flush() }  // the last round stays in the heads
            }
            for b in batch {
                for j in b.steps.indices { log[b.key, default: []].append(MetricPoint(step: b.steps[j], timestamp: b.timestamps[j], value: b.values[j])) }
            }
        }
        let run = try #require(try packed.run("r", create: false))
        let segs = run.state.withLock { $0.segments }
        #expect(segs.count >= 3 && segs.allSatisfy { $0.version == SegmentFormat.version } && segs.filter { !$0.packs.isEmpty }.count == 3)
        try Self.expectSameReads(packed, blocks, log, "segments and heads")

        // Compaction merges each short series' segments: those reaching 12 points move to blocks.
        try packed.flush()
        try blocks.flush()
        #expect(try packed.compact(run: "r") >= 4)
        _ = try blocks.compact(run: "r")
        let merged = try #require(run.state.withLock { $0.segments.first })
        var crossed = 0
        for (key, pts) in log {
            let i = try #require(merged.series.find(key))
            #expect((merged.series.slot(i) == nil) == (pts.count >= 12), "\(key) with \(pts.count) points")
            if pts.count >= 12 && !key.hasPrefix("dense") { crossed += 1 }
        }
        #expect(crossed > 10, "some short series grew into blocks")
        try Self.expectSameReads(packed, blocks, log, "compacted")

        // Everything again from disk alone.
        try packed.close()
        try blocks.close()
        let p2 = try MetricStore(directory: dirP.path, configuration: testConfig(blockPoints: 128, pack: 12))
        let b2 = try MetricStore(directory: dirB.path, configuration: config)
        try Self.expectSameReads(p2, b2, log, "reopened")
        let report = try StoreCheck.check(directory: dirP.path)
        #expect(report.problems.isEmpty && report.points == log.values.reduce(0) { $0 + $1.count })
    }

    @Test func aSuiteCheckpointCostsAFewBytesPerPoint() throws {
        // 2,000 one-point keys of one checkpoint (same step, timestamps within a few ms, accuracy-like values).
        let dir = TempDir("pack-size")
        let store = try MetricStore(directory: dir.path, configuration: testConfig())
        let batch = (0..<2_000).map { (k: Int) -> SeriesBatch in
            let key = "suite\(k / 100)/task_\(String(format: "%04d", k))/acc"
            let value = Double((k * 7_919) % 401) / Double(100 + (k * 37) % 400)
            return SeriesBatch(key: key, steps: [5_000], timestamps: [1_700_000_000_000 + Int64(k / 700)], values: [value])
        }
        try store.append(run: "r", series: batch)
        try store.flush()
        let st = try store.stats(run: "r")
        let perPoint = Double(st.segmentBytes) / 2_000
        // The value alone is 8 bytes of entropy; the key, step, timestamp and index must add only a few.
        #expect(perPoint < 14, "\(perPoint) bytes per point")
        #expect(st.sealedPoints == 2_000)
        for k in stride(from: 0, to: 2_000, by: 97) {
            #expect(try store.read(run: "r", key: batch[k].key).values.map(\.bitPattern) == [batch[k].values[0].bitPattern])
        }
    }

    @Test func aDamagedPackIsReportedWithItsFileAndOffset() throws {
        let dir = TempDir("pack-crc")
        let store = try MetricStore(directory: dir.path, configuration: testConfig())
        try store.append(run: "r", series: (0..<100).map { SeriesBatch(key: "k\($0)", steps: [1], timestamps: [2], values: [Double($0) / 3]) })
        try store.close()
        let runDir = dir.path + "/runs/r"
        let path = runDir + "/" + SegmentFormat.fileName(seq: 1)
        let seg = try SegmentReader(path: path, seq: 1)
        let chunk = try #require(seg.packs.first?.chunk)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[Int(chunk.offset) + chunk.length / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        let reopened = try MetricStore(directory: dir.path, configuration: testConfig())
        #expect {
            _ = try reopened.read(run: "r", key: "k7")
        } throws: { e in
            let s = e as? StorageError
            return s?.code == .corrupt && s?.path == path && s?.offset == chunk.offset
        }
        let report = try StoreCheck.check(directory: dir.path)
        #expect(report.problems.contains { $0.path == path && $0.offset == chunk.offset })
    }

    /// A store written by an earlier build (`Fixtures/make-v1-store.py BIN DIR`, its `metrics` directory): the
    /// last version-1 build, a version-2 build (`705f083`) and a version-3 build (`75a405e`, whose values of k/1,024 are
    /// stored as scaled integers).
    struct Fixture: Sendable, CustomStringConvertible {
        var directory: String
        var version: UInt16
        var long: String
        var short: String
        var description: String { "version \(version)" }
    }

    static let fixtures = [
        Fixture(directory: "v1-store", version: 1, long: "baf8174ec920488aa06c4f51ea0fd754", short: "5c671d0e3b754c94b46ad029c7cd7ad5"),
        Fixture(directory: "v2-store", version: 2, long: "24c07dfb92e245d8a95bb7ad80c3745f", short: "6e5e9386fd5146b8a32ab434cf334356"),
        Fixture(directory: "v3-store", version: 3, long: "9c4b13c8589f4e9c810ac75ea036a6fa", short: "b711814764824338a52e08362e700a71"),
        Fixture(directory: "v4-store", version: 4, long: "646cdd43f36440a298fb49be3cb531dd", short: "7333eccada144b5780ad09622b81d5a0"),
    ]

    /// The fixture generator's values: exactly representable, so the test recomputes them.
    static func v1Value(_ key: String, _ step: Int64) -> Double {
        let h = key.utf8.reduce(0) { $0 + Int64($1) }
        return Double((h * 7 + step * 13) % 2_048) / 1_024
    }

    @Test(arguments: fixtures)
    func olderSegmentsStillReadAndCompactIntoTheCurrentVersion(_ fixture: Fixture) throws {
        let dir = TempDir("old-format")
        try FileManager.default.removeItem(atPath: dir.path)
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + fixture.directory).path
        try FileManager.default.copyItem(atPath: source, toPath: dir.path)
        let (v1Long, v1Short) = (fixture.long, fixture.short)
        var store = try MetricStore(directory: dir.path, configuration: testConfig(pack: 1_024))
        func expectFixture(_ what: String) throws {
            let loss = try store.read(run: v1Long, key: "loss")
            #expect(loss.steps == Array(0..<3_000) && loss.timestamps == (0..<3_000).map { 1_700_000_000_000 + $0 * 250 }, "\(what): loss")
            #expect(loss.values == (0..<3_000).map { Self.v1Value("loss", $0) }, "\(what): loss values")
            #expect(try store.read(run: v1Long, key: "acc").values == [Self.v1Value("acc", 7)])
            for i in [0, 17, 49] {
                let key = "suite/task_\(i < 10 ? "0" : "")\(i)/acc"
                #expect(try store.latest(run: v1Long, key: key) == MetricPoint(step: 100, timestamp: 1_700_000_001_000, value: Self.v1Value(key, 100)))
            }
            #expect(try store.keys(run: v1Long).count == 52)
            let x = try store.read(run: v1Short, key: "x")
            #expect(x.steps == [1, 2] && x.values == [1.5, 2.5], "\(what): x")
            #expect(try store.read(run: v1Short, key: "y").values == [-0.25])
            let buckets = try store.downsample(run: v1Long, key: "loss", steps: 0...2_999, buckets: 10)
            #expect(buckets.map(\.summary.count) == Array(repeating: 300, count: 10))
        }
        let versions = { (id: String) in try #require(try store.run(id, create: false)).state.withLock { $0.segments.map(\.version) } }
        try expectFixture("as written")
        #expect(try versions(v1Long) == [fixture.version] && versions(v1Short) == [fixture.version, fixture.version])
        // Before format 4 each footer held the whole window (the short run's second one both batches): read in
        // order they make the same window, each id once.
        let window = { (id: String) in try #require(try store.run(id, create: false)).state.withLock { Array($0.batchIDs.ids) } }
        if fixture.version >= 2 { #expect(try window(v1Short).count == 2 && Set(window(v1Short)).count == 2) }
        #expect(try store.compact(run: v1Short) == 2)
        #expect(try store.compact(run: v1Long) == 0)
        #expect(try versions(v1Short) == [SegmentFormat.version])
        if fixture.version >= 2 { #expect(try window(v1Short).count == 2) }
        try expectFixture("compacted")
        try store.close()
        store = try MetricStore(directory: dir.path, configuration: testConfig())
        try expectFixture("reopened")
        #expect(try StoreCheck.check(directory: dir.path).problems.isEmpty)
    }
}
