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
    /// - Returns: the number of points sealed.
    @discardableResult
    func seal(_ scope: SealScope, config: StoreConfiguration) throws -> Int {
        try sealLock.withLock { _ in
            // 1. Freeze.
            let frozen: FrozenHeads? = try state.withLock { s in
                try Self.loadIfNeeded(&s, directory: directory)
                guard !s.deleted else { return nil }
                var take: [String: SealColumns] = [:]
                switch scope {
                case .all:
                    for (k, h) in s.heads where h.count > 0 { take[k] = h.sortedColumns(key: k) }
                    s.heads.removeAll()
                case .full(let minimum):
                    let candidates = s.heads.filter { $0.value.count >= minimum }
                    guard !candidates.isEmpty else { return nil }
                    let cut = candidates.values.filter(\.sorted).map { $0.steps.last! }.min()
                    for (k, var h) in candidates {
                        // Cut at the common step unless that would leave most of this series behind.
                        if h.sorted, let cut, h.countThrough(step: cut) * 2 >= h.count {
                            let part = h.removePrefix(throughStep: cut, key: k)
                            if part.count > 0 { take[k] = part }
                            if h.count > 0 { s.heads[k] = h } else { s.heads[k] = nil }
                        } else {
                            take[k] = h.sortedColumns(key: k)
                            s.heads[k] = nil
                        }
                    }
                }
                guard !take.isEmpty else { return nil }
                let f = FrozenHeads(seq: s.nextSeq, series: take)
                s.nextSeq += 1
                s.frozen.append(f)
                s.headBytes = s.heads.values.reduce(0) { $0 + $1.bytes }
                headBytes.store(s.headBytes, ordering: .relaxed)
                return f
            }
            guard let frozen else { return 0 }
            // 2. Write, outside the state lock.
            let path = directory + "/" + SegmentFormat.fileName(seq: frozen.seq)
            let reader: SegmentReader
            do {
                var writer = SegmentWriter(blockPoints: config.blockPoints, compression: config.compression,
                                           rollupPointsPerBucket: config.rollupPointsPerBucket)
                for key in frozen.series.keys.sorted() { try writer.add(frozen.series[key]!) }
                let (bytes, _) = writer.finish()
                try FileIO.makeDirectories(directory)
                try FileIO.writeAtomically(path: path, bytes: bytes, durable: config.durableSegments)
                reader = try SegmentReader(path: path, seq: frozen.seq)
            } catch {
                // 3a. Put the points back in front of anything appended since.
                state.withLock { s in
                    s.frozen.removeAll { $0 === frozen }
                    for (k, cols) in frozen.series {
                        var h = SeriesHead()
                        cols.steps.withUnsafeBufferPointer { st in
                            cols.timestamps.withUnsafeBufferPointer { ts in
                                cols.values.withUnsafeBufferPointer { v in
                                    v.withMemoryRebound(to: Double.self) { h.append(steps: st, timestamps: ts, values: $0) }
                                }
                            }
                        }
                        if let newer = s.heads[k] {
                            newer.steps.withUnsafeBufferPointer { st in
                                newer.timestamps.withUnsafeBufferPointer { ts in
                                    newer.values.withUnsafeBufferPointer { v in
                                        v.withMemoryRebound(to: Double.self) { h.append(steps: st, timestamps: ts, values: $0) }
                                    }
                                }
                            }
                        }
                        s.heads[k] = h
                    }
                    s.headBytes = s.heads.values.reduce(0) { $0 + $1.bytes }
                    headBytes.store(s.headBytes, ordering: .relaxed)
                }
                throw error
            }
            // 3b. Publish.
            state.withLock { s in
                s.frozen.removeAll { $0 === frozen }
                if s.deleted { return }
                s.segments.append(reader)
            }
            return frozen.series.values.reduce(0) { $0 + $1.count }
        }
    }
}
