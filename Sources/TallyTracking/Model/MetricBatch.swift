import TallyStore

/// The metric points of one MLflow request, grouped by key as they are read: the one form a point takes from the
/// request parser to the store. Points are appended in request order; each key is checked once, on first sight,
/// and every point's timestamp as it arrives, so the first rule broken in request order is the error reported
/// (MLflow's order), without a struct per point or a regrouping pass.
public struct MetricBatch: Sendable {
    /// Per-key columns, in order of first appearance (points in request order within a key).
    public private(set) var series: [SeriesBatch] = []
    /// Points appended.
    public private(set) var count = 0
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
    public init(expectedPoints: Int) { expectedKeys = max(0, expectedPoints) }

    /// A batch of keyed points, in order.
    public init(_ metrics: [Metric]) {
        for m in metrics { append(series(for: m.key), step: m.step, timestamp: m.timestamp, value: m.value) }
    }

    /// The position of `key`'s series, created on first sight (when its key is checked).
    public mutating func series(for key: String) -> Int {
        if let s = index[key] { return s }
        if firstError == nil {
            do { try Validation.key(key, entity: "Metric") } catch let e as TrackingError { firstError = e } catch {}
        }
        let s = series.count
        if s == 16, expectedKeys > 16 {
            index.reserveCapacity(expectedKeys)
            series.reserveCapacity(expectedKeys)
        }
        index[key] = s
        series.append(SeriesBatch(key: key, steps: [], timestamps: [], values: []))
        return s
    }

    /// Appends a point to series `s` (from ``series(for:)``).
    public mutating func append(_ s: Int, step: Int64, timestamp: Int64, value: Double) {
        if timestamp < 0, firstError == nil { firstError = Validation.negativeTimestamp(key: series[s].key, value: value, timestamp: timestamp) }
        series[s].steps.append(step)
        series[s].timestamps.append(timestamp)
        series[s].values.append(value)
        count &+= 1
        mix(UInt64(s))
        mix(UInt64(bitPattern: step))
        mix(UInt64(bitPattern: timestamp))
        mix(value.bitPattern)
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
        for s in series {
            for b in s.key.utf8 {
                h ^= UInt64(b)
                h = h &* 0x0000_0100_0000_01B3
            }
            h ^= 0xFF
            h = h &* 0x0000_0100_0000_01B3
        }
        return "mlflow-" + String(h, radix: 16)
    }

    /// The series with exact repeats (step, timestamp, value bits) dropped, keeping first occurrences. Strictly
    /// increasing steps, the usual case, cannot repeat and cost one pass.
    func withoutRepeats() -> [SeriesBatch] {
        let increasing = { (b: SeriesBatch) in
            b.steps.withUnsafeBufferPointer { st in st.count < 2 || (1..<st.count).allSatisfy { st[$0 &- 1] < st[$0] } }
        }
        if series.allSatisfy(increasing) { return series }  // no copy of every series
        return series.map { b in
            guard !increasing(b) else { return b }
            struct Point: Hashable { var step: Int64, timestamp: Int64, bits: UInt64 }
            var seen = Set<Point>(minimumCapacity: b.steps.count)
            var keep = SeriesBatch(key: b.key, steps: [], timestamps: [], values: [])
            for i in b.steps.indices where seen.insert(Point(step: b.steps[i], timestamp: b.timestamps[i], bits: b.values[i].bitPattern)).inserted {
                keep.steps.append(b.steps[i])
                keep.timestamps.append(b.timestamps[i])
                keep.values.append(b.values[i])
            }
            return keep
        }
    }
}
