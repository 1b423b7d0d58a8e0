extension MetricStore {
    /// Stores ``PointsRecord``s written elsewhere (a cluster's shared log, replayed by the server taking over or
    /// reading a run), in order, as appends of their points under their batch ids: a record whose batch id the run
    /// has already stored adds nothing. The records are logged and visible one by one and made durable together.
    /// - Returns: the points stored.
    /// - Throws: ``StorageError/Code/corrupt`` for a damaged record (nothing of it is stored), or the append's error.
    @discardableResult
    public func apply(run id: String, records: [[UInt8]]) throws -> Int {
        var pending: [PendingAppend] = []
        var points = 0
        defer { for p in pending { try? settle(p) } }
        for bytes in records {
            let (series, batchID) = try PointsRecord.decode(bytes)
            let p = try appendVisible(try prepareAppend(run: id, columns: series, batchID: batchID))
            pending.append(p)
            if p.stored { points += series.pointCount }
        }
        let all = pending
        pending = []
        var failure: (any Error)?
        for p in all {
            do { try settle(p) } catch { failure = failure ?? error }  // every one settled, the first error thrown
        }
        if let failure { throw failure }
        return points
    }
}
