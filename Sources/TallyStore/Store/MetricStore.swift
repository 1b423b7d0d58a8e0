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
    let account: MemoryAccount
    let closed = Atomic<Bool>(false)
    /// Appends between their closed-check and their return (``close()`` waits for them).
    let activeAppends = Atomic<Int>(0)
    let blockCache: LRUCache<BlockKey, DecodedBlock>
    let rollupCache: LRUCache<BlockKey, CachedPyramid>
    let packCache: LRUCache<BlockKey, DecodedPack>
    /// The write-ahead log, when ``StoreConfiguration/wal`` is set.
    let wal: WAL?
    let recoveryReport = Mutex(RecoveryReport())
    /// Serialises manifest writes and the log truncations that rely on them: concurrent checkpoints (seals in
    /// several appending threads) shared one temporary file, and an older manifest could land after a newer one.
    let manifestLock = Mutex(())
    /// The last failure of a seal or checkpoint that ran after its append had succeeded (cleared by the next success).
    let lastMaintenanceError = Mutex<StorageError?>(nil)
    /// The last failure of a background compaction (cleared by the next compaction that succeeds).
    let lastCompactionError = Mutex<StorageError?>(nil)
    /// Set while ``unloadIdleRuns()`` sweeps.
    let sweeping = Atomic<Bool>(false)
    /// Open-index bytes below which no sweep runs again after one that could not reach its target (0: none).
    let sweepFloor = Atomic<Int>(0)
    /// Held from open to ``close()``: one open store per directory.
    let directoryLock: DirectoryLock
    /// Seals and compactions off the request path (``StoreConfiguration/sealsInBackground``).
    let maintenance = BackgroundMaintenance()
    /// Called by a compaction after it chose its inputs, before it writes (tests interleave a seal there).
    let afterChoosingCompactionInputs = Mutex<(@Sendable () throws -> Void)?>(nil)
    /// Removals of segment and log files, held off while a snapshot links what it listed.
    let removals = FileRemovals()

    var runsDirectory: String { directory + "/runs" }

    /// Opens (creating when missing) a store in `directory`: replays the write-ahead log into the heads, truncating
    /// a torn tail of its last segment. Runs not named in the log are loaded lazily on first use.
    /// - Throws: ``StorageError`` when a directory cannot be created or listed, when another open store holds the
    ///   directory (``StorageError/Code/locked``), or when the log is corrupt anywhere but its tail (naming the file
    ///   and offset).
    public init(directory: String, configuration: StoreConfiguration = StoreConfiguration()) throws {
        guard configuration.blockPoints >= 1, configuration.blockPoints <= 1 << 20 else {
            throw StorageError(.invalidArgument, "blockPoints must be in 1...\(1 << 20)")
        }
        self.directory = directory
        self.configuration = configuration
        blockCache = LRUCache(budget: configuration.blockCacheBytes)
        rollupCache = LRUCache(budget: max(1 << 20, configuration.rollupCacheBytes))
        packCache = LRUCache(budget: max(1 << 20, configuration.packCacheBytes))
        let account = MemoryAccount()
        self.account = account
        wal = configuration.wal.map { WAL(directory: directory + "/wal", config: $0, counters: account.counters) }
        FileIO.raiseOpenFileLimit()
        try FileIO.makeDirectories(directory + "/runs")
        directoryLock = try DirectoryLock(directory: directory)
        try removeStaleSnapshots()
        let manifest = try StoreManifest.read(directory)
        var found: [String: RunStore] = [:]
        for name in try FileIO.list(directory + "/runs") {
            if name.hasPrefix(".deleted-") || name.hasPrefix(".installing-") {
                try FileIO.removeTree(directory + "/runs/" + name)  // a deletion or an installation interrupted before it finished
                continue
            }
            guard !name.hasPrefix("."), let id = RunDirectoryName.decode(name) else { continue }
            found[id] = RunStore(id: id, directory: directory + "/runs/" + name, account: account, packCache: packCache, removals: removals, manifestSeq: manifest[id])
        }
        runs.withLock { $0 = found }
        var deletedByLog: Set<String> = []
        if let wal { deletedByLog = try recover(wal) }
        // A run the manifest lists must still have its directory, unless the log deleted it (without the log, as
        // `tally store stats` opens a store, that cannot be told).
        for (id, seq) in manifest where wal != nil && found[id] == nil && !deletedByLog.contains(id) {
            throw StorageError(.corrupt, "run \(id) is missing (its segment \(SegmentFormat.fileName(seq: seq)) is recorded in the manifest)",
                               path: runsDirectory + "/" + RunDirectoryName.encode(id))
        }
    }

    /// Counts an append in flight; throws when the store is closed.
    func beginAppend() throws {
        activeAppends.wrappingAdd(1, ordering: .acquiring)
        if closed.load(ordering: .acquiring) {
            activeAppends.wrappingSubtract(1, ordering: .releasing)
            throw StorageError(.closed, "the store is closed")
        }
    }

    func endAppend() { activeAppends.wrappingSubtract(1, ordering: .releasing) }

    func checkOpen() throws {
        if closed.load(ordering: .acquiring) { throw StorageError(.closed, "the store is closed") }
    }

    /// The run's store, created when `create` is true. Every operation on a run starts here, so this is where the
    /// open indexes are brought back within ``StoreConfiguration/openIndexBytes``.
    func run(_ id: String, create: Bool) throws -> RunStore? {
        try checkOpen()
        if account.indexBytes.load(ordering: .relaxed) > max(configuration.openIndexBytes, sweepFloor.load(ordering: .relaxed)) { unloadIdleRuns() }
        return try runs.withLock { runs -> RunStore? in
            if let r = runs[id] { return r }
            guard create else { return nil }
            guard !id.isEmpty, id.utf8.count <= 200 else {
                throw StorageError(.invalidArgument, "run id must be 1 to 200 bytes")
            }
            // Every run with a directory was listed at open (or installed through the map): this one has none.
            let r = RunStore(id: id, directory: runsDirectory + "/" + RunDirectoryName.encode(id), account: account, packCache: packCache, removals: removals, new: true)
            runs[id] = r
            return r
        }
    }

    /// Closes idle runs, least recently used first, until the open indexes take at most 80 % of
    /// ``StoreConfiguration/openIndexBytes`` (one sweep at a time; the others go on without waiting). A sweep that
    /// cannot get there (the open runs are busy) sets a floor: the next one waits until the indexes have grown by
    /// an eighth of the budget, so calls do not each walk every run in vain.
    func unloadIdleRuns() {
        guard sweeping.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        defer { sweeping.store(false, ordering: .releasing) }
        let target = configuration.openIndexBytes / 10 * 8
        let all = runs.withLock { Array($0.values) }.map { ($0, $0.lastUse.load(ordering: .relaxed)) }
        for (run, _) in all.sorted(by: { $0.1 < $1.1 }) {
            guard account.indexBytes.load(ordering: .relaxed) > target else { break }
            run.unloadIfIdle()
        }
        let left = account.indexBytes.load(ordering: .relaxed)
        sweepFloor.store(left > target ? left + configuration.openIndexBytes / 8 : 0, ordering: .relaxed)
    }

    /// Memory of the open segment indexes of all runs, in bytes.
    public var openIndexBytes: Int { account.indexBytes.load(ordering: .relaxed) }

    /// Run ids that have data.
    public func runIDs() -> [String] { runs.withLock { Array($0.keys) }.sorted() }

    /// Memory held by all heads, in bytes (by column capacity).
    public var headBytes: Int { account.bytes.load(ordering: .relaxed) }

    /// The last error of a seal, compaction or checkpoint that ran after an append had already succeeded (appends
    /// do not report it, since their points are safe in the log). `nil` once a later one succeeds.
    public var maintenanceError: StorageError? { lastMaintenanceError.withLock { $0 } ?? lastCompactionError.withLock { $0 } }

    /// What opening the store found in the write-ahead log.
    public var recovery: RecoveryReport { recoveryReport.withLock { $0 } }
}

/// Maps run ids to directory names: `[A-Za-z0-9_-]` kept, every other byte as `%XX`.
enum RunDirectoryName {
    static func encode(_ id: String) -> String {
        id.percentEncoded { b in
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"): true
            default: false
            }
        }
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
