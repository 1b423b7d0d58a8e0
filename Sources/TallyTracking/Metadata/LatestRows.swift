import TallyStore

/// Metric keys interned for the metadata database: each distinct key is stored once (`metric_keys`), and runs'
/// latest values refer to it by id. Lookups return the one shared `String` per key, so thousands of runs with the
/// same 2,000 keys hold 2,000 key strings, not 2,000 per run.
struct MetricKeyTable {
    private var ids: [String: Int64] = [:]
    private var keys: [Int64: String] = [:]

    /// Records an id read from or written to the database.
    mutating func add(id: Int64, key: String) {
        ids[key] = id
        keys[id] = key
    }

    /// The id of `key`, when interned.
    func id(_ key: String) -> Int64? { ids[key] }

    /// The shared key string of `id`.
    func key(_ id: Int64) -> String? { keys[id] }

    /// The shared instance of `key` (itself when not interned).
    func interned(_ key: String) -> String { ids[key].flatMap { keys[$0] } ?? key }
}

/// A run's latest metric values as one compact row (`run_latest.data`): a format byte, then a table of key ids,
/// steps, timestamps and values (bit-exact, NaN payloads included) as compressed columns, in key order. One row per
/// run replaces one SQL row per key: a benchmark-suite run of 2,000 keys costs a few bytes per key instead of ~150.
/// The PostgreSQL store keeps the same rows.
enum LatestRows {
    static let format: UInt8 = 1

    /// Encodes `metrics` (sorted by key bytes) with each key's id.
    static func encode(_ metrics: [Metric], codec: ColumnCodec, id: (String) throws -> Int64) throws -> [UInt8] {
        let ids = try metrics.map { try id($0.key) }
        let body = try codec.encode(table: [ids, metrics.map(\.step), metrics.map(\.timestamp)], values: [metrics.map(\.value)])
        return [format] + body
    }

    /// Decodes a row; `key` resolves ids.
    /// - Throws: ``TrackingError`` (internal error naming the run) when the row is damaged or names an unknown key.
    static func decode(_ bytes: [UInt8], runID: String, codec: ColumnCodec, key: (Int64) -> String?) throws -> [Metric] {
        guard bytes.first == format else {
            throw TrackingError(.internalError, "latest metrics of run \(runID): unknown row format \(bytes.first.map(String.init) ?? "(empty)")")
        }
        let table: (integers: [[Int64]], values: [[Double]])
        do {
            table = try codec.decodeTable(Array(bytes.dropFirst()), integerColumns: 3, valueColumns: 1)
        } catch let e as StorageError {
            throw TrackingError(.internalError, "latest metrics of run \(runID) are damaged: \(e.message)")
        }
        let (ids, steps, timestamps, values) = (table.integers[0], table.integers[1], table.integers[2], table.values[0])
        var out: [Metric] = []
        out.reserveCapacity(ids.count)
        for i in ids.indices {
            guard let k = key(ids[i]) else { throw TrackingError(.internalError, "latest metrics of run \(runID) name unknown key id \(ids[i])") }
            out.append(Metric(key: k, value: values[i], timestamp: timestamps[i], step: steps[i]))
        }
        return out
    }
}
