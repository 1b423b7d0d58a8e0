import Foundation

/// What the servers of a cluster share through PostgreSQL (docs/scale-out.md): who they are (`tally_nodes`), which
/// server owns each run's metric writes (`tally_leases`: owner, epoch, expiry) and the acknowledged records not yet
/// sealed into object storage (`tally_log`). Every time is PostgreSQL's clock (`clock_timestamp()`), so the servers'
/// clocks need not agree.
///
/// A lease is taken when free or expired, and taking it over bumps its epoch. Every append to the log locks the
/// lease row (`FOR SHARE`) and checks owner, epoch and expiry in the same transaction: a server that lost its lease
/// (paused past expiry, partitioned) has its late writes refused, and a takeover waits for appends in flight, so the
/// new owner's replay sees every record that was acknowledged.
///
/// Blocking, like ``PostgresDatabase``: for the server's blocking threads.
public final class ClusterState: Sendable {
    /// The shared database.
    public let db: PostgresDatabase
    /// This server's id (`--node-id`, default `host:port`).
    public let node: String
    /// The URL the other servers reach this one at (`--advertise-url`).
    public let url: String
    /// How long a lease lasts without renewal (`--lease-seconds`; tests use a few seconds).
    public let leaseMillis: Int64

    /// PostgreSQL's clock in milliseconds since the epoch.
    static let now = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    /// The state of the cluster in `db`, seen by server `node`.
    public init(db: PostgresDatabase, node: String, url: String, leaseMillis: Int64 = 30_000) {
        precondition(leaseMillis > 0, "a lease lasts some time")
        self.db = db
        self.node = node
        self.url = url
        self.leaseMillis = leaseMillis
    }

    // MARK: Servers

    /// One server of the cluster.
    public struct Node: Sendable, Equatable {
        /// Its id.
        public var id: String
        /// Where the others reach it.
        public var url: String
        /// Its last heartbeat, ms on PostgreSQL's clock.
        public var heartbeatMillis: Int64
    }

    /// The operator's id of this server: ``node`` up to its `#` (``node`` is `ID#INSTANCE`, one per process, so two
    /// processes never hold a lease under one name).
    public var operatorID: String { node.split(separator: "#", maxSplits: 1).first.map(String.init) ?? node }

