import Testing
@testable import TallyStore

/// The activity counters monitoring reads (`tally server --expose-prometheus`): each counts what happened, once,
/// checked against the files the store wrote.
@Suite struct StoreActivityTests {
    /// The sizes of a run's segment files.
    static func segmentSizes(_ store: MetricStore, run: String) throws -> [Int] {
        let dir = store.runsDirectory + "/" + RunDirectoryName.encode(run)
        return try FileIO.list(dir).filter { $0.hasSuffix(".seg") }.map { Int(try ReadOnlyFile(path: dir + "/" + $0).size) }
    }

    @Test func countsAppendsLogWritesSealsAndCompactions() throws {
        let dir = TempDir("activity")
        let store = try MetricStore(directory: dir.path, configuration: walConfig(.sync, blockPoints: 1_000, segmentBytes: 1 << 20))
        #expect(store.activity.pointsAppended == 0 && store.activity.walBytesWritten == 0 && store.activity.runs == 0)
        let opened = store.activity.walSyncs  // the first log segment's file and directory
        // One writer in sync durability: each append is its own group commit, one fsync.
        try appendLockstep(store, run: "r", batches: 0..<1)
        #expect(store.activity.walSyncs == opened + 1 && store.activity.walSyncSeconds > 0)
        try store.flush()
        for segment in 1..<3 {
            try appendLockstep(store, run: "r", batches: segment * 4..<(segment + 1) * 4)  // 4 batches of 2 series × 10 points
            try store.flush()
        }
        var a = store.activity
        #expect(a.pointsAppended == (1 + 2 * 4) * 20 && a.runs == 1)
        #expect(a.walSyncs == opened + 9)
        // Every byte of the log's one segment after its header, and nothing else.
        let wal = try walFiles(dir)
        #expect(wal.count == 1)
        #expect(a.walBytesWritten == (try records(wal[0]).count) - WALFormat.fileHeaderSize)
        let sealed = try Self.segmentSizes(store, run: "r")
        #expect(a.segmentsSealed == 3 && sealed.count == 3 && a.pointsSealed == 180 && a.headBytes == 0)
        #expect(a.sealedBytes == sealed.reduce(0, +) && a.indexBytes > 0)
        #expect(a.compactions == 0)
        #expect(try store.compact(run: "r") == 3)
        a = store.activity
        let merged = try Self.segmentSizes(store, run: "r")
        #expect(a.compactions == 1 && a.segmentsCompacted == 3 && merged.count == 1 && a.compactedBytes == merged[0])

        // A retried batch (its id seen before) adds nothing.
        let before = store.activity
        try appendLockstep(store, run: "r", batches: 11..<12)
        #expect(store.activity.pointsAppended == before.pointsAppended && store.activity.walBytesWritten == before.walBytesWritten)
        // Unsealed points are counted as head memory until sealed.
        try store.append(run: "s", key: "k", step: 1, timestamp: 1, value: 1)
        #expect(store.activity.headBytes > 0 && store.activity.runs == 2 && store.activity.pointsAppended == before.pointsAppended + 1)
        try store.close()
    }

    @Test func countsTheFsyncsOfSegmentRotations() throws {
        let dir = TempDir("activity-rotate")
        let store = try MetricStore(directory: dir.path, configuration: walConfig(.sync, blockPoints: 1_000, segmentBytes: 4 << 10))
        let opened = store.activity.walSyncs
        try appendLockstep(store, run: "r", batches: 0..<40)
        let a = store.activity
        // Each batch's group commit, and for each rotation the old segment's fsync, the new one's and its directory's.
        let rotations = try FileIO.list(dir.path + "/wal").filter { $0.hasSuffix(".wal") }.count - 1
        #expect(rotations >= 2)
        #expect(a.walSyncs == opened + 40 + 3 * rotations, "\(a.walSyncs) fsyncs, \(rotations) rotations")
        try store.close()
    }
}
