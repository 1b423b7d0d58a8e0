import Foundation
import Synchronization
import TallyStore

/// Where a cluster's sealed segments go (`--metrics-destination`, docs/scale-out.md "Sealing"), and when a run is
/// sealed.
public struct SegmentDestination: Sendable {
    /// The object storage client.
    public let client: S3Client
    /// The bucket and key prefix.
    public let location: S3Location
    /// A local directory for files on their way up or down (on the metric store's file system, so they are linked,
    /// not copied).
    public let spool: String
    /// `--max-unsealed-seconds`: the longest a run's records wait in the log before its owner seals them.
    public let maxUnsealed: Duration
    /// Record bytes a run's owner lets accumulate in the log before sealing it, however young.
    public let sealBytes: Int
    /// `--metrics-cache-mb`: what this server's copies of runs it does not own may take on disk, approximately; past
    /// it, the copies read least recently (none within the last ``SegmentDestination/evictAfter``) are dropped, to be
    /// installed again from the bucket when read. `nil`: unbounded.
    public let cacheBytes: Int64?
    /// A copy read this recently is never dropped (a read may still be going through it).
    public static let evictAfter = Duration.seconds(30)

    /// A destination; the spool directory is created.
    public init(client: S3Client, location: S3Location, spool: String, maxUnsealed: Duration = .seconds(6 * 3600), sealBytes: Int = 8 << 20,
                cacheBytes: Int64? = nil) throws {
        self.cacheBytes = cacheBytes
        self.client = client
        self.location = location
        self.spool = spool
        self.maxUnsealed = maxUnsealed
        self.sealBytes = sealBytes
        try? FileManager.default.removeItem(atPath: spool)  // files of a process that stopped mid-way
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
    }

    /// A fresh key for segment `seq` of `run`, sealed under `epoch`: never reused (a random part), so an object is
    /// never overwritten and a server's cached copy of it can never be stale.
    func key(run: String, epoch: Int64, seq: UInt64) -> String {
        let run = run.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? run
        let random = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return (location.prefix.isEmpty ? "" : location.prefix + "/") + "runs/\(run)/e\(epoch)-\(seq)-\(random).tseg"
    }

