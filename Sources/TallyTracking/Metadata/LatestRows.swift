import TallyStore

/// Metric keys interned for the metadata database: each distinct key is stored once (`metric_keys`), and runs'
/// latest values refer to it by id. Lookups return the one shared `String` per key, so thousands of runs with the
/// same 2,000 keys hold 2,000 key strings, not 2,000 per run.
struct MetricKeyTable {
    private var ids: [String: Int64] = [:]
    /// Keys by id (SQLite's rowids count up from 1, so the ids are dense): decoding a row is an array read per key.
    private var keys: [String?] = []
    /// Ids beyond this are kept in `sparse` (a damaged or hand-edited table must not allocate gigabytes).
    private static let denseLimit: Int64 = 1 << 24
    private var sparse: [Int64: String] = [:]

    /// Records an id read from or written to the database.
    mutating func add(id: Int64, key: String) {
        ids[key] = id
        if id >= 0, id < Self.denseLimit {
            if Int(id) >= keys.count { keys.append(contentsOf: repeatElement(nil, count: Int(id) + 1 - keys.count)) }
            keys[Int(id)] = key
        } else {
            sparse[id] = key
        }
    }

    /// The id of `key`, when interned.
    func id(_ key: String) -> Int64? { ids[key] }

    /// The shared key string of `id`.
    func key(_ id: Int64) -> String? { id >= 0 && id < Int64(keys.count) ? keys[Int(id)] : sparse[id] }

    /// The shared instance of `key` (itself when not interned).
    func interned(_ key: String) -> String { ids[key].flatMap { self.key($0) } ?? key }
}

/// A run's latest metric values as one compact row (`run_latest.data`): a format byte, then a table of key ids,
/// steps, timestamps and values (bit-exact, NaN payloads included) as compressed columns, in key order. One row per
/// run replaces one SQL row per key: a benchmark-suite run of 2,000 keys costs a few bytes per key instead of ~150.
/// The PostgreSQL store keeps the same rows.
enum LatestRows {
    static let format: UInt8 = 1

    /// Encodes `metrics` (sorted by key bytes) with each key's id.
    static func encode(_ metrics: [Metric], codec: ColumnCodec, id: (String) throws -> Int64) throws -> [UInt8] {
        try encode(metrics, ids: try metrics.map { try id($0.key) }, codec: codec)
    }

    /// Encodes `metrics` (sorted by key bytes) with their keys' ids, aligned.
    static func encode(_ metrics: [Metric], ids: [Int64], codec: ColumnCodec) throws -> [UInt8] {
        precondition(ids.count == metrics.count, "one key id per latest value")
        let body = try codec.encode(table: [ids, metrics.map(\.step), metrics.map(\.timestamp)], values: [metrics.map(\.value)])
        return [format] + body
    }

    /// A row's columns: key ids, steps, timestamps and values, in key order.
    struct Columns {
        var ids: [Int64]
        var steps: [Int64]
        var timestamps: [Int64]
        var values: [Double]

        /// The value of key `id` (a scan of the id column: no key strings touched), `nil` when absent.
        func value(of id: Int64) -> Double? {
            ids.withUnsafeBufferPointer { b in b.firstIndex(of: id).map { values[$0] } }
        }
    }

    /// Decodes a row's columns.
    /// - Throws: ``TrackingError`` (internal error naming the run) when the row is damaged.
    static func columns(_ bytes: [UInt8], runID: String, codec: ColumnCodec) throws -> Columns {
        guard bytes.first == format else {
            throw TrackingError(.internalError, "latest metrics of run \(runID): unknown row format \(bytes.first.map(String.init) ?? "(empty)")")
        }
        let table: (integers: [[Int64]], values: [[Double]])
        do {
            table = try codec.decodeTable(Array(bytes.dropFirst()), integerColumns: 3, valueColumns: 1)
        } catch let e as StorageError {
            throw TrackingError(.internalError, "latest metrics of run \(runID) are damaged: \(e.message)")
        }
        return Columns(ids: table.integers[0], steps: table.integers[1], timestamps: table.integers[2], values: table.values[0])
    }

    /// Decodes a row (`key` resolves ids), keeping the key ids beside the values (a later merge re-encodes without
    /// looking keys up).
    /// - Throws: ``TrackingError`` (internal error naming the run) when the row is damaged or names an unknown key.
    static func decodeWithIDs(_ bytes: [UInt8], runID: String, codec: ColumnCodec, key: (Int64) throws -> String?) throws -> (metrics: [Metric], ids: [Int64]) {
        let c = try columns(bytes, runID: runID, codec: codec)
        let (ids, steps, timestamps, values) = (c.ids, c.steps, c.timestamps, c.values)
        var out: [Metric] = []
        out.reserveCapacity(ids.count)
        for i in ids.indices {
            guard let k = try key(ids[i]) else { throw TrackingError(.internalError, "latest metrics of run \(runID) name unknown key id \(ids[i])") }
            out.append(Metric(key: k, value: values[i], timestamp: timestamps[i], step: steps[i]))
        }
        return (out, ids)
    }

