import TallyStore

extension MLflowImport {
    /// `--verify`: compares every selected source run with Tally's copy — run fields, params, tags, inputs, and per
    /// metric key the number of points and an order-free checksum of (step, timestamp, value bits) — and returns
    /// one line per difference (none: the copy is exact).
    public func verify(_ source: any MLflowSource, _ service: TrackingService) throws -> [String] {
        var differences: [String] = []
        for e in try selectedExperiments(source) {
            for r in try source.runs(experimentID: e.experimentID, since: options.since) {
                let id = r.runID
                guard let copy = try service.metadata.run(id: id) else {
                    differences.append("run \(id): missing")
                    continue
                }
                let a = r, b = copy.info
                if (a.runName, a.userID, a.status, a.startTime, a.endTime, a.lifecycleStage) != (b.runName, b.userID, b.status, b.startTime, b.endTime, b.lifecycleStage) {
                    differences.append("run \(id): fields differ (\(a.runName), \(a.status), \(a.startTime), \(a.endTime ?? -1), \(a.lifecycleStage)) "
                                       + "vs (\(b.runName), \(b.status), \(b.startTime), \(b.endTime ?? -1), \(b.lifecycleStage))")
                }
                func dict(_ kv: [KeyValue]) -> [String: String] { Dictionary(kv.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }) }
                if dict(try source.params(runID: id)) != dict(copy.params) { differences.append("run \(id): params differ") }
                if dict(try source.tags(runID: id)) != dict(copy.tags) { differences.append("run \(id): tags differ") }
                if try source.inputs(runID: id).count != copy.inputs.count { differences.append("run \(id): inputs differ") }
                if try source.runModelInputs(runID: id).filter({ !$0.modelID.isEmpty }) != (try service.runModelInputs(runID: id)) {
                    differences.append("run \(id): model inputs differ")
                }
                let series = try source.metrics(runID: id)
                let keys = try service.metrics.keys(run: id)
                if Set(keys) != Set(series.map(\.key)) { differences.append("run \(id): metric keys differ (\(series.count) vs \(keys.count))") }
                for s in series {
                    let t = try service.metrics.read(run: id, key: s.key)
                    let (n1, c1) = Self.checksum(s.steps, s.timestamps, s.values)
                    let (n2, c2) = Self.checksum(t.steps, t.timestamps, t.values)
                    if n1 != n2 || c1 != c2 { differences.append("run \(id), metric \(s.key): \(n1) points vs \(n2), checksums \(String(c1, radix: 16)) vs \(String(c2, radix: 16))") }
                }
            }
        }
        return differences
    }

    /// Points and an order-free checksum: the wrapping sum of a mix of each point's step, timestamp and value bits.
    static func checksum(_ steps: [Int64], _ timestamps: [Int64], _ values: [Double]) -> (Int, UInt64) {
        @inline(__always) func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var sum: UInt64 = 0
        for i in steps.indices {
            sum &+= mix(UInt64(bitPattern: steps[i]) ^ mix(UInt64(bitPattern: timestamps[i]) ^ mix(values[i].bitPattern)))
        }
        return (steps.count, sum)
    }
}
