import Testing
@testable import TallyStore

/// The activity counters monitoring reads (`tally server --expose-prometheus`): each counts what happened, once.
@Suite struct StoreActivityTests {
    @Test func countsAppendsLogWritesSealsAndCompactions() throws {
        let dir = TempDir("activity")
        let store = try MetricStore(directory: dir.path, configuration: walConfig(.sync, blockPoints: 1_000, segmentBytes: 1 << 20))
        #expect(store.activity.pointsAppended == 0 && store.activity.walSyncs == 0 && store.activity.runs == 0)
        for segment in 0..<3 {
            try appendLockstep(store, run: "r", batches: segment * 4..<(segment + 1) * 4)  // 4 batches of 2 series × 10 points
            try store.flush()
        }
        var a = store.activity
        #expect(a.pointsAppended == 3 * 4 * 20)
        #expect(a.runs == 1)
        // Every batch was fsynced before its append returned (sync durability, one writer: a group of one each).
        #expect(a.walSyncs >= 12 && a.walSyncSeconds > 0)
        // Each record holds at least its 20 values' 8 bytes, before compression.
        #expect(a.walBytesWritten > 12 * 20)
        #expect(a.segmentsSealed == 3 && a.pointsSealed == 240 && a.headBytes == 0)
        #expect(a.sealedBytes > 0 && a.indexBytes > 0)
        #expect(a.compactions == 0)
        #expect(try store.compact(run: "r") == 3)
        a = store.activity
        #expect(a.compactions == 1 && a.segmentsCompacted == 3 && a.compactedBytes > 0)

        // A retried batch (same id) and points repeating logged ones add nothing.
        let before = store.activity.pointsAppended
        try appendLockstep(store, run: "r", batches: 11..<12)
        #expect(store.activity.pointsAppended == before)
        // Unsealed points are counted as head memory until sealed.
        try store.append(run: "s", key: "k", step: 1, timestamp: 1, value: 1)
        #expect(store.activity.headBytes > 0 && store.activity.runs == 2 && store.activity.pointsAppended == before + 1)
        try store.close()
    }
}
