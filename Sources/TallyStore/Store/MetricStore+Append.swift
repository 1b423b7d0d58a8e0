import Synchronization

/// An append that is logged and visible but not yet durable: hand it to ``MetricStore/settle(_:)`` exactly once.
/// Until then it counts as an append in flight, so ``MetricStore/close()`` waits for it.
public final class PendingAppend: Sendable {
    let run: RunStore?
    let lsn: UInt64
    let needsSeal: Bool
    /// `false` when the batch id was a duplicate and nothing was stored.
    public let stored: Bool
    /// The run's next segment number when the points became visible (see ``RunState/unsettled``).
    let unsettledSeq: UInt64?
    /// Set by the first `settle`.
    let settled = Atomic<Bool>(false)
    /// The points stored (after MLflow's repeat rule) and the batch id.
    let kept: (series: SeriesColumns, batchID: String?)?

    init(run: RunStore?, lsn: UInt64, needsSeal: Bool, stored: Bool, unsettledSeq: UInt64? = nil,
         kept: (series: SeriesColumns, batchID: String?)? = nil) {
        self.run = run
        self.lsn = lsn
        self.needsSeal = needsSeal
        self.stored = stored
        self.unsettledSeq = unsettledSeq
        self.kept = kept
    }

    /// The points this append stored as a ``PointsRecord`` (what a cluster's shared log keeps); `nil` when it
    /// stored none (a repeated batch id, or every point a repeat).
    public func record() throws -> [UInt8]? {
        guard stored, let kept, kept.series.pointCount > 0 else { return nil }
        return try PointsRecord.encode(kept.series, batchID: kept.batchID)
    }
}

/// A batch checked and encoded for the log, not yet appended (``MetricStore/prepareAppend(run:columns:batchID:)``).
/// Dropping it unused withdraws its announcement to the log's group commit.
public final class PreparedAppend: Sendable {
    let run: String
    let batches: SeriesColumns
    let columns: WALPoints.Columns?
    let batchID: String?
    let wal: WAL?
    /// MLflow's exact-duplicate rule, when the caller asked for it (the part newer than its mark is still to check).
    let duplicates: DuplicateCheck?
    /// Whether the log still counts on this batch being appended (``WAL/willAppend()`` not yet consumed).
    let announced: Atomic<Bool>

    init(run: String, batches: SeriesColumns, columns: WALPoints.Columns?, batchID: String?, wal: WAL?, duplicates: DuplicateCheck?) {
        self.run = run
        self.batches = batches
        self.columns = columns
        self.batchID = batchID
        self.wal = wal
        self.duplicates = duplicates
        announced = Atomic(wal != nil)
    }

    /// Takes the announcement for the append about to be logged; `false` when it was already taken.
    func consumeAnnouncement() -> Bool { announced.exchange(false, ordering: .acquiringAndReleasing) }

    /// Withdraws the announcement if no append took it.
    func withdraw() { if consumeAnnouncement() { wal?.cancelAppend() } }

    deinit { withdraw() }
}

extension MetricStore {
    /// Appends points to a run's series.
    ///
    /// With a write-ahead log the batch is logged first and, in `sync` durability, the call returns only once an
    /// fdatasync covers it; concurrent appends share fsyncs. Points are visible to reads as soon as they are logged.
    /// - Parameters:
    ///   - id: The run.
    ///   - series: One or more series batches; columns of a batch must have equal lengths. Batches with the same
    ///     key are concatenated.
    ///   - batchID: An optional client id: a batch whose id the run has already stored is not stored again (also
    ///     across restarts; the run remembers its last 4,096 ids).
    /// - Returns: `false` when `batchID` was a duplicate and nothing was stored.
    /// - Throws: ``StorageError/Code/invalidArgument`` for mismatched columns or bad keys (nothing is stored then),
    ///   or an I/O error from the log or from a seal the append triggered.
    @discardableResult
    public func append(run id: String, series: [SeriesBatch], batchID: String? = nil) throws -> Bool {
        // Prepared, logged and visible, then durable and sealed: the three steps a caller holding its own lock
        // takes apart (prepareAppend outside it, appendVisible inside, settle after).
        let pending = try appendVisible(try prepareAppend(run: id, columns: SeriesColumns(series), batchID: batchID))
        try settle(pending)
        return pending.stored
    }

