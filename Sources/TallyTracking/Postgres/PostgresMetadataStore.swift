import Synchronization
import TallyStore

/// The metadata store on PostgreSQL, for deployments where several servers share one database. It keeps no cache
/// another server's write could make stale: every read goes to the database. Uniqueness and immutability are the
/// database's (constraints, row locks), never a check-then-write in the process. Remembered between calls: the
/// metric-key table, which only grows and whose ids never change (an id not known yet is read again), experiments'
/// artifact locations, which never change once created, the search cache, which every search first brings up to
/// date with the database (``SearchCache``), and runs' latest rows, never served as reads: only what a metrics
/// request's conditional write expects to find (``LatestCache``, ``metricsRequest(runID:_:)``).
///
/// A ``transaction(_:)`` binds one connection to the calling thread (a task-local), so every store method called
/// inside it runs in that transaction.
public final class PostgresMetadataStore: MetadataStore {
    /// The connection pool.
    let db: PostgresDatabase
    /// One connection of its own for interning metric keys outside every transaction: an id, once handed out, is
    /// committed, so no rolled-back transaction can leave an id in ``keys`` that another server gives another key.
    let keyDB: PostgresDatabase
    /// Metric keys by id and ids by key, as far as this server has seen them.
    let keys = Mutex(MetricKeyTable())
    /// Recently searched experiments' runs, read again only where they changed.
    let searchCache: SearchCache
    /// Codecs for `run_latest` rows (each keeps scratch buffers), lent one per call.
    let codecs = Mutex<[LentCodec]>([])
    /// Experiments' artifact locations by id, as read (immutable: run creation needs one without a round trip).
    let artifactLocations = Mutex<[Int64: String]>([:])
    /// Latest rows as this server last wrote or read them: what a metrics request expects to find
    /// (``metricsRequest(runID:_:)``), never served as a read.
    let latestCache: LatestCache
    /// The writes requests make most (runs created, params, latest rows, runs finished), concurrent requests' sent
    /// as one statement (``send(_:)``), on a connection of its own.
    let lane: PostgresDatabase.Lane<Write, Written>
    /// Admits each outermost transaction and unlocked metrics request; a backup's pause waits for those in progress
    /// and holds new ones back (``Copy``), so none is cut in two by its instant.
    let gate = RequestGate()

    /// A codec lent to one call at a time (the pool's mutex hands each to one thread only).
    struct LentCodec: @unchecked Sendable {
        let codec: ColumnCodec
    }

    /// The connection of the transaction running on this thread (and which store it belongs to).
    final class Bound: Sendable {
        let store: ObjectIdentifier
        let connection: PostgresDatabase.Connection
        /// Latest rows this transaction holds locked (read `FOR UPDATE` or written), by run: nobody else can change
        /// them before the commit, so they are not read again.
        let lockedLatest = Mutex<[String: LockedLatest]>([:])
        init(_ store: ObjectIdentifier, _ connection: PostgresDatabase.Connection) {
            self.store = store
            self.connection = connection
        }
    }

    @TaskLocal static var bound: Bound?

    /// A latest row a transaction holds locked: its bytes as last read or written, and its `seq` then (`nil` when
    /// there was no row to lock: the write inserts one).
    struct LockedLatest: Sendable {
        var seq: Int64?
        var data: [UInt8]
    }

    /// Connects and brings the schema to this build's version (or, with `migrate` false, checks that it is there).
    /// - Parameters:
    ///   - poolSize: the most connections this store opens for requests (one more interns metric keys).
    ///   - defaultArtifactLocation: where experiment `0` (`Default`) keeps artifacts, when created here.
    ///   - searchCacheRuns: the most runs the search cache holds.
    public init(uri: PostgresURI, poolSize: Int = 8, migrate: Bool = true, defaultArtifactLocation: String = "mlflow-artifacts:/0",
                searchCacheRuns: Int = 100_000, latestCacheBytes: Int = 32 << 20, now: Int64) throws {
        searchCache = SearchCache(capacity: searchCacheRuns)
        latestCache = LatestCache(capacityBytes: latestCacheBytes)
        db = try PostgresDatabase(uri: uri, poolSize: poolSize)
        keyDB = try PostgresDatabase(uri: uri, poolSize: 1)
        lane = Self.lane(db)
        do {
            try PostgresSchema.migrate(db, migrate: migrate, defaultArtifactLocation: defaultArtifactLocation, now: now)
        } catch let e as PostgresError {
            throw Self.trackingError(e, uri)
        }
    }

