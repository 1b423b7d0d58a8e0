#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
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

    /// A compaction queued while another ran finds the segments merged already and does nothing (it would otherwise
    /// rewrite the big merged segment with one small one).
    @Test func automaticCompactionRechecksTheThresholdWhenItRuns() throws {
        let dir = TempDir("recheck")
        do {
            let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 64))
            for b in 0..<4 {
                try store.append(run: "r", key: "m", step: Int64(b), timestamp: 0, value: 1)
                try store.flush(run: "r")
            }
            try store.close()
        }
        for (threshold, merged) in [(4, 0), (3, 4)] {
            var config = testConfig(blockPoints: 64)
            config.compactionThreshold = threshold
            let store = try MetricStore(directory: dir.path, configuration: config)
            #expect(try store.compactTail(try #require(try store.run("r", create: false))) == merged, "threshold \(threshold)")
            try store.close()
        }
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

    /// Seals go on while a compaction merges: a segment sealed meanwhile is newer than the merged one, so every
    /// point is read in arrival order (ties included), the next compaction chooses the right inputs, and the run
    /// reopens (that segment names an input the compacted segment replaced).
    @Test func aSealDuringACompactionKeepsArrivalOrder() throws {
        let dir = TempDir("seal-merge")
        let config = testConfig(blockPoints: 64, pack: 8, durability: nil)
        let store = try MetricStore(directory: dir.path, configuration: config)
        let expected = Mutex<[MetricPoint]>([])
        @Sendable func log(_ b: Int) throws {
            // Few distinct steps, so equal steps land in every segment; values tell arrival order apart.
            let pts = (0..<100).map { i in MetricPoint(step: Int64((b * 7 + i) % 30), timestamp: 1, value: Double(b * 100 + i)) }
            expected.withLock { $0 += pts }
            try store.append(run: "r", series: [SeriesBatch(key: "m", steps: pts.map(\.step), timestamps: pts.map(\.timestamp),
                                                            values: pts.map(\.value))])
            try store.flush(run: "r")
        }
        for b in 0..<3 { try log(b) }
        let next = Mutex(3)
        store.afterChoosingCompactionInputs.withLock { $0 = { try log(next.withLock { $0 += 1; return $0 - 1 }) } }
        for round in 0..<4 {
            #expect(try store.compact(run: "r") > 1)
            let segments = try #require(try store.run("r", create: false)).state.withLock { $0.segments.map(\.seq) }
            #expect(segments == segments.sorted() && segments.count == 2, "round \(round): merged, then the seal made meanwhile")
            #expect(try store.read(run: "r", key: "m").points == stableSorted(expected.withLock { $0 }), "round \(round)")
        }
        store.afterChoosingCompactionInputs.withLock { $0 = nil }
        try store.close()
        let reopened = try MetricStore(directory: dir.path, configuration: config)
        #expect(try reopened.read(run: "r", key: "m").points == stableSorted(expected.withLock { $0 }))
        #expect(try reopened.compact(run: "r") == 2)
        #expect(try reopened.read(run: "r", key: "m").points == stableSorted(expected.withLock { $0 }))
        try reopened.close()
    }

    /// The chain check accepts a predecessor that the compacted segment before it replaced, and nothing else.
    @Test func aSegmentMayNameAnInputOfTheCompactionBeforeIt() throws {
        let dir = TempDir("chain")
        func segment(_ seq: UInt64, previous: UInt64, supersedes: ClosedRange<UInt64>? = nil) throws -> SegmentReader {
            let path = dir.path + "/" + SegmentFormat.fileName(seq: seq)
            let file = try AtomicFile(path: path)
            var writer = SegmentWriter(blockPoints: 64, packPoints: 8, compression: .none, rollupPointsPerBucket: 4, output: file,
                                       supersedes: supersedes)
            try writer.add(SealColumns(key: "m", steps: [Int64(seq)], timestamps: [0], values: [0]))
            try writer.finish(previousSeq: previous)
            try file.commit(durable: false)
            return try SegmentReader(path: path, seq: seq)
        }
        // 3 compacted 1...2 while 4 was sealed naming 2, the newest segment when it started.
        let compacted = try segment(3, previous: 0, supersedes: 1...2)
        let sealed = try segment(4, previous: 2)
        #expect(RunStore.chainError([compacted, sealed], directory: dir.path, manifestSeq: nil) == nil)
        #expect(RunStore.chainError([try segment(5, previous: 0), try segment(6, previous: 2)], directory: dir.path, manifestSeq: nil) != nil,
                "2 is missing and nothing replaced it")
        #expect(RunStore.chainError([compacted, try segment(7, previous: 5)], directory: dir.path, manifestSeq: nil) != nil,
                "5 is not among what 3 replaced")
        #expect(RunStore.chainError([compacted, sealed, try segment(8, previous: 2)], directory: dir.path, manifestSeq: nil) != nil,
                "only the segment right after a compacted one may name its inputs")
    }

    /// With seals in the background, a compaction that takes long holds back no other run's seal: they have their
    /// own queues.
    @Test func aBusyCompactionQueueDoesNotHoldBackSeals() throws {
        let dir = TempDir("queues")
        var config = testConfig(blockPoints: 64, pack: 8, durability: .sync)
        config.sealPoints = 100
        config.sealsInBackground = true
        let store = try MetricStore(directory: dir.path, configuration: config)
        let release = DispatchSemaphore(value: 0)
        store.maintenance.compactions.lanes[0].async { release.wait() }  // a compaction that does not end
        defer { release.signal() }
        try store.append(run: "b", series: [SeriesBatch(key: "m", steps: Array(0..<150), timestamps: Array(0..<150),
                                                        values: (0..<150).map(Double.init))])
        var waited = 0
        while try store.stats(run: "b").segments == 0 && waited < 5_000 {
            usleep(1_000)
            waited += 1
        }
        #expect(try store.stats(run: "b").segments == 1, "sealed while the compaction queue is busy")
        release.signal()
        try store.close()
    }
}
