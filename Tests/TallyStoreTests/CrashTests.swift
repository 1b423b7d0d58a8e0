import Testing
import TallyWorkloads
@testable import TallyStore

#if canImport(Glibc)
import Glibc
#endif

/// Crash testing: a child process (`tally store crash-writer`) appends acknowledged batches in `sync` durability and
/// is killed with SIGKILL at random moments; after each kill the store is reopened and checked.
///
/// `TALLY_CRASH_CYCLES` sets the number of kills (default 100).
@Suite(.serialized) struct CrashTests {
    static let runs = 4
    static let pointsPerBatch = 40

    /// The debug `tally` binary built next to the tests.
    static var tallyBinary: String {
        let root = FilePath(#filePath).removingLastComponent().removingLastComponent().removingLastComponent().string
        return root + "/.build/debug/tally"
    }

    /// A running child and its output so far.
    final class Child {
        let pid: pid_t
        let out: Int32
        var buffer: [UInt8] = []
        var lines: [String] = []

        init(_ args: [String]) throws {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw StorageError(.io, "pipe failed") }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_addclose(&actions, fds[0])
            var pid: pid_t = 0
            let argv = args.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            let rc = posix_spawn(&pid, args[0], &actions, nil, argv, environ)
            posix_spawn_file_actions_destroy(&actions)
            close(fds[1])
            guard rc == 0 else { throw StorageError(.io, "posix_spawn \(args[0]) failed: \(rc)") }
            self.pid = pid
            out = fds[0]
            _ = fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK)
        }

        /// Reads what is available; complete lines go to `lines`.
        func drain() {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(out, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                buffer += chunk[..<n]
            }
            while let nl = buffer.firstIndex(of: 10) {
                lines.append(String(decoding: buffer[..<nl], as: UTF8.self))
                buffer.removeSubrange(...nl)
            }
        }

        func waitFor(_ prefix: String, timeoutMs: Int) -> Bool {
            for _ in 0..<(timeoutMs / 2) {
                drain()
                if lines.contains(where: { $0.hasPrefix(prefix) }) { return true }
                usleep(2_000)
            }
            return false
        }

