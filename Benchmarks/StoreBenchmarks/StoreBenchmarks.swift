import Benchmark
import TallyStore
import TallyWorkloads

#if canImport(Glibc)
import Glibc
#endif

/// Codec and query kernels on one 32,768-point block of a realistic run (and a 10M-point series for M4).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )
    let block = 32_768
    let run = SyntheticRun(rows: block)
    let codec = ColumnCodec(compression: .zstd(level: 3))

    for key in ["train_loss", "lr", "batch_acc"] {
        let values = run.values[key]!
        let encoded = try! codec.encode(values: values)
        Benchmark("encode values \(key) (32K)", configuration: .init(scalingFactor: .kilo)) { b in
            for _ in b.scaledIterations { blackHole(try codec.encode(values: values)) }
        }
        Benchmark("decode values \(key) (32K)", configuration: .init(scalingFactor: .kilo)) { b in
            for _ in b.scaledIterations { blackHole(try codec.decodeValues(encoded, count: block)) }
        }
    }
    let ts = run.timestamps
    let encodedTs = try! codec.encode(integers: ts)
    Benchmark("encode timestamps (32K)", configuration: .init(scalingFactor: .kilo)) { b in
        for _ in b.scaledIterations { blackHole(try codec.encode(integers: ts)) }
    }
    Benchmark("decode timestamps (32K)", configuration: .init(scalingFactor: .kilo)) { b in
        for _ in b.scaledIterations { blackHole(try codec.decodeIntegers(encodedTs, count: block)) }
    }

    // M4 over a sealed 10M-point series, warm.
    let dir = "/tmp/tally-kernel-bench-\(getpid())"
    var config = StoreConfiguration()
    config.durableSegments = false
    let store = try! MetricStore(directory: dir, configuration: config)
    let long = SyntheticRun(rows: 10_000_000, seed: 7)
    let loss = long.values["train_loss"]!
    var i = 0
    while i < long.rows {
        let j = min(long.rows, i + 100_000)
        try! store.append(run: "long", series: [SeriesBatch(key: "train_loss", steps: Array(long.steps[i..<j]),
                                                           timestamps: Array(long.timestamps[i..<j]), values: Array(loss[i..<j]))])
        i = j
    }
    try! store.flush()
    Benchmark("m4 10M points to 1000 buckets", configuration: .init(scalingFactor: .one)) { b in
        for _ in b.scaledIterations {
            blackHole(try store.downsample(run: "long", key: "train_loss", steps: 0...9_999_999, buckets: 1_000))
        }
    }
    Benchmark("latest of a 10M-point series", configuration: .init(scalingFactor: .kilo)) { b in
        for _ in b.scaledIterations { blackHole(try store.latest(run: "long", key: "train_loss")) }
    }
}
