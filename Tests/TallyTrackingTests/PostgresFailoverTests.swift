import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Several hosts in one URI, as libpq takes them: parsed as libpq parses them, the server chosen as libpq chooses it
/// (differential-tested against `psql` on a primary and its streaming standby), and a failover followed — a server
/// that turns read-only is left at its first refused write, and the promoted standby is found among the hosts.
@Suite struct PostgresFailoverTests {
    static func resolve(_ text: String, _ environment: [String: String] = [:]) throws -> PostgresURI {
        try PostgresURITests.resolve(text, environment)
    }

    /// libpq's own reading of a connection URI (`PQconninfoParse`, from the libpq.so.5 the `postgresql` package
    /// brings): its `host` and `port` fields as given (no default filled in); `nil` when libpq is not here or refuses it.
    static func libpqParse(_ uri: String) -> [String: String]? {
        guard let lib = dlopen("libpq.so.5", RTLD_NOW), let parse = dlsym(lib, "PQconninfoParse"), let free = dlsym(lib, "PQconninfoFree") else {
            return nil
        }
        typealias Parse = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> UnsafeMutableRawPointer?
        typealias Free = @convention(c) (UnsafeMutableRawPointer?) -> Void
        guard let options = unsafeBitCast(parse, to: Parse.self)(uri, nil) else { return nil }
        defer { unsafeBitCast(free, to: Free.self)(options) }
        // PQconninfoOption: keyword, envvar, compiled, val, label, dispchar (pointers), dispsize (int).
        let stride = 6 * MemoryLayout<UnsafeRawPointer>.stride + MemoryLayout<Int>.stride
        var out: [String: String] = [:], i = 0
        while let keyword = options.load(fromByteOffset: i * stride, as: UnsafePointer<CChar>?.self) {
            let name = String(cString: keyword)
            if ["host", "port"].contains(name), let v = options.load(fromByteOffset: i * stride + 3 * MemoryLayout<UnsafeRawPointer>.stride, as: UnsafePointer<CChar>?.self) {
                out[name] = String(cString: v)
            }
            i += 1
        }
        return out
    }

    @Test(.enabled(if: libpqParse("postgresql://h") != nil)) func hostListsAreParsedAsLibpqParsesThem() throws {
        for uri in ["postgresql://u@h1,h2/d", "postgresql://u@:5432,:5433/d", "postgresql://u@,/d", "postgresql://u@h1:1,h2:2/d",
                    "postgresql://u@[::1]:1,[fe80::2]/d", "postgresql://u@h1,h2:6002/d", "postgresql://u@/d?host=a,b&port=1,2",
                    "postgresql://u@h/d", "postgresql://u@/d", "postgresql://u@h1,%2Ftmp%2Fpg:7/d", "postgresql://u@h:1/d?host=x,y"] {
            let ours = try PostgresURI.components(uri).filter { ["host", "port"].contains($0.key) }
            #expect(ours == Self.libpqParse(uri), "\(uri)")
        }
        // libpq's port `,` is 5432 for both hosts, whatever PGPORT says.
        #expect(try Self.resolve("postgresql://u@h1,h2/d", ["PGPORT": "7"]).endpoints.map(\.port) == [5432, 5432])
        #expect(try Self.resolve("postgresql://u@:1,:2/d").endpoints.map(\.description) == ["/var/run/postgresql/.s.PGSQL.1", "/var/run/postgresql/.s.PGSQL.2"])
    }

