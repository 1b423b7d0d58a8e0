import Synchronization

/// Points frozen out of the heads while they are being written to a segment; still visible to reads.
final class FrozenHeads: Sendable {
    let seq: UInt64
    let series: [String: SealColumns]
    /// Oldest WAL record with points in this set (it pins the WAL until the segment is written).
    let minLSN: UInt64?
    /// Memory held by the columns.
    let bytes: Int
    init(seq: UInt64, series: [String: SealColumns], minLSN: UInt64?) {
        self.seq = seq
        self.series = series
        self.minLSN = minLSN
        bytes = series.values.reduce(0) { $0 + $1.count * 24 }
    }
}

/// The most recent client batch ids of a run (bounded), for idempotent retries.
struct BatchIDWindow: Sendable {
    static let capacity = 4096
    /// Ids in insertion order; the window is `all[start...]` (the dropped prefix is cut off now and then, so that
    /// an insert into a full window costs O(1), not a shift of 4,096 strings).
    private var all: [String] = []
    private var start = 0
    private var set: Set<String> = []
    /// Ids inserted so far (not counting repeats), the mark ``since(_:)`` takes.
    private(set) var inserted = 0

    /// A window holding the last ``capacity`` distinct ids of `ids`, inserted in order.
    init<S: Sequence<String>>(_ ids: S = [String]()) {
        for id in ids { insert(id) }
    }

    /// The ids in the window, oldest first.
    var ids: ArraySlice<String> { all[start...] }

    func contains(_ id: String) -> Bool { set.contains(id) }

    /// Ids still in the window that were inserted after ``inserted`` was `mark`, oldest first.
    func since(_ mark: Int) -> ArraySlice<String> { ids.suffix(max(0, inserted - mark)) }

    mutating func insert(_ id: String) {
        guard set.insert(id).inserted else { return }
        all.append(id)
        inserted += 1
        if all.count - start > Self.capacity {
            set.remove(all[start])
            start += 1
            if start >= Self.capacity {
                all.removeFirst(start)
                start = 0
            }
        }
    }
}

/// Mutable state of one run, guarded by ``RunStore/state``.
struct RunState: Sendable {
    var loaded = false
    var deleted = false
    /// The segment files of a run not loaded (kept when it is unloaded, or listed for a snapshot): such a run's files
    /// change only once it is loaded again, which sets this back to `nil`. `nil` when unknown (never listed).
    var unloadedSeqs: [UInt64]?
    var heads: [String: SeriesHead] = [:]
    var frozen: [FrozenHeads] = []
    var segments: [SegmentReader] = []
    var nextSeq: UInt64 = 1
    var headBytes = 0
    /// Memory of the open segments' indexes, as counted in the store's ``MemoryAccount/indexBytes``.
    var indexBytes = 0
    /// Recent client batch ids (loaded from the segments' lists, extended by appends and replay).
    var batchIDs = BatchIDWindow()
    /// ``BatchIDWindow/inserted`` when the newest seal took its ids: the next seal writes the ids inserted since.
    var sealedBatchIDs = 0
    /// Appends visible but not settled yet (their caller's metadata may not be committed), by the ``nextSeq`` they
    /// saw: a ``DuplicateMark`` never lies after one, so data they made sealed is always compared under the lock.
    var unsettled: [UInt64: Int] = [:]

    /// Oldest WAL record any head still holds points of, kept as heads change (``noteHeadAppend(lsn:)``, and a
    /// recount when heads are cut), so the log's checkpoint asks every run without walking every head: with 10,000
    /// runs of 2,000 keys that walk was 20 M heads per checkpoint. Never above the true minimum (it may lag below
    /// it until the next recount, which only keeps log segments a little longer).
    var headsMinLSN: UInt64?

    /// The WAL position of the first point of `key` not in a segment (replay skips what comes before): the largest
    /// seal watermark of the segments holding the series. Read from the segments' tables when needed (only recovery
    /// needs it), not kept per series: 10,000 runs of 2,000 keys would hold 20 M entries for nothing.
    func watermark(_ key: String) -> WALPosition {
        var w = WALPosition(lsn: 0, index: 0)
        for seg in segments {
            if let i = seg.series.find(key), let p = seg.series.wal(i), p > w { w = p }
        }
        return w
    }

    /// Oldest WAL record still needed by this run's heads and frozen sets.
    var minLSN: UInt64? {
        let f = frozen.compactMap(\.minLSN).min()
        switch (headsMinLSN, f) {
        case let (a?, b?): return min(a, b)
        case let (a, b): return a ?? b
        }
    }

