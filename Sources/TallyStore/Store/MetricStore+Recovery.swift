import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What opening a store found in its write-ahead log.
public struct RecoveryReport: Sendable, Equatable {
    /// WAL segment files read.
    public var segments = 0
    /// Valid records read.
    public var records = 0
    /// Points put back into heads.
    public var replayedPoints = 0
    /// Points skipped because segments already held them.
    public var skippedPoints = 0
    /// Keys with points in the log at open (replayed, or skipped because a segment already held them), by run: what a
    /// layer keeping derived state (latest values) must re-check after a crash.
    public var replayedSeries: [String: Set<String>] = [:]
    /// A torn or corrupt tail cut off the last segment: file, offset and bytes removed.
    public var truncatedTail: (path: String, offset: Int64, bytes: Int64, reason: String)?

    /// Creates an empty report.
    public init() {}

    /// Field-wise equality.
    public static func == (a: Self, b: Self) -> Bool {
        a.segments == b.segments && a.records == b.records && a.replayedPoints == b.replayedPoints && a.skippedPoints == b.skippedPoints
            && a.truncatedTail?.path == b.truncatedTail?.path && a.truncatedTail?.offset == b.truncatedTail?.offset
            && a.truncatedTail?.bytes == b.truncatedTail?.bytes
    }
}

extension MetricStore {
    /// Replays the WAL into the heads, then opens a fresh WAL segment for new appends.
    ///
    /// A damaged record in the last segment with nothing valid after it is a torn tail: the file is truncated there
    /// and the cut is reported in ``recovery``. A damaged record anywhere else is corruption: opening fails with the
    /// file and offset.
    /// - Returns: the runs whose deletion the log replayed.
    func recover(_ wal: WAL) throws -> Set<String> {
        try FileIO.makeDirectories(wal.directory)
        var files: [(UInt64, String)] = []
        for name in try FileIO.list(wal.directory) {
            if let seq = WALFormat.seq(fromFileName: name) { files.append((seq, wal.directory + "/" + name)) }
        }
        files.sort { $0.0 < $1.0 }
        var report = RecoveryReport()
        var deleted: Set<String> = []
        var lastLSN: UInt64 = 0
        var kept: [WAL.SegmentInfo] = []
        for (i, (seq, path)) in files.enumerated() {
            let scan = try WALSegmentScan(path: path, seq: seq, afterLSN: lastLSN)
            report.segments += 1
            if let damage = scan.damage {
                let isLast = i == files.count - 1
                guard isLast, !scan.validRecordAfterDamage else {
                    throw StorageError(.corrupt, "WAL record damaged (\(damage.reason))" + (isLast ? ", with valid records after it" : ""),
                                       path: path, offset: damage.offset)
                }
                try Self.truncate(path: path, at: scan.validEnd, durable: wal.config.durability != .none)
                report.truncatedTail = (path, damage.offset, Int64(scan.bytes.count) - scan.validEnd, damage.reason)
                if scan.validEnd == 0 {  // not even a header: a segment whose creation was cut short
                    try FileIO.remove(path)
                    continue
                }
            }
            try replay(scan, report: &report, deleted: &deleted)
            lastLSN = scan.lastLSN
            kept.append(WAL.SegmentInfo(seq: seq, path: path, lastLSN: scan.lastLSN))
        }
        recoveryReport.withLock { $0 = report }
        try wal.start(lastLSN: lastLSN, existing: kept)
        if headBytes > configuration.headMemoryBudget { try sealLargest() }
        try maintainWAL()
        return deleted
    }

