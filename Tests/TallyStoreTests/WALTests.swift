import Synchronization
import Testing
import TallyWorkloads
@testable import TallyStore

/// WAL-enabled configuration for these tests: small WAL segments so rotation and checkpoints happen.
func walConfig(_ durability: Durability = .sync, blockPoints: Int = 64, segmentBytes: Int = 16 << 10) -> StoreConfiguration {
    var c = testConfig(blockPoints: blockPoints, durability: durability)
    c.wal!.segmentBytes = segmentBytes
    c.wal!.maxSegments = 4
    return c
}

/// Appends `batches` lockstep batches of two series to `run` (values derived from the batch index).
func appendLockstep(_ store: MetricStore, run: String, batches: Range<Int>, size: Int = 10, ids: Bool = true) throws {
    for b in batches {
        let steps = (0..<size).map { Int64(b * size + $0) }
        let vals = steps.map { Double($0) * 0.5 }
        try store.append(run: run, series: [
            SeriesBatch(key: "a", steps: steps, timestamps: steps, values: vals),
            SeriesBatch(key: "b", steps: steps, timestamps: steps, values: vals.map { -$0 }),
        ], batchID: ids ? "\(run)-\(b)" : nil)
    }
}

func expectLockstep(_ store: MetricStore, run: String, batches: Int, size: Int = 10, _ comment: Comment? = nil) throws {
    let steps = (0..<(batches * size)).map { Int64($0) }
    let a = try store.read(run: run, key: "a")
    let b = try store.read(run: run, key: "b")
    #expect(a.steps == steps, comment)
    #expect(a.values == steps.map { Double($0) * 0.5 }, comment)
    #expect(b.values == steps.map { -Double($0) * 0.5 }, comment)
}

func walFiles(_ dir: borrowing TempDir) throws -> [String] {
    try FileIO.list(dir.path + "/wal").filter { $0.hasSuffix(".wal") }.sorted().map { dir.path + "/wal/" + $0 }
}

/// A WAL segment's bytes up to the end of its last record (without the zeros written ahead of them).
func records(_ path: String) throws -> [UInt8] {
    Array(try readAll(path).prefix(Int(try WALSegmentScan(path: path, seq: 0, afterLSN: 0).validEnd)))
}

func readAll(_ path: String) throws -> [UInt8] {
    let f = try ReadOnlyFile(path: path)
    return try f.read(at: 0, count: Int(f.size), what: "test")
}

@Suite struct WALTests {
    @Test(arguments: [Durability.sync, .batch(milliseconds: 5), .none])
    func crashReplayKeepsEveryPointExactlyOnce(_ durability: Durability) throws {
        let dir = TempDir("replay")
        do {
            // Sealing (cut at common steps) happens during the run: replay must skip exactly what segments hold.
            let store = try MetricStore(directory: dir.path, configuration: walConfig(durability))
            try appendLockstep(store, run: "r1", batches: 0..<57)
            try appendLockstep(store, run: "r2", batches: 0..<9)
            #expect(try store.stats(run: "r1").segments > 0)
            // No close: the process "dies" here.
        }
        let store = try MetricStore(directory: dir.path, configuration: walConfig(durability))
        try expectLockstep(store, run: "r1", batches: 57)
        try expectLockstep(store, run: "r2", batches: 9)
        #expect(store.recovery.replayedPoints > 0)
        #expect(store.recovery.truncatedTail == nil)
        // A second crash after recovery, with more data, still converges.
        try appendLockstep(store, run: "r1", batches: 57..<80)
        store.abandon()  // the process "dies": the directory is free again
        let again = try MetricStore(directory: dir.path, configuration: walConfig(durability))
        try expectLockstep(again, run: "r1", batches: 80)
    }

