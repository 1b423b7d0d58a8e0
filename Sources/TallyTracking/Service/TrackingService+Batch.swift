import Synchronization
import TallyStore

extension TrackingService {
    /// MLflow's `log-batch` of keyed points (see ``logBatch(runID:batch:params:tags:)``).
    public func logBatch(runID: String, metrics: [Metric] = [], params: [KeyValue] = [], tags: [KeyValue] = []) throws {
        try logBatch(runID: runID, batch: MetricBatch(metrics), params: params, tags: tags)
    }

    /// MLflow's `log-batch`: validates everything first (a batch that fails validation stores nothing), then, in one
    /// metadata transaction, re-checks params, writes params, tags and the latest value per key, and appends the
    /// points to TallyStore as its last step. A refusal anywhere leaves nothing visible; the points become durable
    /// after the commit (the wait for the log's fsync is outside the transaction, so concurrent batches share it).
    /// After a crash between the append and the commit, recovery makes the latest values match the points
    /// (``reconcileLatest()``).
    ///
    /// Metric points that repeat exactly within the batch are stored once; a retried identical batch is recognised
    /// by its content and not stored again (MLflow drops exact duplicates).
    public func logBatch(runID: String, batch: MetricBatch, params: [KeyValue] = [], tags: [KeyValue] = []) throws {
        // 1. Limits and per-item validation.
        guard batch.count <= Validation.maxMetricsPerBatch else {
            throw TrackingError.invalid("A batch logging request can contain at most \(Validation.maxMetricsPerBatch) metrics. Got \(batch.count) "
                + "metrics. Please split up metrics across multiple requests and try again.")
        }
        guard params.count <= Validation.maxParamsPerBatch else {
            throw TrackingError.invalid("A batch logging request can contain at most \(Validation.maxParamsPerBatch) params. Got \(params.count) "
                + "params. Please split up params across multiple requests and try again.")
        }
        guard tags.count <= Validation.maxTagsPerBatch else {
            throw TrackingError.invalid("A batch logging request can contain at most \(Validation.maxTagsPerBatch) tags. Got \(tags.count) "
                + "tags. Please split up tags across multiple requests and try again.")
        }
        let total = batch.count + params.count + tags.count
        guard total <= Validation.maxEntitiesPerBatch else {
            throw TrackingError.invalid("A batch logging request can contain at most \(Validation.maxEntitiesPerBatch) metrics, params, and tags in "
                + "total. Got \(total) total entities. Please split up entities across multiple requests and try again.")
        }
        if let e = batch.error { throw e }
        let series = batch.columns.withoutRepeats()
        for p in params { try Validation.key(p.key, entity: "Param") }
        for t in tags { try Validation.key(t.key, entity: "Tag") }
        // Keys compared by bytes, as the store keeps them; each repeat listed in the order given, as MLflow lists them.
        var seen = Set<ExactKey>()
        let dups = params.map(\.key).filter { !seen.insert(ExactKey($0)).inserted }
        if !dups.isEmpty {
            throw TrackingError.invalid("Duplicate parameter keys have been submitted: [\(dups.map { "'\($0)'" }.joined(separator: ", "))]. "
                + "Please ensure the request contains only one param value per param key.")
        }
        if series.count > 0 { try metadata.prepareMetricKeys(series.keys) }  // before the request's transaction
        // A single server's request runs as one of the metadata store's logging requests (PostgreSQL: one
        // transaction, its first read locking the run's latest row); a cluster's writes go through its shared log.
        // The wait for the points' durability comes after that transaction: PostgreSQL's row lock and connection are
        // not held through an fsync, and concurrent batches of one run still share one.
        guard cluster != nil else {
            // What the append would do first (seals under memory pressure, loading the run) happens before the
            // request's locks are taken.
            if series.count > 0 { try storing { try metrics.makeRoom(run: runID) } }
            let later = SettleLater()
            do {
                try Self.$settleLater.withValue(later) {
                    let request = { try self.logValidatedBatch(runID: runID, batch: batch, series: series, params: params, tags: tags) }
                    if params.isEmpty && tags.isEmpty && batch.modelPoints.isEmpty && series.count > 0 {
                        try metadata.metricsRequest(runID: runID, request)  // training's log_metric and log_batch of metrics
                    } else {
                        try metadata.loggingRequest(request)
                    }
                }
            } catch {
                for p in later.taken() { try? settle(p) }  // visible points: durable before the error is answered
                throw error
            }
            for p in later.taken() { try settle(p) }
            return
        }
        try logValidatedBatch(runID: runID, batch: batch, series: series, params: params, tags: tags)
    }