    /// Records that a head received points of WAL record `lsn` (0: none).
    mutating func noteHeadAppend(lsn: UInt64) {
        guard lsn != 0 else { return }
        headsMinLSN = min(headsMinLSN ?? lsn, lsn)
    }

    /// Recomputes ``headsMinLSN`` from the heads (after heads were cut or removed).
    mutating func recountHeadsMinLSN() {
        headsMinLSN = heads.values.compactMap(\.minLSN).min()
    }
}

/// One unit of a series snapshot, in arrival order.
enum SeriesUnit: Sendable {
    /// A sealed block: segment, series position, block position, order key.
    case block(SegmentReader, Int, Int, Int64)
    /// Sorted in-memory points (frozen or head) and their order key.
    case memory(SealColumns, latest: MetricPoint?, Int64)

    var order: Int64 {
        switch self {
        case .block(_, _, _, let o): o
        case .memory(_, _, let o): o
        }
    }
}

/// Head and index memory of the whole store, shared by its runs, the clock of their last use, and the store's
/// activity counters.
final class MemoryAccount: Sendable {
    /// The store's activity counters (``MetricStore/activity``).
    let counters = StoreCounters()
    let bytes = Atomic<Int>(0)
    /// Memory of all open segment indexes (``StoreConfiguration/openIndexBytes`` bounds it).
    let indexBytes = Atomic<Int>(0)
    /// Counts uses of runs: a run's ``RunStore/lastUse`` is the tick of its latest.
    let tick = Atomic<UInt64>(0)
}

/// All data of one run: heads, frozen heads being sealed, and open segments.
final class RunStore: Sendable {
    let id: String
    let directory: String
    let state = Mutex(RunState())
    /// Serialises seals of this run (not appends or reads); a compaction holds it only while choosing its inputs.
    let sealLock = Mutex(())
    /// Serialises compactions (and deletion) of this run; taken before ``sealLock`` when both are needed.
    let compactLock = Mutex(())
    /// Mirror of `state.headBytes`, readable without the lock for budget decisions.
    let headBytes = Atomic<Int>(0)
    let account: MemoryAccount
    /// Decoded packs of the whole store (short series are read through it).
    let packCache: LRUCache<BlockKey, DecodedPack>
    /// The store's file removals (a snapshot's listing holds them off).
    let removals: FileRemovals
    /// The newest segment the store manifest recorded for this run (runs found on disk at open only).
    let manifestSeq: UInt64?
    /// When the run was last used (``MemoryAccount/tick``): idle runs are closed oldest first.
    let lastUse = Atomic<UInt64>(0)

    /// - Parameter new: the run has nothing on disk (the store listed every run directory when it opened and holds
    ///   the directory's lock): it starts loaded, without looking for segments (a listing of a missing directory
    ///   per created run was 3 % of run creation's CPU).
    init(id: String, directory: String, account: MemoryAccount, packCache: LRUCache<BlockKey, DecodedPack>, removals: FileRemovals,
         manifestSeq: UInt64? = nil, new: Bool = false) {
        self.id = id
        self.removals = removals
        self.directory = directory
        self.account = account
        self.packCache = packCache
        self.manifestSeq = manifestSeq
        if new { state.withLock { $0.loaded = true } }
    }

    /// Opens the run's segments on first use (call with the state lock held).
    func load(_ s: inout RunState) throws {
        lastUse.store(account.tick.add(1, ordering: .relaxed).newValue, ordering: .relaxed)
        // A deleted run stays as it is: its directory is gone (or already another run's of the same id).
        guard !s.loaded, !s.deleted else { return }
        try Self.loadIfNeeded(&s, directory: directory, manifestSeq: manifestSeq, remove: removals.remove)
        recountIndexBytes(&s)
    }

    /// Recomputes the memory of the run's open segment indexes after its segment list changed, and moves the store's
    /// total by the difference (call with the state lock held).
    func recountIndexBytes(_ s: inout RunState) {
        let now = s.segments.reduce(0) { $0 + $1.indexBytes }
        let delta = now - s.indexBytes
        s.indexBytes = now
        if delta != 0 { account.indexBytes.wrappingAdd(delta, ordering: .relaxed) }
    }

