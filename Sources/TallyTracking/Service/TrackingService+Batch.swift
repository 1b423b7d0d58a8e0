import TallyStore

extension TrackingService {
    /// MLflow's `log-batch`: validates everything first (a batch that fails validation stores nothing), then
    /// stores params, metric points (into TallyStore) and the latest value per key, and tags.
    ///
    /// Metric points that repeat exactly within the batch are stored once; a retried identical batch is recognised
    /// by its content and not stored again (MLflow drops exact duplicates).
    public func logBatch(runID: String, metrics: [MetricInput] = [], params: [KeyValue] = [], tags: [KeyValue] = []) throws {
        // 1. Limits and per-item validation.
        guard metrics.count <= Validation.maxMetricsPerBatch else {
            throw TrackingError.invalid("A batch logging request can contain at most \(Validation.maxMetricsPerBatch) metrics. Got \(metrics.count) "
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
        let total = metrics.count + params.count + tags.count
        guard total <= Validation.maxEntitiesPerBatch else {
            throw TrackingError.invalid("A batch logging request can contain at most \(Validation.maxEntitiesPerBatch) metrics, params, and tags in "
                + "total. Got \(total) total entities. Please split up entities across multiple requests and try again.")
        }
        for m in metrics { try Validation.metric(m) }
        for p in params { try Validation.key(p.key, entity: "Param") }
        for t in tags { try Validation.key(t.key, entity: "Tag") }
        var seen = Set<String>()
        let dups = params.map(\.key).filter { !seen.insert($0).inserted }
        if !dups.isEmpty {
            throw TrackingError.invalid("Duplicate parameter keys have been submitted: [\(Array(Set(dups)).sorted().map { "'\($0)'" }.joined(separator: ", "))]. "
                + "Please ensure the request contains only one param value per param key.")
        }
        _ = try activeRun(runID)
        // 2. Params are immutable: a changed value fails the whole batch before anything is written.
        let newParams = params.map { KeyValue(key: $0.key, value: $0.value.prefix(codePoints: Validation.maxParamValueLength)) }
        try checkParams(runID: runID, newParams)
        // 3. Metric points into TallyStore (idempotent by content), then the metadata in one transaction that also
        //    re-checks params and compares latest values, so concurrent batches cannot interleave check and write.
        if !metrics.isEmpty { try appendPoints(runID: runID, metrics) }
        let newTags = Self.lastWins(tags.map { KeyValue(key: $0.key, value: $0.value.prefix(codePoints: Validation.maxTagValueLength)) })
        guard !newParams.isEmpty || !metrics.isEmpty || !newTags.isEmpty else { return }
        try metadata.transaction {
            let toInsert = try checkParams(runID: runID, newParams)
            let latest = try latestUpdates(runID: runID, metrics)
            if !toInsert.isEmpty { try metadata.insertParams(runID: runID, toInsert) }
            if !latest.isEmpty { try metadata.setLatestMetrics(runID: runID, latest) }
            if !newTags.isEmpty { try metadata.setRunTags(id: runID, newTags) }
        }
    }

    /// Throws MLflow's error when a param already has another value; returns the params not logged yet.
    @discardableResult
    func checkParams(runID: String, _ params: [KeyValue]) throws -> [KeyValue] {
        guard !params.isEmpty else { return [] }
        let existing = try metadata.params(runID: runID, keys: params.map(\.key))
        let changed = params.filter { existing[$0.key] != nil && existing[$0.key] != $0.value }
        if !changed.isEmpty {
            let list = changed.map { "{'key': '\($0.key)', 'old_value': '\(existing[$0.key]!)', 'new_value': '\($0.value)'}" }.joined(separator: ", ")
            throw TrackingError.invalid("Changing param values is not allowed. Params were already logged='[\(list)]' for run ID='\(runID)'.")
        }
        return params.filter { existing[$0.key] == nil }
    }

    /// Groups points by key (dropping exact repeats) and appends them with a content-derived batch id.
    func appendPoints(runID: String, _ metrics: [MetricInput]) throws {
        var order: [String] = []
        var byKey: [String: SeriesBatch] = [:]
        var seen = Set<PointKey>()
        for m in metrics where seen.insert(PointKey(m)).inserted {
            if byKey[m.key] == nil {
                order.append(m.key)
                byKey[m.key] = SeriesBatch(key: m.key, steps: [], timestamps: [], values: [])
            }
            byKey[m.key]!.steps.append(m.step)
            byKey[m.key]!.timestamps.append(m.timestamp)
            byKey[m.key]!.values.append(m.value)
        }
        do {
            _ = try self.metrics.append(run: runID, series: order.map { byKey[$0]! }, batchID: Self.contentID(metrics))
        } catch let e as StorageError {
            throw TrackingError(.internalError, "storing metrics failed: \(e)")
        }
    }

    struct PointKey: Hashable {
        var key: String
        var step: Int64
        var timestamp: Int64
        var bits: UInt64
        init(_ m: MetricInput) {
            key = m.key
            step = m.step
            timestamp = m.timestamp
            bits = m.value.bitPattern
        }
    }

    /// A 64-bit content hash of a batch (FNV-1a over keys, steps, timestamps and value bits), used as its batch id.
    static func contentID(_ metrics: [MetricInput]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ b: UInt8) {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        func mix64(_ v: UInt64) { for i in 0..<8 { mix(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        for m in metrics {
            for b in m.key.utf8 { mix(b) }
            mix(0)
            mix64(UInt64(bitPattern: m.step))
            mix64(UInt64(bitPattern: m.timestamp))
            mix64(m.value.bitPattern)
        }
        return "mlflow-" + String(h, radix: 16)
    }

    /// New latest values per key: the batch's latest under MLflow's rule, when later than the stored one.
    func latestUpdates(runID: String, _ metrics: [MetricInput]) throws -> [LatestMetric] {
        guard !metrics.isEmpty else { return [] }
        var best: [String: MetricInput] = [:]
        for m in metrics {
            if let b = best[m.key], !Self.isLater(m, than: b) { continue }
            best[m.key] = m
        }
        let stored = try metadata.latestMetrics(runID: runID, keys: Array(best.keys))
        return best.values.compactMap { m in
            if let s = stored[m.key], !Self.isLater(m, than: MetricInput(key: s.key, value: s.value, timestamp: s.timestamp, step: s.step)) {
                return nil
            }
            return LatestMetric(key: m.key, value: m.value, timestamp: m.timestamp, step: m.step)
        }.sorted { $0.key < $1.key }
    }

    /// `(step, timestamp, value)` strictly greater, NaN counting as 0 (MLflow stores it so).
    static func isLater(_ a: MetricInput, than b: MetricInput) -> Bool {
        LatestRule.isLater(MetricPoint(step: a.step, timestamp: a.timestamp, value: a.value),
                           than: MetricPoint(step: b.step, timestamp: b.timestamp, value: b.value))
    }

    /// Logs dataset inputs to an active run.
    public func logInputs(runID: String, _ inputs: [DatasetInput]) throws {
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
        try metadata.insertInputs(runID: runID, inputs)
    }
}