    /// Appends whose durability the request waits for once its metadata transaction ended (``logBatch``).
    final class SettleLater: Sendable {
        private let pending = Mutex<[PendingAppend]>([])
        func add(_ p: PendingAppend) { pending.withLock { $0.append(p) } }
        func taken() -> [PendingAppend] { pending.withLock { p in defer { p = [] }; return p } }
    }

    /// Set while a request defers its waits for durability (see ``SettleLater``).
    @TaskLocal static var settleLater: SettleLater?

    /// Waits for an append's durability now, or when the request's transaction ended.
    private func settleNowOrLater(_ pending: PendingAppend) throws {
        if let later = Self.settleLater { later.add(pending) } else { try settle(pending) }
    }

    /// ``logBatch(runID:batch:params:tags:)`` once the batch passed validation (`series`: its points without repeats).
    private func logValidatedBatch(runID: String, batch: MetricBatch, series: SeriesColumns, params: [KeyValue], tags: [KeyValue]) throws {
        // The run's stage is checked with the read of its stored latest values when there are points (one round trip).
        // The store's mark is taken first: points stored after it are compared under the run's lock whatever the
        // latest values say (see DuplicateCheck).
        if let cluster, series.count > 0 {
            // The run's lease (only for a run that exists: checked here the first time this server sees it, and by
            // the read of its latest values below), and its local copy up to date before the mark is taken.
            if !cluster.knows(run: runID) { _ = try activeRun(runID) }
            try cluster.prepareWrite(run: runID)
        }
        let mark = series.count == 0 ? nil : try storing { try metrics.duplicateMark(run: runID) }
        let stored = series.count == 0 ? nil : try whileActive(runID) { try metadata.latestMetrics(activeRunID: runID, keys: series.keys) }
        if stored == nil { _ = try activeRun(runID) }
        let modelPoints = batch.modelPoints.map { p in
            var p = p
            p.runID = runID
            return p
        }
        for id in Set(modelPoints.map { ExactKey($0.modelID) }) { _ = try loggedModel(id: id.string) }
        // 2. Params are immutable: a changed value fails the whole batch before anything is written.
        let newParams = params.map { KeyValue(key: $0.key, value: $0.value.prefix(codePoints: Validation.maxParamValueLength)) }
        try checkParams(runID: runID, newParams)
        // MLflow drops a point identical (key, step, timestamp, value) to one already stored: the store decides, from
        // the stored latest values (a point after its series' latest cannot repeat one: training's increasing steps
        // cost nothing) and per-block step ranges (exact comparison only where a block holds the step).
        var duplicates: DuplicateCheck?
        if let mark, let stored {
            // Only the series with a point at or before their latest need it (none in training's usual batches).
            var latest: [String: MetricPoint] = [:]
            series.forEach { i, key, st, ts, _ in
                guard let l = stored[i], st.indices.contains(where: { st[$0] < l.step || (st[$0] == l.step && ts[$0] <= l.timestamp) }) else { return }
                latest[key] = MetricPoint(step: l.step, timestamp: l.timestamp, value: l.value)
            }
            duplicates = DuplicateCheck(mark: mark, latest: latest)
        }
        let newTags = Self.lastWins(tags.map { KeyValue(key: $0.key, value: $0.value.prefix(codePoints: Validation.maxTagValueLength)) })
        guard !newParams.isEmpty || series.count > 0 || !newTags.isEmpty || !modelPoints.isEmpty else { return }
        // 3. One transaction: re-check params, write the metadata, append the points last. A retry of a request whose
        //    points are already stored (its earlier COMMIT failed) still commits its params and tags.
        _ = try commit(runID: runID, series, batchID: batch.contentID, duplicates: duplicates, metadataOnDuplicate: true) {
            let toInsert = try checkParams(runID: runID, newParams)
            // Points the store drops as repeats equal stored ones, so they change no latest value.
            let latest = try latestUpdates(runID: runID, series)
            if !toInsert.isEmpty { try refuseChangedParams(runID: runID, toInsert, stored: metadata.insertParams(runID: runID, toInsert)) }
            // Called with points even when no latest value changes: a metrics request's write checks the run there.
            if series.count > 0 { try metadata.setLatestMetrics(runID: runID, latest) }
            if !newTags.isEmpty { try metadata.setRunTags(id: runID, newTags) }
            if !modelPoints.isEmpty { try metadata.insertModelMetrics(modelPoints) }
        }
    }

