import Synchronization

extension PostgresMetadataStore {
    // MARK: Metric requests without a transaction

    /// Latest rows as this server last wrote or read them, with their `seq` (schema version 6), by run: bounded by
    /// bytes, the oldest entries dropped first. An entry is never served as a read: it is only the expected state of
    /// an unlocked request's write, which the database checks (a row another server changed since has another `seq`).
    final class LatestCache: Sendable {
        /// A latest row and its `seq`.
        struct Entry: Sendable {
            var seq: Int64
            var data: [UInt8]
        }

        private struct State {
            var entries: [String: Entry] = [:]
            /// Runs in the order first cached (entries removed since are skipped when evicting).
            var order: [String] = []
            var head = 0
            var bytes = 0
        }

        private let state = Mutex(State())
        /// The most bytes of rows held (keys and data).
        let capacityBytes: Int

        init(capacityBytes: Int) {
            self.capacityBytes = capacityBytes
        }

        /// The row remembered for `runID`.
        func get(_ runID: String) -> Entry? {
            state.withLock { $0.entries[runID] }
        }

        /// Remembers `entry` unless a later state of the row (higher `seq`) is remembered already; rows larger than a
        /// sixteenth of the capacity are not kept.
        func put(_ runID: String, _ entry: Entry) {
            let size = runID.utf8.count + entry.data.count + 48
            guard size <= capacityBytes / 16 else { return remove(runID) }
            state.withLock { s in
                if let old = s.entries[runID] {
                    guard old.seq <= entry.seq else { return }
                    s.bytes -= runID.utf8.count + old.data.count + 48
                } else {
                    s.order.append(runID)
                }
                s.entries[runID] = entry
                s.bytes += size
                while s.bytes > capacityBytes, s.head < s.order.count {
                    let victim = s.order[s.head]
                    s.head += 1
                    if let e = s.entries.removeValue(forKey: victim) { s.bytes -= victim.utf8.count + e.data.count + 48 }
                }
                // A run removed and remembered again is listed again: the list is compacted (each remembered run
                // once, at its oldest place) before it outgrows twice the entries.
                if s.order.count - s.head > 2 * s.entries.count + 1024 {
                    var seen = Set<String>()
                    let entries = s.entries
                    s.order = s.order[s.head...].filter { entries[$0] != nil && seen.insert($0).inserted }
                    s.head = 0
                } else if s.head > 1024, s.head * 2 > s.order.count {
                    s.order.removeFirst(s.head)
                    s.head = 0
                }
            }
        }

        /// Forgets `runID`'s row.
        func remove(_ runID: String) {
            state.withLock { s in
                if let e = s.entries.removeValue(forKey: runID) { s.bytes -= runID.utf8.count + e.data.count + 48 }
            }
        }

        /// How many rows are held (tests).
        var count: Int { state.withLock { $0.entries.count } }
        /// How many places the eviction list holds (tests: bounded by the entries).
        var listed: Int { state.withLock { $0.order.count - $0.head } }
    }

    /// One unlocked request in progress (``metricsRequest(runID:_:)``): the row it expects and, once its write took
    /// effect, what it replaced.
    final class Unlocked: Sendable {
        let store: ObjectIdentifier
        let runID: String
        let expected: LatestCache.Entry
        /// The `seq` the request's write gave the row, and the row it replaced: set once the write took effect.
        let written = Mutex<(seq: Int64, previous: [UInt8])?>(nil)

        init(store: ObjectIdentifier, runID: String, expected: LatestCache.Entry) {
            self.store = store
            self.runID = runID
            self.expected = expected
        }
    }

    @TaskLocal static var unlocked: Unlocked?

    /// The unlocked request of this store in progress on this thread, when it is about `runID`.
    func unlockedRequest(_ runID: String) -> Unlocked? {
        guard let u = Self.unlocked, u.store == ObjectIdentifier(self), u.runID == runID else { return nil }
        return u
    }

