import Synchronization

/// The columnar metric store: per-run series of (step, timestamp, value) points.
///
/// A series is identified by a run id and a metric key. Appends go to an in-memory head per series; heads are
/// sealed into immutable, compressed, checksummed segment files per run (when a series reaches
/// ``StoreConfiguration/blockPoints``, when the memory budget is exceeded, on ``flush()`` and on ``close()``).
/// Reads merge segments and heads. The store knows nothing of experiments or HTTP.
///
/// All methods are synchronous and thread-safe: appends to different runs proceed in parallel, appends to one run
/// are serialised, and reads see a consistent snapshot. Call from threads that may block on I/O.
///
/// ```swift
/// let store = try MetricStore(directory: "/data/metrics")
/// try store.append(run: "r1", series: [SeriesBatch(key: "loss", steps: [0, 1], timestamps: [t0, t1], values: [0.9, 0.8])])
/// let curve = try store.downsample(run: "r1", key: "loss", steps: 0...1_000_000, buckets: 1_000)
/// ```
public final class MetricStore: Sendable {
    /// The store's root directory.
    public let directory: String
    /// The configuration it was opened with.
    public let configuration: StoreConfiguration
    let runs = Mutex<[String: RunStore]>([:])
    let totalHeadBytes = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)
    let blockCache: LRUCache<BlockKey, DecodedBlock>
    let rollupCache: LRUCache<BlockKey, CachedPyramid>

    var runsDirectory: String { directory + "/runs" }

    /// Opens (creating when missing) a store in `directory`. Runs are loaded lazily on first use.
    /// - Throws: ``StorageError`` when the directory cannot be created or listed.
    public init(directory: String, configuration: StoreConfiguration = StoreConfiguration()) throws {
        guard configuration.blockPoints >= 1, configuration.blockPoints <= 1 << 20 else {
            throw StorageError(.invalidArgument, "blockPoints must be in 1...\(1 << 20)")
        }
        self.directory = directory
        self.configuration = configuration
        blockCache = LRUCache(budget: configuration.blockCacheBytes)
        rollupCache = LRUCache(budget: max(1 << 20, configuration.blockCacheBytes / 8))
        FileIO.raiseOpenFileLimit()
        try FileIO.makeDirectories(directory + "/runs")
        var found: [String: RunStore] = [:]
        for name in try FileIO.list(directory + "/runs") where !name.hasPrefix(".") {
            guard let id = RunDirectoryName.decode(name) else { continue }
            found[id] = RunStore(id: id, directory: directory + "/runs/" + name)
        }
        runs.withLock { $0 = found }
    }

    func checkOpen() throws {
        if closed.load(ordering: .acquiring) { throw StorageError(.closed, "the store is closed") }
    }

    /// The run's store, created when `create` is true.
    func run(_ id: String, create: Bool) throws -> RunStore? {
        try checkOpen()
        return try runs.withLock { runs in
            if let r = runs[id] { return r }
            guard create else { return nil }
            guard !id.isEmpty, id.utf8.count <= 200 else {
                throw StorageError(.invalidArgument, "run id must be 1 to 200 bytes")
            }
            let r = RunStore(id: id, directory: runsDirectory + "/" + RunDirectoryName.encode(id))
            runs[id] = r
            return r
        }
    }

    /// Run ids that have data.
    public func runIDs() -> [String] { runs.withLock { Array($0.keys) }.sorted() }

    /// Memory held by all heads, in bytes (by column capacity).
    public var headBytes: Int { totalHeadBytes.load(ordering: .relaxed) }

    /// Appends points to a run's series. Each batch's columns must have equal lengths.
    /// - Throws: ``StorageError/Code/invalidArgument`` for mismatched columns or empty keys (nothing is stored then),
    ///   or an I/O error from a seal triggered by the append (the points stay in memory).
    public func append(run id: String, series: [SeriesBatch]) throws {
        for b in series {
            guard b.steps.count == b.timestamps.count, b.steps.count == b.values.count else {
                throw StorageError(.invalidArgument,
                                   "series \(b.key): \(b.steps.count) steps, \(b.timestamps.count) timestamps, \(b.values.count) values")
            }
            guard !b.key.isEmpty, b.key.utf8.count <= Int(UInt16.max) else {
                throw StorageError(.invalidArgument, "metric key must be 1 to 65535 bytes")
            }
        }
        guard let run = try run(id, create: true) else { return }
        let sealPoints = configuration.sealPoints ?? configuration.blockPoints
        var needsSeal = false
        let delta: Int = try run.state.withLock { s in
            try RunStore.loadIfNeeded(&s, directory: run.directory)
            let before = s.headBytes
            for b in series where !b.steps.isEmpty {
                var h = s.heads.removeValue(forKey: b.key) ?? SeriesHead()
                let old = h.bytes
                b.steps.withUnsafeBufferPointer { st in
                    b.timestamps.withUnsafeBufferPointer { ts in
                        b.values.withUnsafeBufferPointer { h.append(steps: st, timestamps: ts, values: $0) }
                    }
                }
                s.headBytes += h.bytes - old
                needsSeal = needsSeal || h.count >= sealPoints
                s.heads[b.key] = h
            }
            run.headBytes.store(s.headBytes, ordering: .relaxed)
            return s.headBytes - before
        }
        totalHeadBytes.wrappingAdd(delta, ordering: .relaxed)
        if needsSeal {
            try sealAndAccount(run, .full(minimum: max(1, sealPoints / 2)))
        }
        if totalHeadBytes.load(ordering: .relaxed) > configuration.headMemoryBudget {
            try enforceBudget()
        }
    }

    /// Appends one point.
    public func append(run id: String, key: String, step: Int64, timestamp: Int64, value: Double) throws {
        try append(run: id, series: [SeriesBatch(key: key, steps: [step], timestamps: [timestamp], values: [value])])
    }

    func sealAndAccount(_ run: RunStore, _ scope: SealScope) throws {
        let before = run.headBytes.load(ordering: .relaxed)
        defer { totalHeadBytes.wrappingAdd(run.headBytes.load(ordering: .relaxed) - before, ordering: .relaxed) }
        try run.seal(scope, config: configuration)
        if configuration.compactionThreshold > 0 {
            let segments = run.state.withLock { $0.segments.count }
            if segments > configuration.compactionThreshold { try compactTail(run) }
        }
    }

    /// Seals the largest heads until the total is back under 90 % of the budget.
    func enforceBudget() throws {
        let target = configuration.headMemoryBudget / 10 * 9
        var attempts = 0
        while totalHeadBytes.load(ordering: .relaxed) > target && attempts < 64 {
            attempts += 1
            let candidates = runs.withLock { Array($0.values) }
            guard let victim = candidates.max(by: { $0.headBytes.load(ordering: .relaxed) < $1.headBytes.load(ordering: .relaxed) }),
                victim.headBytes.load(ordering: .relaxed) > 0
            else { return }
            try sealAndAccount(victim, .all)
        }
    }

    /// Seals every head of one run into a segment.
    public func flush(run id: String) throws {
        guard let run = try run(id, create: false) else { return }
        try sealAndAccount(run, .all)
    }

    /// Seals every head of every run.
    public func flush() throws {
        for run in runs.withLock({ Array($0.values) }) where run.headBytes.load(ordering: .relaxed) > 0 {
            try sealAndAccount(run, .all)
        }
    }

    /// Seals all heads and closes the store; later calls throw ``StorageError/Code/closed``.
    public func close() throws {
        try flush()
        closed.store(true, ordering: .releasing)
    }

    /// Deletes all data of a run (heads and segment files).
    public func deleteRun(_ id: String) throws {
        guard let run = try run(id, create: false) else { return }
        try run.sealLock.withLock { _ in
            let freed = run.state.withLock { s in
                s.deleted = true
                s.heads.removeAll()
                s.segments.removeAll()
                let b = s.headBytes
                s.headBytes = 0
                return b
            }
            run.headBytes.store(0, ordering: .relaxed)
            totalHeadBytes.wrappingAdd(-freed, ordering: .relaxed)
            runs.withLock { $0[id] = nil }
            try FileIO.removeTree(run.directory)
            if configuration.durableSegments { try FileIO.syncDirectory(runsDirectory) }
        }
    }

    /// Metric keys of a run (empty for an unknown run).
    public func keys(run id: String) throws -> [String] {
        guard let run = try run(id, create: false) else { return [] }
        return try run.keys()
    }

    /// Size and shape of a run's data.
    public func stats(run id: String) throws -> RunStats {
        guard let run = try run(id, create: false) else { return RunStats() }
        return try run.state.withLock { s in
            try RunStore.loadIfNeeded(&s, directory: run.directory)
            var st = RunStats()
            var keys = Set(s.heads.keys)
            st.segments = s.segments.count
            for seg in s.segments {
                st.segmentBytes += seg.size
                var seen = Set<Int64>()
                for series in seg.footer.series {
                    keys.insert(series.key)
                    for b in series.blocks {
                        st.sealedPoints += b.count
                        if !b.rollup.isNone, seen.insert(b.rollup.offset).inserted { st.rollupBytes += Int64(b.rollup.length) }
                    }
                }
            }
            for f in s.frozen {
                keys.formUnion(f.series.keys)
                st.headPoints += f.series.values.reduce(0) { $0 + $1.count }
            }
            st.headPoints += s.heads.values.reduce(0) { $0 + $1.count }
            st.series = keys.count
            return st
        }
    }
}