    public var location: String { db.uri.description }
    /// The database's URI, as parsed.
    public var uri: PostgresURI { db.uri }
    /// Always: any number of servers may share the database.
    public var shared: Bool { true }

    /// Closes the pool's connections.
    public func close() {
        lane.close()
        db.close()
        keyDB.close()
    }

    /// The bound transaction's connection, when this thread is inside one of this store's transactions.
    var current: PostgresDatabase.Connection? {
        guard let b = Self.bound, b.store == ObjectIdentifier(self) else { return nil }
        return b.connection
    }

    /// Runs `body` on the connection of the transaction this thread is inside (a write that must commit with the
    /// metadata, as the shared log's records do); an internal error outside one.
    func inTransaction<R>(_ body: (PostgresDatabase.Connection) throws -> R) throws -> R {
        guard let c = current else { throw TrackingError(.internalError, "a shared-log record written outside the metadata transaction") }
        return try mapped { try body(c) }
    }

    /// Runs `body` on the current transaction's connection, or on one of the pool's (autocommit).
    @discardableResult
    func conn<R>(_ body: (PostgresDatabase.Connection) throws -> R) throws -> R {
        try mapped { if let c = current { try body(c) } else { try db.withConnection(body) } }
    }

    /// Runs `body` in a transaction (joining the current one): for writes of several statements.
    @discardableResult
    func write<R>(_ body: (PostgresDatabase.Connection) throws -> R) throws -> R {
        try transaction { try conn(body) }
    }

    public func transaction<R>(_ body: () throws -> R) throws -> R {
        if current != nil { return try body() }  // nested: joins the outer transaction
        // Inside an unlocked metrics request: its one write is a statement of its own (metricsRequest).
        if let u = Self.unlocked, u.store == ObjectIdentifier(self) { return try body() }
        return try gate.admit { try outermostTransaction(body) }
    }

    /// ``transaction(_:)`` on a connection of the pool, admitted by the gate.
    private func outermostTransaction<R>(_ body: () throws -> R) throws -> R {
        try mapped {
            try db.withConnection { c in
                // BEGIN is sent without waiting for its answer: the connection runs statements in order, so the
                // first statement of the body follows it, and the thread waits once for both.
                let begun = c.start("BEGIN")
                let r: R
                let bound = Bound(ObjectIdentifier(self), c)
                do {
                    r = try Self.$bound.withValue(bound) { try body() }
                    try begun.wait()
                } catch {
                    try? begun.wait()
                    try? c.execute("ROLLBACK")
                    throw error
                }
                try c.execute("COMMIT")
                // The latest rows this transaction locked are, as of its commit, what it last saw of them.
                for (runID, row) in bound.lockedLatest.withLock({ $0 }) {
                    if let seq = row.seq { latestCache.put(runID, LatestCache.Entry(seq: seq, data: row.data)) }
                }
                return r
            }
        }
    }

    public func loggingRequest<R>(_ body: () throws -> R) throws -> R { try transaction(body) }

    /// Runs a statement that a constraint may refuse; `false` when one did. Inside a transaction it runs under a
    /// savepoint, so the refusal does not abort the transaction.
    func attempt(_ c: PostgresDatabase.Connection, _ sql: String, _ values: [SQLValue]) throws -> Bool {
        let inside = current != nil
        if inside { try c.execute("SAVEPOINT attempt") }
        do {
            try c.run(sql, values)
            if inside { try c.execute("RELEASE SAVEPOINT attempt") }
            return true
        } catch let e as PostgresError where e.isConstraint {
            if inside { try c.execute("ROLLBACK TO SAVEPOINT attempt") }
            return false
        }
    }

    /// `body`, with PostgreSQL's errors as tracking errors.
    func mapped<R>(_ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let e as PostgresError {
            throw Self.trackingError(e, db.uri)
        }
    }