    @Test func hostListsAsLibpqReadsThem() throws {
        func hosts(_ u: PostgresURI) -> [String] { u.endpoints.map(\.description) }
        #expect(hosts(try Self.resolve("postgresql://u@db1:6001,db2:6002/d")) == ["db1:6001", "db2:6002"])
        // A port left out is 5432; an empty host the default socket directory; IPv6 in brackets.
        #expect(hosts(try Self.resolve("postgresql://u@db1,db2:6002/d")) == ["db1:5432", "db2:6002"])
        #expect(hosts(try Self.resolve("postgresql://u@[::1]:6001,[fe80::2]/d")) == ["[::1]:6001", "[fe80::2]:5432"])
        #expect(hosts(try Self.resolve("postgresql://u@/d?host=db1,&port=7")) == ["db1:7", "/var/run/postgresql/.s.PGSQL.7"])
        // The parameters and the environment give lists too: one port for all hosts, or one per host.
        #expect(hosts(try Self.resolve("postgresql://u@/d?host=a,b&port=7,8")) == ["a:7", "b:8"])
        #expect(hosts(try Self.resolve("postgresql://u@/d", ["PGHOST": "a,b,c", "PGPORT": "9"])) == ["a:9", "b:9", "c:9"])
        expectError(.invalidParameterValue, "gives 2 ports for 3 hosts (port=1,2)") { _ = try Self.resolve("postgresql://u@/d?host=a,b,c&port=1,2") }
        expectError(.invalidParameterValue, "gives 2 ports for 3 hosts (port=1,2 (from PGPORT))") {
            _ = try Self.resolve("postgresql://u@/d", ["PGHOST": "a,b,c", "PGPORT": "1,2"])
        }
        expectError(.invalidParameterValue, "Invalid port 'x'") { _ = try Self.resolve("postgresql://u@/d?host=a,b&port=1,x") }
        expectError(.invalidParameterValue, "port (after the host's ':') is not a number") { _ = try Self.resolve("postgresql://u@a:1,b:x/d") }
        // target_session_attrs: what a server that writes can ask for; a standby is refused by name.
        let rw = try Self.resolve("postgresql://u@a,b/d?target_session_attrs=read-write&load_balance_hosts=random")
        #expect(rw.sessionAttributes == .readWrite && rw.loadBalanceHosts)
        #expect(try Self.resolve("postgresql://u@a/d", ["PGTARGETSESSIONATTRS": "primary"]).sessionAttributes == .primary)
        #expect(try Self.resolve("postgresql://u@a/d").sessionAttributes == .any)
        for refused in ["read-only", "standby", "prefer-standby", "readwrite"] {
            expectError(.invalidParameterValue, "target_session_attrs=\(refused) is not supported by Tally") {
                _ = try Self.resolve("postgresql://u@a,b/d?target_session_attrs=\(refused)")
            }
        }
        // Several hosts left to `any` are cautioned about at start (the server logs it); one host, or a choice, is not.
        #expect(try Self.resolve("postgresql://u@a,b/d").hostListCaution?.contains("add target_session_attrs=read-write") == true)
        #expect(try Self.resolve("postgresql://u@a/d").hostListCaution == nil && rw.hostListCaution == nil)
        expectError(.invalidParameterValue, "load_balance_hosts=sometimes is not supported") { _ = try Self.resolve("postgresql://u@a/d?load_balance_hosts=sometimes") }
        // The description names every host and the choice, and reads back the same.
        for text in ["postgresql://u:pw@a:1,b:2/d?target_session_attrs=primary", "postgresql://u@/d?host=/s,b&port=3,4&load_balance_hosts=random",
                     "postgresql://u@a:1/d?target_session_attrs=read-write"] {
            let u = try Self.resolve(text), again = try Self.resolve(u.description)
            #expect(again.endpoints.map(\.description) == u.endpoints.map(\.description), "\(u.description)")
            #expect(again.sessionAttributes == u.sessionAttributes && again.loadBalanceHosts == u.loadBalanceHosts && !u.description.contains("pw"))
        }
        // The URI's password is every host's; without one, each host has its own line in the password file.
        #expect(try Self.resolve("postgresql://u:pw@a,b/d").endpoints.map(\.password) == ["pw", "pw"])
        let home = NSTemporaryDirectory() + "tally-hosts-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try Data("a:*:*:u:first\nb:6002:*:u:second\n".utf8).write(to: URL(fileURLWithPath: home + "/.pgpass"))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: home + "/.pgpass")
        let filed = try PostgresURI(parsing: "postgresql://u@a,b:6002,c/d", environment: ["HOME": home], systemUser: "u")
        #expect(filed.endpoints.map(\.password) == ["first", "second", nil])
        // pg_dump (backups) connects to the one host it is given, with that host's password.
        let env = PostgresProgram.environment(for: filed, at: filed.endpoints[1])
        #expect(env["PGHOST"] == "b" && env["PGPORT"] == "6002" && env["PGPASSWORD"] == "second")
    }

    /// A primary and its streaming standby of their own (`scripts/pg-test start` and `standby`), removed by ``stop()``.
    final class Pair {
        let primaryDir: String, standbyDir: String
        let primary: Int, standby: Int

