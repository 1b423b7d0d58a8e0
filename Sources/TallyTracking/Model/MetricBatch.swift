import TallyStore

/// The metric points of one MLflow request, grouped by key as they are read: the one form a point takes from the
/// request parser to the store. Points are appended in request order; each key is checked once, on first sight,
/// and every point's timestamp as it arrives, so the first rule broken in request order is the error reported
/// (MLflow's order), without a struct per point or a regrouping pass.
public struct MetricBatch: Sendable {
    /// Keys in order of first appearance.
    public private(set) var keys: [String] = []
    /// Per point, in request order: its key's position in `keys`, and its step, timestamp and value.
    private var seriesOf: [Int32] = []
    private var steps: [Int64] = []
    private var timestamps: [Int64] = []
    private var values: [Double] = []
    /// Whether every point's series is at least the previous point's (then the columns are grouped as they are).
    private var grouped = true
    private var index: [String: Int] = [:]
    private var firstError: TrackingError?
    /// FNV-1a over (series, step, timestamp, value bits) of every point; keys are mixed in at the end.
    private var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    /// Keys expected at most (``init(expectedPoints:)``): the index reserves room for them once it outgrows a few.
    private var expectedKeys = 0

    /// An empty batch.
    public init() {}

    /// An empty batch for about `expectedPoints` points: a batch that turns out to have many keys (a benchmark
    /// suite's 1,000) sizes its key index once instead of growing it ten times.
    public init(expectedPoints: Int) {
        expectedKeys = max(0, expectedPoints)
        steps.reserveCapacity(expectedKeys)
        timestamps.reserveCapacity(expectedKeys)
        values.reserveCapacity(expectedKeys)
        seriesOf.reserveCapacity(expectedKeys)
    }

    /// A batch of keyed points, in order.
    public init(_ metrics: [Metric]) {
        for m in metrics { append(series(for: m.key), step: m.step, timestamp: m.timestamp, value: m.value) }
    }

    /// Points appended.
    public var count: Int { steps.count }

    /// The points logged against a logged model (`model_id`), in request order: stored in the run's history like
    /// the others and also beside the model (their run id is filled in when the batch is logged).
    public private(set) var modelPoints: [ModelMetric] = []

    /// Notes that a point appended with ``append(_:step:timestamp:value:)`` was logged against a model.
    public mutating func appendModelPoint(_ m: Metric, modelID: String, datasetName: String?, datasetDigest: String?) {
        modelPoints.append(ModelMetric(metric: m, modelID: modelID, runID: "", datasetName: datasetName, datasetDigest: datasetDigest))
    }

    /// The position of `key`'s series, created on first sight (when its key is checked).
    public mutating func series(for key: String) -> Int {
        // The index compares keys as Swift does, by canonical equivalence: a key found under other code points is
        // not that series ("é" after "é" decomposed); it is checked as a new key, which refuses it.
        let found = index[key]
        if let s = found, ExactKey.sameBytes(keys[s], key) { return s }
        if firstError == nil {
            do { try Validation.key(key, entity: "Metric") } catch let e as TrackingError { firstError = e } catch {}
        }
        if let s = found { return s }
        let s = keys.count
        if s == 16, expectedKeys > 16 {
            index.reserveCapacity(expectedKeys)
            keys.reserveCapacity(expectedKeys)
        }
        index[key] = s
        keys.append(key)
        return s
    }

    /// Appends a point to series `s` (from ``series(for:)``).
    public mutating func append(_ s: Int, step: Int64, timestamp: Int64, value: Double) {
        if timestamp < 0, firstError == nil { firstError = Validation.negativeTimestamp(key: keys[s], value: value, timestamp: timestamp) }
        if let last = seriesOf.last, Int(last) > s { grouped = false }
        seriesOf.append(Int32(truncatingIfNeeded: s))
        steps.append(step)
        timestamps.append(timestamp)
        values.append(value)
        mix(UInt64(s))
        mix(UInt64(bitPattern: step))
        mix(UInt64(bitPattern: timestamp))
        mix(value.bitPattern)
    }

    /// The points grouped by key (keys in order of first appearance, each key's points in request order): a batch
    /// whose points already come key by key (a benchmark suite's, one point per key) is used as it is; an
    /// interleaved one (a training step's loss, accuracy, …) is regrouped by one counting pass.
    public var columns: SeriesColumns {
        var ends = [Int](repeating: 0, count: keys.count)
        for s in seriesOf { ends[Int(s)] &+= 1 }
        for i in ends.indices.dropFirst() { ends[i] &+= ends[i &- 1] }
        if grouped { return SeriesColumns(keys: keys, ends: ends, steps: steps, timestamps: timestamps, values: values) }
        var next = [Int](repeating: 0, count: keys.count)
        for i in next.indices.dropFirst() { next[i] = ends[i &- 1] }
        var st = [Int64](repeating: 0, count: count), ts = st, vs = [Double](repeating: 0, count: count)
        for (p, s) in seriesOf.enumerated() {
            let at = next[Int(s)]
            next[Int(s)] = at &+ 1
            st[at] = steps[p]
            ts[at] = timestamps[p]
            vs[at] = values[p]
        }
        return SeriesColumns(keys: keys, ends: ends, steps: st, timestamps: ts, values: vs)
    }

    private mutating func mix(_ v: UInt64) {
        var v = v
        for _ in 0..<8 {
            hash ^= v & 0xFF
            hash = hash &* 0x0000_0100_0000_01B3
            v >>= 8
        }
    }

    /// The first rule a point broke, in request order.
    public var error: TrackingError? { firstError }

    /// A content id of the batch: a retried identical request has the same one.
    public var contentID: String {
        var h = hash
        for k in keys {
            for b in k.utf8 {
                h ^= UInt64(b)
                h = h &* 0x0000_0100_0000_01B3
            }
            h ^= 0xFF
            h = h &* 0x0000_0100_0000_01B3
        }
        return "mlflow-" + String(h, radix: 16)
    }
}

extension SeriesColumns {
    /// The series with exact repeats (step, timestamp, value bits) dropped, keeping first occurrences. Strictly
    /// increasing steps, the usual case, cannot repeat and cost one pass.
    func withoutRepeats() -> SeriesColumns {
        var increasing = true
        forEach { _, _, st, _, _ in
            if increasing, st.count > 1 { increasing = (1..<st.count).allSatisfy { st[$0 &- 1] < st[$0] } }
        }
        if increasing { return self }  // no copy
        var out = SeriesColumns(series: count, points: pointCount)
        forEach { _, key, st, ts, vs in
            // MLflow's comparison (NaN equals NaN, 0 equals -0), the one the store applies across requests.
            var seen = Set<PointIdentity>(minimumCapacity: st.count)
            let keep = st.indices.filter { seen.insert(PointIdentity(step: st[$0], timestamp: ts[$0], bits: vs[$0].bitPattern)).inserted }
            out.append(key: key, steps: keep.map { st[$0] }, timestamps: keep.map { ts[$0] }, values: keep.map { vs[$0] })
        }
        return out
    }
}
