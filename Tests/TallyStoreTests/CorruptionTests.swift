import Testing
import TallyWorkloads
@testable import TallyStore

#if canImport(Glibc)
import Glibc
#endif

@Suite struct CorruptionTests {
    /// A store with one sealed segment; returns the segment path and the points.
    func makeSegment(_ dir: borrowing TempDir) throws -> (String, [MetricPoint]) {
        var rng = SplitMix64(seed: 300)
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 500, rollup: 4))
        let pts = (0..<2_000).map { MetricPoint(step: Int64($0), timestamp: 1_000 + Int64($0) * 250, value: rng.unit()) }
        try store.append(run: "r", series: [SeriesBatch(key: "m", steps: pts.map(\.step), timestamps: pts.map(\.timestamp),
                                                        values: pts.map(\.value))])
        try store.close()
        let runDir = dir.path + "/runs/r"
        let seg = try #require(try FileIO.list(runDir).first { $0.hasSuffix(".seg") })
        return (runDir + "/" + seg, pts)
    }

    func readFile(_ path: String) throws -> [UInt8] {
        let f = try ReadOnlyFile(path: path)
        return try f.read(at: 0, count: Int(f.size), what: "test")
    }

    /// Opens the store and reads everything, M4 included.
    func readBack(_ dir: borrowing TempDir) throws -> (SeriesData, [DownsampleBucket]) {
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 500, rollup: 4))
        return (try store.read(run: "r", key: "m"), try store.downsample(run: "r", key: "m", steps: 0...1999, buckets: 7))
    }

    @Test func truncatedSegmentsNameTheFileAndOffset() throws {
        let dir = TempDir("trunc")
        let (path, _) = try makeSegment(dir)
        let good = try readFile(path)
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 40)) + [good.count - 1] {
            try FileIO.writeAtomically(path: path, bytes: Array(good[..<cut]), durable: false)
            do {
                _ = try readBack(dir)
                Issue.record("a segment truncated to \(cut) of \(good.count) bytes was accepted")
            } catch let e as StorageError {
                #expect(e.path == path)
                #expect(e.offset != nil)
                #expect(e.code == .truncated || e.code == .corrupt)
            }
        }
    }

    @Test func flippedBitsAreDetectedNeverReturnedAsData() throws {
        let dir = TempDir("flip")
        let (path, pts) = try makeSegment(dir)
        let good = try readFile(path)
        var rng = SplitMix64(seed: 301)
        var detected = 0
        for trial in 0..<150 {
            var bad = good
            let at = trial < 10 ? trial : Int(rng.next() % UInt64(good.count))
            bad[at] ^= UInt8(1 << (rng.next() % 8))
            try FileIO.writeAtomically(path: path, bytes: bad, durable: false)
            do {
                let (data, _) = try readBack(dir)
                // Only a flip in bytes nothing reads (reserved fields) may pass, and then the data must be intact.
                #expect(data.points == pts, "flip at \(at) changed the data silently")
            } catch let e as StorageError {
                detected += 1
                #expect(e.path == path, "flip at \(at): \(e)")
                #expect(e.offset != nil, "flip at \(at): \(e)")
            }
        }
        #expect(detected > 140)
    }

    @Test func missingTrailerAndGarbageFiles() throws {
        let dir = TempDir("garbage")
        let (path, _) = try makeSegment(dir)
        try FileIO.writeAtomically(path: path, bytes: Array(repeating: 0, count: 4096), durable: false)
        #expect(throws: StorageError.self) { _ = try readBack(dir) }
        try FileIO.writeAtomically(path: path, bytes: Array("TALLYSEG".utf8) + Array(repeating: 7, count: 100), durable: false)
        #expect(throws: StorageError.self) { _ = try readBack(dir) }
    }

    @Test func leftoverTemporaryFilesAreIgnoredAndRemoved() throws {
        let dir = TempDir("tmp")
        let (path, pts) = try makeSegment(dir)
        let tmp = dir.path + "/runs/r/.0000000000000009.seg.tmp"
        try FileIO.writeAtomically(path: tmp, bytes: [1, 2, 3], durable: false)
        #expect(try readBack(dir).0.points == pts)
        #expect(try !FileIO.list(dir.path + "/runs/r").contains(".0000000000000009.seg.tmp"))
        _ = path
    }

    @Test func interruptedTailCompactionKeepsOlderSegments() throws {
        let dir = TempDir("tail")
        var rng = SplitMix64(seed: 303)
        let pts = (0..<600).map { MetricPoint(step: Int64($0), timestamp: 0, value: rng.unit()) }
        var config = testConfig(blockPoints: 1000)
        do {
            let store = try MetricStore(directory: dir.path, configuration: config)
            // One big segment, then three small ones.
            try store.append(run: "r", series: [SeriesBatch(key: "m", steps: pts[..<500].map(\.step), timestamps: pts[..<500].map(\.timestamp),
                                                            values: pts[..<500].map(\.value))])
            try store.flush()
            for chunk in [500..<530, 530..<560, 560..<600] {
                try store.append(run: "r", series: [SeriesBatch(key: "m", steps: pts[chunk].map(\.step), timestamps: pts[chunk].map(\.timestamp),
                                                                values: pts[chunk].map(\.value))])
                try store.flush()
            }
        }
        let runDir = dir.path + "/runs/r"
        let before = try FileIO.list(runDir).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(before.count == 4)
        let saved = try before.map { ($0, try readFile(runDir + "/" + $0)) }
        config.compactionThreshold = 3
        do {
            let store = try MetricStore(directory: dir.path, configuration: config)
            #expect(try store.compactTail(try #require(try store.run("r", create: false))) == 3)
            #expect(try store.stats(run: "r").segments == 2)
        }
        // Restore the merged inputs, as if the process had died before deleting them.
        for (name, bytes) in saved.dropFirst() { try FileIO.writeAtomically(path: runDir + "/" + name, bytes: bytes, durable: false) }
        let store = try MetricStore(directory: dir.path, configuration: config)
        #expect(try store.read(run: "r", key: "m").points == pts)
        #expect(try store.stats(run: "r").segments == 2)
        #expect(try FileIO.list(runDir).contains(before[0]))
    }

    @Test func interruptedCompactionDoesNotDuplicatePoints() throws {
        let dir = TempDir("compact")
        var rng = SplitMix64(seed: 302)
        let pts = (0..<900).map { MetricPoint(step: Int64($0), timestamp: 0, value: rng.unit()) }
        do {
            let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 100))
            try appendAll(store, run: "r", key: "m", pts, rng: &rng, flushes: true)
            try store.close()
        }
        let runDir = dir.path + "/runs/r"
        let before = try FileIO.list(runDir).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(before.count > 2)
        // Compact, then put the old segments back as if the process died before deleting them.
        let saved = try before.map { ($0, try readFile(runDir + "/" + $0)) }
        do {
            let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 100))
            #expect(try store.compact(run: "r") == before.count)
        }
        for (name, bytes) in saved { try FileIO.writeAtomically(path: runDir + "/" + name, bytes: bytes, durable: false) }
        let store = try MetricStore(directory: dir.path, configuration: testConfig(blockPoints: 100))
        #expect(try store.read(run: "r", key: "m").points == pts)
        #expect(try store.stats(run: "r").segments == 1)
        #expect(try FileIO.list(runDir).filter { $0.hasSuffix(".seg") }.count == 1)
    }
}
