import Testing
import TallyWorkloads
@testable import TallyStore

/// Compaction merges series a block at a time (a k-way merge over the inputs' blocks) and streams the new segment to
/// disk: the result must equal a stable sort of the inputs concatenated oldest first, across block boundaries, ties
/// between segments, packed and blocked parts of one key, and shared step columns.
@Suite struct CompactionTests {
    /// Segments whose step ranges interleave and overlap, with equal steps in several segments and series that are
    /// packed in some segments and blocked in others.
    @Test(arguments: 0..<6)
    func mergedSeriesEqualAStableSortOfTheInputs(seed: Int) throws {
        let dir = TempDir("merge")
        var rng = SplitMix64(seed: UInt64(700 + seed))
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 16, pack: 10))
        var expected: [String: [MetricPoint]] = [:]
        let segments = 3 + Int(rng.next() % 5)
        for _ in 0..<segments {
            for key in ["a", "b", "c"] where rng.next() % 4 != 0 {
                let n = [1, 5, 9, 10, 17, 40, 130][Int(rng.next() % 7)]
                let base = rng.int(0...60)
                let pts = (0..<n).map { i in
                    // Few distinct steps: equal steps land in several segments.
                    MetricPoint(step: base + Int64(i) / Int64(1 + rng.next() % 3), timestamp: rng.int(0...9), value: rng.anyDouble())
                }
                expected[key, default: []] += pts
                try store.append(run: "r", series: [SeriesBatch(key: key, steps: pts.map(\.step), timestamps: pts.map(\.timestamp),
                                                                values: pts.map(\.value))])
            }
            try store.flush()
        }
        let before = try store.stats(run: "r").segments
        #expect(try store.compact(run: "r") == before)
        for (key, pts) in expected {
            #expect(try store.read(run: "r", key: key).points == stableSorted(pts), "series \(key), seed \(seed)")
        }
        try store.close()
        let reopened = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 16, pack: 10))
        for (key, pts) in expected {
            #expect(try reopened.read(run: "r", key: key).points == stableSorted(pts), "series \(key) after reopen")
        }
    }

    /// A column shared by series logged together is stored once even when the first copy has already left the
    /// writer's buffer for the file (the match is confirmed by reading it back).
    @Test func sharedColumnsAreFoundAfterTheBufferIsWritten() throws {
        let dir = TempDir("shared")
        let n = 400_000  // random values: about 3 MB, more than the writer buffers
        var rng = SplitMix64(seed: 9)
        let steps = (0..<n).map { Int64($0) * 3 }
        let timestamps = (0..<n).map { _ in rng.int(0...Int64(1) << 40) }
        let path = dir.path + "/s.seg"
        let file = try AtomicFile(path: path)
        var writer = SegmentWriter(blockPoints: 1 << 16, packPoints: 8, compression: .none, rollupPointsPerBucket: 64, output: file)
        for key in ["a", "b"] {
            try writer.add(SealColumns(key: key, steps: steps, timestamps: timestamps, values: (0..<n).map { _ in rng.next() }))
        }
        try writer.finish(previousSeq: 0)
        try file.commit(durable: false)
        let reader = try SegmentReader(path: path, seq: 1)
        let a = reader.series.blocks(try #require(reader.series.find("a")))
        let b = reader.series.blocks(try #require(reader.series.find("b")))
        #expect(a.count == b.count && a.count > 1)
        #expect(a.map(\.steps) == b.map(\.steps))
        #expect(a.map(\.timestamps) == b.map(\.timestamps))
        #expect(a.map(\.values) != b.map(\.values))
        // a's first columns had left the buffer when b's first block was written: b's match was read back.
        #expect(a[0].timestamps.offset < Int64(SegmentWriter.flushBytes))
        #expect(b[0].values.offset > 2 * Int64(SegmentWriter.flushBytes))
    }

    /// An abandoned writer leaves neither the segment nor its temporary file.
    @Test func anAbandonedSegmentLeavesNoFile() throws {
        let dir = TempDir("abandon")
        do {
            let file = try AtomicFile(path: dir.path + "/x.seg")
            try [UInt8](repeating: 1, count: 100).withUnsafeBytes { try file.write($0) }
            #expect(try FileIO.list(dir.path).count == 1)
        }
        #expect(try FileIO.list(dir.path).isEmpty)
    }

    @Test func tieredPolicyMergesTheNewestSimilarSegments() {
        #expect(MetricStore.tailToMerge([]) == 0)
        #expect(MetricStore.tailToMerge([10]) == 0)
        #expect(MetricStore.tailToMerge([10, 10]) == 2)
        #expect(MetricStore.tailToMerge([1000, 10, 10, 10]) == 3)  // the big old segment is left alone
        #expect(MetricStore.tailToMerge([1000, 40, 10, 10, 10]) == 4)
        #expect(MetricStore.tailToMerge([50, 50, 50, 50]) == 4)
    }

    @Test func automaticCompactionBoundsSegmentsAndKeepsEveryPoint() throws {
        let dir = TempDir("auto")
        var config = testConfig(blockPoints: 64)
        config.compactionThreshold = 4
        let store = try MetricStore(directory: dir.path, configuration: config)
        var rng = SplitMix64(seed: 400)
        var pts: [MetricPoint] = []
        for round in 0..<60 {
            let batch = (0..<(5 + Int(rng.next() % 30))).map { i in
                MetricPoint(step: Int64(round * 100 + i) - rng.int(0...150), timestamp: Int64(round), value: rng.anyDouble())
            }
            pts += batch
            try store.append(run: "r", series: [SeriesBatch(key: "m", steps: batch.map(\.step), timestamps: batch.map(\.timestamp),
                                                            values: batch.map(\.value))])
            try store.flush(run: "r")
            #expect(try store.stats(run: "r").segments <= 5)
        }
        #expect(try store.read(run: "r", key: "m").points == stableSorted(pts))
        store.abandon()  // the process "dies": the directory is free again
        let reopened = try MetricStore(directory: dir.path, configuration: config)
        #expect(try reopened.read(run: "r", key: "m").points == stableSorted(pts))
        let k = Int(rng.next() % 200) + 1
        let mismatch = bucketMismatch(try reopened.downsample(run: "r", key: "m", steps: -200...6000, buckets: k),
                                      oracle(pts, lo: -200, hi: 6000, buckets: k))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }
}
