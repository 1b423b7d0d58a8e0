import Foundation
import TallyStore

/// The record of one source's import into a data directory, `imports/<hash of the source>.journal`: a line per
/// fact, appended and fsynced before the import goes on, so a killed import knows on its rerun what it finished.
///
/// ```
/// source <the source, once, first>
/// experiment <source id> <tally id>
/// begin <run id>
/// done <run id> <the source run's fingerprint when it was imported>
/// ```
struct ImportJournal {
    private(set) var experiments: [String: String] = [:]
    private(set) var begun: Set<String> = []
    /// Finished runs, with the source's fingerprint of each at the time.
    private(set) var done: [String: String] = [:]
    private let path: String
    private let dryRun: Bool

    /// Reads (or, unless `dryRun`, creates) the journal of `source` in `directory`.
    init(directory: String, source: String, dryRun: Bool) throws {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in source.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        path = directory + "/" + String(h, radix: 16) + ".journal"
        self.dryRun = dryRun
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            // The last element is "" after a final newline, or a line torn by a kill: its fact is redone, and the
            // file is cut back to its last whole line so the next fact does not join it.
            let torn = lines.removeLast()
            if !torn.isEmpty, !dryRun, truncate(path, off_t(text.utf8.count - torn.utf8.count)) != 0 {
                throw TrackingError(.internalError, "Cannot repair the import journal \(path): errno \(errno)")
            }
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
                switch (parts.first, parts.count) {
                case ("experiment"?, 3): experiments[parts[1]] = parts[2]
                case ("begin"?, 2): begun.insert(parts[1])
                case ("done"?, 2): done[parts[1]] = ""
                case ("done"?, 3): done[parts[1]] = parts[2]
                default: break
                }
            }
        } else if !dryRun {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try append("source \(source)")
        }
    }

    mutating func experiment(_ sourceID: String, is tallyID: String) throws {
        experiments[sourceID] = tallyID
        try append("experiment \(sourceID) \(tallyID)")
    }

    mutating func begin(_ run: String) throws {
        begun.insert(run)
        try append("begin \(run)")
    }

    mutating func finish(_ run: String, fingerprint: String) throws {
        done[run] = fingerprint
        try append("done \(run) \(fingerprint)")
    }

    /// Appends a line and makes it durable.
    private func append(_ line: String) throws {
        guard !dryRun else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot write the import journal \(path): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count, fsync(fd) == 0 else { throw TrackingError(.internalError, "Cannot write the import journal \(path): errno \(errno)") }
    }
}
