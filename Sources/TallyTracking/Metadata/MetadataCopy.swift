/// A backup's copy of the metadata database as it was at one instant, taken while the server serves
/// (``MetadataStore/beginCopy(into:options:)``): begun before the pause, its instant fixed inside it
/// (``pausingWrites(_:)``), finished after it (``finish()``). ``TrackingService/backup(into:dataDirectory:artifacts:reusing:metadata:)``
/// lists the metric store at the same instant, so the two agree.
///
/// - SQLite: most pages are copied before the pause, in steps with writes going on between them (each write reaching
///   the copy too); the pause copies what is left (`metadata.sqlite`).
/// - PostgreSQL: the pause exports a snapshot of the database from a transaction of the copy's own, with this
///   server's requests held back; `pg_dump` then dumps that snapshot while writes go on (`metadata.pgdump`). Other
///   servers sharing the database are not held back: the dump holds what they had committed by the instant.
public protocol MetadataCopy: AnyObject {
    /// Where the finished copy is: `metadata.sqlite` or `metadata.pgdump` in the backup's directory.
    var path: String { get }
    /// Runs `body` while this server's metadata requests wait (none half done: each is wholly before or after the
    /// instant) — SQLite: every read and write; PostgreSQL: transactions and metrics requests, single-statement writes
    /// going on, each atomic in the snapshot; `body` calls `fix` once, at the instant the copy is to hold.
    func pausingWrites<R>(_ body: (_ fix: () throws -> Void) throws -> R) throws -> R
    /// How long the last ``pausingWrites(_:)`` held this server's writes back (PostgreSQL's includes waiting for the
    /// requests in progress to end, which new ones waited through).
    var pause: Duration { get }
    /// Completes the copy after the pause (not synced: the backup syncs its file system once); the copy file's bytes.
    func finish() throws -> Int64
    /// Drops a copy not finished: its file removed, whatever it holds open released. Harmless after ``finish()``.
    func abandon()
}

/// How a backup copies the metadata database.
public struct MetadataCopyOptions: Sendable {
    /// The `pg_dump` to run for a PostgreSQL database (`pg_restore` is looked for beside it): `nil` looks in
    /// `/usr/lib/postgresql/*/bin` (Debian's, newest first), then on `PATH`.
    public var pgDump: String?

    /// Options with `pg_dump` looked for where it is usually installed.
    public init(pgDump: String? = nil) { self.pgDump = pgDump }
}
