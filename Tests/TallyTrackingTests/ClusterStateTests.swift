import Foundation
import Synchronization
import Testing
@testable import TallyTracking

/// The cluster's shared state on the real PostgreSQL of `make test`: servers registering, exactly one owner per run
/// under concurrent takers, leases renewed, expiring and taken over with a new epoch, a paused old owner's late
/// writes refused, appends waiting for nothing and replayed in order, trimmed once sealed.
@Suite(.serialized, .enabled(if: PostgresDatabaseTests.available)) struct ClusterStateTests {
    /// Three servers' views of one scratch database (schema migrated), with a short lease.
    static func cluster(leaseMillis: Int64 = 600) throws -> (ScratchDatabase, PostgresDatabase, [ClusterState]) {
        let scratch = try ScratchDatabase()
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 8)
        try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: 1)
        let nodes = (1...3).map { ClusterState(db: db, node: "n\($0)", url: "http://127.0.0.1:900\($0)", leaseMillis: leaseMillis) }
        return (scratch, db, nodes)
    }

    static func owned(_ a: ClusterState.Acquired) -> ClusterState.Lease? {
        if case .owned(let l) = a { l } else { nil }
    }

    @Test func serversRegisterAndAreSeenWhileAlive() throws {
        let (scratch, db, n) = try Self.cluster()
        defer { db.close(); try? scratch.drop() }
        for s in n { try s.register() }
        #expect(try n[0].nodes().map(\.id) == ["n1", "n2", "n3"])
        #expect(try n[0].nodes().map(\.url) == ["http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003"])
        Thread.sleep(forTimeInterval: 0.8)
        try n[1].renew()
        #expect(try n[0].nodes().map(\.id) == ["n2"], "only the server that kept beating is alive")
    }

    /// Leases are held per process (`ID#INSTANCE`): a second live process under one id is refused; a restarted one
    /// waits for the old process's heartbeat to go stale, then releases its leases (taken over at the next epoch).
    @Test func oneLiveProcessPerNodeID() throws {
        let (scratch, db, _) = try Self.cluster()
        defer { db.close(); try? scratch.drop() }
        let first = ClusterState(db: db, node: "web-1#aaaa", url: "http://10.0.0.1:5000", leaseMillis: 300)
        try first.register()
        #expect(first.operatorID == "web-1")
        guard case .owned(let l) = try first.acquire(run: "r") else { Issue.record("not taken"); return }
        // A second process under the same id while the first beats: refused once it has waited a lease and a second.
        let twin = ClusterState(db: db, node: "web-1#bbbb", url: "http://10.0.0.2:5000", leaseMillis: 300)
        let beating = Atomic<Bool>(true)
        let beats = Thread { while beating.load(ordering: .relaxed) { _ = try? first.renew(); Thread.sleep(forTimeInterval: 0.05) } }
        beats.start()
        expectError(.invalidParameterValue, "Another server is running as node 'web-1'") { try twin.register() }
        beating.store(false, ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.1)
        // The first process dies (stops beating): a restart under the id waits for it, then takes its place, and the
        // run it held is free at once, taken at the next epoch.
        let restarted = ClusterState(db: db, node: "web-1#cccc", url: "http://10.0.0.1:5000", leaseMillis: 300)
        try restarted.register()
        #expect(try restarted.nodes().map(\.id) == ["web-1#cccc"])
        #expect(Self.owned(try restarted.acquire(run: "r"))?.epoch == l.epoch + 1)
        #expect(throws: TrackingError.self) { _ = try first.append([("r", l.epoch, [1])]) }
        // A clean stop leaves at once.
        try restarted.leave()
        #expect(try restarted.nodes().isEmpty)
    }

    @Test func oneOwnerAtATimeAndTakeoverBumpsTheEpoch() throws {
        let (scratch, db, n) = try Self.cluster()
        defer { db.close(); try? scratch.drop() }
        // Twelve takers of each of 20 runs at once: exactly one owner per run, epoch 1 (leases long enough that none
        // lapses while a loaded machine runs the race).
        let runs = (0..<20).map { "race\($0)" }
        let racers = n.map { ClusterState(db: db, node: $0.node, url: $0.url, leaseMillis: 120_000) }
        let winners = Mutex([String: [String]]())
        DispatchQueue.concurrentPerform(iterations: 36) { i in
            let s = racers[i % 3]
            for r in runs {
                if let l = try? Self.owned(s.acquire(run: r)) { winners.withLock { $0[r, default: []].append(l.owner) } }
            }
        }
        let won = winners.withLock { $0 }
        for r in runs {
            let owners = Set(won[r] ?? [])
            #expect(owners.count == 1, "\(r): \(owners)")
            #expect(try n[0].lease(of: r)?.epoch == 1)
        }
        // The owner renews and keeps its epoch; the others see it held.
        _ = try n[0].acquire(run: "run0")
        let first = try #require(try n[0].lease(of: "run0"))
        let owner = n.first { $0.node == first.owner }!, other = n.first { $0.node != first.owner }!
        let again = try #require(Self.owned(try owner.acquire(run: "run0")))
        #expect(again.epoch == 1 && again.expiresMillis >= first.expiresMillis)
        guard case .heldElsewhere(let held) = try other.acquire(run: "run0") else { Issue.record("taken while held"); return }
        #expect(held.owner == owner.node && held.epoch == 1)
        // Renewal keeps it past the first expiry; without renewal it lapses and another server takes it, epoch 2.
        Thread.sleep(forTimeInterval: 0.4)
        #expect(try owner.renew()["run0"] == 1)
        Thread.sleep(forTimeInterval: 0.4)
        guard case .heldElsewhere = try other.acquire(run: "run0") else { Issue.record("taken although renewed"); return }
        Thread.sleep(forTimeInterval: 0.7)
        let taken = try #require(Self.owned(try other.acquire(run: "run0")))
        #expect(taken.owner == other.node && taken.epoch == 2)
        #expect(try owner.renew()["run0"] == nil, "a lapsed lease is not renewed: the old owner learns it lost the run")
        // A clean release lets another server in at once.
        try other.release(run: "run0", epoch: 2)
        #expect(Self.owned(try owner.acquire(run: "run0"))?.epoch == 3)
    }

    @Test func lateWritesOfALostLeaseAreRefusedAndReplayIsComplete() throws {
        let (scratch, db, n) = try Self.cluster()
        defer { db.close(); try? scratch.drop() }
        let old = try #require(Self.owned(try n[0].acquire(run: "r")))
        let seqs = try n[0].append([("r", old.epoch, [1, 2, 3]), ("r", old.epoch, [4])])
        #expect(seqs.count == 2 && seqs[0] < seqs[1])
        // The owner pauses past expiry; another server takes over (epoch 2) and replays what was acknowledged.
        Thread.sleep(forTimeInterval: 0.7)
        let new = try #require(Self.owned(try n[1].acquire(run: "r")))
        #expect(new.epoch == old.epoch + 1)
        #expect(try n[1].records(run: "r").map(\.payload) == [[1, 2, 3], [4]])
        // The old owner wakes up and writes: refused, whole batch, nothing stored.
        expectError(.temporarilyUnavailable, "no longer owns the writes of run r") { _ = try n[0].append([("r", old.epoch, [9])]) }
        expectError(.temporarilyUnavailable, "no longer owns") { _ = try n[0].append([("r", new.epoch, [9])]) }  // not its epoch either
        #expect(try n[1].records(run: "r").count == 2)
        // The new owner carries on; a batch over several runs is one commit, refused whole when any run is not held.
        _ = try #require(Self.owned(try n[1].acquire(run: "s")))
        let more = try n[1].append([("r", new.epoch, [5]), ("s", 1, [6]), ("r", new.epoch, [7])])
        #expect(more.count == 3)
        expectError(.temporarilyUnavailable, "run t") { _ = try n[1].append([("s", 1, [8]), ("t", 1, [8])]) }
        // A record under the run's old epoch queued behind one under its current epoch: refused, the whole batch.
        expectError(.temporarilyUnavailable, "epoch \(old.epoch)") { _ = try n[1].append([("r", new.epoch, [8]), ("r", old.epoch, [8])]) }
        #expect(try n[1].records(run: "s").map(\.payload) == [[6]])
        #expect(try n[1].records(run: "r").map(\.payload) == [[1, 2, 3], [4], [5], [7]])
        #expect(try n[1].records(run: "r", after: seqs[1]).map(\.epoch) == [2, 2])
        // Sealed: trimmed through a sequence number.
        #expect(try n[1].trim(run: "r", through: seqs[1]) == 2)
        #expect(try n[1].records(run: "r").map(\.payload) == [[5], [7]])
    }

    @Test func aTakeoverWaitsForAnAppendInFlight() throws {
        // Lease 600 ms, so the takeover's lock wait is bounded at 300 ms (lock_timeout = half a lease).
        let (scratch, db, n) = try Self.cluster(leaseMillis: 600)
        defer { db.close(); try? scratch.drop() }
        let l = try #require(Self.owned(try n[0].acquire(run: "r")))
        // An append whose transaction holds the lease row past its expiry: the takeover must wait for its commit,
        // then see its record. Timed from the moment the row is held (not from when the thread was asked to start:
        // on a loaded machine that came late and the takeover's wait ran past its lock timeout).
        let held = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? db.transaction { c in
                _ = try c.rows("SELECT 1 FROM tally_leases WHERE run_uuid = 'r' FOR SHARE")
                _ = try c.rows("INSERT INTO tally_log (run_uuid, epoch, payload) VALUES ('r', ?, '\\x2a'::bytea) RETURNING seq", [.integer(l.epoch)])
                held.signal()
                Thread.sleep(forTimeInterval: 0.9)  // the lease expires meanwhile
                return ()
            }
            done.signal()
        }
        held.wait()
        Thread.sleep(forTimeInterval: 0.7)
        let started = Date()
        let taken = try #require(Self.owned(try n[1].acquire(run: "r")))
        #expect(Date().timeIntervalSince(started) > 0.1, "the takeover did not wait for the append's commit")
        done.wait()
        let replayed = try n[1].records(run: "r").map(\.payload)
        #expect(taken.epoch == 2 && replayed == [[42]])
    }
}