    /// Everything of an append that can be done before the caller takes its own lock: checks the batch, applies
    /// backpressure (seals when over the memory budget), opens a cold run's segments, drops points that repeat
    /// sealed ones when `duplicates` asks for MLflow's rule (the rest of that check happens under the run's lock in
    /// ``appendVisible(_:)``) and encodes the log record.
    /// A caller that must commit something else atomically with the points (the tracking layer's metadata
    /// transaction) prepares outside its transaction and calls ``appendVisible(_:)`` inside it, as the last step
    /// that can fail, so a refusal before it leaves no point visible and its lock covers no encoding or sealing.
    public func prepareAppend(run id: String, columns: SeriesColumns, batchID: String? = nil,
                              duplicates: DuplicateCheck? = nil) throws -> PreparedAppend {
        var batches = try columns.normalized()
        if let b = batchID, b.isEmpty || b.utf8.count > 256 { throw StorageError(.invalidArgument, "batch id must be 1 to 256 bytes") }
        try beginAppend()
        defer { endAppend() }
        if let run = try roomAndRun(id, create: true), let duplicates { batches = try dropSealedRepeats(run, batches, duplicates) }
        guard let wal, batches.count > 0 else {
            return PreparedAppend(run: id, batches: batches, columns: nil, batchID: batchID, wal: nil, duplicates: duplicates)
        }
        wal.willAppend()  // withdrawn by the append, or when the prepared batch is dropped unused
        return PreparedAppend(run: id, batches: batches, columns: WALPoints.encodeColumns(batches, compress: wal.config.compress),
                              batchID: batchID, wal: wal, duplicates: duplicates)
    }

    /// What ``prepareAppend(run:columns:batchID:duplicates:)`` does first, for a caller to do before it takes locks
    /// of its own (a PostgreSQL row lock): seals over the memory budget (refusing past its limit) and loads the run
    /// when it exists. The append itself checks again.
    public func makeRoom(run id: String) throws {
        try beginAppend()
        defer { endAppend() }
        _ = try roomAndRun(id, create: false)
    }

    /// Backpressure, then the run loaded: over the memory budget, seal (or queue seals, and refuse past the limit)
    /// before storing more (if sealing fails, nothing is stored); `create` makes a run the store has not seen.
    private func roomAndRun(_ id: String, create: Bool) throws -> RunStore? {
        if headBytes > configuration.headMemoryBudget { try enforceBudget(refusing: true) }
        guard let run = try run(id, create: create) else { return nil }
        try run.state.withLock { try run.load(&$0) }
        return run
    }