    /// A batch id the run has already stored.
    private struct DuplicateBatch: Error {}

    /// Runs `writes` and then appends `series` in one metadata transaction, the append last, so any refusal leaves
    /// nothing visible; then waits for the append's durability outside the transaction (inside a logging request,
    /// after the request's). Backpressure seals happen before the transaction starts (for a logging request, before
    /// the request's: ``MetricStore/makeRoom(run:)``). Returns `false` when the batch id was already stored; then the
    /// metadata writes are kept only with `metadataOnDuplicate`.
    func commit(runID: String, _ series: SeriesColumns, batchID: String?, duplicates: DuplicateCheck? = nil, metadataOnDuplicate: Bool,
                _ writes: () throws -> Void) throws -> Bool {
        guard let cluster, series.count > 0 else {
            return try commit(runID: runID, series, batchID: batchID, duplicates: duplicates, metadataOnDuplicate: metadataOnDuplicate,
                              fence: {}, log: { _ in }, writes)
        }
        // In a cluster the run's owner writes: its lease is checked first in the transaction, and the append's record
        // joins it (ClusterNode).
        return try cluster.write(run: runID) { fence, log in
            try commit(runID: runID, series, batchID: batchID, duplicates: duplicates, metadataOnDuplicate: metadataOnDuplicate,
                       fence: fence, log: log, writes)
        }
    }

    /// ``commit(runID:_:batchID:duplicates:metadataOnDuplicate:_:)`` with `fence` called first in the transaction
    /// and `log` on the visible append (the shared log's lease check and record, in a cluster).
    private func commit(runID: String, _ series: SeriesColumns, batchID: String?, duplicates: DuplicateCheck?, metadataOnDuplicate: Bool,
                        fence: () throws -> Void, log: (PendingAppend) throws -> Void, _ writes: () throws -> Void) throws -> Bool {
        // Checks, backpressure seals, the duplicate check against sealed points and the log record's encoding happen
        // before the transaction takes its lock (a PostgreSQL logging request holds the run's latest row from its
        // first read: only this run's other writers wait meanwhile).
        let prepared = series.count == 0 ? nil : try storing {
            try metrics.prepareAppend(run: runID, columns: series, batchID: batchID, duplicates: duplicates)
        }
        // Inside a logging request this transaction joins the request's, with no savepoint: a duplicate batch whose
        // metadata must not be kept could not be rolled back alone.
        precondition(metadataOnDuplicate || Self.settleLater == nil, "a batch whose metadata a duplicate discards cannot join a logging request")
        var pending: PendingAppend?
        do {
            try metadata.transaction {
                try fence()
                try writes()
                guard let prepared else { return }
                let p = try appendVisible(prepared)
                pending = p
                if !p.stored && !metadataOnDuplicate { throw DuplicateBatch() }
                try log(p)
            }
        } catch is DuplicateBatch {
            if let pending { try settleNowOrLater(pending) }
            return false
        } catch {
            // The COMMIT itself failed after the append (inside a logging request the outer COMMIT fails later, and
            // logBatch settles): those points are visible, so make them durable before answering the error (the retry
            // is recognised by its batch id; latest values are fixed by it or by the next open's reconciliation).
            if let pending { try? settleNowOrLater(pending) }
            throw error
        }
        if let pending { try settleNowOrLater(pending) }
        return pending?.stored ?? true
    }

