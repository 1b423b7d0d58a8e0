import Foundation
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Latest values as one compact row per run (`run_latest`) with interned keys (`metric_keys`): bit-exact, small,
/// robust to damage, and migrated from the per-key rows of schema version 1.
@Suite struct LatestRowsTests {
    @Test func rowsRoundTripBitExactAndRefuseDamage() throws {
        let codec = ColumnCodec()
        let values: [Double] = [.nan, Double(bitPattern: 0x7FF8_0000_DEAD_BEEF), .infinity, -.infinity, -0.0, 0.1, 1e300, .leastNonzeroMagnitude]
        let metrics = values.enumerated().map { Metric(key: "k\($0.offset)", value: $0.element, timestamp: 1_700_000_000_000 + Int64($0.offset), step: Int64($0.offset) - 3) }
        let ids = Dictionary(uniqueKeysWithValues: metrics.enumerated().map { ($0.element.key, Int64($0.offset * 3 + 1)) })
        let keys = Dictionary(uniqueKeysWithValues: ids.map { ($1, $0) })
        let row = try LatestRows.encode(metrics, codec: codec) { ids[$0]! }
        let back = try LatestRows.decodeWithIDs(row, runID: "r", codec: codec) { keys[$0] }.metrics
        #expect(back.map(\.key) == metrics.map(\.key) && back.map(\.step) == metrics.map(\.step) && back.map(\.timestamp) == metrics.map(\.timestamp))
        #expect(back.map(\.value.bitPattern) == metrics.map(\.value.bitPattern))
        // Every truncation and many flipped bytes: an error or (when a flip lands in a value) other numbers, never a crash.
        for n in 0..<row.count {
            #expect(throws: TrackingError.self) { _ = try LatestRows.decodeWithIDs(Array(row.prefix(n)), runID: "r", codec: codec) { keys[$0] }.metrics }
        }
        for i in row.indices {
            var bad = row
            bad[i] ^= 0x5A
            _ = try? LatestRows.decodeWithIDs(bad, runID: "r", codec: codec) { keys[$0] }.metrics
        }
        #expect(throws: TrackingError.self) { _ = try LatestRows.decodeWithIDs(row, runID: "r", codec: codec) { _ in nil }.metrics }
    }

    @Test func aWideRunKeepsItsLatestValuesInAFewBytesPerKey() throws {
        let f = try Fixture("wide-latest")
        let run = try f.service.createRun(experimentID: "0", startTime: 1)
        let id = run.info.runID
        let keys = (0..<2_000).map { "suite\($0 / 100)/task_\($0 % 100)/acc" }
        for (c, part) in [keys[..<1_000], keys[1_000...]].enumerated() {
            try f.service.logBatch(runID: id, metrics: part.enumerated().map { i, k in
                Metric(key: k, value: Double(Float(Double(i % 97) / 97)), timestamp: 1_700_000_000_000 + Int64(c), step: 1_000)
            })
        }
        // A later checkpoint updates half of them.
        try f.service.logBatch(runID: id, metrics: keys.prefix(1_000).map { Metric(key: $0, value: 0.5, timestamp: 1_700_000_060_000, step: 2_000) })
        let before = try f.service.run(id: id).metrics
        #expect(before.count == 2_000 && zip(before, before.dropFirst()).allSatisfy { binaryLess($0.key, $1.key) })
        // A checkpoint (what a clean close runs first) empties the SQLite journal while the store is open; the close
        // leaves none behind and releases the file (held exclusively while open); the closed store refuses calls.
        let walSize = { (try? FileManager.default.attributesOfItem(atPath: f.dir + "/metadata.sqlite-wal")[.size] as? Int) ?? 0 }
        #expect(walSize() > 0)
        try f.service.metadata.checkpoint()
        #expect(walSize() == 0)
        try f.service.close()
        #expect(walSize() == 0)
        #expect(throws: SQLiteError.self) { _ = try f.service.metadata.experiments() }
        let db = try SQLiteDatabase(path: f.dir + "/metadata.sqlite")
        let rowBytes = try #require(try db.rows("SELECT length(data) FROM run_latest WHERE run_uuid = ?", [.text(id)]).first?.first?.int)
        #expect(rowBytes < 2_000 * 8, "\(rowBytes) bytes for 2,000 latest values")
        #expect(try db.rows("SELECT count(*) FROM metric_keys").first?.first?.int == 2_000)
        db.close()
        let reopened = try Fixture.open(f.dir)
        let after = try reopened.run(id: id).metrics
        #expect(after == before)
        #expect(after.metric(keys[10])?.value == 0.5 && after.metric(keys[10])?.step == 2_000)
        #expect(after.metric(keys[1_500])?.step == 1_000 && after.metric("no such key") == nil)
    }