    /// The row a request expected was not the database's (another server wrote it, or the run is no longer active):
    /// nothing was written; the request runs again as a ``loggingRequest(_:)``.
    struct StaleLatest: Error {}

    /// A request that only logs metric points of `runID`. When this server remembers the run's latest row (it
    /// created the run, or wrote or read the row last), `body` runs without a transaction: its reads of the run's
    /// stage and latest values answer from that row, and its one write of the latest values is a single statement
    /// that takes effect only while the row's `seq` is the remembered one and the run is active — one round trip,
    /// where a transaction takes two (its first read and lock, then the write and `COMMIT`). Otherwise, or when that
    /// statement finds the row changed, `body` runs (again) as a ``loggingRequest(_:)``. The points are appended
    /// after the write took effect; if anything fails after it, the row is put back (unless another write came in
    /// between).
    public func metricsRequest<R>(runID: String, _ body: () throws -> R) throws -> R {
        guard current == nil, Self.unlocked == nil, let expected = latestCache.get(runID) else { return try loggingRequest(body) }
        do {
            return try gate.admit { try unlockedRequest(runID: runID, expected: expected, body) }
        } catch is StaleLatest {
            // Nothing was written: the request leaves the gate and runs again as a transaction, admitted on its own
            // (the gate's requests never nest).
            latestCache.remove(runID)
            return try loggingRequest(body)
        }
    }

    /// ``metricsRequest(runID:_:)`` expecting the row `expected`, admitted by the gate; ``StaleLatest`` when the row
    /// was not the one expected.
    private func unlockedRequest<R>(runID: String, expected: LatestCache.Entry, _ body: () throws -> R) throws -> R {
        let u = Unlocked(store: ObjectIdentifier(self), runID: runID, expected: expected)
        do {
            return try Self.$unlocked.withValue(u) { try body() }
        } catch let stale as StaleLatest {
            throw stale
        } catch {
            if let w = u.written.withLock({ $0 }) {
                latestCache.remove(runID)
                _ = try? conn { c in
                    try c.rows("UPDATE run_latest SET data = ?, seq = seq + 1, \(PostgresSchema.stamp) WHERE run_uuid = ? AND seq = ? RETURNING seq",
                               [.blob(w.previous), .text(runID), .integer(w.seq)])
                }
            }
            throw error
        }
    }

    /// ``setLatestMetrics(runID:_:)`` of an unlocked request: the merged row written in one statement, conditional
    /// on the expected `seq` and the run's stage (an empty `updates` only checks both); ``StaleLatest`` when they
    /// are not the database's.
    func setLatestUnlocked(_ u: Unlocked, _ updates: [Metric]) throws {
        let expected = u.expected
        guard !updates.isEmpty else {
            let found = try conn { c in
                try c.rows("SELECT 1 FROM run_latest l JOIN runs r ON r.run_uuid = l.run_uuid WHERE l.run_uuid = ? AND l.seq = ? "
                           + "AND r.lifecycle_stage = 'active'", [.text(u.runID), .integer(expected.seq)])
            }
            if found.isEmpty { throw StaleLatest() }
            return
        }
        try intern(updates.map(\.key))
        let (all, ids) = expected.data.isEmpty ? ([], []) : try decodeLatest(expected.data, runID: u.runID)
        let table = keys.withLock { $0 }
        let (merged, mergedIDs) = try LatestRows.merge(all, ids: ids, sortedUpdates: updates) { key in
            guard let id = table.id(key) else { throw TrackingError(.internalError, "metric key \(key) was not interned") }
            return (id, table.interned(key))
        }
        let encoded = try withCodec { try LatestRows.encode(merged, ids: mergedIDs, codec: $0) }
        guard case .latest(seq: let seq?) = try send(.latest(runID: u.runID, data: encoded, expected: expected.seq)) else { throw StaleLatest() }
        u.written.withLock { $0 = (seq, expected.data) }
        latestCache.put(u.runID, LatestCache.Entry(seq: seq, data: encoded))
    }
}
