import ArgumentParser
import Foundation
import TallyServer
import TallyStore
import TallyTracking

/// `tally bench wide`: benchmark-suite runs (thousands of metric keys, a few points each) through the tracking
/// service in process: ingest rate through `log-batch`, bytes on disk (metric store and metadata), memory (RSS), and
/// the latency of a filtered search page and of getting one run.
struct WideBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wide",
        abstract: "Measure wide runs: many keys, few points per key (prints JSON with --json)."
    )

    @Option(help: "Runs.") var runs = 200
    @Option(help: "Metric keys per run (named like suite07/task_0042/acc).") var keys = 2_000
    @Option(help: "Points per key (one per evaluated checkpoint).") var pointsPerKey = 1
    @Option(help: "Metrics per log-batch request (MLflow's limit is 1,000).") var batch = 1_000
    @Option(help: "Concurrent writers.") var threads = 4
    @Option(help: "Metric durability: sync, batch:N or none.") var durability = "sync"
    @OptionGroup var output: BenchOutput

    /// `suiteSS/task_TTTT/acc`: 100 tasks per suite, so keys group by suite as benchmark harnesses name them.
    static func key(_ k: Int) -> String {
        let suite = k / 100, task = k % 100
        return "suite\(suite < 10 ? "0" : "")\(suite)/task_\(String(repeating: "0", count: max(0, 4 - String(task).count)))\(task)/acc"
    }

    /// An accuracy as a harness reports it: a fraction of a few hundred examples, as float32.
    static func value(run: Int, key: Int, checkpoint: Int) -> Double {
        let examples = 100 + (key * 37) % 400
        let correct = (run &* 7_919 &+ key &* 104_729 &+ checkpoint &* 1_299_709) % (examples + 1)
        return Double(Float(Double(correct) / Double(examples)))
    }

    /// The benchmark's requests in logging order: per checkpoint, every run's keys in requests of `batch` metrics.
    static func requests(runs: Int, keys: Int, pointsPerKey: Int, batch: Int) -> [(run: Int, metrics: [Metric])] {
        let t0: Int64 = 1_700_000_000_000
        var out: [(run: Int, metrics: [Metric])] = []
        for c in 0..<pointsPerKey {
            for r in 0..<runs {
                for start in stride(from: 0, to: keys, by: batch) {
                    out.append((r, (start..<min(keys, start + batch)).map { k in
                        Metric(key: key(k), value: value(run: r, key: k, checkpoint: c), timestamp: t0 + Int64(c) * 60_000, step: Int64(c) * 1_000)
                    }))
                }
            }
        }
        return out
    }

    func service(_ path: String) throws -> TrackingService { try benchService(path, durability: durability) }

    func run() throws {
        let root = output.scratch("wide")
        defer { system_rm(root) }
        var out = JSONObject()
        out.add("runs", runs)
        out.add("keys", keys)
        out.add("points_per_key", pointsPerKey)
        out.add("durability", durability)
        let rssStart = residentBytes()

        var ids: [String] = []
        var total = 0
        do {
            let s = try service(root)
            let exp = try s.createExperiment(name: "suite")
            ids = try (0..<runs).map { _ in try s.createRun(experimentID: exp).info.runID }
            // Requests built before the clock starts, as a client would have them ready: per checkpoint, every run's
            // keys in batches of `batch`.
            var requests: [[(run: Int, batch: MetricBatch)]] = Array(repeating: [], count: threads)
            for (n, req) in Self.requests(runs: runs, keys: keys, pointsPerKey: pointsPerKey, batch: batch).enumerated() {
                requests[n % threads].append((req.run, MetricBatch(req.metrics)))
                total += req.metrics.count
            }
            let work = requests
            let runIDs = ids
            let t = try seconds {
                try onThreads(threads) { i in
                    for (r, b) in work[i] { try s.logBatch(runID: runIDs[r], batch: b) }
                }
            }
            out.add("points", total)
            out.add("ingest_points_per_s", Double(total) / t, digits: 0)
            out.add("rss_after_ingest_mb", Double(residentBytes() - rssStart) / 1e6, digits: 1)
            out.add("head_bytes_mb", Double(s.metrics.headBytes) / 1e6, digits: 1)
            try s.close()
        }
        let metricBytes = treeBytes(root + "/metrics")
        let metaBytes = ["", "-wal", "-shm"].reduce(0) { $0 + treeBytes(root + "/metadata.sqlite" + $1) }
        out.add("metric_store_bytes_per_point", Double(metricBytes) / Double(total), digits: 2)
        out.add("metadata_bytes_per_point", Double(metaBytes) / Double(total), digits: 2)
        out.add("bytes_per_point", Double(metricBytes + metaBytes) / Double(total), digits: 2)

        // Reads after a restart: a filtered page of 100 runs ordered by one of the keys, every run page by page, and
        // one run at a time.
        let s = try service(root)
        let probe = Self.key(keys / 2)
        let filter = "metrics.`\(probe)` > 0.5"
        var page: [Double] = [], all: [Double] = [], get: [Double] = []
        var matched = 0
        for _ in 0..<11 {
            page.append(try seconds {
                matched = try s.searchRuns(experimentIDs: ["1"], filter: filter, maxResults: 100, orderBy: ["metrics.`\(probe)` DESC"]).items.count
            })
            all.append(try seconds {
                var token: String?
                repeat {
                    let p = try s.searchRuns(experimentIDs: ["1"], maxResults: 100, pageToken: token)
                    token = p.nextPageToken
                } while token != nil
            })
        }
        for i in 0..<21 { get.append(try seconds { _ = try s.run(id: ids[(i * 7) % ids.count]) }) }
        out.add("search_filter", filter)
        out.add("search_page_matched", matched)
        out.add("search_page_ms_p50", median(page) * 1000)
        out.add("search_all_pages_ms_p50", median(all) * 1000)
        out.add("get_run_ms_p50", median(get) * 1000)
        // The scoreboard's computation alone (bench http adds rendering and the transfer).
        let board = ScoreboardQuery(runIDs: Array(ids.prefix(100)))
        var boards: [Double] = []
        for _ in 0..<11 { boards.append(try seconds { _ = try s.scoreboard(board) }) }
        out.add("scoreboard_compute_ms_p50", median(boards) * 1000)
        out.add("rss_after_reads_mb", Double(residentBytes() - rssStart) / 1e6, digits: 1)
        try s.close()
        output.emit(out)
    }
}

/// A process's resident set size, bytes (`VmRSS` of /proc/PID/status; this process by default; 0 where there is none).
func residentBytes(of pid: String = "self") -> Int { statusBytes("VmRSS", of: pid) }

/// A size field (kB) of /proc/PID/status in bytes; 0 where there is none.
func statusBytes(_ field: String, of pid: String = "self") -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`; 0 when unreadable.
func cpuSeconds(of pid: String = "self") -> Double {
    ProcessStat(pid: pid)?.cpuSeconds ?? 0
}

/// Bytes of the files under `path` (or of the file itself); 0 when missing.
func treeBytes(_ path: String) -> Int {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return 0 }
    guard isDir.boolValue else { return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
    var total = 0
    for case let name as String in FileManager.default.enumerator(atPath: path) ?? FileManager.DirectoryEnumerator() {
        let full = path + "/" + name
        var d: ObjCBool = false
        if FileManager.default.fileExists(atPath: full, isDirectory: &d), !d.boolValue {
            total += (try? FileManager.default.attributesOfItem(atPath: full)[.size] as? Int) ?? 0
        }
    }
    return total
}