    /// Merges updates (sorted by key bytes; of equal keys the last wins) into a run's latest values (sorted, with
    /// their key ids) in one walk: no sort, no hashing. A key already there keeps its id and interned string; a new
    /// one gets both from `intern`.
    static func merge(_ all: [Metric], ids allIDs: [Int64], sortedUpdates updates: [Metric],
                      intern: (String) throws -> (id: Int64, key: String)) rethrows -> (metrics: [Metric], ids: [Int64]) {
        var merged: [Metric] = [], mergedIDs: [Int64] = []
        merged.reserveCapacity(all.count + updates.count)
        mergedIDs.reserveCapacity(all.count + updates.count)
        var i = 0, j = 0
        while j < updates.count {
            var u = updates[j]
            while j + 1 < updates.count, KeyOrder.compare(updates[j + 1].key, u.key) == 0 {  // the last of equal keys wins
                j += 1
                u = updates[j]
            }
            j += 1
            var c = 1
            while i < all.count {
                c = KeyOrder.compare(all[i].key, u.key)
                guard c < 0 else { break }
                merged.append(all[i])
                mergedIDs.append(allIDs[i])
                i += 1
            }
            if i < all.count, c == 0 {
                u.key = all[i].key
                mergedIDs.append(allIDs[i])
                i += 1
            } else {
                let (id, key) = try intern(u.key)
                mergedIDs.append(id)
                u.key = key
            }
            merged.append(u)
        }
        merged.append(contentsOf: all[i...])
        mergedIDs.append(contentsOf: allIDs[i...])
        return (merged, mergedIDs)
    }

    /// The values of `keys` among a run's latest values (sorted by key), aligned with them (`nil`: none). Keys in
    /// bytewise order take one walk; others a search each.
    static func lookup(_ all: [Metric], _ keys: [String]) -> [Metric?] {
        guard keys.indices.dropFirst().allSatisfy({ KeyOrder.compare(keys[$0 - 1], keys[$0]) <= 0 }) else { return keys.map { all.metric($0) } }
        var i = 0
        return keys.map { k in
            while i < all.count, KeyOrder.compare(all[i].key, k) < 0 { i += 1 }
            return i < all.count && KeyOrder.compare(all[i].key, k) == 0 ? all[i] : nil
        }
    }

    /// Several runs' rows (empty: none) as one key-major table (``MetadataStore/latestTable(runIDs:)``): decoded on
    /// all cores, keys resolved by `key`.
    static func table(_ bytes: [[UInt8]], runIDs: [String], key: (Int64) throws -> String?) throws -> LatestTable {
        let rows = try Parallel.map(Parallel.chunks(runIDs.count, minimum: 8)) { range in
            let codec = ColumnCodec()  // a codec per task: it keeps scratch buffers
            return try range.map { i in bytes[i].isEmpty ? nil : try LatestRows.columns(bytes[i], runID: runIDs[i], codec: codec) }
        }.flatMap { $0 }
        // Runs of one benchmark suite usually hold the same keys: then the union is any run's id column and each
        // run's values land by position. Otherwise the distinct ids are ordered by their keys' bytes.
        var union = rows.lazy.compactMap { $0?.ids }.first ?? []
        let shared = rows.allSatisfy { $0 == nil || $0!.ids == union }
        if !shared {
            var distinct = Set<Int64>()
            for r in rows { if let r { distinct.formUnion(r.ids) } }
            union = try distinct.sorted { binaryLess(try key($0) ?? "", try key($1) ?? "") }
        }
        let keys = try union.map { id -> String in
            guard let k = try key(id) else { throw TrackingError(.internalError, "latest metrics name unknown key id \(id)") }
            return k
        }
        let position = shared ? [:] : Dictionary(uniqueKeysWithValues: union.enumerated().map { ($1, $0) })
        var out = LatestTable(keys: keys, runCount: runIDs.count)
        for (i, r) in rows.enumerated() {
            guard let r else { continue }
            for j in r.ids.indices { out.set(shared ? j : position[r.ids[j]]!, i, step: r.steps[j], value: r.values[j]) }
        }
        return out
    }
}
