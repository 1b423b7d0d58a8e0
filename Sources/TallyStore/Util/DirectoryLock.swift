import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock on a store directory (`flock` on its `LOCK` file), held from open to close: a second server,
/// or an offline tool, opening the same directory is refused instead of interleaving its log and segment files with
/// the first one's. The kernel drops the lock when the process exits, killed or not, so a stale lock cannot outlive
/// its holder. The file also names the holder's process id, for the error message.
final class DirectoryLock: Sendable {
    private let fd = Mutex<Int32?>(nil)
    let path: String

    /// Takes the lock of `directory` (which must exist).
    /// - Throws: ``StorageError/Code/locked`` when another open store holds it (in this process or another),
    ///   ``StorageError/Code/io`` when the file cannot be opened or locked.
    init(directory: String) throws {
        path = directory + "/LOCK"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError(.io, "cannot open the store's lock file", path: path, errno: errno) }
        if !Self.lock(fd) {
            let e = errno
            var holder = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &holder, holder.count, 0)
            close(fd)
            guard e == EWOULDBLOCK else { throw StorageError(.io, "cannot lock the store directory", path: path, errno: e) }
            let pid = String(decoding: holder.prefix(max(0, n)), as: UTF8.self).trimmingPrefixAndSuffixWhitespace
            throw StorageError(.locked, "the store directory is in use by another process" + (pid.isEmpty ? "" : " (pid \(pid))")
                + "; stop it first, or give a different data directory", path: path)
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.fd.withLock { $0 = fd }
    }

    /// Takes the lock, waiting up to ``settleMillis`` while it is held: a process this one is starting holds a copy of
    /// every descriptor between its fork and its exec (which closes them), so a store closed a moment ago may still
    /// look held. A store really open elsewhere is refused after that wait. `errno` tells why on `false`.
    private static func lock(_ fd: Int32) -> Bool {
        var waited = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK, waited < settleMillis else { return false }
            usleep(5_000)
            waited += 5
        }
        return true
    }

    /// How long a held lock is waited for before the store is refused, in milliseconds.
    static let settleMillis = 250

    /// Releases the lock (once; later calls do nothing).
    func release() {
        fd.withLock { fd in
            if let f = fd { close(f) }
            fd = nil
        }
    }

    deinit { release() }
}

extension String {
    fileprivate var trimmingPrefixAndSuffixWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
