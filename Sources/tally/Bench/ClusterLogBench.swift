import ArgumentParser
import Foundation
import Synchronization
import TallyStore
import TallyTracking
import TallyWorkloads

/// `tally bench cluster-log`: the shared log of cluster mode (``ClusterState``) on a PostgreSQL database: writers,
/// each owning runs by lease, append batches of points encoded as the segment format's compressed columns
/// (`ColumnCodec`), several records per commit (group commit), for a fixed time; then the records are trimmed. The
/// per-component figures of docs/scale-out.md's sizing: records, points and bytes per second, commit latency, what a
/// row costs PostgreSQL on disk, and trim speed.
struct ClusterLogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-log",
        abstract: "Measure cluster mode's shared log in PostgreSQL: group-committed appends of compressed point batches (prints JSON with --json)."
    )

    @Option(help: "The PostgreSQL database (postgresql://user:password@host:port/db); its schema is migrated, the log emptied first.")
    var postgres: String
    @Option(help: "Concurrent writers (each a server's log writer).") var writers = 4
    @Option(help: "Runs each writer owns (records go to them in turn).") var runsPerWriter = 8
    @Option(help: "Points per record (one logging request's batch of one run).") var pointsPerRecord = 1000
    @Option(help: "Records per commit (the group commit).") var recordsPerCommit = 8
    @Option(help: "Seconds of appending.") var duration = 10.0
    @OptionGroup var output: BenchOutput

    mutating func run() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: postgres), poolSize: writers + 2)
        defer { db.close() }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: Int64(Date().timeIntervalSince1970 * 1000))
        try db.withConnection { c in try c.execute("TRUNCATE tally_log; DELETE FROM tally_leases WHERE owner LIKE 'bench-%'") }
        // A record: steps, timestamps and a loss-like float32 curve, in the segment format's column encodings.
        let codec = ColumnCodec()
        var rng = SplitMix64(seed: 7)
        let steps = (0..<pointsPerRecord).map { Int64($0) }
        let stamps = steps.map { 1_700_000_000_000 + $0 * 37 + Int64(rng.unit() * 5) }
        let values = steps.map { Double(Float(1 / (1 + Double($0) / 500) + 0.01 * rng.unit())) }
        let payload = try codec.encode(table: [steps, stamps], values: [values])
        let states = (0..<writers).map { w in ClusterState(db: db, node: "bench-\(w)", url: "http://127.0.0.1:\(9000 + w)", leaseMillis: 600_000) }
        var leases: [[(String, Int64)]] = []
        for (w, s) in states.enumerated() {
            leases.append(try (0..<runsPerWriter).map { r in
                let run = "bench-run-\(w)-\(r)"
                guard case .owned(let l) = try s.acquire(run: run) else { throw ValidationError("run \(run) is leased elsewhere") }
                return (run, l.epoch)
            })
        }
        struct Tally {
            var commits = 0
            var records = 0
            var latencies: [Double] = []
            var failure: String?
        }
        let tally = Mutex(Tally())
        let deadline = ContinuousClock.now + .milliseconds(Int(duration * 1000))
        let perCommit = recordsPerCommit, mine = leases, body = payload
        let started = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            var next = 0
            var local = Tally()
            while ContinuousClock.now < deadline {
                let batch = (0..<perCommit).map { i -> (run: String, epoch: Int64, payload: [UInt8]) in
                    let (run, epoch) = mine[w][(next + i) % mine[w].count]
                    return (run, epoch, body)
                }
                next += perCommit
                do {
                    let t = try seconds { _ = try states[w].append(batch) }
                    local.commits += 1
                    local.records += perCommit
                    local.latencies.append(t * 1000)
                } catch {
                    local.failure = "\(error)"
                    break
                }
            }
            let done = local
            tally.withLock {
                $0.commits += done.commits
                $0.records += done.records
                $0.latencies += done.latencies
                if $0.failure == nil { $0.failure = done.failure }
            }
        }
        let elapsed = seconds(since: started)
        let t = tally.withLock { $0 }
        if let f = t.failure { throw ValidationError("an append failed: \(f)") }
        let onDisk = try db.withConnection { try $0.rows("SELECT pg_total_relation_size('tally_log')")[0][0].int ?? 0 }
        let runs = leases.flatMap { $0.map(\.0) }
        let trim = try seconds { for r in runs { _ = try states[0].trim(run: r, through: Int64.max) } }
        var out = JSONObject()
        out.add("writers", writers)
        out.add("records_per_commit", perCommit)
        out.add("points_per_record", pointsPerRecord)
        out.add("payload_bytes_per_record", payload.count)
        out.add("payload_bytes_per_point", Double(payload.count) / Double(pointsPerRecord), digits: 3)
        out.add("commits_per_s", Double(t.commits) / elapsed, digits: 1)
        out.add("records_per_s", Double(t.records) / elapsed, digits: 1)
        out.add("points_per_s", Double(t.records * pointsPerRecord) / elapsed, digits: 0)
        out.add("payload_mb_per_s", Double(t.records * payload.count) / elapsed / 1e6, digits: 2)
        out.add("commit_ms_median", median(t.latencies), digits: 2)
        let sorted = t.latencies.sorted()
        out.add("commit_ms_p99", sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)], digits: 2)
        out.add("postgres_bytes_per_record", Double(onDisk) / Double(max(1, t.records)), digits: 1)
        out.add("trim_records_per_s", Double(t.records) / trim, digits: 0)
        output.emit(out)
    }
}
