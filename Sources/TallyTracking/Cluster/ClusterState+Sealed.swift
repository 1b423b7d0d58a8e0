import Foundation

extension ClusterState {
    /// One segment object of a run's sealed set.
    public struct SealedSegment: Sendable, Equatable {
        /// Its number in the run (its file name in a server's copy).
        public var seq: UInt64
        /// Its key in the metrics destination's bucket.
        public var key: String
        /// Its size.
        public var bytes: Int64

        /// A segment object.
        public init(seq: UInt64, key: String, bytes: Int64) {
            self.seq = seq
            self.key = key
            self.bytes = bytes
        }
    }

    /// What a run holds in object storage: segments holding every record of its log up to ``through``.
    public struct SealedSet: Sendable, Equatable {
        /// The last log record the segments hold (the log keeps only records after it).
        public var through: Int64
        /// The epoch it was sealed under.
        public var epoch: Int64
        /// The segments, by number: one server's consistent set (its run directory at one moment).
        public var segments: [SealedSegment]
    }

    /// The run's sealed set; `nil` when nothing of it is sealed. One statement, so one snapshot.
    public func sealed(run: String) throws -> SealedSet? {
        let rows = try db.withConnection { c in
            try c.rows("SELECT s.through_seq, s.epoch, g.seq, g.object_key, g.bytes FROM tally_sealed s "
                       + "LEFT JOIN tally_sealed_segments g USING (run_uuid) WHERE s.run_uuid = ? ORDER BY g.seq", [.text(run)])
        }
        guard let first = rows.first else { return nil }
        return SealedSet(through: first[0].int ?? 0, epoch: first[1].int ?? 0, segments: rows.compactMap { r in
            guard let seq = r[2].int, let key = r[3].string else { return nil }
            return SealedSegment(seq: UInt64(seq), key: key, bytes: r[4].int ?? 0)
        })
    }

    /// A page of the run's records after `seq` with the sealed set's ``SealedSet/through`` (0: none), read in one
    /// statement: when `through > seq` the page may miss trimmed records, and the reader must start from the sealed
    /// set instead.
    public func recordsPage(run: String, after seq: Int64, limit: Int) throws -> (through: Int64, records: [Record]) {
        let rows = try db.withConnection { c in
            try c.rows("""
                SELECT t.through, l.seq, l.epoch, l.payload
                FROM (SELECT COALESCE((SELECT through_seq FROM tally_sealed WHERE run_uuid = ?), 0) AS through) t
                LEFT JOIN LATERAL (SELECT seq, epoch, payload FROM tally_log WHERE run_uuid = ? AND seq > ? ORDER BY seq LIMIT ?) l ON true
                ORDER BY l.seq
                """, [.text(run), .text(run), .integer(seq), .integer(Int64(limit))])
        }
        let records = rows.compactMap { r -> Record? in
            guard let s = r[1].int, case .blob(let payload) = r[3] else { return nil }
            return Record(seq: s, epoch: r[2].int ?? 0, payload: payload)
        }
        return (rows.first?[0].int ?? 0, records)
    }

    /// A seal named objects it did not upload that the run's current set does not hold (another server's seal
    /// replaced, and deleted, them): nothing was recorded.
    public struct StaleObjects: Error {}

    /// Records a new sealed set of the run, fenced by its lease (this server, `epoch`, unexpired), and deletes the
    /// log records it holds, in one transaction. Every key of `segments` not in `uploaded` (reused from an earlier
    /// set) must be in the run's current set, else ``StaleObjects`` is thrown. Returns the keys of the objects the set
    /// replaced (for the caller to delete), or `nil` when the run's recorded set already holds at least as much.
    public func commitSealed(run: String, epoch: Int64, through: Int64, segments: [SealedSegment], uploaded: Set<String> = []) throws -> [String]? {
        try db.transaction { c in
            try Self.checkLease(c, node: node, run: run, epoch: epoch)
            let had = try c.rows("SELECT through_seq FROM tally_sealed WHERE run_uuid = ? FOR UPDATE", [.text(run)]).first?[0].int
            if let had, had >= through { return nil }
            let old = try c.rows("SELECT object_key FROM tally_sealed_segments WHERE run_uuid = ?", [.text(run)]).compactMap { $0[0].string }
            let current = Set(old)
            guard segments.allSatisfy({ uploaded.contains($0.key) || current.contains($0.key) }) else { throw StaleObjects() }
            _ = try c.run("DELETE FROM tally_sealed_segments WHERE run_uuid = ?", [.text(run)])
            try Self.insert(c, run: run, segments)
            _ = try c.run("INSERT INTO tally_sealed VALUES (?, ?, ?, \(Self.now)) ON CONFLICT (run_uuid) DO UPDATE "
                          + "SET through_seq = EXCLUDED.through_seq, epoch = EXCLUDED.epoch, sealed_ms = EXCLUDED.sealed_ms",
                          [.text(run), .integer(through), .integer(epoch)])
            _ = try Self.trim(c, run: run, through: through)
            let kept = Set(segments.map(\.key))
            return old.filter { !kept.contains($0) }
        }
    }

    /// Inserts the rows of a run's sealed set (its `tally_sealed` row is the caller's), 500 to a statement.
    static func insert(_ c: PostgresDatabase.Connection, run: String, _ segments: [SealedSegment]) throws {
        for chunk in stride(from: 0, to: segments.count, by: 500) {
            let part = segments[chunk..<min(chunk + 500, segments.count)]
            _ = try c.run("INSERT INTO tally_sealed_segments VALUES " + part.map { _ in "(?, ?, ?, ?)" }.joined(separator: ", "),
                          part.flatMap { [SQLValue.text(run), .integer(Int64($0.seq)), .text($0.key), .integer($0.bytes)] })
        }
    }

    /// Runs whose records wait in the log under a lapsed lease (their owner died or left them unsealed): at most
    /// `limit`, for a live server to take over and seal.
    public func orphanedRuns(limit: Int = 20) throws -> [String] {
        try db.withConnection { c in
            try c.rows("SELECT run_uuid FROM tally_leases s WHERE expires_ms <= \(Self.now) "
                       + "AND EXISTS (SELECT 1 FROM tally_log l WHERE l.run_uuid = s.run_uuid) LIMIT ?", [.integer(Int64(limit))])
                .compactMap { $0[0].string }
        }
    }
}
