import Synchronization

/// Which head points a seal takes.
enum SealScope {
    /// Everything in the heads (flush, close, memory pressure).
    case all
    /// Series with at least `minimum` points, cut at a step common to all of them, so series logged together get
    /// identical step and timestamp columns (stored once).
    case full(minimum: Int)
}

extension RunStore {
    /// Writes head points to a new segment. Reads keep seeing them throughout (as frozen heads, then in the segment).
    ///
    /// If writing fails (a full disk, say), the frozen points stay frozen: still readable, still pinning the WAL,
    /// and written first by the next seal. Nothing is lost or reordered.
    /// - Returns: the number of points sealed.
    @discardableResult
    func seal(_ scope: SealScope, config: StoreConfiguration) throws -> Int {
        try sealLock.withLock { _ in
            var sealed = 0
            for pending in state.withLock({ $0.frozen }) { sealed += try write(pending, config: config) }
            guard let frozen = try freeze(scope) else { return sealed }
            return sealed + (try write(frozen, config: config))
        }
    }

    /// Moves the chosen head points into a new frozen set (under the state lock).
    private func freeze(_ scope: SealScope) throws -> FrozenHeads? {
        try state.withLock { s in
            try load(&s)
            guard !s.deleted else { return nil }
            var take: [String: SealColumns] = [:]
            var minLSN: UInt64?
            func taking(_ h: SeriesHead) {
                if let m = h.minLSN { minLSN = min(minLSN ?? m, m) }
            }
            switch scope {
            case .all:
                for (k, h) in s.heads where h.count > 0 {
                    taking(h)
                    take[k] = h.sortedColumns(key: k)
                }
                s.heads.removeAll()
                s.headsMinLSN = nil
            case .full(let minimum):
                let candidates = s.heads.filter { $0.value.count >= minimum }
                guard !candidates.isEmpty else { return nil }
                let cut = candidates.values.filter(\.sorted).map { $0.step($0.count - 1) }.min()
                for (k, var h) in candidates {
                    taking(h)
                    // Cut at the common step unless that would leave most of this series behind.
                    if h.sorted, let cut, h.countThrough(step: cut) * 2 >= h.count {
                        let part = h.removePrefix(throughStep: cut, key: k)
                        if part.count > 0 { take[k] = part }
                        s.heads[k] = h.count > 0 ? h : nil
                    } else {
                        take[k] = h.sortedColumns(key: k)
                        s.heads[k] = nil
                    }
                }
            }
            guard !take.isEmpty else { return nil }
            if case .full = scope { s.recountHeadsMinLSN() }
            let f = FrozenHeads(seq: s.nextSeq, series: take, minLSN: minLSN)
            s.nextSeq += 1
            s.frozen.append(f)
            recountHeadBytes(&s)
            return f
        }
    }

    /// Writes a frozen set as segment `frozen.seq` and publishes it (outside the state lock for the I/O).
    private func write(_ frozen: FrozenHeads, config: StoreConfiguration) throws -> Int {
        // Seals hold the seal lock. A compaction running meanwhile may replace the newest segment named here: a
        // segment's predecessor may be one its compacted predecessor replaced (see `RunStore.chainError`).
        let (batchIDs, mark, previous) = state.withLock { s in
            (Array(s.batchIDs.since(s.sealedBatchIDs)), s.batchIDs.inserted, s.segments.last?.seq ?? 0)
        }
        let path = directory + "/" + SegmentFormat.fileName(seq: frozen.seq)
        try FileIO.makeDirectories(directory)
        let file = try AtomicFile(path: path)
        var writer = SegmentWriter(blockPoints: config.blockPoints, packPoints: config.packPoints, compression: config.compression,
                                   rollupPointsPerBucket: config.rollupPointsPerBucket, output: file)
        for key in frozen.series.keys.sorted(by: KeyOrder.less) { try writer.add(frozen.series[key]!) }
        try writer.finish(previousSeq: previous, batchIDs: batchIDs)
        try file.commit(durable: config.durableSegments)
        let reader = try SegmentReader(path: path, seq: frozen.seq)
        state.withLock { s in
            s.frozen.removeAll { $0 === frozen }
            recountHeadBytes(&s)
            if s.deleted { return }
            s.sealedBatchIDs = max(s.sealedBatchIDs, mark)
            s.segments.append(reader)
            recountIndexBytes(&s)
        }
        let points = frozen.series.values.reduce(0) { $0 + $1.count }
        account.counters.seals.add(1, ordering: .relaxed)
        account.counters.sealedPoints.add(points, ordering: .relaxed)
        account.counters.sealedBytes.add(Int(reader.size), ordering: .relaxed)
        return points
    }
}