    /// A new, empty directory under the spool.
    func scratch(_ what: String) throws -> String {
        let dir = spool + "/" + what + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

extension ClusterNode {
    /// What a run's owner wrote since it last sealed the run.
    struct Unsealed: Sendable {
        /// When the oldest unsealed record was written here.
        var since: ContinuousClock.Instant?
        /// Bytes of the unsealed records.
        var bytes = 0
        /// Seals of this run that failed in a row, and when the next may run.
        var failures = 0
        var retryAt: ContinuousClock.Instant?

        mutating func add(_ n: Int) {
            if since == nil { since = .now }
            bytes += n
        }

        /// Puts back what a failed seal took, and backs off (1 s doubling to a minute).
        mutating func failed(_ taken: Unsealed) {
            since = [since, taken.since].compactMap { $0 }.min()
            bytes += taken.bytes
            failures = taken.failures + 1
            retryAt = .now + .seconds(min(60, 1 << min(failures - 1, 6)))
        }

        func due(_ now: ContinuousClock.Instant, _ d: SegmentDestination, idle: Bool) -> Bool {
            guard let since else { return false }
            if let retryAt, now < retryAt { return false }
            return idle || bytes >= d.sealBytes || now - since >= d.maxUnsealed
        }
    }

    /// Whether the run has records here that wait for a seal (its lease is kept until they are sealed).
    func waitsForSeal(_ slot: RunSlot) -> Bool {
        destination != nil && slot.unsealed.withLock { $0.since != nil }
    }

    // MARK: Sealing

    /// Seals the run as its owner: its local copy (every record up to the last applied) sealed into segments, the new
    /// ones uploaded to the metrics destination, then — fenced by the lease — the run's sealed set replaced and its
    /// log records up to there deleted in one transaction; objects the new set no longer names are deleted last.
    /// Writes of the run wait only for the local seal, not for the uploads.
    /// - Returns: whether a new set was recorded.
    @discardableResult
    public func seal(run: String) throws -> Bool {
        guard let destination else { return false }
        let slot = slot(run)
        let spool = try destination.scratch("seal")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        var pending = Unsealed()
        defer { slot.sealing.withLock { $0 = Unsealed() } }
        do {
            let taken = try slot.work.withLock { progress -> (epoch: Int64, through: Int64, files: [SegmentFile], objects: [UInt64: String], generation: Int)? in
                guard let epoch = slot.lease.withLock({ $0.epoch }), !progress.dirty else { return nil }  // sealed once owned and clean
                pending = slot.unsealed.withLock { u in defer { u = Unsealed() }; return u }
                slot.sealing.withLock { $0 = pending }
                guard progress.appliedSeq > progress.sealedThrough else { return nil }  // nothing new
                let files = try metrics.linkSegments(run: run, into: spool)
                return (epoch, progress.appliedSeq, files, progress.objects, progress.generation)
            }
            guard let taken else { return false }
            var set: [ClusterState.SealedSegment] = []
            var uploaded: Set<String> = []
            for f in taken.files {
                let known = taken.objects[f.seq]
                let key = known ?? destination.key(run: run, epoch: taken.epoch, seq: f.seq)
                if known == nil {
                    try destination.client.put(bucket: destination.location.bucket, key: key, file: f.path)
                    uploaded.insert(key)
                }
                set.append(.init(seq: f.seq, key: key, bytes: f.bytes))
            }
            let replaced: [String]?
            do {
                replaced = try shared { try state.commitSealed(run: run, epoch: taken.epoch, through: taken.through, segments: set, uploaded: uploaded) }
            } catch is ClusterState.StaleObjects {
                // Objects this copy held were replaced by another server's seal meanwhile: uploaded again next time.
                slot.work.withLock { $0.objects = [:] }
                throw TrackingError(.temporarilyUnavailable, "run \(run): its sealed set changed while it was sealed here; sealed again next round")
            }
            guard let replaced else { return false }
            slot.work.withLock { p in
                guard p.generation == taken.generation else { return }
                p.sealedThrough = max(p.sealedThrough, taken.through)
                p.objects = Dictionary(uniqueKeysWithValues: set.map { ($0.seq, $0.key) })
                slot.bytes.store(set.reduce(0) { $0 + $1.bytes }, ordering: .relaxed)
            }
            for key in replaced { try? destination.client.delete(bucket: destination.location.bucket, key: key) }
            return true
        } catch {
            slot.sealing.withLock { $0 = Unsealed() }
            slot.unsealed.withLock { $0.failed(pending) }
            // Refused by the fence: the run is another server's now (this one forwards its writes and catches up
            // before reading it).
            if let held = slot.lease.withLock({ $0.epoch }), let lease = try? state.lease(of: run), lease.owner != state.node || lease.epoch != held {
                slot.lease.withLock { $0.epoch = nil }
            }
            throw error
        }
    }

    /// Drops the local copy of the run and installs its sealed set in its place (the segment files this copy already
    /// holds are linked, the others downloaded), ready for the log's records after the set. An object deleted while
    /// it was fetched (its owner sealed again) sends it back to the new set. Call with the run's `work` held.
    func rebuild(_ run: String, _ slot: RunSlot, _ progress: inout Progress) throws {
        var missing: [String] = []
        while missing.count < 3 {
            let set = try shared { try state.sealed(run: run) }
            guard let set else {
                try dropCopy(run, slot, &progress, place: 0)  // the log holds every record: replayed from its start
                return
            }
            guard let destination else {
                throw TrackingError(.internalError, "run \(run) has sealed segments but this server has no --metrics-destination")
            }
            let spool = try destination.scratch("install")
            defer { try? FileManager.default.removeItem(atPath: spool) }
            // A damaged local copy (no fsyncs in cluster mode) only means nothing to reuse.
            let local = (try? metrics.linkSegments(run: run, into: spool, sealingHeads: false)) ?? []
            var held: [UInt64: SegmentFile] = [:]
            for f in local where set.segments.contains(where: { $0.seq == f.seq && $0.key == progress.objects[f.seq] }) { held[f.seq] = f }
            var files: [SegmentFile] = []
            for s in set.segments {
                if let f = held[s.seq] {
                    files.append(f)
                    continue
                }
                let path = spool + "/fetched-" + String(s.seq)
                guard let size = try destination.client.download(bucket: destination.location.bucket, key: s.key, to: path) else {
                    missing.append(s.key)
                    break
                }
                guard Int64(size) == s.bytes else {
                    throw TrackingError(.internalError, "segment object s3://\(destination.location.bucket)/\(s.key) of run \(run) is \(size) bytes, "
                                        + "its sealed set says \(s.bytes)")
                }
                files.append(SegmentFile(seq: s.seq, path: path, bytes: Int64(size)))
            }
            guard files.count == set.segments.count else { continue }
            progress.appliedSeq = -1  // until the set is in place: a failure below leaves a copy to rebuild
            progress.generation += 1
            // In one step: a read running meanwhile reads the old copy or the new one, never an empty run.
            try metrics.installRun(run, segments: files, replacing: true)
            progress = Progress(appliedSeq: set.through, dirty: false, objects: Dictionary(uniqueKeysWithValues: set.segments.map { ($0.seq, $0.key) }),
                                generation: progress.generation, sealedThrough: set.through)
            slot.bytes.store(set.segments.reduce(0) { $0 + $1.bytes }, ordering: .relaxed)
            return
        }
        throw TrackingError(.temporarilyUnavailable, "the sealed segments of run \(run) kept changing while this server fetched them "
                            + "(\(missing.joined(separator: ", ")) gone): send the request again")
    }

    /// Deletes the run's local copy and forgets what it held: its place in the log becomes `place` (0: replayed from
    /// the log's start; -1: unknown, rebuilt on next use). Returns the bytes it took. Call with the run's `work` held.
    @discardableResult
    func dropCopy(_ run: String, _ slot: RunSlot, _ progress: inout Progress, place: Int64) throws -> Int64 {
        progress.appliedSeq = -1  // until deleted: a failure leaves a copy to rebuild
        progress.generation += 1
        try metrics.deleteRun(run)
        progress = Progress(appliedSeq: place, generation: progress.generation)
        return slot.bytes.exchange(0, ordering: .relaxed)
    }

    /// One round of the sealing thread: seals the runs this server owns whose unsealed records are due (old enough,
    /// large enough, or the run no longer written), and takes over runs whose records wait under a lapsed lease.
    func sealRound(adopting: Bool) {
        guard let destination else { return }
        let now = ContinuousClock.now
        var failures: [String] = []
        for (run, slot) in slots.withLock({ Array($0) }) {
            guard let used = slot.lease.withLock({ v in v.epoch.map { _ in v.used } }) else { continue }
            guard slot.unsealed.withLock({ $0.due(now, destination, idle: now - used > leaseDuration * 2) }) else { continue }
            do { try countedSeal(run: run) } catch { failures.append("run \(run): \(error)") }
        }
        if adopting {
            do {
                for run in try shared({ try state.orphanedRuns() }) where !stopping.load(ordering: .acquiring) {
                    do {
                        try prepareWrite(run: run)
                        slot(run).unsealed.withLock { $0.add(0) }
                        try countedSeal(run: run)
                    } catch is OwnedElsewhere {
                        continue  // another server took it first
                    } catch {
                        failures.append("run \(run) (left by a server that stopped): \(error)")
                    }
                }
            } catch {
                failures.append("looking for runs left unsealed: \(error)")
            }
        }
        let summary = failures.isEmpty ? nil : failures.prefix(3).joined(separator: "; ") + (failures.count > 3 ? " (and \(failures.count - 3) more)" : "")
        let before = sealError.withLock { e in defer { e = summary }; return e }
        if let summary, before == nil {
            report("sealing into \(destination.location) failing (node \(state.node)): \(summary); the records stay in the shared log and sealing is retried")
        } else if summary == nil, before != nil {
            report("sealing into \(destination.location) succeeds again (node \(state.node))")
        }
    }

    /// Drops copies of runs this server does not own, least recently read first, until they take 90 % of
    /// ``SegmentDestination/cacheBytes`` (a copy read within ``SegmentDestination/evictAfter``, or busy, is kept).
    /// Returns the runs dropped.
    @discardableResult
    func evictCopies() -> [String] {
        guard let budget = destination?.cacheBytes else { return [] }
        let all = slots.withLock { Array($0) }
        var total = all.reduce(Int64(0)) { $0 + $1.1.bytes.load(ordering: .relaxed) }
        guard total > budget else { return [] }
        let now = ContinuousClock.now
        let idle = all.compactMap { run, slot -> (String, RunSlot, ContinuousClock.Instant)? in
            let read = slot.lastRead.withLock { $0 }
            guard now - read > SegmentDestination.evictAfter, slot.lease.withLock({ $0.epoch == nil }) else { return nil }
            return (run, slot, read)
        }.sorted { $0.2 < $1.2 }
        var dropped: [String] = []
        for (run, slot, _) in idle where total > budget / 10 * 9 {
            let freed: Int64? = slot.work.withLockIfAvailable { progress -> Int64? in
                guard slot.lease.withLock({ $0.epoch == nil }) else { return nil }
                return try? dropCopy(run, slot, &progress, place: -1)  // installed again on its next read
            } ?? nil
            if let freed {
                total -= freed
                dropped.append(run)
            }
        }
        return dropped
    }

    /// Starts the sealing thread (with a destination): a round every second (sooner with a short
    /// ``SegmentDestination/maxUnsealed``), taking over abandoned runs every lease.
    func startSealing() {
        guard let destination else { return }
        let nextAdoption = Mutex(ContinuousClock.now + leaseDuration)
        repeatUntilStopped(name: "tally-cluster-sealing", every: min(Duration.seconds(1), destination.maxUnsealed / 4)) { [self] in
            let adopting = nextAdoption.withLock { next in
                guard ContinuousClock.now >= next else { return false }
                next = ContinuousClock.now + leaseDuration
                return true
            }
            sealRound(adopting: adopting)
            evictCopies()
        }
    }
}
