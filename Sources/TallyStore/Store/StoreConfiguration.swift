/// Tunables of a ``MetricStore``.
public struct StoreConfiguration: Sendable {
    /// Maximum points per sealed block (blocks are balanced, so most hold between half and all of this).
    public var blockPoints: Int = 32_768
    /// Points a series head may hold before the run is sealed (defaults to ``blockPoints``). Larger values keep
    /// more in memory; ``headMemoryBudget`` still applies.
    public var sealPoints: Int? = nil
    /// A series with fewer points than this in a segment is packed with other short series (one chunk for many,
    /// no block index entry or rollup each); longer ones get blocks. Compaction re-decides as series grow.
    public var packPoints: Int = 1_024
    /// Decoded packs kept for reads of short series (bytes).
    public var packCacheBytes: Int = 64 << 20
    /// Average points per finest rollup bucket (each coarser level spans 16× more steps). Smaller buckets make
    /// queries touch fewer raw points at bucket edges; larger ones make rollups smaller.
    public var rollupPointsPerBucket: Int = 256
    /// Compression of sealed blocks.
    public var compression: Compression = .default
    /// Compression used when compacting a run's segments.
    public var compactionCompression: Compression = .default
    /// Whether seals (of a run whose head filled up, and for the memory budget) and compactions run on the store's
    /// maintenance queues instead of inside the append that made them due, so no request waits for work it did not
    /// ask for (`tally server` turns it on). The backpressure is then a refusal: past ``headMemoryLimit`` an append
    /// throws ``StorageError/Code/overloaded`` at once, storing nothing, until the queued seals catch up. Off, the
    /// appending thread seals the largest heads itself when over the budget.
    public var sealsInBackground: Bool = false
    /// Memory the heads of all runs may hold together; over it, the largest heads are sealed first.
    public var headMemoryBudget: Int = 512 << 20

    /// With ``sealsInBackground``, the head memory past which appends are refused (``headMemoryBudget`` + 25 %: room
    /// for the appends that arrive while the seals queued at the budget run).
    public var headMemoryLimit: Int {
        let (limit, overflow) = headMemoryBudget.addingReportingOverflow(headMemoryBudget / 4)
        return overflow ? .max : limit
    }
    /// Memory the series indexes of open segments may take together (bytes). Beyond it, runs with nothing
    /// unsealed are closed, least recently used first, and reopened from their files when next used: 10,000 runs
    /// of 2,000 keys would otherwise keep ~1 GB of indexes open for runs nobody is reading.
    public var openIndexBytes: Int = 256 << 20
    /// Decoded blocks kept for queries (bytes).
    public var blockCacheBytes: Int = 256 << 20
    /// Decoded rollup pyramids kept for downsampling (bytes). About 15 KB per 32,768-point block: the default
    /// holds the pyramids of ~250 M points, so repeated chart queries over many runs decode nothing.
    public var rollupCacheBytes: Int = 128 << 20
    /// Whether segment writes are fsynced (file and directory). Turn off only for tests and benchmarks.
    public var durableSegments: Bool = true
    /// The write-ahead log (`nil`: none; appends then live only in memory until sealed). Defaults to `sync`.
    public var wal: WALConfiguration? = WALConfiguration()
    /// A run with more segments than this merges its newest, similar-sized segments after a seal
    /// (size-tiered; 0 disables automatic compaction).
    public var compactionThreshold: Int = 16

    /// The defaults.
    public init() {}

    /// The memory the engine's budgets add up to by default: heads 512 MB, open segment indexes 256 MB, block cache
    /// 256 MB, rollup cache 128 MB, pack cache 64 MB.
    public static let defaultMemoryBudget = 1_216 << 20

    /// The sum of the memory budgets (heads, open indexes, block, rollup and pack caches). Setting it scales all five
    /// in the defaults' proportions: one bound for an operator to give the engine (`tally server --metric-memory-mb`).
    public var memoryBudget: Int {
        get { headMemoryBudget + openIndexBytes + blockCacheBytes + rollupCacheBytes + packCacheBytes }
        set {
            let share = { (part: Int) in Int((Double(newValue) * Double(part) / Double(Self.defaultMemoryBudget)).rounded(.down)) }
            headMemoryBudget = share(512 << 20)
            openIndexBytes = share(256 << 20)
            blockCacheBytes = share(256 << 20)
            rollupCacheBytes = share(128 << 20)
            packCacheBytes = share(64 << 20)
        }
    }
}

/// Bytes one series takes on disk, by column.
public struct SeriesStorage: Sendable, Equatable {
    /// Points sealed.
    public var points: Int = 0
    /// Blocks holding them (packed points are in none).
    public var blocks: Int = 0
    /// Bytes of value chunks.
    public var valueBytes: Int = 0
    /// Bytes of step chunks this series references (a chunk shared by several series counts for each).
    public var stepBytes: Int = 0
    /// Bytes of timestamp chunks this series references (shared chunks count for each).
    public var timestampBytes: Int = 0
    /// Bytes of rollup chunks.
    public var rollupBytes: Int = 0
    /// Index entries in segment footers (before the footer's compression).
    public var indexBytes: Int = 0
    /// This series' share of the packs holding it (pack bytes × its points / the pack's points).
    public var packedBytes: Int = 0
}

/// One series' points for ``MetricStore/append(run:series:)``: three columns of equal length.
public struct SeriesBatch: Sendable {
    /// The metric key.
    public var key: String
    /// Steps, one per point.
    public var steps: [Int64]
    /// Wall-clock timestamps in milliseconds, one per point.
    public var timestamps: [Int64]
    /// Values, one per point, stored bit for bit.
    public var values: [Double]

    /// Creates a batch; the columns must have equal lengths (checked on append).
    public init(key: String, steps: [Int64], timestamps: [Int64], values: [Double]) {
        self.key = key
        self.steps = steps
        self.timestamps = timestamps
        self.values = values
    }
}

/// A series read back: columns in step order, ties in arrival order.
public struct SeriesData: Sendable, Equatable {
    /// Steps, ascending.
    public var steps: [Int64] = []
    /// Timestamps, aligned with ``steps``.
    public var timestamps: [Int64] = []
    /// Values, aligned with ``steps``.
    public var values: [Double] = []

    /// Creates empty columns.
    public init() {}

    /// Number of points.
    public var count: Int { steps.count }

    /// The points as structs.
    public var points: [MetricPoint] {
        (0..<count).map { MetricPoint(step: steps[$0], timestamp: timestamps[$0], value: values[$0]) }
    }

    /// Bitwise equality of all three columns.
    public static func == (a: Self, b: Self) -> Bool {
        a.steps == b.steps && a.timestamps == b.timestamps
            && a.values.map(\.bitPattern) == b.values.map(\.bitPattern)
    }
}

/// Size and shape of one run's stored data.
public struct RunStats: Sendable, Equatable {
    /// Sealed segment files.
    public var segments: Int = 0
    /// Bytes of those files.
    public var segmentBytes: Int64 = 0
    /// Bytes of rollup chunks inside them.
    public var rollupBytes: Int64 = 0
    /// Bytes of step and timestamp chunks of blocks, a chunk shared by several series counted once.
    public var stepTimestampBytes: Int64 = 0
    /// Points sealed in segments.
    public var sealedPoints: Int = 0
    /// Points still in memory.
    public var headPoints: Int = 0
    /// Series (metric keys).
    public var series: Int = 0
}
