/// A synthetic but realistic training run: seven metrics logged every step, as a training loop logs them.
///
/// - `train_loss`: decaying minibatch loss with 6 % multiplicative noise (float32)
/// - `ema_loss`: EMA(0.98) of it (float32)
/// - `lr`: linear warm-up then cosine decay, computed in float32
/// - `batch_acc`: k/256 with k binomial around a rising accuracy
/// - `grad_norm`: log-normal (σ = 0.25) around a decaying level, with rare 10× spikes (0.1 %)
/// - `throughput`: 1500 ± 2 % samples/s (float32)
/// - `epoch`: the epoch number (piecewise constant)
///
/// Steps are regular (0, 1, 2, …); timestamps are wall-clock milliseconds ~250 ms apart with ±5 ms jitter,
/// shared by all metrics of a step.
public struct SyntheticRun: Sendable {
    /// The metric keys, in generation order.
    public static let keys = ["train_loss", "ema_loss", "lr", "batch_acc", "grad_norm", "throughput", "epoch"]

    /// Steps, one per row.
    public let steps: [Int64]
    /// Timestamps, one per row.
    public let timestamps: [Int64]
    /// Values per metric key, one per row.
    public let values: [String: [Double]]

    /// Generates `rows` steps of every metric.
    public init(rows: Int, seed: UInt64 = 42, startStep: Int64 = 0, startTime: Int64 = 1_700_000_000_000) {
        var rng = SplitMix64(seed: seed)
        var steps = [Int64](), ts = [Int64]()
        steps.reserveCapacity(rows)
        ts.reserveCapacity(rows)
        var cols = [[Double]](repeating: [], count: Self.keys.count)
        for i in cols.indices { cols[i].reserveCapacity(rows) }
        let total = Float(max(rows, 1))
        let warmup = max(Float(1), total * 0.02)
        let stepsPerEpoch = max(1, rows / 20)
        var ema: Float = 0
        var t = startTime
        for i in 0..<rows {
            let s = startStep + Int64(i)
            let x = Float(i)
            steps.append(s)
            ts.append(t)
            t += 250 + Int64(rng.next() % 11) - 5
            let progress = Double(i) / Double(max(rows, 1))
            let clean = 2.2 * _exp(-4 * progress) + 0.15
            let loss = Float(clean * (1 + 0.06 * rng.normal()))
            ema = i == 0 ? loss : 0.98 * ema + 0.02 * loss
            let lr: Float = x < warmup
                ? 3e-4 * (x + 1) / warmup
                : 3e-4 * 0.5 * (1 + _cosf(Float.pi * (x - warmup) / max(1, total - warmup)))
            let p = 0.2 + 0.7 * (1 - _exp(-5 * progress))
            let k = min(256, max(0, Int((256 * p + (256 * p * (1 - p)).squareRoot() * rng.normal()).rounded())))
            var g = Float(1.5 * _exp(-2 * progress) + 0.3) * Float(_exp(0.25 * rng.normal()))
            if rng.next() % 1000 == 0 { g *= 10 }
            let thr = Float(1500 * (1 + 0.02 * rng.normal()))
            cols[0].append(Double(loss))
            cols[1].append(Double(ema))
            cols[2].append(Double(lr))
            cols[3].append(Double(Float(k) / 256))
            cols[4].append(Double(g))
            cols[5].append(Double(thr))
            cols[6].append(Double(i / stepsPerEpoch))
        }
        self.steps = steps
        self.timestamps = ts
        var values: [String: [Double]] = [:]
        for (i, k) in Self.keys.enumerated() { values[k] = cols[i] }
        self.values = values
    }

    /// Rows (steps).
    public var rows: Int { steps.count }
}
