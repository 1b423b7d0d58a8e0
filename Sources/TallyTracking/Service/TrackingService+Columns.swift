import TallyStore

extension TrackingService {
    /// What a columnar append did.
    public struct ColumnsResult: Sendable, Equatable {
        /// Points stored (0 when the batch id was seen before).
        public var points: Int
        /// `false` when the batch id was already stored: a retry, nothing stored again.
        public var stored: Bool
    }

    /// Native columnar ingest: whole series per key, no per-request point limit. Keys follow MLflow's rules and
    /// timestamps must be ≥ 0 (the points are shared with MLflow's API: `get-history` returns them). A batch id makes
    /// a retried request idempotent; without one every request is stored. Everything is checked before anything is
    /// stored, so a refused batch leaves no trace. Series with the same key are merged; points are kept as sent
    /// (MLflow's exact-duplicate dropping applies to its own API only).
    public func logColumns(runID: String, series: [SeriesBatch], batchID: String? = nil) throws -> ColumnsResult {
        var total = 0
        for (i, s) in series.enumerated() {
            try Validation.key(s.key, entity: "Metric")
            guard s.steps.count == s.timestamps.count, s.steps.count == s.values.count else {
                throw TrackingError.invalid("metrics[\(i)] ('\(s.key)'): steps, timestamps and values must have the same length "
                    + "(got \(s.steps.count), \(s.timestamps.count) and \(s.values.count))")
            }
            if let k = Self.firstNegative(s.timestamps) {
                throw TrackingError.invalid("metrics[\(i)] ('\(s.key)'): timestamps[\(k)] is \(s.timestamps[k]); timestamps must be ≥ 0 (Unix ms)")
            }
            total += s.steps.count
        }
        if let b = batchID, b.isEmpty || b.utf8.count > 200 { throw TrackingError.invalid("batch_id must be 1 to 200 bytes") }
        _ = try activeRun(runID)
        let nonEmpty: SeriesColumns
        do {
            // Same-key series merged as the store merges them, so the latest value is decided once per key.
            nonEmpty = try SeriesColumns(series).normalized()
        } catch let e as StorageError {
            throw TrackingError.invalid("\(e)")
        }
        guard nonEmpty.count > 0 else { return ColumnsResult(points: 0, stored: true) }
        // Latest values and the points in one transaction, the append last (see logBatch). A batch id seen before
        // stores nothing and changes nothing: its latest values are rolled back.
        try metadata.prepareMetricKeys(nonEmpty.keys)
        let stored = try commit(runID: runID, nonEmpty, batchID: batchID.map { "tally-" + $0 }, metadataOnDuplicate: false) {
            let latest = try latestUpdates(runID: runID, nonEmpty)
            if !latest.isEmpty { try metadata.setLatestMetrics(runID: runID, latest) }
        }
        guard stored else { return ColumnsResult(points: 0, stored: false) }
        return ColumnsResult(points: total, stored: true)
    }

    /// Index of the first negative value, if any (one branch-free pass in the common case).
    static func firstNegative(_ xs: [Int64]) -> Int? {
        let anyNegative = xs.withUnsafeBufferPointer { b in
            var acc: Int64 = 0
            for x in b { acc |= x }
            return acc < 0
        }
        return anyNegative ? xs.firstIndex { $0 < 0 } : nil
    }
}
