import ArgumentParser
import Dispatch
import TallyStore
import TallyWorkloads

#if canImport(Glibc)
import Glibc
#endif

/// `tally store crash-writer`: the child process of the crash-test harness. Appends deterministic batches to a
/// store in `sync` durability and prints `ACK <run> <batch>` after each append returns, until it is killed.
struct CrashWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-writer",
        abstract: "Append acknowledged batches until killed (crash-test harness).",
        shouldDisplay: false
    )

    @Option var dir: String
    @Option var runs = 4
    @Option var writers = 2
    @Option var pointsPerBatch = 40
    @Option(help: "Block size of the store (small values make seals frequent).")
    var blockPoints = 256
    @Option(help: "Keys of one point each added to every batch (a benchmark-suite checkpoint: w/k0, w/k1, …).")
    var wideKeys = 0
    @Flag(help: "All writers append into run0, each its own batches (b ≡ writer mod writers) in a shuffled order, without batch ids, under MLflow's exact-duplicate rule; after a restart each starts its order again, so every stored batch is sent again and must be recognised point by point.")
    var sharedRun = false
    @Option(help: "Shared-run mode: batches in all.") var sharedBatches = 600
    @Option(help: "RLIMIT_FSIZE in bytes: writes past it fail as on a full disk.")
    var fileSizeLimit: Int?

    func run() throws {
        if let limit = fileSizeLimit {
            signal(SIGXFSZ, SIG_IGN)
            var lim = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
            _ = setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &lim)
        }
        var config = StoreConfiguration()
        config.blockPoints = blockPoints
        config.rollupPointsPerBucket = 8
        config.compactionThreshold = 4
        config.sealsInBackground = sharedRun  // the shared-run mode seals as `tally server` does
        var wal = WALConfiguration()
        wal.durability = .sync
        wal.segmentBytes = 256 << 10
        wal.maxSegments = 3
        config.wal = wal
        let store: MetricStore
        do {
            store = try MetricStore(directory: dir, configuration: config)
        } catch {
            Self.say("OPENFAIL \(error)")
            throw ExitCode(3)
        }
        let p = pointsPerBatch
        Self.say("READY")
        if sharedRun { return try runShared(store) }
        let group = DispatchGroup()
        for w in 0..<writers {
            DispatchQueue.global().async(group: group) {
                var next: [Int: Int] = [:]
                for r in stride(from: w, to: runs, by: writers) {
                    // Continue after the last stored batch, and first retry that batch (it must be a duplicate).
                    let last = (try? store.latest(run: "run\(r)", key: "m")).flatMap { $0 }.map { Int($0.step) / p } ?? -1
                    next[r] = max(0, last)
                }
                while true {
                    for r in stride(from: w, to: runs, by: writers) {
                        let b = next[r]!
                        let steps = (0..<p).map { Int64(b * p + $0) }
                        let vals = (0..<p).map { CrashWorkload.value(run: r, batch: b, point: $0) }
                        let ts = [Int64](repeating: Int64(b), count: p)
                        do {
                            let wide = (0..<wideKeys).map { k in
                                SeriesBatch(key: "w/k\(k)", steps: [Int64(b)], timestamps: [Int64(b)],
                                            values: [CrashWorkload.value(run: r, batch: b, point: k)])
                            }
                            try store.append(run: "run\(r)", series: [
                                SeriesBatch(key: "m", steps: steps, timestamps: ts, values: vals),
                                SeriesBatch(key: "n", steps: steps, timestamps: ts, values: vals.map { -$0 }),
                            ] + wide, batchID: "r\(r)-b\(b)")
                            Self.say("ACK \(r) \(b)")
                            next[r] = b + 1
                        } catch {
                            Self.say("ERR \(r) \(b) \(error)")
                            usleep(2_000)
                        }
                    }
                }
            }
        }
        group.wait()
    }

    /// The shared-run mode (see `sharedRun`): out-of-order and concurrent writers into one run.
    func runShared(_ store: MetricStore) throws {
        let group = DispatchGroup()
        let (p, writers, total) = (pointsPerBatch, writers, sharedBatches)
        for w in 0..<writers {
            DispatchQueue.global().async(group: group) {
                var order = Array(stride(from: w, to: total, by: writers))
                var rng = SplitMix64(seed: UInt64(w))
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                var k = 0
                while true {
                    let b = order[k % order.count]
                    let steps = (0..<p).map { Int64(b * p + $0) }
                    let vals = (0..<p).map { CrashWorkload.value(run: 0, batch: b, point: $0) }
                    let ts = [Int64](repeating: Int64(b), count: p)
                    do {
                        // As log-batch does: the mark, then the latest values, then the checked append.
                        let mark = try store.duplicateMark(run: "run0")
                        var latest: [String: MetricPoint] = [:]
                        for key in ["m", "n"] { latest[key] = try store.latest(run: "run0", key: key) }
                        let columns = SeriesColumns([SeriesBatch(key: "m", steps: steps, timestamps: ts, values: vals),
                                                     SeriesBatch(key: "n", steps: steps, timestamps: ts, values: vals.map { -$0 })])
                        let prepared = try store.prepareAppend(run: "run0", columns: columns, duplicates: DuplicateCheck(mark: mark, latest: latest))
                        try store.settle(try store.appendVisible(prepared))
                        Self.say("ACK 0 \(b)")
                        k += 1
                    } catch {
                        Self.say("ERR 0 \(b) \(error)")
                        usleep(2_000)
                    }
                }
            }
        }
        group.wait()
    }

    /// One line to stdout with a single write(2), so lines from several threads never interleave.
    static func say(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
    }
}
