import Synchronization

extension MetricStore {
    /// Merges all of a run's segments into one, re-blocked and re-compressed with
    /// ``StoreConfiguration/compactionCompression``. Points keep their order (step, then arrival).
    ///
    /// The new segment records the highest sequence number it replaces, so if the process stops between writing it
    /// and deleting the old files, reopening deletes them instead of reading their points twice.
    /// - Returns: the number of segments merged (0 when there was nothing to do).
    @discardableResult
    public func compact(run id: String) throws -> Int {
        guard let run = try run(id, create: false) else { return 0 }
        return try run.sealLock.withLock { _ in
            let (segments, seq): ([SegmentReader], UInt64) = try run.state.withLock { s in
                try RunStore.loadIfNeeded(&s, directory: run.directory)
                guard s.segments.count > 1, !s.deleted else { return ([], 0) }
                let seq = s.nextSeq
                s.nextSeq += 1
                return (s.segments, seq)
            }
            guard segments.count > 1 else { return 0 }
            let planes = PlaneCodec()
            var keys = Set<String>()
            for seg in segments { keys.formUnion(seg.seriesIndex.keys) }
            var writer = SegmentWriter(blockPoints: configuration.blockPoints, compression: configuration.compactionCompression,
                                       rollupPointsPerBucket: configuration.rollupPointsPerBucket, supersedes: segments.map(\.seq).max()!)
            for key in keys.sorted() {
                var cols = SealColumns(key: key, steps: [], timestamps: [], values: [])
                var sorted = true
                for seg in segments {
                    guard let si = seg.seriesIndex[key] else { continue }
                    for meta in seg.footer.series[si].blocks {
                        if let last = cols.steps.last, meta.minStep < last { sorted = false }
                        cols.steps += try seg.readInts(meta.steps, count: meta.count, planes: planes, what: "step column")
                        cols.timestamps += try seg.readInts(meta.timestamps, count: meta.count, planes: planes, what: "timestamp column")
                        cols.values += try seg.readValues(meta.values, count: meta.count, planes: planes)
                    }
                }
                if !sorted {
                    let order = SeriesHead.stableOrder(cols.steps)
                    cols = SealColumns(key: key, steps: order.map { cols.steps[$0] }, timestamps: order.map { cols.timestamps[$0] },
                                       values: order.map { cols.values[$0] })
                }
                try writer.add(cols)
            }
            let (bytes, _) = writer.finish()
            let path = run.directory + "/" + SegmentFormat.fileName(seq: seq)
            try FileIO.writeAtomically(path: path, bytes: bytes, durable: configuration.durableSegments)
            let reader = try SegmentReader(path: path, seq: seq)
            let merged = Set(segments.map(\.uid))
            run.state.withLock { s in
                s.segments.removeAll { merged.contains($0.uid) }
                s.segments.insert(reader, at: 0)
            }
            for seg in segments { try FileIO.remove(seg.path) }
            if configuration.durableSegments { try FileIO.syncDirectory(run.directory) }
            blockCache.removeAll { merged.contains($0.segment) }
            rollupCache.removeAll { merged.contains($0.segment) }
            return segments.count
        }
    }
}