    @Test func batchIDsAreIdempotentAcrossCrashesAndCleanRestarts() throws {
        let dir = TempDir("ids")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig())
            try appendLockstep(store, run: "r", batches: 0..<20)
            // Retries of stored batches are not stored again.
            #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [0], timestamps: [0], values: [9])], batchID: "r-3") == false)
        }
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig())  // replayed
            #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [0], timestamps: [0], values: [9])], batchID: "r-19") == false)
            try appendLockstep(store, run: "r", batches: 20..<25)
            try store.close()  // everything sealed; ids persist in the segment footer
        }
        let store = try MetricStore(directory: dir.path, configuration: walConfig())
        #expect(store.recovery.records == 0)
        for b in [0, 7, 24] {
            #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [0], timestamps: [0], values: [9])], batchID: "r-\(b)") == false)
        }
        #expect(try store.append(run: "r", series: [SeriesBatch(key: "c", steps: [1000], timestamps: [0], values: [9])], batchID: "new") == true)
        #expect(try store.read(run: "r", key: "c").count == 1)
        try expectLockstep(store, run: "r", batches: 25)
    }

    /// Segment format 4: a footer lists only the batch ids appended since the segment before it, and the window is
    /// rebuilt from all of them in order (the last 4,096 distinct ids), across seals, compactions and reopens.
    @Test func eachSegmentListsOnlyTheBatchIDsSinceTheOneBefore() throws {
        let dir = TempDir("ids-since")
        let config = walConfig(.none, segmentBytes: 1 << 20)
        do {
            let store = try MetricStore(directory: dir.path, configuration: config)
            for chunk in stride(from: 0, to: 30, by: 10) {
                try appendLockstep(store, run: "r", batches: chunk..<(chunk + 10), size: 1)
                try store.flush(run: "r")
            }
            let lists = try #require(try store.run("r", create: false)).state.withLock { $0.segments.map(\.batchIDs) }
            #expect(lists == stride(from: 0, to: 30, by: 10).map { c in (c..<(c + 10)).map { "r-\($0)" } })
            try store.close()
        }
        do {
            let store = try MetricStore(directory: dir.path, configuration: config)
            for b in [0, 15, 29] {
                #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [0], timestamps: [0], values: [9])], batchID: "r-\(b)") == false)
            }
            // More batches than the window holds, over several segments and a compaction.
            for chunk in stride(from: 30, to: 4_230, by: 1_400) {
                try appendLockstep(store, run: "r", batches: chunk..<(chunk + 1_400), size: 1)
                try store.flush(run: "r")
            }
            #expect(try store.compact(run: "r") > 1)
            let merged = try #require(try store.run("r", create: false)).state.withLock { $0.segments.last?.batchIDs }
            #expect(merged == (134..<4_230).map { "r-\($0)" })
            try store.close()
        }
        let store = try MetricStore(directory: dir.path, configuration: config)
        #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [134], timestamps: [0], values: [9])], batchID: "r-134") == false)
        #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [4_229], timestamps: [0], values: [9])], batchID: "r-4229") == false)
        // Out of the window: a retry this old is stored again (the step already holds a point, so now two).
        #expect(try store.append(run: "r", series: [SeriesBatch(key: "a", steps: [133], timestamps: [0], values: [9])], batchID: "r-133") == true)
        #expect(try store.read(run: "r", key: "a").steps.filter { $0 == 133 }.count == 2)
        #expect(try store.read(run: "r", key: "a").count == 4_231)
    }

    @Test func compactionKeepsWatermarksAndBatchIDs() throws {
        let dir = TempDir("compactwal")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
            for chunk in stride(from: 0, to: 40, by: 8) {
                try appendLockstep(store, run: "r", batches: chunk..<(chunk + 8))
                try store.flush(run: "r")
            }
            try appendLockstep(store, run: "r", batches: 40..<43)  // unsealed, only in the WAL
            #expect(try store.compact(run: "r") >= 5)
            // Crash: the WAL still holds every record, so replay must rely on the merged segment's watermarks.
        }
        let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
        try expectLockstep(store, run: "r", batches: 43)
        #expect(store.recovery.skippedPoints == 40 * 10 * 2)
        try store.close()
        let reopened = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
        for b in [0, 39, 42] {
            #expect(try reopened.append(run: "r", series: [SeriesBatch(key: "a", steps: [0], timestamps: [0], values: [1])], batchID: "r-\(b)") == false)
        }
        try expectLockstep(reopened, run: "r", batches: 43)
    }

    @Test func tornTailIsTruncatedAndReported() throws {
        let dir = TempDir("torn")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
            try appendLockstep(store, run: "r", batches: 0..<5, ids: false)
        }
        let last = try #require(try walFiles(dir).last)
        let bytes = try records(last)
        // Cut inside the last record (a torn write), and also zero-pad like a torn page.
        try FileIO.writeAtomically(path: last, bytes: Array(bytes[..<(bytes.count - 100)]) + [UInt8](repeating: 0, count: 300), durable: false)
        let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
        let cut = try #require(store.recovery.truncatedTail)
        #expect(cut.path == last)
        #expect(cut.bytes > 0)
        try expectLockstep(store, run: "r", batches: 4)  // the torn batch is wholly absent
        #expect(try readAll(last).count == Int(cut.offset))
    }

    @Test func corruptionBeforeValidRecordsIsAHardError() throws {
        let dir = TempDir("midlog")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
            try appendLockstep(store, run: "r", batches: 0..<10, ids: false)
        }
        let last = try #require(try walFiles(dir).last)
        var bytes = try records(last)
        let at = bytes.count / 2
        bytes[at] ^= 0x40
        try FileIO.writeAtomically(path: last, bytes: bytes, durable: false)
        do {
            _ = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
            Issue.record("a flipped bit in the middle of the log was accepted")
        } catch let e as StorageError {
            #expect(e.code == .corrupt)
            #expect(e.path == last)
            #expect(e.offset != nil && e.offset! <= Int64(at))
        }
        // check reports it, repair cuts there and says what it dropped, and the store opens again.
        let report = try StoreCheck.check(directory: dir.path)
        #expect(report.problems.count == 1 && report.problems[0].path == last && !report.problems[0].repairedOnOpen)
        let repair = try StoreCheck.repair(directory: dir.path)
        #expect(!repair.actions.isEmpty)
        let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 1 << 20))
        let a = try store.read(run: "r", key: "a")
        #expect(a.count % 10 == 0 && a.count < 100)
        #expect(a.steps == (0..<a.count).map { Int64($0) })
        #expect(try StoreCheck.check(directory: dir.path).problems.isEmpty)
    }

    @Test func damageInAnOlderSegmentOrAMissingSegmentIsAHardError() throws {
        let dir = TempDir("older")
        do {
            var c = walConfig(segmentBytes: 4 << 10)
            c.wal!.maxSegments = 100
            c.sealPoints = 1 << 20  // keep everything in heads so old WAL segments stay needed
            let store = try MetricStore(directory: dir.path, configuration: c)
            try appendLockstep(store, run: "r", batches: 0..<60, ids: false)
        }
        let files = try walFiles(dir)
        #expect(files.count >= 4)
        let saved = try readAll(files[1])
        var bad = saved
        bad[bad.count / 2] ^= 1
        try FileIO.writeAtomically(path: files[1], bytes: bad, durable: false)
        #expect(throws: StorageError.self) { _ = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 4 << 10)) }
        try FileIO.remove(files[1])
        do {
            _ = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 4 << 10))
            Issue.record("a missing WAL segment was not noticed")
        } catch let e as StorageError {
            #expect(e.message.contains("missing"))
            #expect(e.path == files[2])
        }
        try FileIO.writeAtomically(path: files[1], bytes: saved, durable: false)
        let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 4 << 10))
        try expectLockstep(store, run: "r", batches: 60)
    }

    @Test func missingSegmentFilesAreReportedNotSilentlyDropped() throws {
        let dir = TempDir("missingseg")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig(blockPoints: 1000, segmentBytes: 1 << 20))
            for chunk in stride(from: 0, to: 30, by: 10) {
                try appendLockstep(store, run: "r", batches: chunk..<(chunk + 10))
                try store.flush(run: "r")
            }
            try appendLockstep(store, run: "s", batches: 0..<3)
            try store.close()  // WAL checkpointed: segments are the only copy, the manifest records them
        }
        let runDir = dir.path + "/runs/r"
        let segs = try FileIO.list(runDir).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segs.count == 3)
        // A middle segment: the chain names it.
        let middle = try readAll(runDir + "/" + segs[1])
        try FileIO.remove(runDir + "/" + segs[1])
        var store = try MetricStore(directory: dir.path, configuration: walConfig(blockPoints: 1000, segmentBytes: 1 << 20))
        do {
            _ = try store.read(run: "r", key: "a")
            Issue.record("a missing middle segment went unnoticed")
        } catch let e as StorageError {
            #expect(e.path == runDir + "/" + segs[1])
            #expect(e.message.contains("missing"))
        }
        try expectLockstep(store, run: "s", batches: 3)  // other runs are unaffected
        #expect(try StoreCheck.check(directory: dir.path).problems.contains { $0.path == runDir + "/" + segs[1] })
        try FileIO.writeAtomically(path: runDir + "/" + segs[1], bytes: middle, durable: false)
        // The newest segment: only the manifest remembers it.
        try FileIO.remove(runDir + "/" + segs[2])
        store.abandon()  // the process "dies": the directory is free again
        store = try MetricStore(directory: dir.path, configuration: walConfig(blockPoints: 1000, segmentBytes: 1 << 20))
        #expect(throws: StorageError.self) { _ = try store.read(run: "r", key: "a") }
        // The whole run directory.
        try FileIO.removeTree(runDir)
        #expect(throws: StorageError.self) { _ = try MetricStore(directory: dir.path, configuration: walConfig(blockPoints: 1000, segmentBytes: 1 << 20)) }
    }

    @Test func aMissingSegmentStillInTheLogIsRebuiltByReplay() throws {
        let dir = TempDir("rebuild")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig(blockPoints: 1000, segmentBytes: 1 << 20))
            try appendLockstep(store, run: "r", batches: 0..<10)
            try store.flush(run: "r")
            try appendLockstep(store, run: "r", batches: 10..<20)
            try store.flush(run: "r")
            // Crash: one WAL segment still holds everything, so no checkpoint happened.
        }
        let runDir = dir.path + "/runs/r"
        let newest = try #require(try FileIO.list(runDir).filter { $0.hasSuffix(".seg") }.sorted().last)
        try FileIO.remove(runDir + "/" + newest)
        let store = try MetricStore(directory: dir.path, configuration: walConfig(blockPoints: 1000, segmentBytes: 1 << 20))
        try expectLockstep(store, run: "r", batches: 20)
    }

    @Test func sealedWALSegmentsAreRemovedAndCleanCloseReplaysNothing() throws {
        let dir = TempDir("checkpoint")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 8 << 10))
            try appendLockstep(store, run: "r", batches: 0..<300)
            #expect(try walFiles(dir).count <= 6, "sealed segments are checkpointed away")
            try store.close()
        }
        #expect(try walFiles(dir).count == 1)
        let store = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 8 << 10))
        #expect(store.recovery.records == 0)
        try expectLockstep(store, run: "r", batches: 300)
        // LSNs continue after a clean restart: new points are replayed, not mistaken for sealed ones.
        try appendLockstep(store, run: "r", batches: 300..<310)
        store.abandon()  // the process "dies": the directory is free again
        let again = try MetricStore(directory: dir.path, configuration: walConfig(segmentBytes: 8 << 10))
        try expectLockstep(again, run: "r", batches: 310)
    }

    @Test func deletedRunsStayDeletedAfterReplay() throws {
        let dir = TempDir("delrun")
        do {
            let store = try MetricStore(directory: dir.path, configuration: walConfig())
            try appendLockstep(store, run: "gone", batches: 0..<30)
            try appendLockstep(store, run: "kept", batches: 0..<3)
            try store.deleteRun("gone")
            try appendLockstep(store, run: "gone", batches: 0..<2)  // the id is reused afterwards
        }
        let store = try MetricStore(directory: dir.path, configuration: walConfig())
        try expectLockstep(store, run: "gone", batches: 2)
        try expectLockstep(store, run: "kept", batches: 3)
    }

    @Test func concurrentDurableWritersShareFsyncs() async throws {
        let dir = TempDir("group")
        let store = try MetricStore(directory: dir.path, configuration: walConfig(.sync, blockPoints: 512, segmentBytes: 64 << 10))
        try await withThrowingTaskGroup(of: Void.self) { g in
            for w in 0..<6 {
                g.addTask { try appendLockstep(store, run: "w\(w)", batches: 0..<40) }
            }
            try await g.waitForAll()
        }
        store.abandon()  // the process "dies": the directory is free again
        let reopened = try MetricStore(directory: dir.path, configuration: walConfig(.sync, blockPoints: 512, segmentBytes: 64 << 10))
        for w in 0..<6 { try expectLockstep(reopened, run: "w\(w)", batches: 40) }
    }

    @Test func zerosWrittenAheadAreTheLogsEndAndClosedSegmentsLoseThem() throws {
        let dir = TempDir("prealloc")
        var c = walConfig(.sync, blockPoints: 1 << 16, segmentBytes: 32 << 10)
        c.wal!.preallocateBytes = 8 << 10
        c.wal!.maxSegments = 100
        c.sealPoints = 1 << 20  // everything stays in heads: every record is replayed
        do {
            let store = try MetricStore(directory: dir.path, configuration: c)
            try appendLockstep(store, run: "r", batches: 0..<400, ids: false)  // several extensions and rotations
            store.abandon()  // the process "dies"
        }
        let files = try walFiles(dir)
        #expect(files.count >= 2)
        for f in files.dropLast() { #expect(try readAll(f).count == records(f).count, "a closed segment is cut back to its records") }
        let last = try #require(files.last)
        let tail = try readAll(last).count - records(last).count
        #expect(tail > 0 && tail <= 8 << 10 + 4096, "the current segment has zeros ahead of its records")
        let store = try MetricStore(directory: dir.path, configuration: c)
        try expectLockstep(store, run: "r", batches: 400)
        #expect(store.recovery.truncatedTail == nil, "zeros ahead are the log's end, not damage")
        try appendLockstep(store, run: "r", batches: 400..<410, ids: false)
        try store.close()
        let reopened = try MetricStore(directory: dir.path, configuration: c)
        try expectLockstep(reopened, run: "r", batches: 410)
        try reopened.close()
        for f in try walFiles(dir) { #expect(try readAll(f).count == records(f).count, "a clean close leaves no zeros") }
    }
}

