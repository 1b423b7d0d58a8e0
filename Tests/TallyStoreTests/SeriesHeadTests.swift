import Testing
@testable import TallyStore

/// A head is interleaved while small and columnar once grown: every operation, across the switch, against a plain
/// list of points.
@Suite struct SeriesHeadTests {
    @Test(arguments: [false, true])
    func headsMatchAPlainListAcrossTheSwitchToColumns(_ sortedSteps: Bool) {
        var rng: UInt64 = sortedSteps ? 1 : 2
        func next(_ n: Int) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((rng >> 33) % UInt64(n))
        }
        for _ in 0..<200 {
            var head = SeriesHead()
            var model: [MetricPoint] = []
            var lsn: UInt64 = 1
            var step: Int64 = 0
            for _ in 0..<(1 + next(8)) {
                let n = 1 + next(next(3) == 0 ? 40 : 4)
                var steps: [Int64] = [], timestamps: [Int64] = [], values: [Double] = []
                for _ in 0..<n {
                    step = sortedSteps ? step + Int64(next(3)) : Int64(next(50))
                    steps.append(step)
                    timestamps.append(Int64(next(1000)))
                    values.append(next(10) == 0 ? .nan : Double(next(100)) / 7)
                }
                if next(2) == 0 { head.reserve(next(30)) }
                steps.withUnsafeBufferPointer { s in
                    timestamps.withUnsafeBufferPointer { t in values.withUnsafeBufferPointer { head.append(steps: s, timestamps: t, values: $0, lsn: lsn) } }
                }
                lsn += 1
                model += zip(steps, zip(timestamps, values)).map { MetricPoint(step: $0, timestamp: $1.0, value: $1.1) }
                // Sometimes a seal takes a prefix (sorted heads only).
                if sortedSteps, next(3) == 0, let cut = model.dropFirst(model.count / 2).first?.step {
                    let part = head.removePrefix(throughStep: cut, key: "k")
                    let taken = model.prefix { $0.step <= cut }
                    #expect(part.steps == taken.map(\.step) && part.values == taken.map(\.value.bitPattern))
                    model.removeFirst(taken.count)
                }
            }
            #expect(head.count == model.count)
            #expect(head.sorted == zip(model, model.dropFirst()).allSatisfy { $0.step <= $1.step })
            let cols = head.sortedColumns(key: "k")
            let order = model.indices.sorted { model[$0].step < model[$1].step || (model[$0].step == model[$1].step && $0 < $1) }
            #expect(cols.steps == order.map { model[$0].step } && cols.timestamps == order.map { model[$0].timestamp })
            #expect(cols.values == order.map { model[$0].value.bitPattern })
            let want = model.isEmpty ? nil : model.dropFirst().reduce(model[0]) { LatestRule.isLater($1, than: $0) ? $1 : $0 }
            #expect(head.latest?.step == want?.step && head.latest?.value.bitPattern == want?.value.bitPattern)
            #expect(head.bytes >= head.count * 24)
        }
    }
}