    /// Throws MLflow's error when a param already has another value; returns the params not logged yet.
    @discardableResult
    func checkParams(runID: String, _ params: [KeyValue]) throws -> [KeyValue] {
        guard !params.isEmpty else { return [] }
        let existing = try metadata.params(runID: runID, keys: params.map(\.key))
        try refuseChangedParams(runID: runID, params, stored: existing)
        return params.filter { existing[$0.key] == nil }
    }

    /// MLflow's batch error when any of `params` has another value in `stored`.
    func refuseChangedParams(runID: String, _ params: [KeyValue], stored: [String: String]) throws {
        let changed = params.filter { stored[$0.key] != nil && stored[$0.key] != $0.value }
        guard !changed.isEmpty else { return }
        let list = changed.map { "{'key': '\($0.key)', 'old_value': '\(stored[$0.key]!)', 'new_value': '\($0.value)'}" }.joined(separator: ", ")
        throw TrackingError.invalid("Changing param values is not allowed. Params were already logged='[\(list)]' for run ID='\(runID)'.")
    }

    /// Appends a prepared batch (a retried identical batch id is stored once), visible at once; the caller settles
    /// the append (durability, sealing) after its transaction.
    func appendVisible(_ prepared: PreparedAppend) throws -> PendingAppend {
        try storing {
            if faults.contains(.failAppend) { throw StorageError(.io, "injected failure: append") }
            let pending = try metrics.appendVisible(prepared)
            if faults.contains(.killAfterAppend) { Faults.kill() }
            return pending
        }
    }

    /// Waits for an append's durability (and the seal it made due).
    func settle(_ pending: PendingAppend) throws {
        try storing { try metrics.settle(pending) }
    }

    /// Runs store work, reporting a storage failure as MLflow's internal error, and a refusal under memory pressure
    /// as a 429 to retry.
    func storing<T>(_ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch let e as StorageError where e.code == .overloaded {
            throw RequestRules.metricsOverloaded(e.message)
        } catch let e as StorageError {
            throw TrackingError(.internalError, "storing metrics failed: \(e)")
        }
    }

    /// New latest values per key: the batch's latest under MLflow's rule, when later than the stored one.
    func latestUpdates(runID: String, _ series: SeriesColumns) throws -> [Metric] {
        guard series.count > 0 else { return [] }
        var best: [Metric] = []
        best.reserveCapacity(series.count)
        series.forEach { _, key, st, ts, vs in
            guard !st.isEmpty else { return }
            var k = 0
            for p in 1..<st.count where LatestRule.isLater(MetricPoint(step: st[p], timestamp: ts[p], value: vs[p]),
                                                          than: MetricPoint(step: st[k], timestamp: ts[k], value: vs[k])) {
                k = p
            }
            best.append(Metric(key: key, value: vs[k], timestamp: ts[k], step: st[k]))
        }
        let stored = try metadata.latestMetrics(runID: runID, keys: best.map { $0.key })
        return zip(best, stored).compactMap { m, s in s.map { Self.isLater(m, than: $0) } ?? true ? m : nil }
    }

    /// `(step, timestamp, value)` strictly greater, NaN counting as 0 (MLflow stores it so).
    static func isLater(_ a: Metric, than b: Metric) -> Bool {
        LatestRule.isLater(MetricPoint(step: a.step, timestamp: a.timestamp, value: a.value),
                           than: MetricPoint(step: b.step, timestamp: b.timestamp, value: b.value))
    }

