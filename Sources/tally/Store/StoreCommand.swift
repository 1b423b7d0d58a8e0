import ArgumentParser
import TallyStore

#if canImport(Glibc)
import Glibc
#endif

/// `tally store`: offline tools for a store directory.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Check, repair or exercise a metric store directory (the server must not be running on it).",
        subcommands: [Check.self, Repair.self, CrashWriter.self]
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
