import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension SQLiteMetadataStore {
    public func beginCopy(into directory: DataDirectory, options: MetadataCopyOptions) throws -> any MetadataCopy {
        Copy(self, to: directory.metadata)
    }

    /// Pages a copy's step takes (1 MB of SQLite's 1 KB pages, ~3.5 ms here) while writers wait.
    static let copyStepPages = 1_024
    /// Pages the steps leave for the pause, at the most (and those the database grew by since the last step).
    static let copyTailPages = 64

    /// How the last copy went: the database's pages when it began, the pages its steps copied (restarts included),
    /// and the pages left for the pause (as of the last step; pages written since were copied as they were written).
    struct CopyReport: Sendable {
        var pages: Int, stepped: Int, leftForPause: Int
    }

    /// The database copied with SQLite's online backup (``SQLiteCopy``) into `metadata.sqlite.partial`, most pages in
    /// steps between operations before the pause, the rest in it; renamed to its place by ``finish()``.
    final class Copy: MetadataCopy, @unchecked Sendable {
        let store: SQLiteMetadataStore
        /// Where the copy ends up, and where it is written until then.
        let path: String, partial: String
        /// The copy in progress (from the first ``pausingWrites(_:)``), and whether it was completed in a pause.
        private var copy: SQLiteCopy?
        private var completed = false
        private(set) var pause = Duration.zero

        init(_ store: SQLiteMetadataStore, to path: String) {
            self.store = store
            self.path = path
            partial = path + ".partial"
        }

        /// Steps through the database, each step as long again without the lock so that writers wait for one step
        /// at most; past twice the database (rollbacks start the copy over) the rest is left for the pause. Then
        /// `body` runs under the operation lock, and `fix` copies what is left.
        func pausingWrites<R>(_ body: (_ fix: () throws -> Void) throws -> R) throws -> R {
            let copy = try store.with { try SQLiteCopy(of: $0, to: partial) }
            self.copy = copy
            while copy.stepped < 2 * copy.pages + 4 * SQLiteMetadataStore.copyStepPages {
                let started = ContinuousClock.now
                let stepped = try store.with { db -> Bool in
                    // Shorter steps towards the end, so that the pause is left a few pages.
                    let left = copy.left
                    guard left > 2 * SQLiteMetadataStore.copyTailPages else { return false }
                    return try copy.step(db, pages: min(SQLiteMetadataStore.copyStepPages, left - SQLiteMetadataStore.copyTailPages))
                }
                guard stepped else { break }
                let took = ContinuousClock.now - started
                Thread.sleep(forTimeInterval: max(0.000_2, took / .seconds(1)))
            }
            let result: R
            do {
                result = try store.operation.withLock {
                    let paused = ContinuousClock.now
                    defer { pause = ContinuousClock.now - paused }
                    return try body {
                        try self.store.state.withLock { st in
                            let left = copy.left
                            try copy.complete(from: st.db)
                            self.completed = true
                            self.store.lastCopy.withLock { $0 = CopyReport(pages: copy.pages, stepped: copy.stepped, leftForPause: left) }
                        }
                    }
                }
            } catch {
                if completed { try? copy.seal() }
                throw error
            }
            if completed { try copy.seal() }  // with no lock held
            return result
        }

        func finish() throws -> Int64 {
            defer { copy = nil }
            guard completed else { throw TrackingError(.internalError, "Backup: the metadata copy was not completed in the pause") }
            var st = stat()
            guard stat(partial, &st) == 0, rename(partial, path) == 0 else {
                throw TrackingError(.internalError, "Backup: cannot put the metadata copy \(partial) in place (errno \(errno))")
            }
            return Int64(st.st_size)
        }

        func abandon() {
            guard let copy else { return }
            self.copy = nil
            if completed {
                for suffix in ["", "-wal", "-journal"] { unlink(partial + suffix) }
            } else {
                store.state.withLock { _ in copy.abandon() }
            }
        }
    }
}