    /// Logs dataset inputs and the models a run used (MLflow 3's `models`) to an active run. As MLflow keeps them:
    /// a dataset (name and digest) keeps the fields its experiment first logged it with, an input the run already
    /// has keeps its tags, and a dataset given twice counts as given first. Each model needs an id; a model already
    /// recorded for the run is kept once (MLflow merges them too).
    public func logInputs(runID: String, _ inputs: [DatasetInput], models: [ModelInput] = []) throws {
        for (i, m) in models.enumerated() where m.modelID.isEmpty { throw Validation.missing("models[\(i)].model_id") }
        for i in inputs {
            let d = i.dataset
            if d.name.isEmpty { throw Validation.missing("datasets[].dataset.name") }
            if d.digest.isEmpty { throw Validation.missing("datasets[].dataset.digest") }
            if d.sourceType.isEmpty { throw Validation.missing("datasets[].dataset.source_type") }
            if d.source.isEmpty { throw Validation.missing("datasets[].dataset.source") }
            guard d.name.count <= 500, d.digest.count <= 36, d.source.utf8.count <= 65_536, (d.schema?.utf8.count ?? 0) <= 1_048_576 else {
                throw TrackingError.invalid("Dataset '\(d.name.prefix(50))' exceeds a size limit (name 500, digest 36, source 64 KB, schema 1 MB)")
            }
            for t in i.tags where t.key.count > 255 || t.value.count > 500 {
                throw TrackingError.invalid("Input tag '\(t.key.prefix(50))' exceeds the limits (key 255, value 500 characters)")
            }
        }
        _ = try activeRun(runID)
        if !inputs.isEmpty { try metadata.insertInputs(runID: runID, inputs) }
        if !models.isEmpty { try metadata.insertRunModelInputs(runID: runID, models) }
    }

    /// The models a run used, in the order recorded (`runs/get`'s `inputs.model_inputs`).
    public func runModelInputs(runID: String) throws -> [ModelInput] { try metadata.runModelInputs(runID: runID) }
}

extension TrackingService {
    /// After a crash, the write-ahead log may hold points whose metadata transaction never committed: makes the
    /// stored latest value of every replayed series match its points. Returns the number of latest values
    /// corrected. Called once when the server opens its stores.
    ///
    /// - A store of its own (SQLite): this server's points are the truth, and a stored value is set to them either
    ///   way (also down, when the crash came after the commit and before the points were written).
    /// - A shared store (PostgreSQL): other servers hold points of the same runs, and the stored value may be a later
    ///   point of theirs. A value is only raised to this server's point when that point is later (MLflow's order:
    ///   step, timestamp, value), read and written under the row's lock, as a logging request merges.
    @discardableResult
    public func reconcileLatest() throws -> Int {
        var fixed = 0
        for (runID, keys) in metrics.recovery.replayedSeries.sorted(by: { $0.key < $1.key }) {
            guard try metadata.runInfo(id: runID) != nil else { continue }
            let keys = keys.sorted()
            var truths: [Metric?] = []
            for key in keys {
                truths.append(try metrics.latest(run: runID, key: key).map { Metric(key: key, value: $0.value, timestamp: $0.timestamp, step: $0.step) })
            }
            try metadata.prepareMetricKeys(keys)
            fixed += try metadata.transaction {
                let stored = try metadata.latestMetrics(runID: runID, keys: keys)  // locked until the commit (PostgreSQL)
                let updates = zip(truths, stored).compactMap { truth, s -> Metric? in
                    guard let truth else { return nil }
                    if metadata.shared { return s.map { Self.isLater(truth, than: $0) } ?? true ? truth : nil }
                    return s != truth ? truth : nil  // Metric's == compares values bit for bit
                }
                if !updates.isEmpty { try metadata.setLatestMetrics(runID: runID, updates) }
                return updates.count
            }
        }
        return fixed
    }
}