    /// A PostgreSQL error as the client should see it: a database out of reach or a lost conflict is temporary
    /// (503, which MLflow's client retries); anything else is the server's fault.
    static func trackingError(_ e: PostgresError, _ uri: PostgresURI) -> TrackingError {
        if e.sqlState == nil {
            return TrackingError(.temporarilyUnavailable, "The metadata database (PostgreSQL at \(uri.address)) cannot be reached: \(e.message)")
        }
        if e.isLoginRefused {
            // The password changed (or the role went) under a running server: its operator's to fix, and the request
            // may succeed once they have.
            return TrackingError(.temporarilyUnavailable, "The metadata database (PostgreSQL at \(uri.address)) refused the login: \(e.message)")
        }
        if e.isUnrepresentable {
            return TrackingError(.invalidParameterValue, "Invalid value: \(e.message)")
        }
        if e.isRetryable {
            return TrackingError(.temporarilyUnavailable, "A concurrent write to the same metadata won; retry the request (\(e.message))")
        }
        if e.isReadOnly {
            // A failover demoted the server this connection was on (dropped now: the next finds the primary among the
            // URI's hosts), or the URI leads only to a standby.
            return TrackingError(.temporarilyUnavailable, "The metadata database (PostgreSQL at \(uri.address)) takes no writes on the server reached "
                                 + "(a standby, or a failover in progress): \(e.message)")
        }
        if e.isLostStatement {
            // Only a pooler in transaction mode loses a connection's prepared statements (the connection is dropped,
            // its successor prepares them again): the deployment's to fix, and a retry may well succeed meanwhile.
            return TrackingError(.temporarilyUnavailable, "The metadata database (PostgreSQL at \(uri.address)) did not know a statement this "
                                 + "connection prepared (\(e.message)): a pooler in transaction mode (PgBouncer's pool_mode = transaction) "
                                 + "sits between Tally and PostgreSQL; add pool_mode=transaction to the backend store URI")
        }
        if e.sqlState == "55P03" || e.sqlState == "57014" || e.sqlState?.hasPrefix("08") == true || e.sqlState?.hasPrefix("57P") == true
            || e.sqlState?.hasPrefix("53") == true {
            // A lock not granted in time, a statement cancelled, a connection lost, the server shutting down, or out
            // of a resource (too many connections, memory, disk): the request may succeed later.
            return TrackingError(.temporarilyUnavailable, "The metadata database (PostgreSQL at \(uri.address)) is busy or restarting: \(e.message)")
        }
        return TrackingError(.internalError, e.description)
    }

    public func checkpoint() throws {}  // PostgreSQL keeps its own files

    /// Asks on the key connection, which no request holds for long (a pool busy with requests is load, not a
    /// database away, and does not make the server look unready), connecting once if it has to. The read gives up a
    /// second after the probe's deadline (a lock it waits behind, a slow database), so that the connection is soon
    /// free again for the metric keys.
    public func ping() throws {
        let limit = (Readiness.deadline + .seconds(1)).totalNanoseconds / 1_000_000
        try mapped {
            try keyDB.withConnection(reconnecting: false) { c in
                try c.execute("BEGIN")
                let readOnly: Bool
                do {
                    try c.execute("SET LOCAL statement_timeout = \(limit); SET LOCAL lock_timeout = \(limit)")
                    readOnly = try c.rows("SELECT current_setting('transaction_read_only'), (SELECT 1 FROM experiments LIMIT 1)").first?.first == .text("on")
                    try c.execute("COMMIT")
                } catch {
                    // Back in the pool only outside the transaction: a ROLLBACK that fails has the connection closed.
                    do { try c.execute("ROLLBACK") } catch { throw PostgresError(error, sql: "ROLLBACK") }
                    throw error
                }
                if readOnly {
                    // A standby, or a primary a failover demoted: not ready for writes. The pool looks again.
                    c.pooled.refusedWrite.store(true, ordering: .relaxed)
                    var e = PostgresError(TrackingError(.temporarilyUnavailable, "read-only"), sql: nil)
                    (e.sqlState, e.message) = ("25006", "the server reached (\(c.pooled.endpoint)) takes no writes")
                    throw e
                }
            }
        }
    }

    /// Runs `body` with a codec of the pool.
    func withCodec<R>(_ body: (ColumnCodec) throws -> R) rethrows -> R {
        let lent = codecs.withLock { $0.popLast() } ?? LentCodec(codec: ColumnCodec())
        defer { codecs.withLock { if $0.count < 8 { $0.append(lent) } } }
        return try body(lent.codec)
    }

    // MARK: Experiments

