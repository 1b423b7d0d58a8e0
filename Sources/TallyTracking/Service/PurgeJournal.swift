import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `tally gc`'s journal, `<data directory>/gc.journal`: the runs and logged models whose rows a gc is deleting, with
/// their artifact URIs, written (and synced) before the transaction that deletes the rows and cleared once their
/// points and artifacts are gone too. A gc that stopped in between (killed, a full disk, an object store that failed)
/// left points and artifacts nothing else names; the next gc finishes them first. A line whose rows are still there
/// (the transaction did not commit) is only dropped: that run is still deleted, and selected again.
///
/// The file is held with an exclusive `flock` while a gc runs: two gcs of one data directory take turns.
final class PurgeJournal {
    /// What a line names.
    enum Kind: String { case run, model }
    /// One entry: a tab-separated line `kind id uri`, `%`, tab and newline percent-encoded in the id and URI (an
    /// empty URI: points only).
    struct Entry: Equatable {
        var kind: Kind
        var id: String
        var artifactURI: String
    }

    static let fileName = "gc.journal"
    let path: String
    private let fd: Int32

    /// Opens (or creates) the journal in `directory` and waits for any other gc holding it.
    init(directory: DataDirectory) throws {
        path = directory.path + "/" + Self.fileName
        let existed = access(path, F_OK) == 0
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure(path, "open") }
        if !existed {  // the file's name durable before a line counts on it
            let dir = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dir >= 0 {
                _ = fsync(dir)
                close(dir)
            }
        }
        guard flock(fd, LOCK_EX) == 0 else {
            let e = Self.failure(path, "lock")
            close(fd)
            throw e
        }
    }

    deinit { close(fd) }  // the lock goes with the descriptor

    /// The entries left by a gc that did not finish.
    func pending() throws -> [Entry] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 3, let kind = Kind(rawValue: f[0]) else { return nil }  // a line cut short by a crash
            return Entry(kind: kind, id: Self.unescape(f[1]), artifactURI: Self.unescape(f[2]))
        }
    }

    /// Appends entries and makes them durable.
    func add(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        let bytes = Array(entries.map { "\($0.kind.rawValue)\t\(Self.escape($0.id))\t\(Self.escape($0.artifactURI))\n" }.joined().utf8)
        guard lseek(fd, 0, SEEK_END) >= 0, bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0 else {
            throw Self.failure(path, "write")
        }
    }

    /// Empties the journal: everything in it is done.
    func clear() throws {
        guard ftruncate(fd, 0) == 0, fsync(fd) == 0 else { throw Self.failure(path, "truncate") }
    }

    /// `%`, tab and newline percent-encoded: nothing breaks the line, and the text comes back as it was.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\t", with: "%09").replacingOccurrences(of: "\n", with: "%0A")
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("%") else { return s }
        return s.replacingOccurrences(of: "%09", with: "\t").replacingOccurrences(of: "%0A", with: "\n").replacingOccurrences(of: "%25", with: "%")
    }

    private static func failure(_ path: String, _ what: String) -> TrackingError {
        TrackingError(.internalError, "Cannot \(what) the gc journal \(path): \(String(cString: strerror(errno)))")
    }
}
