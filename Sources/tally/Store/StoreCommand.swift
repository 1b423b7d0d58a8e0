import ArgumentParser
import Foundation
import TallyStore

#if canImport(Glibc)
import Glibc
#endif

/// `tally store`: offline tools for a store directory.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Check, repair or exercise a metric store directory (the server must not be running on it).",
        subcommands: [Check.self, Stats.self, Repair.self, CrashWriter.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every WAL record and every segment block (checksums and decoding); exit 1 on damage.")

        @Argument(help: "The store directory (the server's --data-dir/metrics).")
        var directory: String

        func run() throws {
            let r = try StoreCheck.check(directory: directory)
            print("WAL: \(r.walSegments) segments, \(r.walRecords) valid records")
            print("segments: \(r.segments) files, \(r.blocks) blocks, \(r.points) points")
            if r.problems.isEmpty {
                print("ok: no damage found")
                return
            }
            for p in r.problems { print("damage: \(p)") }
            throw ExitCode(1)
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bytes on disk of every sealed series, by column (values, steps, timestamps, rollups, index), per run.")

        @Argument(help: "The store directory.")
        var directory: String

        @Option(name: .customLong("run"), help: "Only this run.")
        var only: String?

        func run() throws {
            guard FileManager.default.fileExists(atPath: directory + "/runs") else { throw ValidationError("\(directory) is not a metric store (no runs/)") }
            var config = StoreConfiguration()
            config.wal = nil  // read only what is sealed: no replay, and nothing written on close
            let store = try MetricStore(directory: directory, configuration: config)
            defer { try? store.close() }
            func cell(_ bytes: Int, _ points: Int) -> String { String(format: "%8.3f", Double(bytes) / Double(max(points, 1))) }
            print("run / key                                points  blocks   values    steps  timest.  rollups    index   packed    total  (bytes/point)")
            for id in only.map({ [$0] }) ?? store.runIDs() {
                var total = (points: 0, blocks: 0)
                for (key, s) in try store.storage(run: id).sorted(by: { $0.key < $1.key }) {
                    let all = s.valueBytes + s.stepBytes + s.timestampBytes + s.rollupBytes + s.indexBytes + s.packedBytes
                    print(String(format: "%@ %10d %7d", (id + " " + key).padding(toLength: 48, withPad: " ", startingAt: 0), s.points, s.blocks)
                        + [s.valueBytes, s.stepBytes, s.timestampBytes, s.rollupBytes, s.indexBytes, s.packedBytes, all].map { cell($0, s.points) }
                        .joined(separator: " "))
                    total.points += s.points
                    total.blocks += s.blocks
                }
                let st = try store.stats(run: id)
                let segments = st.segmentBytes
                print("\(id): \(total.points) points, \(total.blocks) blocks, \(segments) segment bytes (steps and timestamps "
                      + "\(st.stepTimestampBytes), rollups \(st.rollupBytes)), "
                      + String(format: "%.3f", Double(segments) / Double(max(total.points, 1))) + " bytes/point (shared columns counted once)")
            }
        }
    }

    struct Repair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut the WAL at its first damaged record and move damaged segments aside; report what was dropped.")

        @Argument(help: "The store directory.")
        var directory: String

        func run() throws {
            let r = try StoreCheck.repair(directory: directory)
            if r.actions.isEmpty { print("nothing to repair") }
            for a in r.actions { print(a) }
            if r.droppedRecords > 0 || r.droppedPoints > 0 {
                print("dropped: \(r.droppedRecords) WAL records, \(r.droppedPoints) points")
            }
        }
    }
}