    static func truncate(path: String, at offset: Int64, durable: Bool) throws {
        if Glibc.truncate(path, off_t(offset)) != 0 {
            throw StorageError(.io, "truncate failed", path: path, offset: offset, errno: errno)
        }
        if durable {
            try FileIO.io("fsync", path: path) {
                let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec])
                try fd.closeAfter { try FileIO.syncData(fd) }
            }
        }
    }

    /// Applies one segment's records: series ids are local to the segment; points before a series' seal watermark
    /// are skipped; batch ids are remembered.
    private func replay(_ scan: WALSegmentScan, report: inout RecoveryReport, deleted: inout Set<String>) throws {
        var series: [UInt32: (run: String, key: String)] = [:]
        try reserveHeads(for: scan)
        for record in scan.records {
            report.records += 1
            do {
                switch record.type {
                case .series:
                    let s = try WALSeries(scan.bytes, record.payload, offset: record.offset)
                    series[s.id] = (s.run, s.key)
                case .deleteRun:
                    var r = ByteReader(Array(scan.bytes[record.payload]), baseOffset: record.offset)
                    let id = try r.readString16("run id")
                    try deleteRunDuringReplay(id)
                    deleted.insert(id)
                case .points:
                    try replayPoints(WALPoints(scan.bytes, record.payload, offset: record.offset), lsn: record.lsn, series: series,
                                     offset: record.offset, report: &report)
                }
            } catch let e as StorageError {
                throw e.at(path: scan.path)
            }
        }
    }

    /// Sizes the heads for the points this segment will add (not those its seal watermarks skip), so replay
    /// appends without repeated reallocation.
    private func reserveHeads(for scan: WALSegmentScan) throws {
        var ids: [UInt32: (run: String, key: String)] = [:]
        var pending: [String: [String: [(lsn: UInt64, count: Int)]]] = [:]
        for record in scan.records {
            switch record.type {
            case .series:
                if let s = try? WALSeries(scan.bytes, record.payload, offset: record.offset) { ids[s.id] = (s.run, s.key) }
            case .points:
                for (id, n) in WALPoints.counts(scan.bytes, record.payload) ?? [] {
                    if let d = ids[id] { pending[d.run, default: [:]][d.key, default: []].append((record.lsn, n)) }
                }
            case .deleteRun:
                break
            }
        }
        for (runID, keys) in pending {
            guard let run = try run(runID, create: true) else { continue }
            try run.state.withLock { s in
                try run.load(&s)
                for (key, records) in keys {
                    let wm = s.watermark(key)
                    let coming = records.reduce(0) { sum, r in
                        sum + (r.lsn < wm.lsn ? 0 : (r.lsn == wm.lsn ? max(0, r.count - Int(wm.index)) : r.count))
                    }
                    guard coming >= 4096 else { continue }
                    var h = s.heads.removeValue(forKey: key) ?? SeriesHead()
                    h.reserve(coming)
                    s.heads[key] = h
                }
                run.recountHeadBytes(&s)
            }
        }
    }

    private func replayPoints(_ p: WALPoints, lsn: UInt64, series: [UInt32: (run: String, key: String)], offset: Int64,
                              report: inout RecoveryReport) throws {
        guard let first = p.series.first else { return }
        guard let runID = series[first.id]?.run else {
            throw StorageError(.corrupt, "points record names series \(first.id), never defined in this segment", offset: offset)
        }
        let keys = try p.series.map { s -> String in
            guard let d = series[s.id], d.run == runID else {
                throw StorageError(.corrupt, "points record mixes runs or names an undefined series", offset: offset)
            }
            return d.key
        }
        guard let run = try run(runID, create: true) else { return }
        let (replayed, skipped) = try run.state.withLock { s -> (Int, Int) in
            try run.load(&s)
            if let b = p.batchID { s.batchIDs.insert(b) }
            var replayed = 0, skipped = 0
            var grown = 0  // only the heads this record touches are counted
            for i in p.series.indices {
                let key = keys[i]
                let n = p.series[i].count
                let wm = s.watermark(key)
                let skip = lsn < wm.lsn ? n : (lsn == wm.lsn ? min(n, Int(wm.index)) : 0)
                skipped += skip
                // Sealed or not, the series had points in the log: what a crash may have left uncommitted elsewhere.
                report.replayedSeries[runID, default: []].insert(key)
                guard skip < n else { continue }
                let existing = s.heads.removeValue(forKey: key)
                var h = existing ?? SeriesHead()
                p.withColumns(i) { st, ts, vs in
                    h.append(steps: UnsafeBufferPointer(rebasing: st[skip...]), timestamps: UnsafeBufferPointer(rebasing: ts[skip...]),
                             values: UnsafeBufferPointer(rebasing: vs[skip...]), lsn: lsn, skip: skip)
                }
                grown &+= h.bytes &- (existing?.bytes ?? 0)
                s.heads[key] = h
                s.noteHeadAppend(lsn: lsn)
                replayed += n - skip
            }
            run.addHeadBytes(&s, grown)
            return (replayed, skipped)
        }
        report.replayedPoints += replayed
        report.skippedPoints += skipped
    }

    private func deleteRunDuringReplay(_ id: String) throws {
        guard let run = try run(id, create: false) else { return }
        run.state.withLock { run.markDeleted(&$0) }
        runs.withLock { $0[id] = nil }
        try FileIO.removeTree(run.directory)
    }
}
