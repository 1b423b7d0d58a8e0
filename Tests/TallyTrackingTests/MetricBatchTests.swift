import Testing
import TallyStore
import TallyWorkloads
@testable import TallyTracking

/// A request's points as the store receives them: grouped by key in order of first appearance, each key's points in
/// request order, whether the request interleaved its keys (a training step's metrics) or sent them key by key.
@Suite struct MetricBatchTests {
    static func grouped(_ metrics: [Metric]) -> [(String, [Int64])] {
        var order: [String] = [], steps: [String: [Int64]] = [:]
        for m in metrics {
            if steps[m.key] == nil { order.append(m.key) }
            steps[m.key, default: []].append(m.step)
        }
        return order.map { ($0, steps[$0]!) }
    }

    @Test func interleavedAndKeyByKeyBatchesAreGroupedInRequestOrder() {
        var rng = SplitMix64(seed: 5)
        for interleaved in [true, false] {
            for keys in [1, 3, 40] {
                let metrics: [Metric] = interleaved
                    ? (0..<200).map { i in Metric(key: "k\((i * 7) % keys)", value: Double(i), timestamp: Int64(i), step: Int64(rng.next() % 50)) }
                    : (0..<keys).flatMap { k in (0..<5).map { i in Metric(key: "k\(k)", value: Double(i), timestamp: 0, step: Int64(i)) } }
                let c = MetricBatch(metrics).columns.batches
                let want = Self.grouped(metrics)
                #expect(c.map(\.key) == want.map(\.0))
                #expect(c.map(\.steps) == want.map(\.1))
                // Each point keeps its own timestamp and value.
                let byKey = Dictionary(grouping: metrics, by: \.key)
                for s in c {
                    #expect(s.values == byKey[s.key]!.map(\.value) && s.timestamps == byKey[s.key]!.map(\.timestamp))
                }
            }
        }
    }

    @Test func repeatsWithinABatchAreDroppedKeepingTheFirst() {
        let m = [Metric(key: "a", value: 1, timestamp: 5, step: 2), Metric(key: "b", value: 1, timestamp: 5, step: 1),
                 Metric(key: "a", value: 1, timestamp: 5, step: 2), Metric(key: "a", value: 2, timestamp: 5, step: 2),
                 Metric(key: "a", value: 1, timestamp: 5, step: 1)]
        let c = MetricBatch(m).columns.withoutRepeats().batches
        #expect(c.map(\.key) == ["a", "b"] && c.map(\.steps) == [[2, 2, 1], [1]] && c.map(\.values) == [[1, 2, 1], [1]])
    }
}
