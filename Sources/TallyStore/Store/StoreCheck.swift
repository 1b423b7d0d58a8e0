#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One problem found by ``StoreCheck``.
public struct StoreProblem: Sendable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// Byte offset of the damage, when known.
    public var offset: Int64?
    /// What is wrong.
    public var message: String
    /// Whether opening the store would fix it by itself (a torn tail of the last WAL segment).
    public var repairedOnOpen: Bool

    /// `path@offset: message`.
    public var description: String {
        "\(path)" + (offset.map { "@\($0)" } ?? "") + ": " + message + (repairedOnOpen ? " (torn tail: truncated on open)" : "")
    }
}

/// What ``StoreCheck/check(directory:)`` verified.
public struct CheckReport: Sendable {
    /// WAL segment files read.
    public var walSegments = 0
    /// Valid WAL records.
    public var walRecords = 0
    /// Segment files read.
    public var segments = 0
    /// Blocks whose every chunk was read, checksummed and decoded.
    public var blocks = 0
    /// Points in those blocks.
    public var points = 0
    /// Problems, in the order found.
    public var problems: [StoreProblem] = []
}

/// What ``StoreCheck/repair(directory:)`` changed.
public struct RepairReport: Sendable {
    /// Human-readable lines, one per action: what was cut or moved aside, and what it held.
    public var actions: [String] = []
    /// WAL records dropped.
    public var droppedRecords = 0
    /// Points in dropped WAL records (where they could still be decoded) and in quarantined segments.
    public var droppedPoints = 0
}

/// Offline verification and repair of a store directory. Repair takes the directory's lock, so it refuses a
/// directory an open store (a running server) holds (``StorageError/Code/locked``); a check only reads (on a live
/// directory it may report the log's tail as torn while a record is being written).
public enum StoreCheck {
    /// Reads every WAL record and every block of every segment (all chunks, checksums and decoding).
    public static func check(directory: String) throws -> CheckReport {
        var report = CheckReport()
        let walFiles = try walSegments(directory)
        var last: UInt64 = 0
        for (i, (seq, path)) in walFiles.enumerated() {
            report.walSegments += 1
            do {
                let scan = try WALSegmentScan(path: path, seq: seq, afterLSN: last)
                report.walRecords += scan.records.count
                if let d = scan.damage {
                    let tail = i == walFiles.count - 1 && !scan.validRecordAfterDamage
                    report.problems.append(StoreProblem(path: path, offset: d.offset, message: d.reason, repairedOnOpen: tail))
                }
                last = scan.lastLSN
            } catch let e as StorageError {
                report.problems.append(StoreProblem(path: e.path ?? path, offset: e.offset, message: e.message, repairedOnOpen: false))
            }
        }
        // Missing segments: each run's chain of live segments, and the manifest's record of its newest one.
        let manifest = (try? StoreManifest.read(directory)) ?? [:]
        let runsDir = directory + "/runs"
        for run in try FileIO.list(runsDir).sorted() where !run.hasPrefix(".") {
            let dir = runsDir + "/" + run
            let readers = try FileIO.list(dir).compactMap { n in SegmentFormat.seq(fromFileName: n).flatMap { try? SegmentReader(path: dir + "/" + n, seq: $0) } }
            let id = RunDirectoryName.decode(run) ?? run
            if let e = RunStore.chainError(RunStore.partition(readers).live, directory: dir, manifestSeq: manifest[id]) {
                report.problems.append(StoreProblem(path: e.path ?? dir, offset: nil, message: e.message, repairedOnOpen: false))
            }
        }
        let planes = PlaneCodec()
        for (path, seq) in try segmentFiles(directory) {
            report.segments += 1
            do {
                let seg = try SegmentReader(path: path, seq: seq)
                let (blocks, points) = try verify(seg, planes: planes)
                report.blocks += blocks
                report.points += points
            } catch let e as StorageError {
                report.problems.append(StoreProblem(path: e.path ?? path, offset: e.offset, message: e.message, repairedOnOpen: false))
            }
        }
        return report
    }

