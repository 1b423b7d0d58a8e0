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
        let series = try Self.group(metrics)
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
        if !series.isEmpty {
            let fresh = try dropStored(runID: runID, series)
            if !fresh.isEmpty { try appendPoints(runID: runID, fresh, batchID: Self.contentID(metrics)) }
        }
        let newTags = Self.lastWins(tags.map { KeyValue(key: $0.key, value: $0.value.prefix(codePoints: Validation.maxTagValueLength)) })
        guard !newParams.isEmpty || !metrics.isEmpty || !newTags.isEmpty else { return }
        try metadata.transaction {
            let toInsert = try checkParams(runID: runID, newParams)
            let latest = try latestUpdates(runID: runID, series)
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

    /// Validates metrics in request order (each distinct key once) and groups them into per-key columns in order
    /// of first appearance, dropping points that repeat exactly within the batch.
    static func group(_ metrics: [MetricInput]) throws -> [SeriesBatch] {
        var series: [SeriesBatch] = []
        var index: [String: Int] = [:]
        var last = -1  // series of the previous point: batches often repeat one key
        for m in metrics {
            let s: Int
            if last >= 0, series[last].key == m.key {
                s = last
            } else if let found = index[m.key] {
                s = found
            } else {
                try Validation.key(m.key, entity: "Metric")
                s = series.count
                index[m.key] = s
                series.append(SeriesBatch(key: m.key, steps: [], timestamps: [], values: []))
            }
            try Validation.timestamp(m)
            last = s
            series[s].steps.append(m.step)
            series[s].timestamps.append(m.timestamp)
            series[s].values.append(m.value)
        }
        for s in series.indices { dropRepeats(&series[s]) }
        return series
    }

    /// Removes exact repeats (step, timestamp and value bits) from one series batch, keeping first occurrences.
    /// Strictly increasing steps, the usual case, cannot repeat and cost one pass.
    static func dropRepeats(_ b: inout SeriesBatch) {
        let increasing = b.steps.withUnsafeBufferPointer { st in
            st.count < 2 || (1..<st.count).allSatisfy { st[$0 &- 1] < st[$0] }
        }
        guard !increasing else { return }
        struct Point: Hashable { var step: Int64, timestamp: Int64, bits: UInt64 }
        var seen = Set<Point>(minimumCapacity: b.steps.count)
        var keep = SeriesBatch(key: b.key, steps: [], timestamps: [], values: [])
        for i in b.steps.indices where seen.insert(Point(step: b.steps[i], timestamp: b.timestamps[i], bits: b.values[i].bitPattern)).inserted {
            keep.steps.append(b.steps[i])
            keep.timestamps.append(b.timestamps[i])
            keep.values.append(b.values[i])
        }
        if keep.steps.count != b.steps.count { b = keep }
    }

    /// MLflow drops a point identical (key, step, timestamp, value) to one already stored, across requests too.
    /// Only a point at or before the series' latest (step, timestamp) can repeat one: the latest is the stored
    /// maximum of (step, timestamp), so training's increasing steps cost one cached lookup per key. Earlier points
    /// are compared with the stored points of their exact step (a read of that step only).
    func dropStored(runID: String, _ series: [SeriesBatch]) throws -> [SeriesBatch] {
        let latest = try metadata.latestMetrics(runID: runID, keys: series.map(\.key))
        return try series.compactMap { b -> SeriesBatch? in
            guard let l = latest[b.key] else { return b }  // nothing stored yet
            let suspects = b.steps.indices.filter { b.steps[$0] < l.step || (b.steps[$0] == l.step && b.timestamps[$0] <= l.timestamp) }
            guard !suspects.isEmpty else { return b }
            var stored: [Int64: Set<MetricPoint>] = [:]
            for step in Set(suspects.map { b.steps[$0] }) {
                let data = try metrics.read(run: runID, key: b.key, steps: step...step)
                stored[step] = Set(data.points)
            }
            var keep = SeriesBatch(key: b.key, steps: [], timestamps: [], values: [])
            for i in b.steps.indices {
                let p = MetricPoint(step: b.steps[i], timestamp: b.timestamps[i], value: b.values[i])
                if stored[p.step]?.contains(where: { Self.sameAsMLflow($0, p) }) == true { continue }
                keep.steps.append(p.step)
                keep.timestamps.append(p.timestamp)
                keep.values.append(p.value)
            }
            return keep.steps.isEmpty ? nil : keep
        }
    }

    /// MLflow's duplicate test: same step, timestamp and value, NaN equal to NaN (stored as is_nan).
    static func sameAsMLflow(_ a: MetricPoint, _ b: MetricPoint) -> Bool {
        a.step == b.step && a.timestamp == b.timestamp && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
    }

    /// Appends grouped points under a batch id (a retried identical batch is stored once).
    func appendPoints(runID: String, _ series: [SeriesBatch], batchID: String) throws {
        do {
            _ = try self.metrics.append(run: runID, series: series, batchID: batchID)
        } catch let e as StorageError {
            throw TrackingError(.internalError, "storing metrics failed: \(e)")
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
    func latestUpdates(runID: String, _ series: [SeriesBatch]) throws -> [LatestMetric] {
        guard !series.isEmpty else { return [] }
        let best = series.map { b -> MetricInput in
            var k = 0
            for i in 1..<max(1, b.steps.count) where LatestRule.isLater(
                MetricPoint(step: b.steps[i], timestamp: b.timestamps[i], value: b.values[i]),
                than: MetricPoint(step: b.steps[k], timestamp: b.timestamps[k], value: b.values[k])) {
                k = i
            }
            return MetricInput(key: b.key, value: b.values[k], timestamp: b.timestamps[k], step: b.steps[k])
        }
        let stored = try metadata.latestMetrics(runID: runID, keys: best.map(\.key))
        return best.compactMap { m in
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
