import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Tally behind PgBouncer in transaction mode (`scripts/pg-test bouncer`: two server connections shared by every
/// client, each handed out for one transaction), as a managed database's pooler often is. With `pool_mode=transaction`
/// in the URI, servers writing and reading at once through it see every write, and nothing of a session (a prepared
/// statement, a setting) stays behind on the server connections for another client. Without it, a prepared statement
/// the next server connection does not know is a 503 naming the parameter, and the request after it goes through.
@Suite struct PostgresPoolerTests {
    /// The bouncer of `scripts/pg-test run` (set when Debian's pgbouncer is installed: `make test` installs it).
    static let uri: String? = ProcessInfo.processInfo.environment["TALLY_TEST_PGBOUNCER_URI"].flatMap { $0.isEmpty ? nil : $0 }
    /// Whether the suite runs: with a bouncer, or wherever PostgreSQL is required (where a missing bouncer fails).
    static let available = PostgresDatabaseTests.available
        && (uri != nil || ProcessInfo.processInfo.environment["TALLY_REQUIRE_POSTGRES"] != nil)

    /// The bouncer's URI for the scratch database `database` (the bouncer serves any database name of the cluster).
    static func through(_ database: String, _ query: String = "") throws -> PostgresURI {
        var u = try PostgresURI(parsing: try #require(uri, "no PgBouncer: scripts/bootstrap installs Debian's pgbouncer") + query)
        u.database = database
        return u
    }

    /// A scratch database reached through the bouncer (`query` added to its URI), a store on it and a service with a
    /// metric store of its own (in `dir` + `metrics`); all of it removed when it goes.
    final class Through {
        let scratch: ScratchDatabase, store: PostgresMetadataStore, service: TrackingService
        let dir = NSTemporaryDirectory() + "tally-pooler-\(UInt32.random(in: 0...UInt32.max))"

        init(_ query: String, poolSize: Int, metrics: String = "") throws {
            let scratch = try ScratchDatabase()
            do {
                let store = try PostgresMetadataStore(uri: try PostgresPoolerTests.through(scratch.name, query), poolSize: poolSize, now: 1)
                do {
                    service = TrackingService(metadata: store, metrics: try Fixture.metricStore(dir + metrics), clock: { 1_700_000_000_000 })
                } catch {
                    store.close()
                    throw error
                }
                self.store = store
            } catch {
                try? scratch.drop()
                throw error
            }
            self.scratch = scratch
        }

        deinit {
            store.close()
            try? FileManager.default.removeItem(atPath: dir)
            try? scratch.drop()
        }
    }

    /// What each server connection of the bouncer answers to `sql`: two transactions held open at once (each pins a
    /// server connection until it ends) reach the two.
    static func everyServerConnection(_ database: String, _ sql: String) throws -> [SQLValue?] {
        let u = try through(database)
        let dbs = try (0..<2).map { _ in try PostgresDatabase(uri: u, poolSize: 1) }
        defer { for db in dbs { db.close() } }
        let answers = Mutex<[Result<SQLValue?, any Error>]>([])
        let gate = DispatchGroup()
        for db in dbs {
            DispatchQueue.global().async(group: gate) {
                let answer = Result {
                    try db.transaction { c -> SQLValue? in
                        let a = try c.rows(sql).first?.first
                        Thread.sleep(forTimeInterval: 0.3)  // the other transaction starts meanwhile, on the other
                        return a
                    }
                }
                answers.withLock { $0.append(answer) }
            }
        }
        gate.wait()
        return try answers.withLock { $0 }.map { try $0.get() }
    }

    @Test(.enabled(if: available)) func serversSharingTwoServerConnectionsSeeEveryWrite() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let uri = try Self.through(scratch.name, "?pool_mode=transaction")
        let dir = NSTemporaryDirectory() + "tally-pooler-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Three servers (12 connections over the bouncer's two); the first migrates the schema through it.
        let services = try (0..<3).map { i in
            TrackingService(metadata: try PostgresMetadataStore(uri: uri, poolSize: 4, now: 1), metrics: try Fixture.metricStore(dir + "/m\(i)"),
                            clock: { 1_700_000_000_000 })
        }
        defer { for s in services { (s.metadata as? PostgresMetadataStore)?.close() } }
        let exp = try services[0].createExperiment(name: "pooled")
        let created = Mutex<[String: Int]>([:]), failures = Mutex<[String]>([])
        let gate = DispatchGroup()
        for (i, s) in services.enumerated() {
            for t in 0..<2 {
                DispatchQueue.global().async(group: gate) {
                    do {
                        for n in 0..<15 {
                            let run = try s.createRun(experimentID: exp, runName: "r\(i)-\(t)-\(n)").info.runID
                            for k in 0..<5 { try s.logParam(runID: run, key: "p\(k)", value: "\(n)") }
                            for step in 0..<3 { try s.logMetric(runID: run, Metric(key: "loss", value: Double(n) + Double(step) / 10, timestamp: 1, step: Int64(step))) }
                            try s.setTag(runID: run, key: "server", value: "\(i)")
                            _ = try s.updateRun(id: run, status: .finished, endTime: 1_700_000_000_001)
                            created.withLock { $0[run] = n }
                        }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
        }
        gate.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        // Every run as written, read through another server.
        let runs = created.withLock { $0 }
        #expect(runs.count == 90)
        for (k, (run, n)) in runs.enumerated() {
            let seen = try services[(k + 1) % 3].run(id: run)
            #expect(seen.params.map(\.value) == Array(repeating: "\(n)", count: 5))
            #expect(seen.metrics == [Metric(key: "loss", value: Double(n) + 0.2, timestamp: 1, step: 2)])
            #expect(seen.info.status == .finished && seen.tags.contains { $0.key == "server" })
        }
        let page = try services[2].searchRuns(experimentIDs: [exp], filter: "params.p0 = '7' and metrics.loss > 7", maxResults: 1000)
        #expect(page.items.count == 6)
        // Nothing of a session stayed behind on the server connections: no statement prepared, the lane's settings
        // (lock timeout, generic plans, no sequential scans) not made.
        #expect(try Self.everyServerConnection(scratch.name, "SELECT count(*) FROM pg_prepared_statements") == [.integer(0), .integer(0)])
        let settings = "SELECT current_setting('lock_timeout') || ' ' || current_setting('plan_cache_mode') || ' ' || current_setting('enable_seqscan')"
        #expect(try Self.everyServerConnection(scratch.name, settings) == [.text("0 auto on"), .text("0 auto on")])
    }

    /// Eight clients logging to one run at once (batches with params, tags and a key new to the database, and single
    /// points), as the interop suite's `test_concurrent_requests_to_one_run` does, over the bouncer's two server
    /// connections: every write lands. (In process this did not hang with the keys registered inside the transaction;
    /// through `tally server` it did, deterministically: the interop test behind the bouncer is the one that catches it.)
    @Test(.enabled(if: available)) func transactionsNeverWaitForASecondConnection() throws {
        let setup = try Through("?pool_mode=transaction", poolSize: 8), service = setup.service
        defer { withExtendedLifetime(setup) {} }  // the store stays open until the test ends
        let run = try service.createRun(experimentID: "0", runName: "r").info.runID
        let failures = Mutex<[String]>([])
        let gate = DispatchGroup()
        for w in 0..<8 {
            DispatchQueue.global().async(group: gate) {
                do {
                    for b in 0..<5 {
                        let points = (0..<100).map { i in Metric(key: "w\(w)", value: Double(i), timestamp: 1, step: Int64(b * 100 + i)) }
                        try service.logBatch(runID: run, metrics: points, params: [KeyValue(key: "p\(w)", value: "same")],
                                             tags: [KeyValue(key: "t\(w)", value: "\(b)")])
                        try service.logMetric(runID: run, Metric(key: "shared", value: Double(w), timestamp: 1, step: Int64(b)))
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(gate.wait(timeout: .now() + 60) == .success, "the clients finished")
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let seen = try service.run(id: run)
        #expect(seen.metrics.count == 9 && seen.params.count == 8 && seen.tags.filter { $0.key.hasPrefix("t") }.allSatisfy { $0.value == "4" })
    }

    /// A backup's pg_dump would leave its session settings (search_path = '') on the pooler's server connections:
    /// refused, saying what to do instead; without the metadata it goes on.
    @Test(.enabled(if: available)) func backupsThroughThePoolerLeaveTheMetadataOut() throws {
        let setup = try Through("?pool_mode=transaction", poolSize: 2, metrics: "/metrics"), service = setup.service
        defer { withExtendedLifetime(setup) {} }  // the store stays open until the test ends
        let target = BackupTests.temporaryPath("pooler")
        defer { try? FileManager.default.removeItem(atPath: target) }
        _ = try service.createRun(experimentID: "0", runName: "r")
        expectError(.invalidParameterValue, "copy the rest with tally backup --no-metadata") {
            _ = try service.backup(into: target, dataDirectory: DataDirectory(setup.dir))
        }
        #expect(!FileManager.default.fileExists(atPath: target + "/metadata.pgdump"))
    }

    /// A key id another server added, met while decoding a run's latest values inside a transaction, is read on the
    /// transaction's own connection: with the key connection held elsewhere the read still answers at once (it
    /// waited for the key connection's pool before: `NoFreeConnection` after `poolWait`).
    @Test(.enabled(if: PostgresDatabaseTests.available)) func keysReadInsideATransactionUseItsConnection() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let a = try PostgresMetadataStore(uri: scratch.uri, poolSize: 2, now: 1)
        defer { a.close() }
        let dir = NSTemporaryDirectory() + "tally-pooler-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let b = try PostgresMetadataStore(uri: scratch.uri, poolSize: 2, now: 1)
        defer { b.close() }
        let service = TrackingService(metadata: b, metrics: try Fixture.metricStore(dir), clock: { 1_700_000_000_000 })
        let run = try service.createRun(experimentID: "0", runName: "r").info.runID
        try service.logBatch(runID: run, metrics: [Metric(key: "from-b", value: 1, timestamp: 1, step: 1)])
        // a's key connection busy for a while (a reload in another thread would queue behind it).
        let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? a.keyDB.withConnection { _ in
                held.signal()
                _ = release.wait(timeout: .now() + 30)
            }
        }
        held.wait()
        defer { release.signal() }
        let start = ContinuousClock.now
        let seen = try a.transaction { try a.latestMetrics(runID: run, keys: ["from-b"]) }
        #expect(seen == [Metric(key: "from-b", value: 1, timestamp: 1, step: 1)])
        #expect(ContinuousClock.now - start < .seconds(5), "read on the transaction's connection, not the key connection's")
    }

    @Test(.enabled(if: available)) func withoutTheParameterALostStatementIsA503NamingIt() throws {
        let setup = try Through("", poolSize: 1), service = setup.service
        defer { withExtendedLifetime(setup) {} }  // the store stays open until the test ends
        let run = try service.createRun(experimentID: "0", runName: "r").info.runID
        _ = try service.run(id: run)  // its statements prepared on the server connection this one had
        // The bouncer closes its server connections as they come free: the next transaction gets a fresh one.
        var admin = try Self.through("pgbouncer")
        admin.tls = .disable
        #expect(try PostgresURITests.libpq(admin.description, "RECONNECT", ["PGPASSWORD": "tally"]) != nil)
        expectError(.temporarilyUnavailable, "add pool_mode=transaction to the backend store URI") { _ = try service.run(id: run) }
        #expect(try service.run(id: run).info.runID == run, "the connection was dropped: the next prepares afresh")
    }
}
