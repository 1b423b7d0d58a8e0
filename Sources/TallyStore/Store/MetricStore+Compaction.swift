import Synchronization

extension MetricStore {
    /// Merges all of a run's segments into one, re-blocked and re-compressed with
    /// ``StoreConfiguration/compactionCompression``. Points keep their order (step, then arrival).
    ///
    /// The new segment records the sequence numbers it replaces, so if the process stops between writing it and
    /// deleting the old files, reopening deletes them instead of reading their points twice.
    /// - Returns: the number of segments merged (0 when there was nothing to do).
    @discardableResult
    public func compact(run id: String) throws -> Int {
        guard let run = try run(id, create: false) else { return 0 }
        return try merge(run) { $0.count > 1 ? $0.count : 0 }
    }

    /// Size-tiered automatic compaction, when the run has more than ``StoreConfiguration/compactionThreshold``
    /// segments (counted when the inputs are chosen: a compaction that ran meanwhile may have merged them): merges the
    /// newest segments whose sizes are comparable, so each point is rewritten O(log n) times over a run's life
    /// rather than once per compaction.
    /// - Returns: the number of segments merged.
    @discardableResult
    func compactTail(_ run: RunStore) throws -> Int {
        let threshold = configuration.compactionThreshold
        return try merge(run) { $0.count > threshold ? Self.tailToMerge($0.map(\.size)) : 0 }
    }

    /// How many of the newest segments to merge: grow the tail while the next older segment is no larger than
    /// twice what the tail holds (at least two segments), so merged outputs grow geometrically.
    static func tailToMerge(_ sizes: [Int64]) -> Int {
        guard sizes.count > 1 else { return 0 }
        var n = 1
        var total = sizes[sizes.count - 1]
        while n < sizes.count {
            let older = sizes[sizes.count - 1 - n]
            if n >= 2 && older > 2 * total { break }
            total += older
            n += 1
        }
        return n
    }

    /// The sequence range a merge of `segments` replaces, extended by what its inputs replaced in turn, so a file an
    /// earlier compaction failed to delete is still recognised as stale after this one.
    static func replacedRange(_ segments: [SegmentReader]) -> ClosedRange<UInt64> {
        let lo = segments.map { $0.supersedes?.lowerBound ?? $0.seq }.min()!
        return lo...segments.last!.seq
    }

    /// Merges the newest `choose(segments)` segments of a run into one.
    ///
    /// Seals go on while it merges: the inputs are chosen under the seal lock when no seal is half done (no frozen
    /// heads), so they are the newest sealed data and every later seal gets a higher sequence number than the merged
    /// segment, which is inserted in sequence order.
    private func merge(_ run: RunStore, choose: ([SegmentReader]) -> Int) throws -> Int {
        try run.compactLock.withLock { _ in
            let (segments, seq): ([SegmentReader], UInt64) = try run.sealLock.withLock { _ in
                try run.state.withLock { s in
                    try run.load(&s)
                    guard !s.deleted, s.frozen.isEmpty else { return ([], 0) }
                    let n = choose(s.segments)
                    guard n > 1 else { return ([], 0) }
                    let seq = s.nextSeq
                    s.nextSeq += 1
                    return (Array(s.segments.suffix(n)), seq)
                }
            }
            guard segments.count > 1 else { return 0 }
            try afterChoosingCompactionInputs.withLock { $0 }?()
            let path = run.directory + "/" + SegmentFormat.fileName(seq: seq)
            let reader: SegmentReader
            do {
                let file = try AtomicFile(path: path)
                var writer = SegmentWriter(blockPoints: configuration.blockPoints, packPoints: configuration.packPoints,
                                           compression: configuration.compactionCompression,
                                           rollupPointsPerBucket: configuration.rollupPointsPerBucket, output: file,
                                           supersedes: Self.replacedRange(segments))
                try mergeSeries(of: segments, into: &writer)
                // The inputs' batch id lists, in order (the last window's worth): the run's window is rebuilt from
                // every segment's list on load, so retries of batches the inputs hold are still recognised.
                try writer.finish(previousSeq: segments[0].previousSeq, batchIDs: Array(BatchIDWindow(segments.lazy.flatMap(\.batchIDs)).ids))
                try file.commit(durable: configuration.durableSegments)
                reader = try SegmentReader(path: path, seq: seq)
            } catch {
                try? FileIO.remove(path)  // never leave a file whose range would delete its inputs on the next open
                throw error
            }
            let merged = Set(segments.map(\.uid))
            let published = run.state.withLock { s in
                guard !s.deleted else { return false }
                s.segments.removeAll { merged.contains($0.uid) }
                s.segments.insert(reader, at: s.segments.firstIndex { $0.seq > seq } ?? s.segments.count)
                run.recountIndexBytes(&s)
                return true
            }
            // Counted as written, as seals are (a run deleted meanwhile takes the file with it).
            account.counters.compactions.add(1, ordering: .relaxed)
            account.counters.compactedInputs.add(segments.count, ordering: .relaxed)
            account.counters.compactedBytes.add(Int(reader.size), ordering: .relaxed)
            guard published else { return 0 }
            for seg in segments { try removals.remove(seg.path) }
            if configuration.durableSegments { try FileIO.syncDirectory(run.directory) }
            blockCache.removeAll { merged.contains($0.segment) }
            rollupCache.removeAll { merged.contains($0.segment) }
            packCache.removeAll { merged.contains($0.segment) }
            return segments.count
        }
    }

    /// Writes every series of `segments` (oldest first) to `writer`, each merged a block at a time: no series is ever
    /// decoded whole, and each input pack is decoded once.
    private func mergeSeries(of segments: [SegmentReader], into writer: inout SegmentWriter) throws {
        let planes = PlaneCodec()
        var keys = Set<String>()
        for seg in segments { keys.formUnion(seg.series.keys) }
        // Packs hold series in key order, so each input needs only the pack it is in now.
        var openPacks: [(index: Int, pack: DecodedPack)?] = Array(repeating: nil, count: segments.count)
        for key in keys.sorted(by: KeyOrder.less) {
            var inputs: [MergeInput] = []
            var wal: WALPosition?
            for (order, seg) in segments.enumerated() {
                guard let si = seg.series.find(key) else { continue }
                inputs.append(try MergeInput(order: order, segment: seg, series: si) { p in
                    if let open = openPacks[order], open.index == p { return open.pack }
                    let d = try seg.readPack(p, planes: planes)
                    openPacks[order] = (p, d)
                    return d
                })
                // Keep the furthest seal watermark, or replay would re-apply points the inputs held.
                if let w = seg.series.wal(si), w > (wal ?? WALPosition(lsn: 0, index: 0)) { wal = w }
            }
            var merge = SeriesMerge(inputs: inputs, planes: planes)
            let total = merge.count
            if total < writer.packPoints {
                var cols = try merge.next(total, key: key)
                cols.wal = wal
                try writer.add(cols)
                continue
            }
            var blocks: [BlockMeta] = []
            for r in SegmentWriter.blockRanges(count: total, blockPoints: writer.blockPoints) {
                let part = try merge.next(r.count, key: key)
                guard part.count == r.count else {
                    throw StorageError(.corrupt, "series \(key) holds fewer points than its blocks count", path: segments.last!.path)
                }
                blocks.append(try writer.addBlock(steps: part.steps, timestamps: part.timestamps, values: part.values))
            }
            writer.addSeries(key: key, blocks: blocks, wal: wal)
        }
    }
}