    @Test(arguments: Backend.all) func updatesMergeInKeyOrderWhateverOrderTheyArriveIn(_ backend: Backend) throws {
        let f = try Fixture("latest-merge", backend: backend)
        let id = try f.service.createRun(experimentID: "0", startTime: 1).info.runID
        let meta = f.service.metadata
        func m(_ k: String, _ v: Double) -> Metric { Metric(key: k, value: v, timestamp: 1, step: 0) }
        try meta.setLatestMetrics(runID: id, [m("b", 1), m("d", 1)])
        // Unsorted, a repeated key (the last wins), keys before, between and after the stored ones.
        try meta.setLatestMetrics(runID: id, [m("e", 2), m("a", 2), m("c", 2), m("b", 2), m("a", 3), m("é", 2)])
        var oracle: [String: Double] = ["b": 1, "d": 1]
        for (k, v) in [("e", 2.0), ("a", 2), ("c", 2), ("b", 2), ("a", 3), ("é", 2)] { oracle[k] = v }
        let got = try #require(try meta.run(id: id)).metrics
        #expect(got.map(\.key) == oracle.keys.sorted(by: binaryLess) && got.map(\.value) == oracle.keys.sorted(by: binaryLess).map { oracle[$0]! })
        #expect(try meta.latestMetrics(runID: id, keys: ["a", "zz", "é"]).map { $0?.value } == [3, nil, 2])  // sorted: a walk
        #expect(try meta.latestMetrics(runID: id, keys: ["é", "a", "zz", "a"]).map { $0?.value } == [2, 3, nil, 3])  // unsorted
        let reopened = try f.metadataStore()
        #expect(try reopened.run(id: id)?.metrics == got)
    }

    @Test func schemaVersionOneLatestRowsAreMigrated() throws {
        // Metadata written by the last schema-1 build (with Tests/TallyStoreTests/Fixtures/make-v1-store.py), plus a
        // NaN row added as that schema stored it (value 0, is_nan 1).
        var template = Array("/tmp/tally-trk-v1meta-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileIO.removeTree(dir) }
        let path = dir + "/metadata.sqlite"
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/v1-metadata.sqlite").path
        try FileManager.default.copyItem(atPath: fixture, toPath: path)
        let (long, short) = ("baf8174ec920488aa06c4f51ea0fd754", "5c671d0e3b754c94b46ad029c7cd7ad5")
        let counts = { (db: SQLiteDatabase) in try ["params", "tags"].map { try db.rows("SELECT count(*), group_concat(x) FROM (SELECT run_uuid || key || value AS x FROM \($0) ORDER BY 1)") } }
        let before: [[[SQLValue]]]
        do {
            let db = try SQLiteDatabase(path: path)
            #expect(try db.userVersion == 1)
            try db.run("INSERT INTO latest_metrics VALUES (?, 'nan', 0, 1, 9, 4)", [.text(short)])
            for (run, key) in [(short, "lr"), (long, "lr"), (long, "batch")] { try db.run("INSERT INTO params VALUES (?, ?, '0.1')", [.text(run), .text(key)]) }
            before = try counts(db)
        }
        let meta = try SQLiteMetadataStore(path: path, now: 0)
        let a = try #require(try meta.run(id: long)).metrics
        #expect(a.count == 52 && zip(a, a.dropFirst()).allSatisfy { binaryLess($0.key, $1.key) })
        #expect(a.metric("loss") == Metric(key: "loss", value: 1.142578125, timestamp: 1_700_000_000_000 + 2_999 * 250, step: 2_999))
        #expect(a.metric("suite/task_07/acc")?.step == 100)
        #expect(try meta.run(id: long)?.params == [KeyValue(key: "batch", value: "0.1"), KeyValue(key: "lr", value: "0.1")])
        let b = try #require(try meta.run(id: short)).metrics
        #expect(b.map(\.key) == ["nan", "x", "y"] && b[0].value.isNaN && b[0].step == 4 && b[1].value == 2.5 && b[2].value == -0.25)
        // Later versions' tables came with the migration (version 3: logged models), and work.
        #expect(try meta.loggedModels(experimentIDs: [0]).isEmpty && (try meta.runOutputs(runID: short)).isEmpty)
        meta.close()
        let db = try SQLiteDatabase(path: path)
        #expect(try db.userVersion == Int64(SQLiteMetadataStore.migrations.count))
        #expect(try db.rows("SELECT name FROM sqlite_master WHERE name = 'latest_metrics'").isEmpty)
        // Version 6: the rows of params and tags as they were, in tables without rowids (run_latest's are above).
        #expect(try counts(db) == before && before[0][0][0].int == 3 && before[1][0][0].int == 2)
        #expect(try db.rows("SELECT name FROM pragma_table_list WHERE name IN ('params', 'tags', 'run_latest') AND wr = 1 ORDER BY name")
                == [[.text("params")], [.text("run_latest")], [.text("tags")]])
    }
}
