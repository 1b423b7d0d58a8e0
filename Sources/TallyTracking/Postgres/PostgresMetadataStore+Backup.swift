import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension PostgresMetadataStore {
    public func beginCopy(into directory: DataDirectory, options: MetadataCopyOptions) throws -> any MetadataCopy {
        try Copy(self, to: directory.metadataDump, options: options)
    }

    /// What `pg_restore` finds reading the dump at `path` whole (its table of contents, then every block of data, with
    /// nothing restored): `["ok"]`, or its error.
    static func verifyDump(_ path: String, pgDump: String?) throws -> [String] {
        let pgRestore = try PostgresProgram.locate("pg_restore", given: pgDump)
        let errors = NSTemporaryDirectory() + "/tally-verify-\(UInt64.random(in: 0...UInt64.max)).errors"
        do {
            let env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
            try pgRestore.start(["--list", path], environment: env, errors: errors).wait()
            try pgRestore.start(["--file=/dev/null", path], environment: env, errors: errors).wait()
            return ["ok"]
        } catch let e as TrackingError {
            return ["\((path as NSString).lastPathComponent): \(e.message)"]
        }
    }

    /// The database dumped by `pg_dump` (custom format, `metadata.pgdump`) as it was at the backup's instant: in the
    /// pause, with this server's requests held back by the store's gate, a transaction of the copy's own exports its
    /// snapshot (`pg_export_snapshot()`); `pg_dump --snapshot` then dumps exactly that while writes go on, and the
    /// transaction stays open until it is done. Other servers sharing the database are not held back: the dump has
    /// what they committed by the instant.
    final class Copy: MetadataCopy, @unchecked Sendable {
        let store: PostgresMetadataStore
        /// Where the dump ends up, and where `pg_dump` writes it until then.
        let path: String, partial: String
        let pgDump: PostgresProgram
        /// A connection of the copy's own, for the transaction whose snapshot is dumped.
        let db: PostgresDatabase
        /// `pg_dump`, once started.
        private var dump: PostgresProgram.Running?
        /// Whether the connection was closed.
        private var closed = false
        private(set) var pause = Duration.zero

        /// Finds `pg_dump` and connects, before any pause: a backup that cannot dump fails before it holds anything.
        init(_ store: PostgresMetadataStore, to path: String, options: MetadataCopyOptions) throws {
            self.store = store
            self.path = path
            partial = path + ".partial"
            pgDump = try PostgresProgram.locate("pg_dump", given: options.pgDump)
            do {
                db = try PostgresDatabase(uri: store.db.uri, poolSize: 1, applicationName: "tally backup")
            } catch let e as PostgresError {
                throw PostgresMetadataStore.trackingError(e, store.db.uri)
            }
        }

        deinit { abandon() }

        /// Holds this server's requests back (waiting for those in progress) while `body` runs; `fix` exports the
        /// snapshot, in one round trip. `pg_dump` starts as soon as the requests go on.
        func pausingWrites<R>(_ body: (_ fix: () throws -> Void) throws -> R) throws -> R {
            var snapshot: String?
            let (result, held) = try store.gate.pausing {
                try body {
                    snapshot = try self.store.mapped {
                        try self.db.withConnection(reconnecting: false) { c in
                            let begun = c.start("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                            let rows = try c.rows("SELECT pg_export_snapshot()")
                            try begun.wait()
                            return rows.first?.first?.string
                        }
                    }
                }
            }
            pause = held
            guard let snapshot else { throw TrackingError(.internalError, "Backup: no snapshot of the metadata database was exported") }
            dump = try pgDump.start(["--format=custom", "--no-sync", "--no-password", "--snapshot=\(snapshot)", "--file=\(partial)"],
                                    environment: PostgresProgram.environment(for: store.db.uri), errors: partial + ".errors")
            return result
        }

        /// Waits for `pg_dump`, ends the snapshot's transaction and puts the dump in place.
        func finish() throws -> Int64 {
            guard let dump else { throw TrackingError(.internalError, "Backup: the metadata dump was not started") }
            defer { close() }
            do {
                try dump.wait()
            } catch let e as TrackingError {
                unlink(partial)
                throw TrackingError(e.code, "Backup: dumping the metadata database (PostgreSQL at \(store.db.uri.address)): \(e.message)")
            }
            self.dump = nil
            var st = stat()
            guard stat(partial, &st) == 0, rename(partial, path) == 0 else {
                throw TrackingError(.internalError, "Backup: cannot put the metadata dump \(partial) in place (errno \(errno))")
            }
            return Int64(st.st_size)
        }

        func abandon() {
            if let dump {
                dump.stop()
                self.dump = nil
                unlink(partial)
            }
            close()
        }

        /// Ends the snapshot's transaction (a connection lost meanwhile ended it already) and closes the connection.
        private func close() {
            guard !closed else { return }
            closed = true
            _ = try? db.withConnection(reconnecting: false) { try $0.execute("COMMIT") }
            db.close()
        }
    }
}
