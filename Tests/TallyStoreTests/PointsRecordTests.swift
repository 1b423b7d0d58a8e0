import Testing
import TallyWorkloads
@testable import TallyStore

/// The record a cluster's shared log keeps per append: round trips bit-exact (wide and dense batches, compressed or
/// not, with and without batch ids), refuses every damaged byte, and replayed into another store gives that store
/// the same points, once, whatever is replayed twice.
@Suite struct PointsRecordTests {
    static func batch(_ seed: UInt64, series: Int, points: Int) -> SeriesColumns {
        var rng = SplitMix64(seed: seed)
        var c = SeriesColumns(series: series, points: series * points)
        for k in 0..<series {
            let n = Int(rng.next() % UInt64(points + 1))
            c.append(key: "k\(k)/ü", steps: (0..<n).map { _ in rng.int(Int64.min...Int64.max) }, timestamps: (0..<n).map { Int64($0) },
                     values: (0..<n).map { _ in rng.anyDouble() })
        }
        return c
    }

    static func contents(_ c: SeriesColumns) -> [String: [[UInt64]]] {
        var out: [String: [[UInt64]]] = [:]
        c.forEach { _, key, st, ts, vs in
            out[key] = [st.map { UInt64(bitPattern: $0) }, ts.map { UInt64(bitPattern: $0) }, vs.map(\.bitPattern)]
        }
        return out
    }

    @Test(arguments: [(1, 5_000), (1_000, 1), (40, 300), (0, 0)])
    func roundTripsBitExact(_ shape: (series: Int, points: Int)) throws {
        let c = Self.batch(UInt64(shape.series * 31 + shape.points), series: shape.series, points: shape.points)
        for id in [nil, "batch-7"] as [String?] {
            let (back, batchID) = try PointsRecord.decode(try PointsRecord.encode(c, batchID: id))
            #expect(batchID == id)
            #expect(back.keys == c.keys && Self.contents(back) == Self.contents(c))
        }
        // Compressible columns are lz4-compressed; the record still decodes to the same points.
        var dense = SeriesColumns()
        dense.append(key: "loss", steps: (0..<10_000).map { Int64($0) }, timestamps: [Int64](repeating: 5, count: 10_000), values: [Double](repeating: 0.5, count: 10_000))
        let record = try PointsRecord.encode(dense, batchID: nil)
        #expect(record.count < 10_000 / 2, "a constant series and regular steps take well under a byte a point")
        #expect(Self.contents(try PointsRecord.decode(record).series) == Self.contents(dense))
        // A constant million-point series is a few bytes, and still decodes (no count-versus-size guard trips).
        var flat = SeriesColumns()
        flat.append(key: "lr", steps: [Int64](repeating: 7, count: 1_000_000), timestamps: [Int64](repeating: 7, count: 1_000_000),
                    values: [Double](repeating: 0.001, count: 1_000_000))
        let tiny = try PointsRecord.encode(flat, batchID: nil)
        #expect(tiny.count < 1_000)
        #expect(try PointsRecord.decode(tiny).series.pointCount == 1_000_000)
    }

    /// Records written by an earlier version (the local log's lz4 columns) still read, to the same points.
    @Test func version1RecordsStillRead() throws {
        let c = Self.batch(11, series: 7, points: 200)
        for id in [nil, "b1"] as [String?] {
            let old = PointsRecord.encodeVersion1(WALPoints.encodeColumns(c, compress: true), keys: c.keys, batchID: id)
            let (back, batchID) = try PointsRecord.decode(old)
            #expect(batchID == id && back.keys == c.keys && Self.contents(back) == Self.contents(c))
        }
    }

    @Test func everyDamagedByteAndEveryTruncationIsRefused() throws {
        let record = try PointsRecord.encode(Self.batch(3, series: 3, points: 20), batchID: "b")
        for i in record.indices {
            var bad = record
            bad[i] ^= 0x20
            #expect(throws: StorageError.self) { _ = try PointsRecord.decode(bad) }
        }
        for n in [0, 1, 8, record.count / 2, record.count - 1] {
            #expect(throws: StorageError.self) { _ = try PointsRecord.decode(Array(record.prefix(n))) }
        }
    }

    @Test func aStoreAppliesRecordsOnceAndMatchesTheStoreThatWroteThem() throws {
        let dirA = TempDir("rec-a"), dirB = TempDir("rec-b")
        let a = try MetricStore(directory: dirA.path), b = try MetricStore(directory: dirB.path)
        var records: [[UInt8]] = []
        for i in 0..<5 {
            var c = SeriesColumns()
            c.append(key: "loss", steps: [Int64(i * 2), Int64(i * 2 + 1)], timestamps: [1, 2], values: [specialValues[i], -0.0])
            let p = try a.appendVisible(try a.prepareAppend(run: "r", columns: c, batchID: "b\(i)"))
            try a.settle(p)
            records.append(try #require(try p.record()))
        }
        // A repeated batch id stores nothing and has no record.
        var again = SeriesColumns()
        again.append(key: "loss", steps: [0], timestamps: [1], values: [1])
        let repeated = try a.appendVisible(try a.prepareAppend(run: "r", columns: again, batchID: "b0"))
        try a.settle(repeated)
        #expect(try repeated.record() == nil)
        #expect(try b.apply(run: "r", records: records) == 10)
        #expect(try b.apply(run: "r", records: Array(records.suffix(2))) == 0, "records carry their batch ids: applied once")
        #expect(bits(try b.read(run: "r", key: "loss").values) == bits(try a.read(run: "r", key: "loss").values))
        // A damaged record stores nothing of itself.
        var bad = records[0]
        bad[bad.count / 2] ^= 1
        #expect(throws: StorageError.self) { try b.apply(run: "fresh", records: [bad]) }
        #expect(try b.read(run: "fresh", key: "loss").values.isEmpty)
        try a.close()
        try b.close()
    }
}