        init() throws {
            let base = NSTemporaryDirectory() + "tally-failover-\(UInt32.random(in: 0...UInt32.max))"
            primaryDir = base + "-primary"
            standbyDir = base + "-standby"
            primary = try PostgresURI(parsing: try Self.script("start", primaryDir)).port
            do {
                standby = try PostgresURI(parsing: try Self.script("standby", primaryDir, standbyDir)).port
            } catch {
                _ = try? Self.script("stop", primaryDir)
                throw error
            }
        }

        /// Runs `scripts/pg-test` with `arguments`; its output. Refuses to go on when it fails.
        @discardableResult
        static func script(_ arguments: String...) throws -> String {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let p = Process()
            p.executableURL = root.appendingPathComponent("scripts/pg-test")
            p.arguments = arguments
            p.environment = ProcessInfo.processInfo.environment.merging(["PG_TEST_TLS": "0"]) { _, new in new }
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw TrackingError(.internalError, "scripts/pg-test \(arguments.joined(separator: " ")): \(errors)") }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// A URI over `ports` in that order (a port nothing listens on stands for a server that is down).
        func uri(_ ports: [Int], _ query: String = "") -> String {
            "postgresql://tally:tally@" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/tally?sslmode=disable" + query
        }

        /// Runs `sql` as a superuser on the server at `port`, alone; the first cell.
        @discardableResult
        func admin(_ port: Int, _ sql: String) throws -> SQLValue? {
            let db = try PostgresDatabase(uri: try PostgresURI(parsing: uri([port])), poolSize: 1)
            defer { db.close() }
            return try db.withConnection { try $0.rows(sql) }.first?.first
        }

        /// Waits until the standby has replayed everything the primary has written: up to its WAL's insert position
        /// (the test cluster commits without waiting for the WAL's write, so the write position may lag the commits).
        func caughtUp() throws {
            let lsn = try admin(primary, "SELECT pg_current_wal_insert_lsn()::text")!.string!
            for _ in 0..<1500 {
                if try admin(standby, "SELECT pg_last_wal_replay_lsn() >= '\(lsn)'::pg_lsn") == .integer(1) { return }
                Thread.sleep(forTimeInterval: 0.02)
            }
            throw TrackingError(.internalError, "the standby did not catch up")
        }

        func stop() {
            _ = try? Self.script("stop", standbyDir)
            _ = try? Self.script("stop", primaryDir)
        }
    }

    /// A port no server listens on.
    static func deadPort() throws -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// The port of the server libpq (`psql`) connects to for `uri`, `nil` when it connects to none.
    static func libpqPort(_ uri: String) throws -> Int? {
        try PostgresURITests.libpq(uri, "SELECT inet_server_port()", ["HOME": "/nonexistent"]).flatMap { Int($0) }
    }

    /// The port of the server Tally connects to for `uri`, or its error.
    static func tallyPort(_ uri: String) -> Result<Int, TrackingError> {
        do {
            let db = try PostgresDatabase(uri: try PostgresURI(parsing: uri, environment: ["HOME": "/nonexistent"]), poolSize: 1)
            defer { db.close() }
            let port = try db.withConnection { try $0.rows("SELECT inet_server_port()") }.first?.first?.int
            return .success(Int(port ?? 0))
        } catch let e as TrackingError {
            return .failure(e)
        } catch {
            return .failure(TrackingError(.internalError, "\(error)"))
        }
    }

