import Synchronization

/// A thread-safe cache with a byte budget that evicts the least recently used entries.
final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var bytes: Int
        var tick: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var bytes = 0
        var tick: UInt64 = 0
    }

    private let state = Mutex(State())
    let budget: Int

    init(budget: Int) { self.budget = budget }

    /// The cached value, marked as recently used.
    func get(_ key: Key) -> Value? {
        state.withLock { s in
            guard var e = s.entries[key] else { return nil }
            s.tick &+= 1
            e.tick = s.tick
            s.entries[key] = e
            return e.value
        }
    }

    /// Stores a value, evicting the oldest entries down to 90 % of the budget when over it.
    func put(_ key: Key, _ value: Value, bytes: Int) {
        guard bytes <= budget else { return }
        state.withLock { s in
            s.tick &+= 1
            if let old = s.entries.updateValue(Entry(value: value, bytes: bytes, tick: s.tick), forKey: key) {
                s.bytes -= old.bytes
            }
            s.bytes += bytes
            if s.bytes > budget {
                let target = budget / 10 * 9
                for (k, e) in s.entries.sorted(by: { $0.value.tick < $1.value.tick }) where s.bytes > target {
                    s.entries[k] = nil
                    s.bytes -= e.bytes
                }
            }
        }
    }

    /// Drops every entry whose key matches.
    func removeAll(where match: (Key) -> Bool) {
        state.withLock { s in
            for (k, e) in s.entries where match(k) {
                s.entries[k] = nil
                s.bytes -= e.bytes
            }
        }
    }

    /// Bytes currently held.
    var bytes: Int { state.withLock { $0.bytes } }
}

/// Identifies one block of one series in one open segment.
struct BlockKey: Hashable, Sendable {
    var segment: Int
    var series: Int
    var block: Int
}

/// The step and value columns of a decoded block, shared through the cache.
final class DecodedBlock: Sendable {
    let steps: [Int64]
    let values: [UInt64]
    init(steps: [Int64], values: [UInt64]) {
        self.steps = steps
        self.values = values
    }
    var bytes: Int { (steps.count + values.count) * 8 + 64 }
}

/// A decoded rollup pyramid, shared through the cache.
final class CachedPyramid: Sendable {
    let pyramid: RollupPyramid
    let bytes: Int
    init(_ p: RollupPyramid) {
        pyramid = p
        bytes = p.levels.reduce(64) { $0 + $1.bucketCount * 14 * 8 }
    }
}