    /// Logs a prepared batch and makes it visible (see ``prepareAppend(run:columns:batchID:)``); hand the result to
    /// ``settle(_:)``.
    public func appendVisible(_ prepared: PreparedAppend) throws -> PendingAppend {
        let id = prepared.run, batchID = prepared.batchID
        defer { prepared.withdraw() }
        try beginAppend()
        // The append stays in flight (close waits for it) until `settle`; only a failure here ends it now.
        var handedOver = false
        defer { if !handedOver { endAppend() } }
        let sealPoints = self.sealPoints
        for _ in 0..<8 {
            guard let run = try run(id, create: true) else {
                handedOver = true
                return PendingAppend(run: nil, lsn: 0, needsSeal: false, stored: false)
            }
            // Log and apply under the run's lock, so the head's arrival order is the log's order.
            typealias Kept = (series: SeriesColumns, batchID: String?)
            let outcome: (stored: Bool, lsn: UInt64, needsSeal: Bool, unsettled: UInt64?, kept: Kept?)? = try run.state.withLock { s in
                try run.load(&s)
                if s.deleted { return nil }  // deleted meanwhile: look the id up again
                // A retry of a stored batch: its answer waits for what is logged so far, like the original's.
                if let b = batchID, s.batchIDs.contains(b) { return (false, wal?.lastLSN ?? 0, false, nil, nil) }
                // Points repeating head points or points sealed since the caller's mark (MLflow's rule): checked here,
                // so two concurrent appends of one point store it once. The log record is re-encoded only then.
                var batches = prepared.batches, columns = prepared.columns
                if let check = prepared.duplicates, batches.count > 0, let kept = try dropNewRepeats(run, &s, batches, since: check.mark) {
                    batches = kept
                    columns = wal.map { WALPoints.encodeColumns(kept, compress: $0.config.compress) }
                }
                var lsn: UInt64 = 0, wait: UInt64 = 0
                if let wal, let columns, batches.count > 0, prepared.consumeAnnouncement() {
                    lsn = try wal.append(run: id, columns: columns, keys: batches.keys, batchID: batchID)
                } else if let wal, prepared.duplicates != nil {
                    // Nothing new: the points it repeats may still await their fsync, so its answer waits for
                    // everything logged so far, like the append that logged them.
                    wait = wal.lastLSN
                }
                var needsSeal = false
                if s.heads.isEmpty { s.heads.reserveCapacity(batches.count) }  // a new run's first (wide) batch
                var grown = 0  // head memory added: only the touched heads are counted, not every head of the run
                var points = 0
                batches.forEach { _, key, st, ts, vs in
                    points &+= st.count
                    // One hash lookup per key: the head is changed in place in the run's table.
                    Self.modify(&s.heads[key, default: SeriesHead()]) { h in
                        let before = h.count == 0 ? 0 : h.bytes
                        h.append(steps: st, timestamps: ts, values: vs, lsn: lsn)
                        grown &+= h.bytes &- before
                        needsSeal = needsSeal || h.count >= sealPoints
                    }
                }
                if let b = batchID { s.batchIDs.insert(b) }
                s.noteHeadAppend(lsn: lsn)
                run.addHeadBytes(&s, grown)
                account.counters.pointsAppended.add(points, ordering: .relaxed)
                s.unsettled[s.nextSeq, default: 0] += 1
                return (true, max(lsn, wait), needsSeal, s.nextSeq, (batches, batchID))
            }
            guard let outcome else { continue }
            handedOver = true
            return PendingAppend(run: run, lsn: outcome.lsn, needsSeal: outcome.needsSeal, stored: outcome.stored, unsettledSeq: outcome.unsettled,
                                 kept: outcome.kept)
        }
        throw StorageError(.io, "run \(id) was deleted repeatedly while appending")
    }

    /// Applies `change` to a value in place (with a dictionary's `default:` subscript: one lookup, no copy).
    @inline(__always)
    static func modify<T>(_ value: inout T, _ change: (inout T) -> Void) { change(&value) }

    /// Waits until a visible append is durable, then seals what it made due (see ``appendVisible(_:)``).
    public func settle(_ pending: PendingAppend) throws {
        guard !pending.settled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        defer { endAppend() }
        if let run = pending.run, let seq = pending.unsettledSeq {
            // Settled once its caller committed (or gave up): from now on its metadata tells readers of it.
            run.state.withLock { s in
                if let n = s.unsettled[seq], n > 1 { s.unsettled[seq] = n - 1 } else { s.unsettled[seq] = nil }
            }
        }
        if let wal, pending.lsn > 0 { try wal.waitDurable(pending.lsn) }
        guard pending.stored, let run = pending.run else { return }
        // The batch is stored (and logged). A failing seal now must not report it as failed: the error is kept
        // for `maintenanceError` and surfaces again through the budget check of later appends, flush and close.
        do {
            if pending.needsSeal {
                if configuration.sealsInBackground { sealLater(run) } else { try sealAndMaintain(run, dueSeal) }
            }
            if headBytes > configuration.headMemoryBudget { try enforceBudget(refusing: false) }
        } catch let e as StorageError {
            recordMaintenanceFailure(e)
            if wal == nil { throw e }  // without a log the points are only in memory: say so
        }
    }

    /// Appends one point.
    public func append(run id: String, key: String, step: Int64, timestamp: Int64, value: Double) throws {
        try append(run: id, series: [SeriesBatch(key: key, steps: [step], timestamps: [timestamp], values: [value])])
    }

    /// Points a series head holds before its run is due for a seal.
    var sealPoints: Int { configuration.sealPoints ?? configuration.blockPoints }

    /// The seal a run whose head reached ``sealPoints`` is due for: series at least half full, cut at a common step.
    var dueSeal: SealScope { .full(minimum: max(1, sealPoints / 2)) }