extension MetricStore {
    /// Bytes each series of a run takes in its sealed segments, by column.
    public func storage(run id: String) throws -> [String: SeriesStorage] {
        guard let run = try run(id, create: false) else { return [:] }
        let segments = try run.state.withLock { s in
            try RunStore.loadIfNeeded(&s, directory: run.directory)
            return s.segments
        }
        var out: [String: SeriesStorage] = [:]
        for seg in segments {
            for series in seg.footer.series {
                var st = out[series.key] ?? SeriesStorage()
                st.indexBytes += series.key.utf8.count + 6 + series.blocks.count * SegmentFormat.blockMetaSize
                for b in series.blocks {
                    st.points += b.count
                    st.valueBytes += b.values.length
                    st.stepBytes += b.steps.length
                    st.timestampBytes += b.timestamps.length
                    st.rollupBytes += b.rollup.length
                }
                out[series.key] = st
            }
        }
        return out
    }
}

/// Maps run ids to directory names: `[A-Za-z0-9_-]` kept, every other byte as `%XX`.
enum RunDirectoryName {
    static func encode(_ id: String) -> String {
        var out = ""
        for b in id.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    static func decode(_ name: String) -> String? {
        var bytes: [UInt8] = []
        var it = name.utf8.makeIterator()
        while let b = it.next() {
            if b == UInt8(ascii: "%") {
                guard let h = it.next(), let l = it.next(), let v = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
