import Testing
@testable import TallyStore

/// An append's series: what `normalized()` keeps, merges and refuses, from separate arrays and from flat columns.
@Suite struct SeriesColumnsTests {
    static func flat(_ batches: [SeriesBatch]) -> SeriesColumns {
        var c = SeriesColumns(series: batches.count, points: 0)
        for b in batches { c.append(key: b.key, steps: b.steps, timestamps: b.timestamps, values: b.values) }
        return c
    }

    static func same(_ a: [SeriesBatch], _ b: [SeriesBatch]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.steps == $1.steps && $0.timestamps == $1.timestamps
            && $0.values.map(\.bitPattern) == $1.values.map(\.bitPattern) }
    }

    @Test func distinctKeysAreKeptAsTheyAre() throws {
        let input = [SeriesBatch(key: "a", steps: [1, 2], timestamps: [0, 0], values: [1, 2]),
                     SeriesBatch(key: "b", steps: [5], timestamps: [0], values: [3])]
        for keys in [input, input.reversed()] {  // sorted or not
            for c in [SeriesColumns(keys), Self.flat(keys)] {
                let n = try c.normalized()
                #expect(Self.same(n.batches, keys) && n.pointCount == 3 && n.keys == keys.map(\.key))
            }
        }
    }

    @Test func equalKeysMergeInFirstAppearanceOrderAndEmptySeriesGo() throws {
        let input = [SeriesBatch(key: "z", steps: [1], timestamps: [10], values: [0.5]),
                     SeriesBatch(key: "e", steps: [], timestamps: [], values: []),
                     SeriesBatch(key: "a", steps: [7], timestamps: [11], values: [1.5]),
                     SeriesBatch(key: "z", steps: [2, 3], timestamps: [12, 13], values: [2.5, 3.5])]
        let want = [SeriesBatch(key: "z", steps: [1, 2, 3], timestamps: [10, 12, 13], values: [0.5, 2.5, 3.5]),
                    SeriesBatch(key: "a", steps: [7], timestamps: [11], values: [1.5])]
        for c in [SeriesColumns(input), Self.flat(input)] {
            #expect(Self.same(try c.normalized().batches, want))
        }
    }

    @Test func badKeysAndUnequalColumnsAreRefused() {
        for bad in [SeriesBatch(key: "", steps: [1], timestamps: [1], values: [1]),
                    SeriesBatch(key: String(repeating: "k", count: 1025), steps: [1], timestamps: [1], values: [1]),
                    SeriesBatch(key: "x", steps: [1, 2], timestamps: [1], values: [1, 2])] {
            #expect(throws: StorageError.self) { _ = try SeriesColumns([bad]).normalized() }
        }
    }
}

/// One memory bound for the engine (`tally server --metric-memory-mb`): the five budgets scale together.
@Suite struct MemoryBudgetTests {
    @Test func theBudgetsScaleInTheDefaultsProportions() {
        var c = StoreConfiguration()
        #expect(c.memoryBudget == StoreConfiguration.defaultMemoryBudget)
        c.memoryBudget = StoreConfiguration.defaultMemoryBudget / 2
        #expect(c.headMemoryBudget == 256 << 20 && c.openIndexBytes == 128 << 20 && c.blockCacheBytes == 128 << 20
                && c.rollupCacheBytes == 64 << 20 && c.packCacheBytes == 32 << 20)
        c.memoryBudget = 100 << 20
        #expect(c.memoryBudget <= 100 << 20 && c.memoryBudget > 99 << 20 && c.headMemoryBudget > c.rollupCacheBytes)
    }
}
