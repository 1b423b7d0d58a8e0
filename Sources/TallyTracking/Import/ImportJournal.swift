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
/// map <run id> <its id at the destination>             (exports: the MLflow run a Tally run became)
/// imported <ms since the epoch> runs=… points=… …   (each finished import's summary: the provenance)
/// ```
struct ImportJournal {
    private(set) var experiments: [String: String] = [:]
    private(set) var begun: Set<String> = []
    /// Finished runs, with the source's fingerprint of each at the time.
    private(set) var done: [String: String] = [:]
    /// Ids given at the other end (an export's runs in the MLflow server).
    private(set) var mapped: [String: String] = [:]
    private let path: String
    private let dryRun: Bool

    /// Reads (or, unless `dryRun`, creates) the journal of `source` in `directory`.
    init(directory: String, source: String, dryRun: Bool) throws {
        path = directory + "/" + MLflowImport.digest(source) + ".journal"
        self.dryRun = dryRun
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TrackingError(.internalError, "Cannot read the import journal \(path)")
            }
            let text = String(decoding: data, as: UTF8.self)  // a torn last line may end inside a character
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            // The last element is "" after a final newline, or a line torn by a kill: its fact is redone, and the
            // file is cut back to its last whole line so the next fact does not join it.
            let torn = lines.removeLast()
            let whole = data.count - (data.lastIndex(of: UInt8(ascii: "\n")).map { data.count - 1 - $0 } ?? data.count)
            if !torn.isEmpty, !dryRun, truncate(path, off_t(whole)) != 0 {
                throw TrackingError(.internalError, "Cannot repair the import journal \(path): errno \(errno)")
            }
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 2).map { Self.unescape(String($0)) }
                switch (parts.first, parts.count) {
                case ("experiment"?, 3): experiments[parts[1]] = parts[2]
                case ("begin"?, 2): begun.insert(parts[1])
                case ("done"?, 2): done[parts[1]] = ""
                case ("done"?, 3): done[parts[1]] = parts[2]
                case ("map"?, 3): mapped[parts[1]] = parts[2]
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
        try append("experiment \(Self.escape(sourceID)) \(Self.escape(tallyID))")
    }

    mutating func map(_ key: String, to id: String) throws {
        mapped[key] = id
        try append("map \(Self.escape(key)) \(Self.escape(id))")
    }

    mutating func begin(_ key: String) throws {
        begun.insert(key)
        try append("begin \(Self.escape(key))")
    }

    mutating func finish(_ key: String, fingerprint: String) throws {
        done[key] = fingerprint
        try append("done \(Self.escape(key)) \(Self.escape(fingerprint))")
    }

    /// Appends an informational line (an import's summary), which reading skips.
    mutating func record(_ line: String) throws {
        try append(line.replacingOccurrences(of: "\n", with: " "))
    }

    /// Keys (a registered model's name may hold anything) with `%`, space and newline percent-encoded, so a line
    /// always splits into its fields.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "%": out += "%25"
            case " ": out += "%20"
            case "\n": out += "%0A"
            case "\r": out += "%0D"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("%") else { return s }
        return s.replacingOccurrences(of: "%20", with: " ").replacingOccurrences(of: "%0A", with: "\n")
            .replacingOccurrences(of: "%0D", with: "\r").replacingOccurrences(of: "%25", with: "%")
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