    /// Closes the run's segments when it holds nothing unsealed and no seal or compaction is under way; its next use
    /// reopens them from the files. Never waits for a lock: a busy run is simply skipped.
    func unloadIfIdle() {
        _ = compactLock.withLockIfAvailable { _ in
            sealLock.withLockIfAvailable { _ in
                state.withLockIfAvailable { s in
                    guard s.loaded, !s.deleted, s.heads.isEmpty, s.frozen.isEmpty else { return }
                    s.unloadedSeqs = s.segments.map(\.seq)
                    s.segments.removeAll()
                    s.loaded = false
                    recountIndexBytes(&s)
                }
            }
        }
    }

    /// Marks the run deleted and drops everything it holds in memory (call with the state lock held).
    func markDeleted(_ s: inout RunState) {
        s.deleted = true
        s.heads.removeAll()
        s.headsMinLSN = nil
        s.frozen.removeAll()
        s.segments.removeAll()
        recountHeadBytes(&s)
        recountIndexBytes(&s)
    }

    /// Takes a run replaced by another copy out of the store's memory accounts (call with the state lock held):
    /// its heads are dropped; its open segments stay for reads that already hold this run (their files are unlinked
    /// but open) and are released with it. Marked deleted, so no seal, compaction or load touches its directory
    /// (the new copy's now).
    func retire(_ s: inout RunState) {
        s.deleted = true
        s.heads.removeAll()
        s.headsMinLSN = nil
        s.frozen.removeAll()
        s.loaded = true
        recountHeadBytes(&s)
        account.indexBytes.wrappingSubtract(s.indexBytes, ordering: .relaxed)
        s.indexBytes = 0
    }

    /// Sequence number of the newest live segment, without loading the run when it is not loaded yet.
    func newestSegmentSeq() throws -> UInt64? {
        if let seq = state.withLock({ $0.loaded ? ($0.segments.last?.seq ?? 0) : nil }) { return seq == 0 ? nil : seq }
        return try FileIO.list(directory).compactMap(SegmentFormat.seq(fromFileName:)).max()
    }

    /// Adds `delta` bytes of head memory after an append changed some heads (the heads it touched, measured before
    /// and after), without walking every head of the run. Call with the state lock held.
    func addHeadBytes(_ s: inout RunState, _ delta: Int) {
        guard delta != 0 else { return }
        s.headBytes &+= delta
        headBytes.store(s.headBytes, ordering: .relaxed)
        account.bytes.wrappingAdd(delta, ordering: .relaxed)
    }

    /// Recomputes the run's head memory after heads changed, and moves the store's total by exactly the difference.
    /// Call with the state lock held, so concurrent changes can never be counted twice or missed.
    func recountHeadBytes(_ s: inout RunState) {
        // Frozen sets count too: they are memory until their segment is written (or forever, if writes keep failing).
        let now = s.heads.values.reduce(0) { $0 + $1.bytes } + s.frozen.reduce(0) { $0 + $1.bytes }
        let delta = now - s.headBytes
        s.headBytes = now
        headBytes.store(now, ordering: .relaxed)
        if delta != 0 { account.bytes.wrappingAdd(delta, ordering: .relaxed) }
    }

    /// Order key of block `b` of segment `seq`.
    static func order(seq: UInt64, block: Int) -> Int64 { Int64(seq) << 24 | Int64(block) }

    /// Opens the run's segments on first use (called with the state lock held). `manifestSeq` is the newest segment
    /// the store manifest recorded for the run at the last WAL checkpoint: at least that one must be present.
    /// Stale segments (replaced by a compaction that a crash kept from removing them) go through `remove`.
    static func loadIfNeeded(_ s: inout RunState, directory: String, manifestSeq: UInt64? = nil,
                             remove: (String) throws -> Void = FileIO.remove) throws {
        guard !s.loaded else { return }
        s.unloadedSeqs = nil  // a load removes stale files, and one that fails half-way leaves the list unknown
        var found: [(UInt64, String)] = []
        for name in try FileIO.list(directory) {
            if name.hasSuffix(".tmp") {
                try FileIO.remove(directory + "/" + name)  // an interrupted seal or compaction
            } else if let seq = SegmentFormat.seq(fromFileName: name) {  // unparsable names are left alone
                found.append((seq, directory + "/" + name))
            }
        }
        found.sort { $0.0 < $1.0 }
        var readers = try found.map { try SegmentReader(path: $0.1, seq: $0.0) }
        let (live, stale) = Self.partition(readers)
        for r in stale { try remove(r.path) }
        readers = live
        if let e = Self.chainError(readers, directory: directory, manifestSeq: manifestSeq) { throw e }
        s.segments = readers
        // Never backwards across an unload: a failed compaction reserved a number without leaving a file, and a
        // duplicate mark taken before the unload must stay at or before every later seal.
        s.nextSeq = max(s.nextSeq, (found.last?.0 ?? 0) + 1)
        // Each segment lists the ids appended since the one before it (format 4; older segments list the whole
        // window, which inserting in order reduces to the same thing).
        s.batchIDs = BatchIDWindow(readers.lazy.flatMap(\.batchIDs))
        s.sealedBatchIDs = s.batchIDs.inserted
        s.loaded = true
    }