    /// Seals, compacts when due (on the compaction queue when seals run in the background), and lets the WAL drop
    /// what is now sealed.
    func sealAndMaintain(_ run: RunStore, _ scope: SealScope) throws {
        try run.seal(scope, config: configuration)
        if configuration.compactionThreshold > 0 {
            let segments = run.state.withLock { $0.segments.count }
            if segments > configuration.compactionThreshold {
                if configuration.sealsInBackground { compactLater(run) } else { try compactTail(run) }
            }
        }
        try maintainWAL()
        lastMaintenanceError.withLock { $0 = nil }
    }

    /// Seals the largest heads until the total is back under 90 % of the budget. The appending thread does the
    /// sealing: that is the backpressure. With seals in the background it queues them instead and, when
    /// `refusing`, refuses the append past ``StoreConfiguration/headMemoryLimit``.
    func enforceBudget(refusing: Bool) throws {
        if configuration.sealsInBackground {
            var excess = headBytes - headSealTarget
            let largest = runs.withLock { Array($0.values) }.map { ($0, $0.headBytes.load(ordering: .relaxed)) }.filter { $0.1 > 0 }
            for (run, bytes) in largest.sorted(by: { $0.1 > $1.1 }) where excess > 0 {
                sealLater(run)
                excess -= bytes
            }
            let held = headBytes
            if refusing && held > configuration.headMemoryLimit {
                // Seals that fail (a full disk) free nothing: say why rather than ask for retries that cannot succeed.
                if let failed = lastMaintenanceError.withLock({ $0 }) { throw failed }
                throw StorageError(.overloaded, "unsealed metric points fill the memory allowed (\(Self.megabytes(held)) of \(Self.megabytes(configuration.headMemoryLimit))) until queued seals catch up")
            }
            return
        }
        try sealLargest()
    }

    /// `12.3 MB`.
    static func megabytes(_ bytes: Int) -> String { "\(bytes >> 20).\(((bytes & 0xFFFFF) * 10) >> 20) MB" }

    /// Head memory a budget seal brings the heads back under: 90 % of the budget.
    var headSealTarget: Int { configuration.headMemoryBudget / 10 * 9 }

    /// Seals the largest heads, in the calling thread, until the total is under ``headSealTarget``.
    func sealLargest() throws {
        var attempts = 0
        while headBytes > headSealTarget && attempts < 64 {
            attempts += 1
            let candidates = runs.withLock { Array($0.values) }
            guard let victim = candidates.max(by: { $0.headBytes.load(ordering: .relaxed) < $1.headBytes.load(ordering: .relaxed) }),
                victim.headBytes.load(ordering: .relaxed) > 0
            else { return }
            try sealAndMaintain(victim, .all)
        }
    }

    /// The oldest WAL record any head or frozen set still needs (everything when none does).
    func lowWaterLSN(_ wal: WAL) -> UInt64 {
        let all = runs.withLock { Array($0.values) }
        var low = wal.lastLSN + 1
        for r in all {
            if let m = r.state.withLock({ $0.minLSN }) { low = min(low, m) }
        }
        return low
    }

    /// Removes WAL segments whose points are all sealed; when too many remain, seals the runs that pin the oldest.
    func maintainWAL() throws {
        guard let wal, !wal.closedSegments.isEmpty else { return }
        try checkpoint(wal)
        let closed = wal.closedSegments
        guard closed.count > wal.config.maxSegments, let oldest = closed.first else { return }
        for r in runs.withLock({ Array($0.values) }) {
            if let m = r.state.withLock({ $0.minLSN }), m <= oldest.lastLSN { try r.seal(.all, config: configuration) }
        }
        try checkpoint(wal)
    }

    /// Removes the WAL segments no head needs, after recording every run's newest segment in the manifest (those
    /// segments are about to become the only copy of their points).
    func checkpoint(_ wal: WAL) throws {
        try manifestLock.withLock { _ in
            let low = lowWaterLSN(wal)
            guard wal.closedSegments.first.map({ $0.lastLSN < low }) == true else { return }
            try writeManifestLocked()
            try wal.removeSegments(below: low, remove: removals.remove)
        }
    }
}
