import ArgumentParser
import Foundation
import TallyStore
import TallyWorkloads

/// `tally bench wal`: durability figures of the write-ahead log.
struct WALBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Measure durable ingest, batch mode, replay and reopen (prints JSON with --json)."
    )

    @Option(help: "Points each writer count appends in total.")
    var points = 4_000_000
    @Option(help: "Points per append.")
    var batch = 1_000
    @Option(help: "Points appended then replayed after a simulated crash.")
    var replayPoints = 10_000_000
    @Option(help: "Sealed points spread over 1,000 runs for the reopen figure (0 skips it).")
    var openPoints = 100_000_000
    @Flag(help: "Store WAL point columns uncompressed (default: lz4 when it saves 1/8).")
    var noCompress = false
    @OptionGroup var output: BenchOutput

    func run() throws {
        let root = output.scratch("wal")
        defer { system_rm(root) }
        var out = JSONObject()
        out.add("fsync_ms_p50", try fsyncMedian(root) * 1000)
        let data = SyntheticRun(rows: batch)
        let loss = data.values["train_loss"]!
        for writers in [1, 8, 64] {
            out.add("durable_points_per_s_\(writers)w", try ingest(root + "/sync\(writers)", writers: writers, durability: .sync, loss: loss), digits: 0)
        }
        out.add("batch_mode_points_per_s_8w", try ingest(root + "/batch", writers: 8, durability: .batch(milliseconds: 10), loss: loss), digits: 0)
        let (replayRate, replayed) = try replay(root + "/replay", loss: loss)
        out.add("replay_points_per_s", replayRate, digits: 0)
        out.add("replayed_points", replayed)
        if openPoints > 0 {
            let (ms, firstRead) = try reopen(root + "/open", loss: loss)
            out.add("open_points", openPoints)
            out.add("open_ms", ms)
            out.add("open_first_read_ms", firstRead)
        }
        out.add("wal_compression", noCompress ? "none" : "lz4")
        out.add("batch_points", batch)
        out.add("points_per_measure", points)
        output.emit(out)
    }

    func fsyncMedian(_ root: String) throws -> Double {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let path = root + "/fsync-probe"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot create \(path)") }
        defer { close(fd); unlink(path) }
        var block = [UInt8](repeating: 0xAB, count: 4096)
        var times: [Double] = []
        for _ in 0..<50 {
            times.append(seconds {
                _ = block.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
                fdatasync(fd)
            })
        }
        return median(times)
    }

    func config(_ durability: Durability) -> StoreConfiguration {
        var c = StoreConfiguration()
        var w = WALConfiguration()
        w.durability = durability
        w.compress = !noCompress
        c.wal = w
        return c
    }

    /// `writers` threads, each appending `batch`-point batches to its own run until `points` in total.
    func ingest(_ dir: String, writers: Int, durability: Durability, loss: [Double]) throws -> Double {
        let store = try MetricStore(directory: dir, configuration: config(durability))
        let perWriter = max(1, points / writers / batch)
        let batch = self.batch
        let t = try seconds {
            try onThreads(writers) { w in
                for b in 0..<perWriter {
                    let steps = (0..<batch).map { Int64(b * batch + $0) }
                    try store.append(run: "w\(w)", series: [SeriesBatch(key: "loss", steps: steps, timestamps: steps, values: loss)])
                }
            }
        }
        try store.close()
        return Double(perWriter * writers * batch) / t
    }

    /// Appends without sealing, abandons the store as a crash would, and times the reopen that replays the log.
    func replay(_ dir: String, loss: [Double]) throws -> (Double, Int) {
        var c = config(.none)
        c.sealPoints = Int.max
        c.headMemoryBudget = Int.max
        c.wal!.segmentBytes = 256 << 20
        do {
            let store = try MetricStore(directory: dir, configuration: c)
            var done = 0
            var b = 0
            while done < replayPoints {
                let steps = (0..<batch).map { Int64(b * batch + $0) }
                try store.append(run: "r\(b % 8)", series: [SeriesBatch(key: "loss", steps: steps, timestamps: steps, values: loss)])
                done += batch
                b += 1
            }
        }
        var replayed = 0
        let t = try seconds {
            let store = try MetricStore(directory: dir, configuration: c)
            replayed = store.recovery.replayedPoints
        }
        return (Double(replayed) / t, replayed)
    }

    /// Builds a store of 1,000 runs holding `openPoints` sealed points, closes it, then times reopening it and
    /// serving one read (an M4 of one run) and the first read alone.
    func reopen(_ dir: String, loss: [Double]) throws -> (Double, Double) {
        var c = config(.none)
        c.durableSegments = false
        let perRun = max(batch, openPoints / 1000)
        do {
            let store = try MetricStore(directory: dir, configuration: c)
            let big = (0..<perRun).map { loss[$0 % loss.count] }
            let steps = (0..<perRun).map { Int64($0) }
            for r in 0..<1000 {
                try store.append(run: "run\(r)", series: [SeriesBatch(key: "loss", steps: steps, timestamps: steps, values: big)])
            }
            try store.close()
        }
        var firstRead = 0.0
        let total = try seconds {
            let store = try MetricStore(directory: dir, configuration: c)
            firstRead = try seconds {
                _ = try store.downsample(run: "run500", key: "loss", steps: 0...Int64(perRun - 1), buckets: 1000)
            }
        }
        return (total * 1000, firstRead * 1000)
    }
}

/// Runs `body(0)` … `body(n - 1)` on `n` threads at once, waits for all, and rethrows the first error.
func onThreads(_ n: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let failures = FailureBox()
    let group = DispatchGroup()
    for k in 0..<n {
        group.enter()
        Thread {
            defer { group.leave() }
            do { try body(k) } catch { failures.record(error) }
        }.start()
    }
    group.wait()
    if let e = failures.first { throw e }
}

/// Collects the first error of worker threads.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func record(_ e: any Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
    var first: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}
