import Dispatch
import Foundation
import Synchronization
import Testing
@testable import TallyTracking

/// Concurrent requests' writes in one statement (`PostgresDatabase.Lane`, `PostgresMetadataStore+Writes`), against
/// the real PostgreSQL `make test` starts: a batch writes exactly what its writes would one at a time (every set of
/// kinds, differentially), the lane batches what waits, refused batches fall back write by write, a lock held
/// elsewhere holds no other write back, a lost connection is replaced, and many threads through the store lose
/// nothing.
@Suite(.enabled(if: PostgresDatabaseTests.available)) struct PostgresLaneTests {
    typealias Store = PostgresMetadataStore

    /// Runs `body` on a thread of its own (GCD's global queues run as many blocked items as there are cores),
    /// entering `group` until it returns.
    static func thread(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        Thread {
            body()
            group.leave()
        }.start()
    }

    /// Experiment 1 (active) and experiment 2 (deleted), which ``seed(_:prefix:)`` and ``writes(_:mask:)`` use.
    static func experiments(_ s: Store) throws {
        #expect(try s.insertExperiment(name: "e1", artifactLocation: "x/{id}", tags: [], now: 1) == "1")
        #expect(try s.insertExperiment(name: "e2", artifactLocation: "x/{id}", tags: [], now: 1) == "2")
        try s.setExperimentStage(id: 2, .deleted, now: 2)
    }

    /// Runs `prefix-00` … `prefix-11` in experiment 1 (active), with a param on `-02`, a latest row written once on
    /// `-04`; `-05`, `-09` and `-11` deleted. Experiment 2 is deleted.
    static func seed(_ s: Store, prefix: String) throws {
        for i in 0..<12 {
            let id = "\(prefix)-\(i < 10 ? "0" : "")\(i)"
            try s.insertRun(RunInfo(runID: id, runName: "run \(i)", experimentID: "1", userID: "u", status: .running, startTime: 100 + Int64(i),
                                    endTime: nil, artifactURI: "a/\(id)", lifecycleStage: .active), tags: [KeyValue(key: "mlflow.user", value: "u")])
        }
        _ = try s.insertParams(runID: "\(prefix)-02", [KeyValue(key: "a", value: "1")])
        _ = Store.outcomes(try s.db.withConnection { try $0.rows(try Store.single(.latest(runID: "\(prefix)-04", data: [1, 2, 3], expected: 0))) },
                               [.latest(runID: "\(prefix)-04", data: [1, 2, 3], expected: 0)])
        for i in [5, 9, 11] { try s.setRunStage(id: "\(prefix)-\(i < 10 ? "0" : "")\(i)", .deleted, now: 7) }
    }

    /// Writes of every kind on the seeded runs of `prefix` — those succeeding and those refused — keeping the kinds
    /// whose bit is set in `mask` (1 runs, 2 params, 4 latest rows, 8 finishes).
    static func writes(_ prefix: String, mask: Int) -> [Store.Write] {
        func info(_ id: String, experiment: String) -> RunInfo {
            RunInfo(runID: id, runName: "new", experimentID: experiment, userID: "v", status: .running, startTime: 5, endTime: id.hasSuffix("n1") ? 9 : nil,
                    artifactURI: "a/\(id)", lifecycleStage: .active)
        }
        var out: [Store.Write] = []
        if mask & 1 != 0 {
            out += [.run(info("\(prefix)-n1", experiment: "1"), tags: [KeyValue(key: "b", value: "2"), KeyValue(key: "mlflow.user", value: "v")]),
                    .run(info("\(prefix)-n2", experiment: "1"), tags: []),
                    .run(info("\(prefix)-n3", experiment: "2"), tags: [KeyValue(key: "c", value: "3")]),  // experiment deleted
                    .run(info("\(prefix)-n4", experiment: "99"), tags: [])]  // no such experiment
        }
        if mask & 2 != 0 {
            out += [.params(runID: "\(prefix)-01", [KeyValue(key: "x", value: "1"), KeyValue(key: "y", value: "2")]),
                    .params(runID: "\(prefix)-02", [KeyValue(key: "a", value: "9"), KeyValue(key: "b", value: "1")]),  // a stored already
                    .params(runID: "\(prefix)-05", [KeyValue(key: "z", value: "1")]),  // deleted run
                    .params(runID: "\(prefix)-06", []),
                    .params(runID: "\(prefix)-missing", [KeyValue(key: "q", value: "1")])]
        }
        if mask & 4 != 0 {
            out += [.latest(runID: "\(prefix)-03", data: [9], expected: 0),
                    .latest(runID: "\(prefix)-04", data: [8], expected: 0),  // the row is at seq 1
                    .latest(runID: "\(prefix)-09", data: [7], expected: 0)]  // deleted run
        }
        if mask & 8 != 0 {
            out += [.finish(runID: "\(prefix)-07", status: .finished, endTime: 5),
                    .finish(runID: "\(prefix)-08", status: nil, endTime: 7),
                    .finish(runID: "\(prefix)-10", status: .killed, endTime: nil),
                    .finish(runID: "\(prefix)-11", status: .finished, endTime: 1),  // deleted run
                    .finish(runID: "\(prefix)-gone", status: .finished, endTime: 1)]
        }
        return out
    }

    /// Every row the writes can touch, in one order.
    static func dump(_ s: Store) throws -> [[SQLValue]] {
        try s.db.withConnection { c in
            try c.rows("SELECT \(SQLiteMetadataStore.runColumns) FROM runs ORDER BY run_uuid")
                + c.rows("SELECT run_uuid, key, value FROM params ORDER BY run_uuid, key")
                + c.rows("SELECT run_uuid, key, value FROM tags ORDER BY run_uuid, key")
                + c.rows("SELECT run_uuid, data, seq FROM run_latest ORDER BY run_uuid")
        }
    }

    /// For every set of kinds, one statement over all the writes answers and stores what each write alone does (the
    /// statement a write alone gets is a different one: values instead of arrays).
    @Test func aBatchWritesWhatItsWritesWouldAlone() throws {
        let a = try ScratchDatabase(), b = try ScratchDatabase()
        defer { try? a.drop(); try? b.drop() }
        let batched = try Store(uri: a.uri, poolSize: 2, now: 1), alone = try Store(uri: b.uri, poolSize: 2, now: 1)
        defer { batched.close(); alone.close() }
        for s in [batched, alone] { try Self.experiments(s) }
        for mask in 1..<16 {
            let prefix = "m\(mask)"
            try Self.seed(batched, prefix: prefix)
            try Self.seed(alone, prefix: prefix)
            let w = Self.writes(prefix, mask: mask).shuffled()
            let together = Store.outcomes(try batched.db.withConnection { c in
                try c.execute(PostgresDatabase.laneSettings)  // as on the lane's connections
                defer { try? c.execute("RESET ALL") }
                return try c.rows(try Store.statement(w))
            }, w)
            let oneByOne = try w.map { x in Store.outcomes(try alone.db.withConnection { try $0.rows(try Store.single(x)) }, [x])[0] }
            #expect(together == oneByOne, "kinds \(mask)")
        }
        #expect(try Self.dump(batched) == Self.dump(alone))
        // And the outcomes are the ones the rules give (checked once, on the full set).
        let params = try alone.params(runID: "m15-02", keys: ["a", "b"]), runs = try alone.runs(ids: ["m15-07", "m15-08", "m15-10", "m15-n1", "m15-n3"])
        #expect(params == ["a": "1", "b": "1"])
        #expect(runs.map(\.info.runID) == ["m15-07", "m15-08", "m15-10", "m15-n1"])
        #expect(runs[0].info.status == .finished && runs[0].info.endTime == 5 && runs[1].info.status == .running && runs[1].info.endTime == 7)
        #expect(runs[2].info.status == .killed && runs[2].info.endTime == nil && runs[3].info.endTime == 9)
        #expect(runs[3].tags.sorted { $0.key < $1.key } == [KeyValue(key: "b", value: "2"), KeyValue(key: "mlflow.user", value: "v")])
    }

    /// Params and latest rows carry the version of the transaction that wrote them (schema version 18: what the
    /// search cache reads instead of the run's version), whatever writes them: a batch, a write alone, a statement
    /// that does not set the version (the trigger stamps it), twice in one transaction; a refused write stamps nothing.
    @Test func paramsAndLatestRowsCarryTheirWritersVersion() throws {
        let d = try ScratchDatabase()
        defer { try? d.drop() }
        let s = try Store(uri: d.uri, poolSize: 2, now: 1)
        defer { s.close() }
        try Self.experiments(s)
        func versions(_ c: PostgresDatabase.Connection) throws -> [String: Int64] {
            var out: [String: Int64] = [:]
            for r in try c.rows("SELECT 'latest ' || run_uuid, version FROM run_latest UNION ALL SELECT 'param ' || run_uuid || ' ' || key, version FROM params") {
                out[r[0].string ?? ""] = r[1].int
            }
            return out
        }
        /// The versions before, the transaction's id, and the versions after `statements` ran in one transaction.
        func written(_ statements: [PostgresDatabase.Connection.Statement]) throws -> ([String: Int64], Int64, [String: Int64]) {
            try s.db.withConnection { c in
                let before = try versions(c)
                try c.execute("BEGIN")
                for x in statements { _ = try c.rows(x) }
                let xid = try c.rows("SELECT pg_current_xact_id()::text::bigint")[0][0].int ?? -1
                try c.execute("COMMIT")
                return (before, xid, try versions(c))
            }
        }
        for (prefix, batched) in [("b", true), ("a", false)] {
            try Self.seed(s, prefix: prefix)
            let w = Self.writes(prefix, mask: 15).shuffled()
            let (before, xid, after) = try written(batched ? [try Store.statement(w)] : try w.map(Store.single))
            for key in ["latest \(prefix)-03", "param \(prefix)-01 x", "param \(prefix)-01 y", "param \(prefix)-02 b", "latest \(prefix)-n1"] {
                #expect(after[key] == xid, "\(key), batched \(batched)")
            }
            for key in ["latest \(prefix)-04", "latest \(prefix)-09", "param \(prefix)-02 a", "latest \(prefix)-00"] {
                #expect(after[key] == before[key], "\(key) refused or untouched, batched \(batched)")
            }
        }
        // A statement that leaves the version alone gets it stamped by the trigger, twice in one transaction too.
        let plain = try PostgresDatabase.Connection.Statement("UPDATE run_latest SET data = data WHERE run_uuid = ?", [.text("a-00")])
        let (_, xid, after) = try written([plain, plain])
        #expect(after["latest a-00"] == xid)
    }

    /// Every batch statement reaches each table it reads or updates through the table's primary key, with a
    /// condition on it, with the lane's settings. A connection keeps its generic plan until the table's next
    /// (auto)ANALYZE, so the plans are checked in the states a new database goes through: empty and never analysed,
    /// a few runs and never analysed, and 3,000 analysed runs. No plan reads every run (or experiment) for a batch.
    @Test func aBatchReachesItsRowsByKey() throws {
        let d = try ScratchDatabase()
        defer { try? d.drop() }
        let s = try Store(uri: d.uri, poolSize: 1, now: 1)
        defer { s.close() }
        #expect(try s.insertExperiment(name: "e1", artifactLocation: "x/{id}", tags: [], now: 1) == "1")
        func add(_ runs: ClosedRange<Int>) -> String {
            let g = "generate_series(\(runs.lowerBound), \(runs.upperBound)) g"
            return "INSERT INTO runs SELECT 'r' || g, 1, 'n', 'u', 'RUNNING', g, NULL, 'a', 'active', NULL FROM \(g); "
                + "INSERT INTO run_latest SELECT 'r' || g, ''::bytea FROM \(g); INSERT INTO params SELECT 'r' || g, 'p', 'v' FROM \(g)"
        }
        for (state, setup) in [("empty", ""), ("3 runs", add(1...3)), ("3,000 analysed runs", add(4...3000) + "; ANALYZE")] {
            try s.db.withConnection { c in
                if !setup.isEmpty { try c.execute(setup) }
                try c.execute(PostgresDatabase.laneSettings)
                for mask in 1..<16 {
                    let binds = Store.texts[mask].matches(of: /\$[0-9]+/).count
                    try c.execute("PREPARE plan\(mask) AS \(Store.texts[mask])")
                    let plan = try c.rows("EXPLAIN (FORMAT JSON) EXECUTE plan\(mask)(\(Array(repeating: "'{}'", count: binds).joined(separator: ", ")))")
                    try c.execute("DEALLOCATE plan\(mask)")
                    let json = try JSONSerialization.jsonObject(with: Data((plan.first?.first?.string ?? "").utf8)) as? [[String: Any]]
                    let root = try #require(json?.first?["Plan"] as? [String: Any])
                    #expect(Self.scansNotByKey(root).isEmpty, "kinds \(mask), \(state): \(Self.scansNotByKey(root))")
                }
                try c.execute("RESET ALL")
            }
        }
    }

    /// The scans in `plan` (EXPLAIN's JSON) that reach a table other than through its primary key with a condition
    /// on it (a scan of the whole index is no better than of the table).
    static func scansNotByKey(_ plan: [String: Any]) -> [String] {
        let children = plan["Plans"] as? [[String: Any]] ?? []
        var out = children.flatMap(scansNotByKey)
        guard let table = plan["Relation Name"] as? String, let type = plan["Node Type"] as? String, type != "ModifyTable" else { return out }
        let probes: [[String: Any]]
        switch type {
        case "Index Scan", "Index Only Scan": probes = [plan]
        case "Bitmap Heap Scan": probes = children
        default: probes = []
        }
        let byKey = !probes.isEmpty && probes.allSatisfy { p in
            (p["Node Type"] as? String ?? "") != "BitmapOr" && p["Index Name"] as? String == "\(table)_pkey" && p["Index Cond"] != nil
        }
        if !byKey { out.append("\(type) on \(table) \(probes.map { "\($0["Index Name"] ?? "-") \($0["Index Cond"] ?? "no condition")" })") }
        return out
    }

    /// A test table's writes through a lane of one connection: inserts (one row each, keyed by `k`), updates, a
    /// sleep, and the backend's pid.
    enum Op: Sendable {
        case insert(String, String), update(String, String), sleep(Double), pid
        var key: String {
            switch self {
            case .insert(let k, _), .update(let k, _): k
            case .sleep: "sleep"
            case .pid: "pid"
            }
        }
    }

    /// A table of its own `(k TEXT PRIMARY KEY, v TEXT)` holding `rows` (SQL `VALUES`); its name.
    static func table(_ db: PostgresDatabase, _ rows: String) throws -> String {
        let t = "lane_\(UInt32.random(in: 0...UInt32.max))"
        try db.withConnection { try $0.execute("CREATE TABLE \(t) (k TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO \(t) VALUES \(rows)") }
        return t
    }

    static func lane(_ db: PostgresDatabase, table t: String, connections: Int = 1) -> PostgresDatabase.Lane<Op, String> {
        PostgresDatabase.Lane(db, connections: connections, build: { ops in
            typealias C = PostgresDatabase.Connection
            switch ops[0] {
            case .sleep(let s): return try C.Statement("SELECT 'slept', 'slept' FROM pg_sleep(?)", [.real(s)])
            case .pid: return try C.Statement("SELECT 'pid', pg_backend_pid()::text || ?", [.text("")])
            case .insert, .update:
                var keys: [String] = [], values: [String] = []
                for case .insert(let k, let v) in ops { keys.append(k); values.append(v) }
                for case .update(let k, let v) in ops { keys.append(k); values.append(v) }
                let sql = if case .insert = ops[0] { "INSERT INTO \(t) SELECT * FROM unnest(?, ?) AS x(k, v) RETURNING k, v" }
                          else { "UPDATE \(t) SET v = x.v FROM unnest(?, ?) AS x(k, v) WHERE \(t).k = x.k RETURNING \(t).k, \(t).v" }
                return C.Statement(text: try C.text(sql, types: ["::text[]", "::text[]"]), columns: [.texts(keys), .texts(values)])
            }
        }, read: { rows, ops in
            var found: [String: String] = [:]
            for r in rows { found[r[0].string ?? ""] = r[1].string ?? "" }
            return ops.map { op in
                switch op {
                case .sleep: found["slept"] ?? "?"
                case .pid: found["pid"] ?? "?"
                default: found[op.key] ?? "missing"
                }
            }
        })
    }

    /// Writes that arrive while a batch is in flight go out together in the next one; a batch the database refuses
    /// (a duplicate key, text with NUL) is written again write by write, so only the culprits fail.
    @Test func writesWaitingGoTogetherAndRefusedBatchesFallBack() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 4)
        defer { db.close() }
        let t = try Self.table(db, "('taken', 'old')")
        defer { _ = try? db.withConnection { try $0.execute("DROP TABLE \(t)") } }
        let lane = Self.lane(db, table: t)

        // A slow batch, and writes arriving while it runs (once it is sent): they make one batch.
        func during(_ ops: [Op]) -> [Result<String, any Error>] {
            let results = Mutex<[Result<String, any Error>?]>(Array(repeating: nil, count: ops.count))
            let group = DispatchGroup(), sent = lane.batchesSent.load(ordering: .relaxed)
            Self.thread(group) { #expect((try? lane.submit(.sleep(1), key: "sleep")) == "slept") }
            while lane.batchesSent.load(ordering: .relaxed) == sent { usleep(1_000) }
            for (i, op) in ops.enumerated() {
                Self.thread(group) {
                    let r = Result { try lane.submit(op, key: op.key) }
                    results.withLock { $0[i] = r }
                }
            }
            group.wait()
            return results.withLock { $0.map { $0! } }
        }
        let first = during((0..<8).map { .insert("k\($0)", "v\($0)") })
        #expect(first.map { try? $0.get() } == (0..<8).map { Optional("v\($0)") })
        #expect(lane.batchesSent.load(ordering: .relaxed) == 2, "\(lane.batchesSent.load(ordering: .relaxed)) batches")
        #expect(lane.writesSent.load(ordering: .relaxed) == 9)
        #expect(lane.writesAlone.load(ordering: .relaxed) == 0)

        // A key taken among them: PostgreSQL refuses the batch, each write runs alone, only that one fails. Then text
        // with NUL among them: refused before it is sent, the same way.
        func refused(_ ops: [Op], culprit: String, state: String) {
            let alone = lane.writesAlone.load(ordering: .relaxed)
            for (op, r) in zip(ops, during(ops)) {
                switch (op.key, r) {
                case (culprit, .failure(let e as PostgresError)): #expect(e.sqlState == state, "\(e)")
                case (let k, .success(let v)): #expect(k != culprit && v == "v" + k.dropFirst())
                default: Issue.record("\(op): \(r)")
                }
            }
            #expect(lane.writesAlone.load(ordering: .relaxed) == alone + ops.count)
        }
        var ops: [Op] = (8..<11).map { .insert("k\($0)", "v\($0)") }
        ops.insert(.insert("taken", "new"), at: 1)
        refused(ops, culprit: "taken", state: "23505")
        refused((11..<14).map { .insert("k\($0)", "v\($0)") } + [.insert("k-nul", "a\u{0}b")], culprit: "k-nul", state: "22021")
        let stored = try db.withConnection { try $0.rows("SELECT k, v FROM \(t) ORDER BY k") }
        #expect(stored.count == 15 && stored.contains([.text("taken"), .text("old")]) && !stored.contains { $0[0] == .text("k-nul") })
    }

    /// A key's next write waits for its write in flight on the other connection; other keys' writes go meanwhile.
    @Test func aKeysNextWriteWaitsForItsWriteInFlight() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 2)
        defer { db.close() }
        let t = try Self.table(db, "('a', '0')")
        defer { _ = try? db.withConnection { try $0.execute("DROP TABLE \(t)") } }
        let lane = Self.lane(db, table: t, connections: 2)
        let group = DispatchGroup(), done = Mutex<[String: UInt64]>([:])
        func submit(_ op: Op, key: String) {
            Self.thread(group) {
                #expect((try? lane.submit(op, key: key)) != nil)
                done.withLock { $0[key + "/" + op.key] = DispatchTime.now().uptimeNanoseconds }
            }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        submit(.sleep(1), key: "a")  // a write of key a, in flight for a second
        while lane.batchesSent.load(ordering: .relaxed) == 0 { usleep(1_000) }
        submit(.update("a", "1"), key: "a")
        submit(.insert("b", "1"), key: "b")
        group.wait()
        let at = done.withLock { $0 }
        #expect(at.count == 3)
        // b went meanwhile; a's next write ended only after the write in flight (a second long). Its end is compared
        // with the clock, not with the first write's thread, which may record its time after the second's.
        #expect(at["b/b"]! < at["a/sleep"]! && at["a/a"]! >= start + 900_000_000, "\(at) from \(start)")
        #expect(try db.withConnection { try $0.rows("SELECT k, v FROM \(t) ORDER BY k") } == [[.text("a"), .text("1")], [.text("b"), .text("1")]])
    }

    /// A caller whose write waits (its key in flight) may send the batch of the writes behind it: it reads that batch's
    /// answer, then its own write's, sent when its key is free — neither waits for the connection's deadline.
    @Test func aCallerSendsAndReadsABatchWithoutItsOwnWrite() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 2)
        defer { db.close() }
        let t = try Self.table(db, "('a', '0')")
        defer { _ = try? db.withConnection { try $0.execute("DROP TABLE \(t)") } }
        let lane = Self.lane(db, table: t, connections: 2)
        let group = DispatchGroup(), results = Mutex<[String: String]>([:])
        func submit(_ op: Op, key: String) {
            Self.thread(group) {
                let r = (try? lane.submit(op, key: key)) ?? "failed"
                results.withLock { $0[key + "/" + op.key] = r }
            }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        submit(.sleep(0.5), key: "a")
        while lane.batchesSent.load(ordering: .relaxed) == 0 { usleep(1_000) }
        submit(.insert("b", "1"), key: "b")  // alone in the queue, below the second connection's spill: it waits
        while lane.waiting == 0 { usleep(1_000) }
        submit(.update("a", "1"), key: "a")  // its key in flight: its caller sends [b] on the second connection
        group.wait()
        #expect(results.withLock { $0 } == ["a/sleep": "slept", "b/b": "1", "a/a": "1"])
        #expect(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < 10)
    }

    /// A batch waiting for a row lock another transaction holds gives up after the lane's lock timeout: its write
    /// waits on the pool instead, and writes of other rows go through the lane meanwhile.
    @Test func aRowLockHeldElsewhereHoldsNoOtherWriteBack() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 4)
        defer { db.close() }
        let t = try Self.table(db, "('x', '0'), ('y', '0')")
        defer { _ = try? db.withConnection { try $0.execute("DROP TABLE \(t)") } }
        let lane = Self.lane(db, table: t)
        let holder = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 1)
        defer { holder.close() }
        let locked = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), group = DispatchGroup()
        Self.thread(group) {
            _ = try? holder.transaction { c in
                _ = try c.rows("SELECT v FROM \(t) WHERE k = 'x' FOR UPDATE")
                locked.signal()
                release.wait()
            }
        }
        locked.wait()
        let x = Mutex<String?>(nil)
        Self.thread(group) {
            let written = try? lane.submit(.update("x", "1"), key: "x")
            x.withLock { $0 = written }
        }
        while lane.writesAlone.load(ordering: .relaxed) == 0 { usleep(1_000) }  // the lane gave up on x after 50 ms: it waits on the pool
        let started = DispatchTime.now().uptimeNanoseconds
        #expect(try lane.submit(.update("y", "1"), key: "y") == "1")
        #expect(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 < 2)
        #expect(x.withLock { $0 } == nil && lane.writesAlone.load(ordering: .relaxed) == 1)
        release.signal()
        group.wait()
        #expect(x.withLock { $0 } == "1")
        #expect(try db.withConnection { try $0.rows("SELECT v FROM \(t) ORDER BY k") } == [[.text("1")], [.text("1")]])
    }

    /// The lane's connection ended by the server (a failover, an idle timeout): the next writes get a new one.
    @Test func aLostLaneConnectionIsReplaced() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 2)
        defer { db.close() }
        let lane = Self.lane(db, table: "unused")
        let pid = try lane.submit(.pid, key: "pid")
        try db.withConnection { c in
            _ = try c.rows("SELECT pg_terminate_backend(?::int)", [.integer(Int64(pid)!)])
            while try c.rows("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?::int", [.integer(Int64(pid)!)]) != [[.integer(0)]] { usleep(2_000) }
        }
        _ = try? lane.submit(.pid, key: "pid")  // may fail, or go to the pool, as the first call after the loss
        let alone = lane.writesAlone.load(ordering: .relaxed)
        let again = try lane.submit(.pid, key: "pid")
        #expect(again != pid && again != "?" && lane.writesAlone.load(ordering: .relaxed) == alone)  // on a new lane connection
    }

    /// Sixteen threads creating runs, logging params (one changed: refused), metrics and finishing them through one
    /// store, some of them into a run deleted meanwhile: another server reads every value back.
    @Test func manyThreadsThroughOneStoreLoseNothing() throws {
        let f = try Fixture("lane", backend: .postgres)
        let s = f.service, exp = try s.createExperiment(name: "lane")
        let ids = Mutex<[Int: [String]]>([:])
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for c in 0..<16 { Self.thread(group) {
            do {
                for i in 0..<12 {
                    let id = try s.createRun(experimentID: exp, userID: "u\(c)").info.runID
                    ids.withLock { $0[c, default: []].append(id) }
                    for p in 0..<3 { try s.logParam(runID: id, key: "p\(p)", value: "\(c)-\(i)-\(p)") }
                    expectError(.invalidParameterValue, "Changing param values is not allowed") { try s.logParam(runID: id, key: "p0", value: "other") }
                    for m in 0..<3 { try s.logMetric(runID: id, Metric(key: "m\(m)", value: Double(c * 100 + i), timestamp: 1, step: Int64(m))) }
                    if i == 5 {
                        try s.deleteRun(id: id)
                        expectError(.invalidParameterValue, "must be in the 'active' state") { try s.logParam(runID: id, key: "late", value: "1") }
                        expectError(.invalidParameterValue, "must be in the 'active' state") {
                            try s.logMetric(runID: id, Metric(key: "m0", value: 1, timestamp: 1, step: 9))
                        }
                        continue
                    }
                    _ = try s.updateRun(id: id, status: .finished, endTime: 1_700_000_000_000 + Int64(i))
                }
            } catch {
                failures.withLock { $0.append("\(c): \(error)") }
            }
        } }
        group.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let other = try f.secondServer()
        for (c, runs) in ids.withLock({ $0 }) {
            #expect(runs.count == 12)
            for (i, id) in runs.enumerated() {
                let r = try other.run(id: id)
                #expect(r.params.map(\.value) == (0..<3).map { "\(c)-\(i)-\($0)" })
                #expect(r.metrics.map(\.value) == [Double](repeating: Double(c * 100 + i), count: 3))
                if i == 5 {
                    #expect(r.info.lifecycleStage == .deleted && r.info.status == .running)
                } else {
                    #expect(r.info.status == .finished && r.info.endTime == 1_700_000_000_000 + Int64(i))
                }
            }
        }
        // Every batch the lane sent was taken as it was: none refused and written again one by one.
        let store = try #require(s.metadata as? PostgresMetadataStore)
        #expect(store.lane.writesSent.load(ordering: .relaxed) > 16 * 12 && store.lane.writesAlone.load(ordering: .relaxed) == 0)
    }
}
