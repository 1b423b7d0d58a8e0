import ArgumentParser
import TallyStore
import TallyWorkloads

/// `tally bench engine`: in-process figures of the metric store on a synthetic training run.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Measure the storage engine: bytes/point, ingest, seal, decode, M4 (prints JSON with --json)."
    )

    @Option(help: "Points of the mixed run (7 metrics per step).")
    var points = 7_000_000

    @Option(help: "Points of the single series used for the M4 query.")
    var m4Points = 10_000_000

    @Option(help: "Buckets of the M4 query.")
    var buckets = 1_000

    @Option(help: "Block compression: none, lz4, zstd or zstd:N.")
    var compression = "zstd:3"

    @Option(help: "Points per block.")
    var blockPoints = 32_768

    @Option(help: "Scans of every series for the decode figures (medians).")
    var scans = 3

    @Option(help: "A run recorded by scripts/gen-training-curves.py, measured beside the synthetic one.")
    var recorded: String?


    @OptionGroup var output: BenchOutput

    mutating func run() throws {
        guard let comp = Compression(parsing: compression) else {
            throw ValidationError("unknown compression '\(compression)'")
        }
        let rows = max(1, points / SyntheticRun.keys.count)
        let data = SyntheticRun(rows: rows)
        var config = StoreConfiguration()
        config.compression = comp
        config.compactionCompression = comp
        config.blockPoints = blockPoints
        config.sealPoints = Int.max
        config.headMemoryBudget = Int.max
        config.wal = nil  // in-process head ingest, as this benchmark defines it (`tally bench wal` measures the log)
        let root = output.scratch("engine")
        defer { system_rm(root) }
        let store = try MetricStore(directory: root, configuration: config)
        let total = rows * SyntheticRun.keys.count

        // Ingest: batches of ~1,000 points (rows of all 7 metrics), into the heads.
        let rowsPerBatch = max(1, 1000 / SyntheticRun.keys.count)
        var batches: [[SeriesBatch]] = []
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 + rowsPerBatch)
            batches.append(SyntheticRun.keys.map { k in
                SeriesBatch(key: k, steps: Array(data.steps[r0..<r1]), timestamps: Array(data.timestamps[r0..<r1]),
                            values: Array(data.values[k]![r0..<r1]))
            })
            r0 = r1
        }
        let ingest = try seconds {
            for b in batches { try store.append(run: "mixed", series: b) }
        }
        // Seal: encode, compress, write and fsync the whole run.
        let seal = try seconds { try store.flush(run: "mixed") }

        // Size.
        let stats = try store.stats(run: "mixed")
        let (bySeries, valuesOnly) = try Self.bytesPerPoint(store, run: "mixed", keys: SyntheticRun.keys)

        // Decode: stream every series through reused buffers (what serialising a history does).
        var scanTimes: [Double] = []
        var keyTimes: [String: [Double]] = [:]
        var checksum: UInt64 = 0
        for _ in 0..<max(1, scans) {
            var round = 0.0
            for k in SyntheticRun.keys {
                let t = try seconds {
                    try store.scan(run: "mixed", key: k) { c in
                        checksum &+= UInt64(c.count) &+ c.values[c.count - 1].bitPattern &+ UInt64(bitPattern: c.timestamps[0])
                    }
                }
                keyTimes[k, default: []].append(t)
                round += t
            }
            scanTimes.append(round)
        }
        var scanNs = JSONObject()
        for k in SyntheticRun.keys { scanNs.add(k, median(keyTimes[k]!) * 1e9 / Double(rows), digits: 2) }
        // Read: materialise every series as arrays; check bits.
        var decodeTimes: [Double] = []
        var exact = true
        for attempt in 0..<3 {
            var readBack: [String: SeriesData] = [:]
            decodeTimes.append(try seconds { readBack = try store.read(run: "mixed", keys: SyntheticRun.keys) })
            if attempt == 0 {
                for k in SyntheticRun.keys {
                    let d = readBack[k]!
                    exact = exact && d.steps == data.steps && d.timestamps == data.timestamps
                        && d.values.map(\.bitPattern) == data.values[k]!.map(\.bitPattern)
                }
            }
        }

        // M4 on one long series.
        let m4Rows = max(buckets, m4Points)
        let long = SyntheticRun(rows: m4Rows, seed: 7)
        let lossValues = long.values["train_loss"]!
        var m4Config = config
        m4Config.sealPoints = nil
        let m4Store = try MetricStore(directory: root + "/m4", configuration: m4Config)
        var i = 0
        while i < m4Rows {
            let j = min(m4Rows, i + 100_000)
            try m4Store.append(run: "long", series: [SeriesBatch(key: "train_loss", steps: Array(long.steps[i..<j]),
                                                                timestamps: Array(long.timestamps[i..<j]), values: Array(lossValues[i..<j]))])
            i = j
        }
        try m4Store.flush(run: "long")
        let range = long.steps.first!...long.steps.last!
        let m4Cold = try seconds { _ = try m4Store.downsample(run: "long", key: "train_loss", steps: range, buckets: buckets) }
        var m4Times: [Double] = []
        for _ in 0..<21 {
            m4Times.append(try seconds { _ = try m4Store.downsample(run: "long", key: "train_loss", steps: range, buckets: buckets) })
        }
        // An unaligned window (a zoom), to show edges are exact and cheap too.
        let width = long.steps.last! - long.steps.first!
        let zoom = (long.steps.first! + width / 7)...(long.steps.last! - width / 11)
        var zoomTimes: [Double] = []
        for _ in 0..<21 {
            zoomTimes.append(try seconds { _ = try m4Store.downsample(run: "long", key: "train_loss", steps: zoom, buckets: buckets) })
        }

        var out = JSONObject()
        out.add("points", total)
        out.add("rows", rows)
        out.add("compression", comp.description)
        out.add("block_points", blockPoints)
        out.add("bytes_per_point_mixed", Double(stats.segmentBytes) / Double(total))
        out.add("bytes_per_point", object: bySeries)
        out.add("value_bytes_per_point", object: valuesOnly)
        out.add("rollup_fraction", Double(stats.rollupBytes) / Double(stats.segmentBytes), digits: 4)
        out.add("segment_bytes", Int(stats.segmentBytes))
        out.add("ingest_points_per_s", Double(total) / ingest, digits: 0)
        out.add("seal_points_per_s", Double(total) / seal, digits: 0)
        out.add("decode_points_per_s", Double(total) / median(scanTimes), digits: 0)
        out.add("read_points_per_s", Double(total) / median(decodeTimes), digits: 0)
        out.add("scan_ns_per_point", object: scanNs)
        out.add("scan_checksum", String(checksum, radix: 16))
        out.add("m4_series_points", m4Rows)
        out.add("m4_buckets", buckets)
        out.add("m4_ms_cold", m4Cold * 1000)
        out.add("m4_ms_p50", median(m4Times) * 1000)
        out.add("m4_zoom_ms_p50", median(zoomTimes) * 1000)
        out.add("bit_exact", exact)
        if let recorded {
            out.add("recorded", object: try measureRecorded(try RecordedRun(path: recorded), config: config, root: root))
        }
        output.emit(out)
    }

    /// Bytes per point of each series of a sealed run: all its columns (shared step and timestamp chunks counted for
    /// each series that uses them), then its values alone.
    static func bytesPerPoint(_ store: MetricStore, run: String, keys: [String]) throws -> (all: JSONObject, values: JSONObject) {
        let perSeries = try store.storage(run: run)
        var all = JSONObject(), values = JSONObject()
        for k in keys {
            let s = perSeries[k]!
            all.add(k, Double(s.valueBytes + s.stepBytes + s.timestampBytes + s.rollupBytes + s.indexBytes + s.packedBytes) / Double(s.points))
            values.add(k, Double(s.valueBytes) / Double(s.points))
        }
        return (all, values)
    }
}