    /// Records this server (its URL, a fresh start time and heartbeat). An earlier process of the same id
    /// (`ID#…`) still beating — a restart right after a crash — is waited for up to a lease and a second; one
    /// beating after that is another live server under this id: refused with an error naming it. The leases of the
    /// earlier, dead processes are released (their runs are taken over at once, under new epochs).
    public func register() throws {
        let deadline = ContinuousClock.now + .milliseconds(leaseMillis + 1_000)
        while true {
            let others: [String] = try db.transaction { c in
                _ = try c.run("SELECT pg_advisory_xact_lock(hashtext(?))", [.text("tally-node " + operatorID)])
                let live = try c.rows("SELECT node_id FROM tally_nodes WHERE starts_with(node_id, ?) AND node_id <> ? "
                                      + "AND heartbeat_ms >= \(Self.now) - ?", [.text(operatorID + "#"), .text(node), .integer(leaseMillis)])
                    .map { $0[0].string ?? "" }
                guard live.isEmpty else { return live }
                _ = try c.run("UPDATE tally_leases SET expires_ms = \(Self.now) WHERE starts_with(owner, ?) AND owner <> ?",
                              [.text(operatorID + "#"), .text(node)])
                _ = try c.run("DELETE FROM tally_nodes WHERE starts_with(node_id, ?) AND node_id <> ?", [.text(operatorID + "#"), .text(node)])
                _ = try c.run("INSERT INTO tally_nodes VALUES (?, ?, \(Self.now), \(Self.now)) ON CONFLICT (node_id) DO UPDATE "
                              + "SET url = EXCLUDED.url, started_ms = EXCLUDED.started_ms, heartbeat_ms = EXCLUDED.heartbeat_ms",
                              [.text(node), .text(url)])
                return []
            }
            if others.isEmpty { return }
            guard ContinuousClock.now < deadline else {
                throw TrackingError(.invalidParameterValue, "Another server is running as node '\(operatorID)' (\(others.joined(separator: ", "))): "
                                    + "give each server its own --node-id and --advertise-url")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// Leaves the cluster (a clean stop): this server's record stops counting as alive at once.
    public func leave() throws {
        try db.withConnection { c in _ = try c.run("UPDATE tally_nodes SET heartbeat_ms = 0 WHERE node_id = ?", [.text(node)]) }
    }

    /// The servers whose last heartbeat is at most `withinMillis` old (default: a lease's length), by id.
    public func nodes(withinMillis: Int64? = nil) throws -> [Node] {
        try db.withConnection { c in
            try c.rows("SELECT node_id, url, heartbeat_ms FROM tally_nodes WHERE heartbeat_ms >= \(Self.now) - ? ORDER BY node_id",
                       [.integer(withinMillis ?? leaseMillis)]).map {
                Node(id: $0[0].string ?? "", url: $0[1].string ?? "", heartbeatMillis: $0[2].int ?? 0)
            }
        }
    }

    // MARK: Leases

    /// A run's lease: who owns the run's writes, under which epoch, until when.
    public struct Lease: Sendable, Equatable {
        /// The run.
        public var run: String
        /// The owning server's id.
        public var owner: String
        /// Bumped at each change of owner: writes carry it, and a write under an older one is refused.
        public var epoch: Int64
        /// When it lapses unless renewed, ms on PostgreSQL's clock.
        public var expiresMillis: Int64
    }

    /// What ``acquire(run:)`` found.
    public enum Acquired: Sendable, Equatable {
        /// This server owns the run (newly, or still: renewed).
        case owned(Lease)
        /// Another server holds a lease that has not expired.
        case heldElsewhere(Lease)
    }

    /// Takes the run's lease when it is free, expired or already this server's (then it is renewed and keeps its
    /// epoch); a lease taken from another server (expired) gets the next epoch.
    public func acquire(run: String) throws -> Acquired {
        try db.transaction { c in
            // A lease row locked by an append in flight (FOR SHARE) is waited for, but not past half a lease: a
            // partitioned owner's open transaction must not stall the others (55P03: the caller answers 503).
            try c.execute("SET LOCAL lock_timeout = \(max(50, leaseMillis / 2))")
            let taken = try c.rows("""
                INSERT INTO tally_leases VALUES (?, ?, 1, \(Self.now) + ?) ON CONFLICT (run_uuid) DO UPDATE
                SET owner = EXCLUDED.owner, expires_ms = EXCLUDED.expires_ms,
                    epoch = CASE WHEN tally_leases.owner = EXCLUDED.owner AND tally_leases.expires_ms > \(Self.now)
                                 THEN tally_leases.epoch ELSE tally_leases.epoch + 1 END
                WHERE tally_leases.owner = EXCLUDED.owner OR tally_leases.expires_ms <= \(Self.now)
                RETURNING epoch, expires_ms
                """, [.text(run), .text(node), .integer(leaseMillis)])
            if let row = taken.first {
                return .owned(Lease(run: run, owner: node, epoch: row[0].int ?? 0, expiresMillis: row[1].int ?? 0))
            }
            guard let held = try Self.lease(c, run) else { throw TrackingError(.internalError, "the lease of run \(run) vanished while taken") }
            return .heldElsewhere(held)
        }
    }

    /// The run's lease when it has not expired (a plain read, no lock: who to forward to).
    public func liveLease(of run: String) throws -> Lease? {
        try db.withConnection { c in try Self.lease(c, run, liveOnly: true) }
    }

    /// The run's lease, expired or not; `nil` when it never had one.
    public func lease(of run: String) throws -> Lease? {
        try db.withConnection { c in try Self.lease(c, run) }
    }

    static func lease(_ c: PostgresDatabase.Connection, _ run: String, liveOnly: Bool = false) throws -> Lease? {
        try c.rows("SELECT owner, epoch, expires_ms FROM tally_leases WHERE run_uuid = ?" + (liveOnly ? " AND expires_ms > \(Self.now)" : ""),
                   [.text(run)]).first.map {
            Lease(run: run, owner: $0[0].string ?? "", epoch: $0[1].int ?? 0, expiresMillis: $0[2].int ?? 0)
        }
    }

    /// The heartbeat: this server's record, and every lease it still holds extended by a lease's length. Returns
    /// the runs still held, with their epochs; a lease that expired before this renewal is not renewed (another
    /// server may have taken it), so it is missing from the answer and its writes must stop.
    @discardableResult
    public func renew() throws -> [String: Int64] {
        try db.transaction { c in
            _ = try c.run("UPDATE tally_nodes SET url = ?, heartbeat_ms = \(Self.now) WHERE node_id = ?", [.text(url), .text(node)])
            let rows = try c.rows("UPDATE tally_leases SET expires_ms = \(Self.now) + ? WHERE owner = ? AND expires_ms > \(Self.now) "
                                  + "RETURNING run_uuid, epoch", [.integer(leaseMillis), .text(node)])
            return Dictionary(rows.map { ($0[0].string ?? "", $0[1].int ?? 0) }, uniquingKeysWith: max)
        }
    }

    /// Gives a lease up at once (a server shutting down cleanly), so another server need not wait for its expiry.
    public func release(run: String, epoch: Int64) throws {
        try db.withConnection { c in
            _ = try c.run("UPDATE tally_leases SET expires_ms = \(Self.now) WHERE run_uuid = ? AND owner = ? AND epoch = ?",
                          [.text(run), .text(node), .integer(epoch)])
        }
    }

    // MARK: The shared log

    /// One record of the shared log.
    public struct Record: Sendable, Equatable {
        /// Its place in the log (increasing in commit order of one writer).
        public var seq: Int64
        /// The epoch it was written under.
        public var epoch: Int64
        /// The bytes (a batch of compressed columns).
        public var payload: [UInt8]
    }

    /// The error of a write under a lease this server no longer holds.
    static func fenced(_ run: String, _ epoch: Int64) -> TrackingError {
        TrackingError(.temporarilyUnavailable, "This server no longer owns the writes of run \(run) (epoch \(epoch)): send the request again")
    }

    /// Appends records in one transaction (one commit for the whole batch: the group commit), each under its run's
    /// lease: owner, epoch and expiry are checked with the lease row locked, and a batch with any record under a
    /// lease this server does not hold is refused whole (``fenced(_:_:)``). Returns the records' sequence numbers.
    public func append(_ records: [(run: String, epoch: Int64, payload: [UInt8])]) throws -> [Int64] {
        guard !records.isEmpty else { return [] }
        return try db.transaction { c in try Self.append(c, node: node, records) }
    }

    /// ``append(_:)`` inside a transaction the caller holds open on `c` (the metadata transaction of the write, so
    /// the record commits with the run's latest values, or neither does), by server `node`.
    static func append(_ c: PostgresDatabase.Connection, node: String, _ records: [(run: String, epoch: Int64, payload: [UInt8])]) throws -> [Int64] {
        // Every distinct (run, epoch) checked — a batch may hold a run's records under an old epoch behind ones
        // under its current epoch — in run order, so concurrent batches lock lease rows in one order.
        struct Key: Hashable, Comparable {
            var run: String
            var epoch: Int64
            static func < (a: Key, b: Key) -> Bool { (a.run, a.epoch) < (b.run, b.epoch) }
        }
        for k in Set(records.map { Key(run: $0.run, epoch: $0.epoch) }).sorted() { try checkLease(c, node: node, run: k.run, epoch: k.epoch) }
        return try insert(c, records)
    }

    /// Locks the run's lease row (`FOR SHARE`, until the transaction ends: a takeover waits for it) and checks that
    /// `node` holds it under `epoch`, unexpired; throws ``fenced(_:_:)`` otherwise.
    static func checkLease(_ c: PostgresDatabase.Connection, node: String, run: String, epoch: Int64) throws {
        let held = try c.rows("SELECT 1 FROM tally_leases WHERE run_uuid = ? AND owner = ? AND epoch = ? AND expires_ms > \(Self.now) FOR SHARE",
                              [.text(run), .text(node), .integer(epoch)])
        guard !held.isEmpty else { throw Self.fenced(run, epoch) }
    }

    /// Inserts records whose leases the transaction has checked (``checkLease(_:node:run:epoch:)``); their sequence numbers.
    static func insert(_ c: PostgresDatabase.Connection, _ records: [(run: String, epoch: Int64, payload: [UInt8])]) throws -> [Int64] {
        var seqs: [Int64] = []
        seqs.reserveCapacity(records.count)
        for chunk in stride(from: 0, to: records.count, by: 500) {
            let part = records[chunk..<min(chunk + 500, records.count)]
            let sql = "INSERT INTO tally_log (run_uuid, epoch, payload) VALUES " + part.map { _ in "(?, ?, ?)" }.joined(separator: ", ") + " RETURNING seq"
            let values = part.flatMap { [SQLValue.text($0.run), .integer($0.epoch), .blob($0.payload)] }
            seqs += try c.rows(sql, values).map { $0[0].int ?? 0 }
        }
        return seqs
    }

    /// The run's records after `seq`, in order, at most `limit` of them (a new owner's replay, a reader catching up).
    public func records(run: String, after seq: Int64 = 0, limit: Int = 1_000_000) throws -> [Record] {
        try recordsPage(run: run, after: seq, limit: limit).records
    }

    /// Deletes the run's records up to and including `seq` (they are sealed in object storage); returns how many.
    @discardableResult
    public func trim(run: String, through seq: Int64) throws -> Int {
        try db.withConnection { c in try Self.trim(c, run: run, through: seq) }
    }

    /// ``trim(run:through:)`` on `c` (inside the transaction recording a sealed set).
    static func trim(_ c: PostgresDatabase.Connection, run: String, through seq: Int64) throws -> Int {
        try c.run("DELETE FROM tally_log WHERE run_uuid = ? AND seq <= ?", [.text(run), .integer(seq)])
    }
}