    public func insertExperiment(name: String, artifactLocation: String, tags: [KeyValue], now: Int64) throws -> String {
        try write { c in
            let id = try c.rows("SELECT nextval('experiment_ids')")[0][0].int ?? 0
            let location = artifactLocation.split(separator: "{id}", omittingEmptySubsequences: false).joined(separator: String(id))
            guard try c.run("INSERT INTO experiments VALUES (?, ?, ?, 'active', ?, ?) ON CONFLICT DO NOTHING",
                            [.integer(id), .text(name), .text(location), .integer(now), .integer(now)]) == 1 else {
                throw Self.experimentExists(name)
            }
            try Self.upsertPairs(c, into: "experiment_tags", owner: "experiment_id", id: .integer(id), tags)
            return String(id)
        }
    }

    public func insertExperiment(_ e: Experiment) throws {
        guard let id = Int64(e.experimentID) else { throw TrackingError.invalid("Invalid experiment id '\(e.experimentID)'") }
        try write { c in
            guard try c.run("INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            [.integer(id), .text(e.name), .text(e.artifactLocation), .text(e.lifecycleStage.rawValue),
                             .integer(e.creationTime), .integer(e.lastUpdateTime)]) == 1 else {
                throw TrackingError(.resourceAlreadyExists, "Experiment(id=\(id), name=\(e.name)) already exists")
            }
            try Self.upsertPairs(c, into: "experiment_tags", owner: "experiment_id", id: .integer(id), e.tags)
            // Ids the sequence would hand out later move past this one.
            try c.execute("SELECT setval('experiment_ids', GREATEST((SELECT MAX(experiment_id) FROM experiments), (SELECT last_value FROM experiment_ids), 1))")
        }
    }

    /// MLflow's error for a taken experiment name.
    static func experimentExists(_ name: String) -> TrackingError {
        TrackingError(.resourceAlreadyExists, "Experiment(name=\(name)) already exists. Error: duplicate key value violates unique constraint \"experiments_name_key\"")
    }

    public func experiment(id: Int64) throws -> Experiment? {
        // One statement: the experiment joined with its tags (run creation reads it every time).
        let rows = try conn { c in
            try c.rows("SELECT e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time, t.key, t.value "
                       + "FROM experiments e LEFT JOIN experiment_tags t ON t.experiment_id = e.experiment_id WHERE e.experiment_id = ? ORDER BY t.key",
                       [.integer(id)])
        }
        guard let r = rows.first else { return nil }
        return Experiment(experimentID: String(r[0].int ?? 0), name: r[1].string ?? "", artifactLocation: r[2].string ?? "",
                          lifecycleStage: LifecycleStage(rawValue: r[3].string ?? "") ?? .active, creationTime: r[4].int ?? 0,
                          lastUpdateTime: r[5].int ?? 0,
                          tags: rows.compactMap { t in t[6].string.map { KeyValue(key: $0, value: t[7].string ?? "") } })
    }

    public func experiment(named name: String) throws -> Experiment? {
        try conn { try SQLiteMetadataStore.experimentRows($0, "WHERE name = ?", [.text(name)]).first }
    }

    public func experiments() throws -> [Experiment] {
        try conn { try SQLiteMetadataStore.experimentRows($0, "ORDER BY experiment_id", []) }
    }

    public func renameExperiment(id: Int64, to name: String, now: Int64) throws {
        try conn { c in
            guard try attempt(c, "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?", [.text(name), .integer(now), .integer(id)]) else {
                throw Self.experimentExists(name)
            }
        }
    }

    /// The experiment's stage, and its runs' with it. Its row is locked first (`FOR UPDATE`): a run being created in
    /// it holds the row (`FOR KEY SHARE`) until it commits, so the runs' update, which comes after, sees every run
    /// created before the stage changed, and a creation that comes after reads the new stage and makes no run. (An
    /// update of the stage alone does not wait for them: an active run could be left in a deleted experiment.)
    public func setExperimentStage(id: Int64, _ stage: LifecycleStage, now: Int64) throws {
        try write { c in
            try c.run("SELECT 1 FROM experiments WHERE experiment_id = ? FOR UPDATE", [.integer(id)])
            try c.run("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
                      [.text(stage.rawValue), .integer(now), .integer(id)])
            try c.run("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
                      [.text(stage.rawValue), stage == .deleted ? .integer(now) : .null, .integer(id)])
        }
    }

    public func setExperimentTag(id: Int64, _ tag: KeyValue) throws {
        try conn {
            try $0.run("INSERT INTO experiment_tags VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                       [.integer(id), .text(tag.key), .text(tag.value)])
        }
    }

    public func deleteExperimentTag(id: Int64, key: String) throws -> Bool {
        try conn { try $0.run("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", [.integer(id), .text(key)]) > 0 }
    }
}
