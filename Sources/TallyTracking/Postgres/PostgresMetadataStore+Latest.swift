import Synchronization
import TallyStore

extension PostgresMetadataStore {
    // MARK: Latest values (the same compact rows as SQLite's)

    public func latestMetrics(runID: String, keys: [String]) throws -> [Metric?] {
        // An unlocked request reads the row it expects (its write checks that it still is the database's).
        if let u = unlockedRequest(runID) { return try lookup(u.expected.data, runID: runID, keys) }
        // Inside a transaction the row is locked until the commit: the batch that read it is the one that writes it
        // next, so two servers' batches of one run take turns instead of overwriting each other's keys.
        let row = try lockedLatestRow(runID)?.data ?? conn { try Self.latestRow($0, runID) }
        return try lookup(row, runID: runID, keys)
    }

    /// `keys`' values in a latest row.
    func lookup(_ row: [UInt8], runID: String, _ keys: [String]) throws -> [Metric?] {
        LatestRows.lookup(row.isEmpty ? [] : try decodeLatest(row, runID: runID).metrics, keys)
    }

    public func latestMetrics(activeRunID runID: String, keys: [String]) throws -> [Metric?]? {
        if let u = unlockedRequest(runID) { return try lookup(u.expected.data, runID: runID, keys) }
        // Inside a transaction: the stage and the row locked until the commit, in one statement the first time.
        if let b = Self.bound, b.store == ObjectIdentifier(self) {
            if b.lockedLatest.withLock({ $0[runID] }) == nil,
               let row = try mapped({
                   try b.connection.rows("SELECT r.lifecycle_stage, l.data, l.seq FROM runs r JOIN run_latest l ON l.run_uuid = r.run_uuid "
                                         + "WHERE r.run_uuid = ? FOR UPDATE OF l", [.text(runID)]).first
               }) {
                guard row[0].string == LifecycleStage.active.rawValue else { return nil }
                let data = row[1].bytes ?? []
                b.lockedLatest.withLock { $0[runID] = LockedLatest(seq: row[2].int, data: data) }
                return try lookup(data, runID: runID, keys)
            }
            // Locked already, or no row to lock (a run made before runs got theirs with them, or no run): the stage on
            // its own.
            guard try activeRunInfo(runID) != nil else { return nil }
            return try latestMetrics(runID: runID, keys: keys)
        }
        // Otherwise the stage and the row in one statement.
        let row = try conn { c in
            try c.rows("SELECT r.lifecycle_stage, l.data FROM runs r LEFT JOIN run_latest l ON l.run_uuid = r.run_uuid WHERE r.run_uuid = ?",
                       [.text(runID)]).first
        }
        guard let row, row[0].string == LifecycleStage.active.rawValue else { return nil }
        let data = row[1].bytes ?? []
        return LatestRows.lookup(data.isEmpty ? [] : try decodeLatest(data, runID: runID).metrics, keys)
    }

    /// Registers the keys the database has no id for yet, on the key connection, outside any transaction.
    public func prepareMetricKeys(_ keys: [String]) throws {
        if current == nil { try intern(keys) }
    }

    public func setLatestMetrics(runID: String, _ metrics: [Metric]) throws {
        let updates = metrics.isSortedByKey ? metrics : metrics.sorted { binaryLess($0.key, $1.key) }
        if let u = unlockedRequest(runID) { return try setLatestUnlocked(u, updates) }
        guard !updates.isEmpty else { return }
        try intern(updates.map(\.key))
        try write { c in
            guard let locked = try lockedLatestRow(runID) else { throw TrackingError(.internalError, "latest row written outside a transaction") }
            let row = locked.data
            let (all, ids) = row.isEmpty ? ([], []) : try decodeLatest(row, runID: runID)
            let table = keys.withLock { $0 }
            let (merged, mergedIDs) = try LatestRows.merge(all, ids: ids, sortedUpdates: updates) { key in
                guard let id = table.id(key) else { throw TrackingError(.internalError, "metric key \(key) was not interned") }
                return (id, table.interned(key))
            }
            let encoded = try withCodec { try LatestRows.encode(merged, ids: mergedIDs, codec: $0) }
            // Every write of the row raises its seq (what unlocked requests check: schema version 6).
            try c.exec("INSERT INTO run_latest VALUES (?, ?) ON CONFLICT (run_uuid) DO UPDATE SET data = excluded.data, seq = run_latest.seq + 1, "
                       + PostgresSchema.stamp,
                       [.text(runID), .blob(encoded)])
            Self.bound?.lockedLatest.withLock { $0[runID] = LockedLatest(seq: locked.seq.map { $0 + 1 }, data: encoded) }
        }
    }

