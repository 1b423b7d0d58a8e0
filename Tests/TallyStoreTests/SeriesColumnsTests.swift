import Testing
@testable import TallyStore

/// The flat form of an append: what `normalized()` keeps, merges and refuses, against the per-series form.
@Suite struct SeriesColumnsTests {
    static func series(_ c: SeriesColumns) -> [String: [Int64]] {
        Dictionary(uniqueKeysWithValues: (0..<c.count).map { (c.keys[$0], Array(c.steps[c.range($0)])) })
    }

    @Test func sortedDistinctKeysAreKeptAsTheyAre() throws {
        let c = SeriesColumns([SeriesBatch(key: "a", steps: [1, 2], timestamps: [0, 0], values: [1, 2]),
                               SeriesBatch(key: "b", steps: [5], timestamps: [0], values: [3])])
        let n = try c.normalized()
        #expect(n.keys == ["a", "b"] && n.ends == [2, 3] && n.steps == [1, 2, 5] && n.values == [1, 2, 3])
        #expect(n.batch(1).key == "b" && n.batch(1).steps == [5])
    }

    @Test func equalKeysMergeInFirstAppearanceOrderAndEmptySeriesGo() throws {
        let c = SeriesColumns([SeriesBatch(key: "z", steps: [1], timestamps: [10], values: [0.5]),
                               SeriesBatch(key: "e", steps: [], timestamps: [], values: []),
                               SeriesBatch(key: "a", steps: [7], timestamps: [11], values: [1.5]),
                               SeriesBatch(key: "z", steps: [2, 3], timestamps: [12, 13], values: [2.5, 3.5])])
        let n = try c.normalized()
        #expect(n.keys == ["z", "a"] && Self.series(n) == ["z": [1, 2, 3], "a": [7]])
        #expect(n.timestamps == [10, 12, 13, 11] && n.values == [0.5, 2.5, 3.5, 1.5])
    }

    @Test func badKeysAndUnequalColumnsAreRefused() {
        for bad in [SeriesBatch(key: "", steps: [1], timestamps: [1], values: [1]),
                    SeriesBatch(key: String(repeating: "k", count: 1025), steps: [1], timestamps: [1], values: [1]),
                    SeriesBatch(key: "x", steps: [1, 2], timestamps: [1], values: [1, 2])] {
            #expect(throws: StorageError.self) { _ = try SeriesColumns([bad]).normalized() }
        }
    }
}