        func kill() {
            _ = Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            drain()  // lines written before the kill are acknowledged
            close(out)
        }
    }

    /// Checks every run: acknowledged batches present exactly once, every batch whole or absent, values right.
    static func verify(_ dir: String, acked: [Int: Set<Int>], cycle: Int, wideKeys: Int = 0) throws {
        var config = StoreConfiguration()
        config.blockPoints = 256
        config.rollupPointsPerBucket = 8
        var wal = WALConfiguration()
        wal.durability = .none
        wal.segmentBytes = 256 << 10
        config.wal = wal
        let store = try MetricStore(directory: dir, configuration: config)
        let p = pointsPerBatch
        for r in 0..<runs {
            for key in ["m", "n"] {
                let d = try store.read(run: "run\(r)", key: key)
                var batches: [Int: Int] = [:]
                for (i, s) in d.steps.enumerated() {
                    let b = Int(s) / p
                    batches[b, default: 0] += 1
                    let want = CrashWorkload.value(run: r, batch: b, point: Int(s) % p) * (key == "m" ? 1 : -1)
                    if d.values[i] != want || d.timestamps[i] != Int64(b) {
                        Issue.record("cycle \(cycle): run \(r) key \(key) step \(s) holds \(d.values[i])@\(d.timestamps[i]), expected \(want)")
                        return
                    }
                }
                #expect(d.steps == d.steps.sorted(), "cycle \(cycle): run \(r) \(key) out of order")
                for (b, n) in batches where n != p {
                    Issue.record("cycle \(cycle): run \(r) key \(key) batch \(b) has \(n) of \(p) points (partial or duplicated)")
                }
                for b in acked[r] ?? [] where batches[b] == nil {
                    Issue.record("cycle \(cycle): run \(r) key \(key) lost acknowledged batch \(b)")
                }
            }
            // Wide batches: every key of a stored batch holds its one point, once (batches are whole or absent).
            guard wideKeys > 0 else { continue }
            let stored = Set(try store.read(run: "run\(r)", key: "m").steps.map { Int($0) / p })
            for k in 0..<wideKeys {
                let d = try store.read(run: "run\(r)", key: "w/k\(k)")
                let steps = d.steps.map { Int($0) }
                if Set(steps) != stored || steps.count != stored.count {
                    Issue.record("cycle \(cycle): run \(r) w/k\(k) holds batches \(steps.sorted()), m holds \(stored.sorted())")
                    return
                }
                for (i, b) in steps.enumerated() where d.values[i] != CrashWorkload.value(run: r, batch: b, point: k) {
                    Issue.record("cycle \(cycle): run \(r) w/k\(k) batch \(b) holds \(d.values[i])")
                    return
                }
            }
        }
        // Every second check closes cleanly (seals, empties the WAL); the others leave it as a crash would.
        if cycle % 2 == 0 { try store.close() }
    }

    @Test func killedWritersLoseNothingAcknowledged() throws {
        let dir = TempDir("crash")
        let cycles = Int(ProcessInfoLite.environment("TALLY_CRASH_CYCLES") ?? "") ?? 100
        let (_, totalAcks) = try Self.killCycles(["--runs", "\(Self.runs)"], dir: dir.path, cycles: cycles, seed: 500, pause: 1_000...41_000)
        #expect(totalAcks > cycles, "the writer made progress")
        #expect(try StoreCheck.check(directory: dir.path).problems.allSatisfy(\.repairedOnOpen))
    }

    /// Runs `cycles` times: starts the crash writer with `args` on `dir`, kills it (SIGKILL) after a random pause
    /// (µs) and checks the store against every batch acknowledged so far. Returns them and the number of
    /// acknowledgements (a batch sent again counts again).
    static func killCycles(_ args: [String], dir: String, cycles: Int, seed: UInt64, pause: ClosedRange<Int>, wideKeys: Int = 0,
                           refuseErrors: Bool = false) throws -> (acked: [Int: Set<Int>], total: Int) {
        let binary = Self.tallyBinary
        try #require(access(binary, X_OK) == 0, "build the CLI first (swift build --build-tests): \(binary)")
        var rng = SplitMix64(seed: seed)
        var acked: [Int: Set<Int>] = [:]
        var total = 0
        for cycle in 0..<cycles {
            let child = try Child([binary, "store", "crash-writer", "--dir", dir, "--points-per-batch", "\(Self.pointsPerBatch)"] + args)
            #expect(child.waitFor("READY", timeoutMs: 20_000), "cycle \(cycle): writer did not start: \(child.lines)")
            usleep(useconds_t(pause.lowerBound + Int(rng.next() % UInt64(pause.count))))
            child.kill()
            for line in child.lines where line.hasPrefix("ACK ") {
                let parts = line.split(separator: " ")
                acked[Int(parts[1])!, default: []].insert(Int(parts[2])!)
                total += 1
            }
            let refused = child.lines.filter { $0.hasPrefix("OPENFAIL") || (refuseErrors && $0.hasPrefix("ERR")) }
            #expect(refused.isEmpty, "cycle \(cycle): \(refused.prefix(3))")
            try verify(dir, acked: acked, cycle: cycle, wideKeys: wideKeys)
        }
        return (acked, total)
    }

    /// Benchmark-suite batches (two dense keys and 300 one-point keys per batch) under kill -9: every acknowledged
    /// point once, every batch whole or absent. `TALLY_CRASH_CYCLES` scales it too (a third of the dense count).
    @Test func killedWideWritersLoseNothingAcknowledged() throws {
        let dir = TempDir("crash-wide")
        let cycles = max(10, (Int(ProcessInfoLite.environment("TALLY_CRASH_CYCLES") ?? "") ?? 100) / 3)
        let (_, totalAcks) = try Self.killCycles(["--runs", "\(Self.runs)", "--wide-keys", "300"], dir: dir.path, cycles: cycles, seed: 501,
                                                 pause: 1_000...41_000, wideKeys: 300)
        #expect(totalAcks > cycles, "the writer made progress")
    }

    /// Four writers into one run, each sending its batches in a shuffled order under MLflow's exact-duplicate rule,
    /// killed at random moments; every restart sends every batch again from the start of its order, so stored points
    /// (in heads replayed from the log, frozen, sealed, compacted) come back as repeats. Every acknowledged point is
    /// stored exactly once. `TALLY_CRASH_CYCLES` scales it (a quarter of the dense count).
    @Test func killedOutOfOrderWritersIntoOneRunStoreEveryPointOnce() throws {
        let dir = TempDir("crash-shared")
        let cycles = max(10, (Int(ProcessInfoLite.environment("TALLY_CRASH_CYCLES") ?? "") ?? 100) / 4)
        let (acked, totalAcks) = try Self.killCycles(["--writers", "4", "--shared-run", "--block-points", "64"], dir: dir.path, cycles: cycles,
                                                     seed: 502, pause: 10_000...160_000, refuseErrors: true)
        #expect(acked[0, default: []].count > 40, "the writers made progress: \(acked[0, default: []].count) batches")
        #expect(totalAcks > acked[0, default: []].count, "stored batches were sent again")
    }

    @Test func aFullDiskSurfacesErrorsAndKeepsTheStoreConsistent() throws {
        let binary = Self.tallyBinary
        try #require(access(binary, X_OK) == 0, "build the CLI first (swift build --build-tests): \(binary)")
        let dir = TempDir("full")
        // Files may not grow past 48 KiB: the WAL and segments run into EFBIG, as on a full disk.
        let child = try Child([binary, "store", "crash-writer", "--dir", dir.path, "--runs", "2", "--writers", "1",
                               "--points-per-batch", "\(Self.pointsPerBatch)", "--file-size-limit", "\(48 << 10)"])
        #expect(child.waitFor("READY", timeoutMs: 20_000))
        #expect(child.waitFor("ERR ", timeoutMs: 20_000), "writes past the limit must fail")
        usleep(50_000)
        child.kill()
        var acked: [Int: Set<Int>] = [:]
        for line in child.lines where line.hasPrefix("ACK ") {
            let parts = line.split(separator: " ")
            acked[Int(parts[1])!, default: []].insert(Int(parts[2])!)
        }
        #expect(!acked.isEmpty)
        #expect(child.lines.contains { $0.hasPrefix("ERR ") && $0.contains("errno") })
        try Self.verify(dir.path, acked: acked, cycle: 1)
    }
}

/// Reads an environment variable without Foundation.
enum ProcessInfoLite {
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

import SystemPackage
