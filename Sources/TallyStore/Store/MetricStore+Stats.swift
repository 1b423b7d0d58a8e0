import Synchronization

extension MetricStore {
    /// Bytes each series of a run takes in its sealed segments, by column.
    public func storage(run id: String) throws -> [String: SeriesStorage] {
        guard let run = try run(id, create: false) else { return [:] }
        let segments = try run.state.withLock { s in
            try run.load(&s)
            return s.segments
        }
        var out: [String: SeriesStorage] = [:]
        for seg in segments {
            for i in 0..<seg.series.count {
                let key = seg.series.key(i)
                var st = out[key] ?? SeriesStorage()
                let blocks = seg.series.blocks(i)
                st.indexBytes += key.utf8.count + 12 + blocks.count * SegmentFormat.blockMetaSize
                if let slot = seg.series.slot(i) {
                    let meta = seg.packs[slot.pack]
                    let pack = try run.pack(seg, slot.pack)
                    let n = pack.starts[slot.ordinal + 1] - pack.starts[slot.ordinal]
                    st.points += n
                    st.packedBytes += meta.chunk.length * n / meta.pointCount
                }
                st.blocks += blocks.count
                for b in blocks {
                    st.points += b.count
                    st.valueBytes += b.values.length
                    st.stepBytes += b.steps.length
                    st.timestampBytes += b.timestamps.length
                    st.rollupBytes += b.rollup.length
                }
                out[key] = st
            }
        }
        return out
    }
}


extension MetricStore {
    /// Metric keys of a run (empty for an unknown run).
    public func keys(run id: String) throws -> [String] {
        guard let run = try run(id, create: false) else { return [] }
        return try run.keys()
    }

    /// Size and shape of a run's data.
    public func stats(run id: String) throws -> RunStats {
        guard let run = try run(id, create: false) else { return RunStats() }
        return try run.state.withLock { s in
            try run.load(&s)
            var st = RunStats()
            var keys = Set(s.heads.keys)
            st.segments = s.segments.count
            for seg in s.segments {
                st.segmentBytes += seg.size
                var seen = Set<Int64>()
                st.sealedPoints += seg.packs.reduce(0) { $0 + $1.pointCount }
                for i in 0..<seg.series.count {
                    keys.insert(seg.series.key(i))
                    for b in seg.series.blocks(i) {
                        st.sealedPoints += b.count
                        if !b.rollup.isNone, seen.insert(b.rollup.offset).inserted { st.rollupBytes += Int64(b.rollup.length) }
                        for c in [b.steps, b.timestamps] where seen.insert(c.offset).inserted { st.stepTimestampBytes += Int64(c.length) }
                    }
                }
            }
            for f in s.frozen {
                keys.formUnion(f.series.keys)
                st.headPoints += f.series.values.reduce(0) { $0 + $1.count }
            }
            st.headPoints += s.heads.values.reduce(0) { $0 + $1.count }
            st.series = keys.count
            return st
        }
    }
}