    /// Cuts the WAL at its first damaged record (dropping every later record and segment) and moves damaged
    /// segment files aside into `<run>/quarantine/`. Reports exactly what was dropped.
    public static func repair(directory: String) throws -> RepairReport {
        let lock = try DirectoryLock(directory: directory)
        defer { lock.release() }
        var report = RepairReport()
        let walFiles = try walSegments(directory)
        var last: UInt64 = 0
        var cutAt: Int?
        for (i, (seq, path)) in walFiles.enumerated() {
            let scan: WALSegmentScan
            do {
                scan = try WALSegmentScan(path: path, seq: seq, afterLSN: last)
            } catch let e as StorageError {
                report.actions.append("\(path): unreadable (\(e.message)); removed with every later WAL segment")
                try FileIO.remove(path)
                cutAt = i
                break
            }
            if let d = scan.damage {
                let dropped = scan.bytes.count - Int(scan.validEnd)
                try MetricStore.truncate(path: path, at: scan.validEnd, durable: true)
                report.actions.append("\(path): cut at offset \(scan.validEnd) (\(d.reason)), \(dropped) bytes dropped after LSN \(scan.lastLSN)")
                if scan.validEnd == 0 { try FileIO.remove(path) }
                cutAt = i
                break
            }
            last = scan.lastLSN
        }
        if let cutAt {
            for (seq, path) in walFiles.dropFirst(cutAt + 1) {
                // Count what these later, intact segments held before dropping them.
                if let scan = try? WALSegmentScan(path: path, seq: seq, afterLSN: 0) {
                    var points = 0
                    for r in scan.records where r.type == .points {
                        points += (try? WALPoints(scan.bytes, r.payload, offset: r.offset))?.series.reduce(0) { $0 + $1.count } ?? 0
                    }
                    report.droppedRecords += scan.records.count
                    report.droppedPoints += points
                    report.actions.append("\(path): removed (after the cut): \(scan.records.count) records, \(points) points, LSN \(scan.firstLSN)...\(scan.lastLSN)")
                } else {
                    report.actions.append("\(path): removed (after the cut)")
                }
                try FileIO.remove(path)
            }
        }
        let planes = PlaneCodec()
        for (path, seq) in try segmentFiles(directory) {
            var lost = 0
            var series: [String] = []
            do {
                let seg = try SegmentReader(path: path, seq: seq)
                lost = seg.points
                series = seg.series.keys
                _ = try verify(seg, planes: planes)
                continue
            } catch let e as StorageError {
                let fp = FilePath(path)
                let qdir = fp.removingLastComponent().string + "/quarantine"
                try FileIO.makeDirectories(qdir)
                let target = qdir + "/" + (fp.lastComponent?.string ?? "segment")
                if rename(path, target) != 0 { throw StorageError(.io, "rename failed", path: path, errno: errno) }
                report.droppedPoints += lost
                report.actions.append("\(path): \(e.message) at offset \(e.offset ?? 0); moved to \(target)"
                    + (series.isEmpty ? "" : " (held \(lost) points of \(series.joined(separator: ", ")))"))
            }
        }
        return report
    }

    /// Reads, checksums and decodes every chunk of every block and pack; returns the blocks (packs count as blocks)
    /// and points verified.
    static func verify(_ seg: SegmentReader, planes: PlaneCodec) throws -> (blocks: Int, points: Int) {
        var blocks = 0, points = 0
        for p in seg.packs.indices {
            points += try seg.readPack(p, planes: planes).steps.count
            blocks += 1
        }
        for i in 0..<seg.series.count {
            for b in seg.series.blocks(i) {
                _ = try seg.readInts(b.steps, count: b.count, planes: planes, what: "step column")
                _ = try seg.readInts(b.timestamps, count: b.count, planes: planes, what: "timestamp column")
                _ = try seg.readValues(b.values, count: b.count, planes: planes)
                _ = try seg.readRollup(b, planes: planes)
                blocks += 1
                points += b.count
            }
        }
        return (blocks, points)
    }

    static func walSegments(_ directory: String) throws -> [(UInt64, String)] {
        let dir = directory + "/wal"
        return try FileIO.list(dir).compactMap { n in WALFormat.seq(fromFileName: n).map { ($0, dir + "/" + n) } }.sorted { $0.0 < $1.0 }
    }

    static func segmentFiles(_ directory: String) throws -> [(String, UInt64)] {
        var out: [(String, UInt64)] = []
        let runs = directory + "/runs"
        for run in try FileIO.list(runs).sorted() where !run.hasPrefix(".") {
            for name in try FileIO.list(runs + "/" + run).sorted() {
                if let seq = SegmentFormat.seq(fromFileName: name) { out.append((runs + "/" + run + "/" + name, seq)) }
            }
        }
        return out
    }
}

import SystemPackage