/// Forwarded requests between servers: signed with the cluster secret, every part covered, the time bounded.
@Suite struct ClusterAuthTests {
    @Test func forwardedRequestsAreSignedAndChecked() throws {
        let auth = try ClusterAuth(secret: "a-cluster-secret-of-32-bytes-ok!")
        let body = Array(#"{"run_id":"r1","metrics":[]}"#.utf8)
        let headers = auth.sign(method: "POST", target: "/api/2.0/mlflow/runs/log-batch", body: body, node: "n1", user: "alice", now: 1_000_000)
        func lookup(_ h: [(String, String)]) -> (String) -> String? { { name in h.first { $0.0 == name }?.1 } }
        let ok = try auth.verify(method: "POST", target: "/api/2.0/mlflow/runs/log-batch", body: body, header: lookup(headers), now: 1_030_000)
        #expect(ok == ClusterAuth.Forwarded(node: "n1", user: "alice"))
        // Not forwarded at all: no signature, no identity vouched for.
        #expect(try auth.verify(method: "POST", target: "/x", body: body, header: { _ in nil }) == nil)
        // Any part changed, another secret, or out of the window: refused.
        func refused(_ fragment: String, method: String = "POST", target: String = "/api/2.0/mlflow/runs/log-batch", body b: [UInt8]? = nil,
                     headers h: [(String, String)] = headers, now: Int64 = 1_000_000, with other: ClusterAuth? = nil) {
            expectError(.unauthenticated, fragment) { _ = try (other ?? auth).verify(method: method, target: target, body: b ?? body, header: lookup(h), now: now) }
        }
        refused("does not match", method: "PUT")
        refused("does not match", target: "/api/2.0/mlflow/runs/delete")
        refused("does not match", body: body + [32])
        refused("does not match", headers: headers.map { $0.0 == ClusterAuth.Header.user ? ($0.0, "admin") : $0 })
        refused("does not match", headers: headers.map { $0.0 == ClusterAuth.Header.node ? ($0.0, "n2") : $0 })
        refused("does not match", headers: headers.map { $0.0 == ClusterAuth.Header.time ? ($0.0, "1000001") : $0 })
        refused("does not match", with: try ClusterAuth(secret: "another-secret-of-enough-bytes"))
        refused("outside 60 s", now: 1_000_000 + ClusterAuth.windowMillis + 1)
        refused("outside 60 s", headers: headers.map { $0.0 == ClusterAuth.Header.time ? ($0.0, String(Int64.min)) : $0 })  // no overflow trap
        refused("outside 60 s", headers: headers.map { $0.0 == ClusterAuth.Header.time ? ($0.0, String(Int64.max)) : $0 })
        refused("without its node", headers: headers.filter { $0.0 != ClusterAuth.Header.user })
        // Parts cannot slide into each other: user "a" + node "bc" is not user "ab" + node "c".
        let slid = auth.sign(method: "GET", target: "/", body: [UInt8](), node: "bc", user: "a", now: 1)
        let other = auth.sign(method: "GET", target: "/", body: [UInt8](), node: "c", user: "ab", now: 1)
        #expect(slid.last!.1 != other.last!.1)
        expectError(.invalidParameterValue, "at least 16 bytes") { _ = try ClusterAuth(secret: "short") }
    }
}
