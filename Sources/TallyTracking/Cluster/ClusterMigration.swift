import Foundation
import TallyStore

/// Moves a single server's metric points into a cluster (`tally metrics migrate`, docs/scale-out.md): each run's
/// segments are uploaded to the metrics destination and recorded as the run's sealed set (epoch 0, holding no log
/// record), exactly as if a cluster server had sealed it; the cluster's servers then install it on first use.
/// The run's metadata must be in the cluster's database first (`tally metadata migrate`). Idempotent: a run that
/// already has a sealed set is left alone, so a rerun finishes an interrupted move.
public enum ClusterMigration {
    /// What happened to the runs of the source store.
    public struct Summary: Sendable, Equatable {
        /// Runs whose segments were uploaded and recorded now.
        public var moved = 0
        /// Runs the cluster already held (a rerun).
        public var present = 0
        /// Segment objects and bytes uploaded.
        public var objects = 0
        /// Bytes uploaded.
        public var bytes: Int64 = 0
        /// Runs left out, with the reason (not in the cluster's metadata, or written in the cluster already).
        public var refused: [String: String] = [:]
        /// Runs in the source store.
        public var total = 0
    }

    /// Refuses to move anything while servers of the cluster whose metadata `metadata` is run.
    public static func checkStopped(_ metadata: PostgresMetadataStore) throws {
        let live = try ClusterState.liveNodes(of: metadata)
        guard live.isEmpty else {
            throw TrackingError(.invalidParameterValue, "The cluster is running (servers \(live.joined(separator: ", "))): stop its servers before moving data into it")
        }
    }

    /// Moves every run of `metrics` into the cluster whose metadata `metadata` is, uploading to `destination`;
    /// `progress(done, total)` after each run. Refused while servers of the cluster run (a server reading a run
    /// during its move could keep a copy without it).
    public static func run(metrics: MetricStore, metadata: PostgresMetadataStore, destination: SegmentDestination,
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        try checkStopped(metadata)
        let db = metadata.db
        var summary = Summary()
        let runs = metrics.runIDs()
        summary.total = runs.count
        for (i, run) in runs.enumerated() {
            defer { progress(i + 1, runs.count) }
            let (known, sealed, written) = try db.withConnection { c in
                (try !c.rows("SELECT 1 FROM runs WHERE run_uuid = ?", [.text(run)]).isEmpty,
                 try !c.rows("SELECT 1 FROM tally_sealed WHERE run_uuid = ?", [.text(run)]).isEmpty,
                 try !c.rows("SELECT 1 FROM tally_leases WHERE run_uuid = ? UNION ALL SELECT 1 FROM tally_log WHERE run_uuid = ? LIMIT 1",
                             [.text(run), .text(run)]).isEmpty)
            }
            if sealed {
                summary.present += 1
                continue
            }
            guard known else {
                summary.refused[run] = "not in the cluster's metadata (run tally metadata migrate first)"
                continue
            }
            guard !written else {
                summary.refused[run] = "already written in the cluster: its points there would be replaced"
                continue
            }
            let spool = try destination.scratch("migrate")
            defer { try? FileManager.default.removeItem(atPath: spool) }
            var set: [ClusterState.SealedSegment] = []
            for f in try metrics.linkSegments(run: run, into: spool) {
                let key = destination.key(run: run, epoch: 0, seq: f.seq)
                try destination.client.put(bucket: destination.location.bucket, key: key, file: f.path)
                guard try destination.client.size(bucket: destination.location.bucket, key: key) == Int(f.bytes) else {
                    throw TrackingError(.internalError, "s3://\(destination.location.bucket)/\(key) does not hold the \(f.bytes) bytes uploaded")
                }
                set.append(.init(seq: f.seq, key: key, bytes: f.bytes))
            }
            let recorded: Bool = try db.transaction { c in
                // A lapsed placeholder lease: a server taking the run meanwhile waits for this transaction and then
                // starts from the set recorded here; one that took it first wins (the upload is left unrecorded).
                guard try c.run("INSERT INTO tally_leases VALUES (?, 'tally metrics migrate', 0, 0) ON CONFLICT (run_uuid) DO NOTHING",
                                [.text(run)]) == 1 else { return false }
                // Sealed "through" a log position taken now (≥ 1): a server holding an empty copy of the run (at 0)
                // sees a set ahead of it and installs it, and the run's later records all come after it.
                let inserted = try c.run("INSERT INTO tally_sealed SELECT ?, nextval(pg_get_serial_sequence('tally_log', 'seq')), 0, "
                                         + "\(ClusterState.now) ON CONFLICT (run_uuid) DO NOTHING", [.text(run)])
                guard inserted == 1 else { return false }
                try ClusterState.insert(c, run: run, set)
                return true
            }
            if recorded {
                summary.moved += 1
                summary.objects += set.count
                summary.bytes += set.reduce(0) { $0 + $1.bytes }
            } else {
                summary.refused[run] = "written in the cluster while it was moved"
            }
        }
        return summary
    }
}
