import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension PostgresMetadataStore {
    public func beginCopy(into directory: DataDirectory, options: MetadataCopyOptions) throws -> any MetadataCopy {
        try Copy(self, to: directory.metadataDump, options: options)
    }

    /// What `pg_restore` finds reading the dump at `path` whole (its table of contents and every block of data, into
    /// `/dev/null`: nothing restored): `["ok"]`, or its error.
    static func verifyDump(_ path: String, pgDump: String?) throws -> [String] {
        let pgRestore = try PostgresProgram.locate("pg_restore", given: pgDump)
        let errors = NSTemporaryDirectory() + "/tally-verify-\(UInt64.random(in: 0...UInt64.max)).errors"
        do {
            try pgRestore.start(["--file=/dev/null", path], environment: PostgresProgram.minimalEnvironment(), errors: errors).wait()
            return ["ok"]
        } catch let e as TrackingError {
            return ["\((path as NSString).lastPathComponent): \(e.message)"]
        }
    }

    /// The database dumped by `pg_dump` (custom format, `metadata.pgdump`) as it was at the backup's instant: in the
    /// pause, with this server's requests held back by the store's gate, a transaction of the copy's own exports its
    /// snapshot (`pg_export_snapshot()`); `pg_dump --snapshot` then dumps exactly that while writes go on, and the
    /// transaction's connection is closed the moment `pg_dump` ends (not when the backup does: an open transaction
    /// holds back the database's cleanup of old row versions). Other servers sharing the database are not held back:
    /// the dump has what they committed by the instant.
    final class Copy: MetadataCopy, @unchecked Sendable {
        let store: PostgresMetadataStore
        /// Where the dump ends up, and where `pg_dump` writes it until then.
        let path: String, partial: String
        let pgDump: PostgresProgram
        /// A connection of the copy's own, for the transaction whose snapshot is dumped.
        let db: PostgresDatabase
        /// `pg_dump`, once started.
        private var dump: PostgresProgram.Running?
        private(set) var pause = Duration.zero
        /// The longest the pause waits for this server's requests in progress before the backup gives up.
        static let drainLimit = Duration.seconds(10)
        /// How long `pg_dump` waits for a table's lock (another server's migration holding it) before it fails.
        static let lockWait = "60s"

        /// Finds `pg_dump`, connects and checks that this `pg_dump` can dump this server's version, before any pause: a
        /// backup that cannot dump fails before it holds anything.
        init(_ store: PostgresMetadataStore, to path: String, options: MetadataCopyOptions) throws {
            self.store = store
            self.path = path
            partial = path + ".partial"
            // pg_dump sets its session (search_path = '', timeouts off, …) with statements outside its transaction:
            // through a pooler in transaction mode they would stay on the pooler's server connections, under this
            // server's own statements.
            guard store.db.uri.poolMode == .session else {
                throw TrackingError(.invalidParameterValue, "A backup reaches PostgreSQL through a pooler in transaction mode (pool_mode=transaction), "
                                    + "where pg_dump's session settings (search_path among them) would stay on the pooler's server connections "
                                    + "and break this server's statements: dump the database with its own tools (pg_dump against the database "
                                    + "itself, not the pooler), and copy the rest with tally backup --no-metadata")
            }
            pgDump = try PostgresProgram.locate("pg_dump", given: options.pgDump)
            // Of several hosts, the primary's snapshot (the one the store writes to: a standby's could lag the instant).
            var uri = store.db.uri
            if uri.endpoints.count > 1 && uri.sessionAttributes == .any { uri.sessionAttributes = .primary }
            do {
                db = try PostgresDatabase(uri: uri, poolSize: 1, applicationName: PostgresProgram.applicationName)
            } catch let e as TrackingError {
                throw TrackingError(.temporarilyUnavailable, "Backup: " + e.message)
            }
            do {
                let server = try store.mapped { try db.withConnection { try $0.rows("SHOW server_version_num") } }.first?.first?.string
                let dumps = try pgDump.majorVersion()
                if let server = server.flatMap({ Int($0) }), dumps < server / 10_000 {
                    throw TrackingError(.invalidParameterValue, "\(pgDump.path) is pg_dump \(dumps), which cannot dump PostgreSQL \(server / 10_000) "
                                        + "(at \(uri.address)): name a pg_dump of version \(server / 10_000) or later (tally backup --pg-dump PATH)")
                }
            } catch {
                db.close()
                throw error
            }
        }

        deinit { abandon() }

        /// Holds this server's requests back (waiting for those in progress, ``drainLimit`` at most) while `body`
        /// runs; `fix` exports the snapshot, in one round trip. `pg_dump` starts as soon as the requests go on.
        func pausingWrites<R>(_ body: (_ fix: () throws -> Void) throws -> R) throws -> R {
            var snapshot: (id: String, on: PostgresURI.Endpoint)?
            let (result, held) = try store.gate.pausing(waitingAtMost: Self.drainLimit) {
                try body {
                    snapshot = try self.store.mapped {
                        try self.db.withConnection(reconnecting: false) { c in
                            let begun = c.start("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                            let rows = try c.rows("SELECT pg_export_snapshot()")
                            try begun.wait()
                            return rows.first?.first?.string.map { ($0, c.pooled.endpoint) }
                        }
                    }
                }
            }
            pause = held
            guard let snapshot else { throw TrackingError(.internalError, "Backup: no snapshot of the metadata database was exported") }
            let db = self.db
            // pg_dump connects to the server the snapshot is on (of several hosts, the one this copy's connection reached).
            dump = try pgDump.start(["--format=custom", "--no-sync", "--no-password", "--lock-wait-timeout=\(Self.lockWait)",
                                     "--snapshot=\(snapshot.id)", "--file=\(partial)"],
                                    environment: PostgresProgram.environment(for: db.uri, at: snapshot.on), errors: partial + ".errors",
                                    onExit: { db.close() })  // the snapshot's transaction ends with its connection
            return result
        }

        /// Waits for `pg_dump` and puts the dump in place.
        func finish() throws -> Int64 {
            guard let dump else { throw TrackingError(.internalError, "Backup: the metadata dump was not started") }
            self.dump = nil
            defer { db.close() }
            do {
                try dump.wait()
            } catch let e as TrackingError {
                unlink(partial)
                throw TrackingError(e.code, "Backup: dumping the metadata database (PostgreSQL at \(store.db.uri.address)): \(e.message)")
            }
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
            db.close()  // a transaction still open ends with its connection
        }
    }
}