    /// Inside a transaction, a run's latest row locked until the commit: read `FOR UPDATE` the first time, then
    /// as this transaction last saw (or wrote) it. `nil` outside transactions.
    func lockedLatestRow(_ runID: String) throws -> LockedLatest? {
        guard let b = Self.bound, b.store == ObjectIdentifier(self) else { return nil }
        if let row = b.lockedLatest.withLock({ $0[runID] }) { return row }
        let found = try mapped {
            try b.connection.rows("SELECT data, seq FROM run_latest WHERE run_uuid = ? FOR UPDATE", [.text(runID)]).first
        }
        let row = LockedLatest(seq: found?[1].int, data: found?[0].bytes ?? [])
        b.lockedLatest.withLock { $0[runID] = row }
        return row
    }

    public func latestTable(runIDs: [String]) throws -> LatestTable {
        var bytes: [String: [UInt8]] = [:]
        try conn { c in
            for start in stride(from: 0, to: runIDs.count, by: 500) {
                let chunk = runIDs[start..<min(runIDs.count, start + 500)].map { SQLValue.text($0) }
                for r in try c.rows("SELECT run_uuid, data FROM run_latest WHERE run_uuid IN (\(sqlMarks(chunk.count)))", chunk) {
                    bytes[r[0].string ?? ""] = r[1].bytes ?? []
                }
            }
        }
        return try LatestRows.table(runIDs.map { bytes[$0] ?? [] }, runIDs: runIDs) { try keyName($0) }
    }

    /// A run's latest row (empty: none yet).
    static func latestRow(_ c: PostgresDatabase.Connection, _ runID: String) throws -> [UInt8] {
        try c.rows("SELECT data FROM run_latest WHERE run_uuid = ?", [.text(runID)]).first?.first?.bytes ?? []
    }

    /// Decodes a latest row, resolving key ids (reading the key table again when another server added keys).
    func decodeLatest(_ row: [UInt8], runID: String) throws -> (metrics: [Metric], ids: [Int64]) {
        try withCodec { codec in try LatestRows.decodeWithIDs(row, runID: runID, codec: codec) { try keyName($0) } }
    }

    // MARK: Metric keys

    /// The key of `id`: from the table, or — an id another server interned — after reading the table again (a
    /// failure to read it is the request's: a 503 when the database cannot be reached, not an unknown key).
    func keyName(_ id: Int64) throws -> String? {
        if let k = keys.withLock({ $0.key(id) }) { return k }
        try reloadKeys { $0.key(id) != nil }
        return keys.withLock { $0.key(id) }
    }

    /// The id of `key` when the database has one (a key no run ever logged has none).
    func keyID(ifKnown key: String) throws -> Int64? {
        if let id = keys.withLock({ $0.id(key) }) { return id }
        try reloadKeys { $0.id(key) != nil }
        return keys.withLock { $0.id(key) }
    }

    /// Reads the whole key table: on the key connection, or inside a transaction on the transaction's own (which
    /// must never wait for a second one: behind a pooler in transaction mode none may come free; the ids a committed
    /// row holds are committed, so the transaction sees them).
    /// - Parameter enough: whether the table in memory already has what the caller wants: checked again once the key
    ///   connection is this caller's, so callers queued behind one reload do not each read the whole table again.
    func reloadKeys(unless enough: (MetricKeyTable) -> Bool = { _ in false }) throws {
        func read(_ c: PostgresDatabase.Connection) throws {
            if keys.withLock({ enough($0) }) { return }
            var table = MetricKeyTable()
            for r in try c.rows("SELECT key_id, key FROM metric_keys") { table.add(id: r[0].int ?? 0, key: r[1].string ?? "") }
            keys.withLock { $0 = table }
        }
        try mapped {
            if let c = current { return try read(c) }
            try keyDB.withConnection { try read($0) }
        }
    }

    /// Makes sure every key has an id: new ones are inserted on the key connection (committed at once, whatever
    /// becomes of the caller's transaction), ids another server gave are read back.
    func intern(_ wanted: [String]) throws {
        // In one order for every server: two servers inserting the same new keys in different orders would each wait
        // for the other's uncommitted key (PostgreSQL breaks that as a deadlock, the request answered 503).
        let missing = Set(keys.withLock { table in wanted.filter { table.id($0) == nil } }).sorted(by: binaryLess)
        guard !missing.isEmpty else { return }
        var found: [(Int64, String)] = []
        try mapped {
            try keyDB.withConnection { c in
                for start in stride(from: 0, to: missing.count, by: 1000) {
                    let chunk = missing[start..<min(missing.count, start + 1000)].map { SQLValue.text($0) }
                    try c.run("INSERT INTO metric_keys (key) VALUES " + Array(repeating: "(?)", count: chunk.count).joined(separator: ", ")
                              + " ON CONFLICT (key) DO NOTHING", chunk)
                    for r in try c.rows("SELECT key_id, key FROM metric_keys WHERE key IN (\(sqlMarks(chunk.count)))", chunk) {
                        found.append((r[0].int ?? 0, r[1].string ?? ""))
                    }
                }
            }
        }
        keys.withLock { table in for (id, key) in found { table.add(id: id, key: key) } }
    }
}