    @Test(.enabled(if: PostgresDatabaseTests.available && PostgresURITests.psql != nil))
    func theServerChosenIsLibpqs() throws {
        let pair = try Pair()
        defer { pair.stop() }
        let (p, s, dead) = (pair.primary, pair.standby, try Self.deadPort())
        let cases: [(ports: [Int], query: String, expected: Int?)] = [
            ([s, p], "", s), ([s, p], "&target_session_attrs=read-write", p), ([s, p], "&target_session_attrs=primary", p),
            ([p, s], "&target_session_attrs=read-write", p), ([dead, s], "", s), ([dead, p, s], "&target_session_attrs=primary", p),
            ([s], "&target_session_attrs=read-write", nil), ([dead, s], "&target_session_attrs=primary", nil),
            // A primary that takes no writes by default is not read-write, but is a primary.
            ([p, s], "&options=-c%20default_transaction_read_only%3Don&target_session_attrs=read-write", nil),
            ([s, p], "&options=-c%20default_transaction_read_only%3Don&target_session_attrs=primary", p),
        ]
        for c in cases {
            let uri = pair.uri(c.ports, c.query)
            #expect(try Self.libpqPort(uri) == c.expected, "libpq: \(uri)")
            switch Self.tallyPort(uri) {
            case .success(let port): #expect(port == c.expected, "\(uri)")
            case .failure(let e):
                #expect(c.expected == nil, "\(uri): \(e)")
                // The start-up error says why for each host.
                #expect(e.message.contains("Cannot reach PostgreSQL at "), "\(e.message)")
                if c.ports.count > 1 { #expect(e.message.contains("127.0.0.1:\(c.ports[0]): "), "\(e.message)") }
                if c.ports.contains(s) { #expect(e.message.contains("a standby (in recovery)"), "\(e.message)") }
            }
        }
        // A server that answers and refuses the login ends the search, as in libpq (the next host is not tried).
        let wrong = pair.uri([s, p]).replacingOccurrences(of: "tally:tally@", with: "tally:wrong@")
        #expect(try Self.libpqPort(wrong) == nil)
        if case .failure(let e) = Self.tallyPort(wrong) {
            #expect(e.message.contains("127.0.0.1:\(s): password authentication failed") && !e.message.contains("127.0.0.1:\(p): "), "\(e.message)")
        } else {
            Issue.record("a refused login went on to the next host")
        }
        // load_balance_hosts=random (libpq 16's, so not asked of this psql): each connection tries the hosts in a
        // random order; those that do not suit are passed over all the same.
        let random = pair.uri([s, dead, p], "&target_session_attrs=read-write&load_balance_hosts=random")
        for _ in 0..<6 { #expect(try Self.tallyPort(random).get() == p) }
        let spread = try (0..<20).map { _ in try Self.tallyPort(pair.uri([s, p], "&load_balance_hosts=random")).get() }
        #expect(Set(spread) == [s, p], "\(spread)")
    }

    /// The primary turns read-only (a fenced or demoted server that still answers), then its standby is promoted:
    /// the write refused on the old primary answers 503 (MLflow's client retries it) and drops the connection; while
    /// no host takes writes the error says why for each; once the standby is promoted, requests go on there, with
    /// everything written before. A backup before it dumps the primary, though the standby is listed first.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func aFailoverIsFollowed() throws {
        let pair = try Pair()
        defer { pair.stop() }
        let uri = try PostgresURI(parsing: pair.uri([pair.standby, pair.primary], "&target_session_attrs=read-write"))
        let dir = NSTemporaryDirectory() + "tally-failover-data-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try PostgresMetadataStore(uri: uri, poolSize: 2, now: 1)
        defer { store.close() }
        let service = TrackingService(metadata: store, metrics: try Fixture.metricStore(dir + "/metrics"), clock: { 1_700_000_000_000 })
        let exp = try service.createExperiment(name: "before")
        let run = try service.createRun(experimentID: exp, runName: "r1").info.runID
        try service.logParam(runID: run, key: "lr", value: "0.1")
        try service.logMetric(runID: run, Metric(key: "loss", value: 0.5, timestamp: 1, step: 1))
        #expect(try store.db.withConnection { try $0.rows("SELECT inet_server_port()") } == [[.integer(Int64(pair.primary))]])
        // pg_dump runs against the host whose snapshot it imports (the standby, listed first, has no such snapshot).
        let target = BackupTests.temporaryPath("failover")
        defer { try? FileManager.default.removeItem(atPath: target) }
        let summary = try service.backup(into: target, dataDirectory: DataDirectory(dir))
        #expect(summary.metadataFile == "metadata.pgdump")
        #expect(try PostgresBackupTests.runNames(DataDirectory(target).metadataDump) == ["r1"])
        try pair.caughtUp()

        // The old primary takes no more writes: each connection on it is dropped at its first refused write. (The
        // pool's periodic check of the server would find the fence first after PostgresDatabase.recheckMillis: put
        // off here, for the refused write's own path; aClusterFollowsAFailover relies on the check.)
        store.db.recheckAt.store(.max, ordering: .relaxed)
        try pair.admin(pair.primary, "ALTER SYSTEM SET default_transaction_read_only = on")
        try pair.admin(pair.primary, "SELECT pg_reload_conf()")
        Thread.sleep(forTimeInterval: 0.2)  // the reload reaches the other sessions
        // A transaction's write (an experiment created) as well as a request's.
        expectError(.temporarilyUnavailable, "takes no writes on the server reached") { _ = try service.createExperiment(name: "fenced") }
        // No host suits now: the error names both, and why.
        var refused = ""
        for _ in 0..<10 {  // until the pool's other connection on the old primary is dropped too
            do {
                _ = try service.createExperiment(name: "fenced")
            } catch let e as TrackingError {
                #expect(e.code == .temporarilyUnavailable, "\(e)")
                refused = e.message
                if e.message.contains("cannot be reached") { break }
            }
        }
        #expect(refused.contains("127.0.0.1:\(pair.primary): takes no writes by default"), "\(refused)")
        #expect(refused.contains("127.0.0.1:\(pair.standby): a standby (in recovery)"), "\(refused)")
        expectError(.temporarilyUnavailable, "") { try store.ping() }  // not ready

        // The failover: the standby is promoted while the old primary still answers (read-only). Writes of every kind
        // go on on the new primary — a transaction's (an experiment created) as well as the lane's and the pool's —
        // and no connection is left on the old one to serve reads from it.
        try Pair.script("promote", pair.standbyDir)
        var retried = 0
        func retrying(_ body: () throws -> Void) throws {
            while true {
                do { return try body() } catch let e as TrackingError where e.code == .temporarilyUnavailable && retried < 5 { retried += 1 }
            }
        }
        try retrying { try store.ping() }
        try retrying { _ = try service.createExperiment(name: "after") }
        try retrying { try service.logParam(runID: run, key: "after", value: "3") }
        try retrying { try service.logMetric(runID: run, Metric(key: "loss", value: 0.25, timestamp: 2, step: 2)) }
        let seen = try service.run(id: run)
        #expect(Set(seen.params.map(\.key)) == ["lr", "after"])
        #expect(seen.metrics == [Metric(key: "loss", value: 0.25, timestamp: 2, step: 2)])
        #expect(try service.experiment(named: "before").experimentID == exp)
        let ports = try (0..<4).map { _ in try store.db.withConnection { try $0.rows("SELECT inet_server_port()") } }
        #expect(ports.allSatisfy { $0 == [[.integer(Int64(pair.standby))]] }, "\(ports)")
        // The old primary goes away for good: nothing changes for the server.
        try Pair.script("kill", pair.primaryDir)
        _ = try service.createExperiment(name: "later")
    }
    /// A cluster's servers (docs/scale-out.md) across the failover: their leases and shared log are rows of the
    /// database, so they move with it. The run's owner keeps its lease under the same epoch (no takeover, no replay),
    /// its writes go on once the standby is promoted, the other server reads every acknowledged point from the log
    /// there, a refused write leaves nothing behind, and the heartbeat renews the leases again.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func aClusterFollowsAFailover() throws {
        let pair = try Pair()
        defer { pair.stop() }
        let uri = try PostgresURI(parsing: pair.uri([pair.standby, pair.primary], "&target_session_attrs=read-write"))
        let dir = NSTemporaryDirectory() + "tally-cluster-failover-\(UInt32.random(in: 0...UInt32.max))"
        var closers: [() -> Void] = []
        defer {
            for c in closers.reversed() { c() }
            try? FileManager.default.removeItem(atPath: dir)
        }
        func server(_ node: String) throws -> TrackingService {
            let meta = try PostgresMetadataStore(uri: uri, poolSize: 2, now: 1)
            let db = try PostgresDatabase(uri: uri, poolSize: 2)
            let metrics = try MetricStore(directory: dir + "/metrics-" + node, configuration: ClusterNode.storeConfiguration(StoreConfiguration()))
            let cluster = try ClusterNode(state: ClusterState(db: db, node: node, url: "http://\(node).test", leaseMillis: 30_000),
                                          metadata: meta, metrics: metrics)
            closers.append { cluster.stop(); try? metrics.close(); meta.close(); db.close() }
            return TrackingService(metadata: meta, metrics: metrics, cluster: cluster, clock: { 1_700_000_000_000 })
        }
        let a = try server("a"), b = try server("b")
        func point(_ step: Int) -> Metric { Metric(key: "loss", value: Double(step) / 4, timestamp: 1, step: Int64(step)) }
        let run = try a.createRun(experimentID: "0", runName: "r").info.runID
        func steps(_ s: TrackingService) throws -> [Int64] { try s.history(runID: run, key: "loss").map(\.step) }
        for i in 0..<20 { try a.logBatch(runID: run, metrics: [point(i)]) }
        #expect(try steps(b) == Array(0..<20))
        #expect(a.cluster!.ownedRuns == [run: 1])
        try pair.caughtUp()

        // Fenced, and the standby promoted half a second later, as a failover manager would. The pools' periodic
        // check of the server (made due here, not waited for) finds the fence; a write arriving then waits inside the
        // server for a suitable host and goes through on the new primary: no error reaches the client.
        try pair.admin(pair.primary, "ALTER SYSTEM SET default_transaction_read_only = on")
        try pair.admin(pair.primary, "SELECT pg_reload_conf()")
        Thread.sleep(forTimeInterval: 0.2)
        let fenced = ContinuousClock.now
        let promotion = DispatchGroup(), promotionError = Mutex<String?>(nil), standbyDir = pair.standbyDir
        DispatchQueue.global().async(group: promotion) {
            Thread.sleep(forTimeInterval: 0.5)
            do { try Pair.script("promote", standbyDir) } catch { promotionError.withLock { $0 = "\(error)" } }
        }
        defer { promotion.wait() }
        let store = try #require(a.metadata as? PostgresMetadataStore)
        for pool in [store.db, store.keyDB, a.cluster!.state.db] { pool.recheckAt.store(0, ordering: .relaxed) }
        for i in 20..<40 { try a.logBatch(runID: run, metrics: [point(i)]) }
        promotion.wait()
        #expect(promotionError.withLock { $0 } == nil)
        #expect(ContinuousClock.now - fenced > .milliseconds(500), "the first write waited for the promotion")
        #expect(a.cluster!.ownedRuns == [run: 1], "the lease came through the failover: no takeover")
        // b has only read since the fence, so nothing refused told its connections the old primary is read-only: they
        // leave it at the pool's next check of the server (within PostgresDatabase.recheckMillis).
        Thread.sleep(forTimeInterval: Double(PostgresDatabase.recheckMillis) / 1000)
        #expect(try steps(b) == Array(0..<40))
        #expect(try steps(a) == Array(0..<40))
        a.cluster!.beat()
        #expect(a.cluster!.heartbeatFailure == nil)
        #expect(throws: OwnedElsewhere.self) { try b.logBatch(runID: run, metrics: [point(40)]) }
        #expect(try b.run(id: run).metrics == [point(39)])

        // The old primary gone for good changes nothing.
        try Pair.script("kill", pair.primaryDir)
        try a.logBatch(runID: run, metrics: [point(40)])
        #expect(try steps(b).last == 40)
    }
    /// A server that keeps the connection and stops answering (its backend stopped with SIGSTOP, as a machine that
    /// hangs): the pool's check of the server waits `connect_timeout`, not the statement limit, then drops the
    /// connection and makes another (on a backend that answers). Only on the test cluster `scripts/pg-test` started on
    /// this machine, run as root (the backend is the `postgres` user's), and only a process named `postgres` is stopped.
    @Test(.enabled(if: PostgresDatabaseTests.available && getuid() == 0 && ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_SOCKET_DIR"] != nil))
    func aServerThatStopsAnsweringIsLeftAfterTheConnectTimeout() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        var uri = scratch.uri
        uri.sessionAttributes = .readWrite
        uri.connectTimeout = 2
        let db = try PostgresDatabase(uri: uri, poolSize: 1)
        defer { db.close() }
        func backend() throws -> Int32 { Int32(try db.withConnection { try $0.rows("SELECT pg_backend_pid()") }[0][0].int!) }
        let hung = try backend()
        let name = try String(contentsOfFile: "/proc/\(hung)/comm", encoding: .utf8)
        try #require(name.trimmingCharacters(in: .whitespacesAndNewlines) == "postgres", "pid \(hung) is '\(name)', not this machine's backend")
        try #require(kill(hung, SIGSTOP) == 0)
        defer { kill(hung, SIGCONT) }
        db.recheckAt.store(0, ordering: .relaxed)
        let start = ContinuousClock.now
        let next = try backend()
        let waited = ContinuousClock.now - start
        #expect(next != hung)
        #expect(waited >= .seconds(2) && waited < .seconds(8), "\(waited)")
    }
}