    /// Splits segments into live ones (in sequence order) and stale ones: a compacted segment replaces the range it
    /// names, and only live segments' ranges count (newest first), so a stale segment's own range deletes nothing.
    static func partition(_ readers: [SegmentReader]) -> (live: [SegmentReader], stale: [SegmentReader]) {
        var live: [SegmentReader] = []
        var stale: [SegmentReader] = []
        for r in readers.sorted(by: { $0.seq > $1.seq }) {
            if live.contains(where: { $0.supersedes?.contains(r.seq) == true }) { stale.append(r) } else { live.append(r) }
        }
        return (live.reversed(), stale)
    }

    /// The error for a missing segment: each live segment names its predecessor (or, when it was sealed while a
    /// compaction ran, one of the inputs the compaction's segment before it replaced), and the newest must be at
    /// least the one the store manifest recorded.
    static func chainError(_ live: [SegmentReader], directory: String, manifestSeq: UInt64?) -> StorageError? {
        var expected: UInt64 = 0
        var replaced: ClosedRange<UInt64>?
        for r in live {
            guard r.previousSeq == expected || replaced?.contains(r.previousSeq) == true else {
                let missing = r.previousSeq
                return StorageError(.corrupt, "segment \(SegmentFormat.fileName(seq: missing)) is missing (named by \(SegmentFormat.fileName(seq: r.seq)))",
                                    path: directory + "/" + SegmentFormat.fileName(seq: missing))
            }
            expected = r.seq
            replaced = r.supersedes
        }
        if let floor = manifestSeq, (live.last?.seq ?? 0) < floor {
            return StorageError(.corrupt, "segment \(SegmentFormat.fileName(seq: floor)) is missing (recorded in the store manifest)",
                                path: directory + "/" + SegmentFormat.fileName(seq: floor))
        }
        return nil
    }

    /// A consistent view of one series: blocks, frozen points and head points, in arrival order.
    func snapshot(key: String) throws -> [SeriesUnit] {
        let (segments, frozen, head): ([SegmentReader], [FrozenHeads], SeriesHead?) = try state.withLock { s in
            try load(&s)
            return (s.segments, s.frozen, s.heads[key])
        }
        var units: [SeriesUnit] = []
        for seg in segments {
            guard let si = seg.series.find(key) else { continue }
            if let slot = seg.series.slot(si) {
                let cols = try pack(seg, slot.pack).columns(slot.ordinal, key: key)
                units.append(.memory(cols, latest: Self.latest(of: cols), Self.order(seq: seg.seq, block: 0)))
            }
            for b in seg.series.blocks(si).indices {
                units.append(.block(seg, si, b, Self.order(seq: seg.seq, block: b)))
            }
        }
        for f in frozen {
            if let cols = f.series[key], cols.count > 0 {
                units.append(.memory(cols, latest: Self.latest(of: cols), Self.order(seq: f.seq, block: 0)))
            }
        }
        if let head, head.count > 0 {
            units.append(.memory(head.sortedColumns(key: key), latest: head.latest, .max))
        }
        return units
    }

    /// Pack `index` of `seg`, decoded once and then served from the store's pack cache.
    func pack(_ seg: SegmentReader, _ index: Int) throws -> DecodedPack {
        let k = BlockKey(segment: seg.uid, series: -1, block: index)
        if let p = packCache.get(k) { return p }
        let p = try seg.readPack(index, planes: PlaneCodec())
        packCache.put(k, p, bytes: p.bytes)
        return p
    }

    static func latest(of c: SealColumns) -> MetricPoint? {
        LatestRule.latest(steps: c.steps, timestamps: c.timestamps, values: c.values, in: 0..<c.count)
    }

    /// Keys of all series of the run.
    func keys() throws -> [String] {
        try state.withLock { s in
            try load(&s)
            var keys = Set(s.heads.keys)
            for f in s.frozen { keys.formUnion(f.series.keys) }
            for seg in s.segments { keys.formUnion(seg.series.keys) }
            return keys.sorted()
        }
    }
}
