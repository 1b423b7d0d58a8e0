import Foundation
import NIOCore
import Synchronization
import Testing
@testable import TallyTracking

/// The PostgreSQL layer under the metadata store: URIs as MLflow deployments write them, and — against the real
/// server `make test` starts (`scripts/pg-test run`, its URI in `TALLY_TEST_POSTGRES_URI`) — binds and cells of every
/// kind, constraint errors, transactions, serializable retries, reconnection after a lost connection, and clear
/// errors for a database that cannot be reached.
@Suite struct PostgresDatabaseTests {
    /// The test cluster's URI; `make test` always provides one (and sets `TALLY_REQUIRE_POSTGRES`, so a missing one
    /// fails instead of skipping).
    static let uri = ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_URI"]
    static let available = uri != nil

    @Test func clusterIsThereWhenRequired() {
        if ProcessInfo.processInfo.environment["TALLY_REQUIRE_POSTGRES"] != nil {
            #expect(Self.available, "TALLY_TEST_POSTGRES_URI is not set: run the tests through scripts/pg-test run")
        }
    }

    @Test func uris() throws {
        let u = try PostgresURI(parsing: "postgresql+psycopg2://ml%40flow:p%3Ass@db.example.com:6543/track%20ing?sslmode=require&application_name=x")
        #expect(u.user == "ml@flow" && u.password == "p:ss" && u.host == "db.example.com" && u.port == 6543 && u.database == "track ing")
        #expect(u.tls == .require && !u.description.contains("p:ss"))
        let v = try PostgresURI(parsing: "postgres://alice@[::1]/db")
        #expect(v.host == "::1" && v.port == 5432 && v.password == nil && v.tls == .prefer && v.description == "postgresql://alice@[::1]:5432/db")
        #expect(try PostgresURI(parsing: "postgresql://bob:x@h").database == "bob")
        #expect(try PostgresURI(parsing: "postgresql://u@h:1/d?sslmode=verify-full").tls == .verifyFull)
        let c = try PostgresURI(parsing: "postgresql+psycopg://u@h:1/d?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem&sslcert=/c.pem&sslkey=/k.pem")
        #expect(c.tls == .verifyCA && c.rootCertificate == "/etc/ca.pem" && c.clientCertificate == "/c.pem" && c.clientKey == "/k.pem")
        // A certificate without a key named: libpq's default key (PostgresURITests has the files themselves).
        #expect(try PostgresURI(parsing: "postgresql://u@h/d?sslcert=/c.pem", environment: ["HOME": "/h"]).clientKey == "/h/.postgresql/postgresql.key")
        #expect(try PostgresURI(parsing: "postgresql://u@[::1]:7/d").address == "[::1]:7")
        // A password as SQLAlchemy takes it (MLflow's URIs): `/`, `?` and `:` unencoded, up to the first `@`.
        let p = try PostgresURI(parsing: "postgresql+psycopg2://tally:ab?c/d:e@db:5433/tally?sslmode=require")
        #expect(p.user == "tally" && p.password == "ab?c/d:e" && p.host == "db" && p.port == 5433 && p.database == "tally" && p.tls == .require)
        let q = try PostgresURI(parsing: "postgresql://db/tally?application_name=a@b")  // no user: an `@` past a `/` is not one
        #expect(q.host == "db" && q.database == "tally" && q.password == nil)
        expectError(.invalidParameterValue, "write it as %40") { _ = try PostgresURI(parsing: "postgresql://u:p@ss@db/t") }
        do { _ = try PostgresURI(parsing: "postgresql://u:p@secret-tail@db/t") } catch { #expect(!"\(error)".contains("secret-tail")) }
        // libpq's rules: a CA file turns require into verify-ca; sslrootcert=system is the system's roots with verify-full.
        #expect(try PostgresURI(parsing: "postgresql://u@h/d?sslmode=require&sslrootcert=/ca.pem").tls == .verifyCA)
        let sys = try PostgresURI(parsing: "postgresql://u@h/d?sslrootcert=system")
        #expect(sys.tls == .verifyFull && sys.rootCertificate == nil)
        #expect(try PostgresURI(parsing: "postgresql://u@h:1/d?sslmode=disable").tls == .disable)
        expectError(.invalidParameterValue, "must start with") { _ = try PostgresURI(parsing: "mysql://u@h/d") }
        expectError(.invalidParameterValue, "Invalid port '99999'") { _ = try PostgresURI(parsing: "postgresql://u@h:99999/d") }
        expectError(.invalidParameterValue, "Unknown sslmode 'maybe'") { _ = try PostgresURI(parsing: "postgresql://u@h/d?sslmode=maybe") }
        // No host: libpq's default socket directory (PostgresURITests has the rest of libpq's defaults).
        #expect(try PostgresURI(parsing: "postgresql://u:p@/d", environment: [:]).socketPath == "/var/run/postgresql/.s.PGSQL.5432")
        // Unix-domain sockets, as libpq takes them: a percent-encoded directory as the host, or the host parameter.
        let w = try PostgresURI(parsing: "postgresql://u@%2Fvar%2Frun%2Fpostgresql:5433/d")
        #expect(w.host == "/var/run/postgresql" && w.socketPath == "/var/run/postgresql/.s.PGSQL.5433" && w.address == w.socketPath)
        let x = try PostgresURI(parsing: "postgresql://u:p@/d?host=%2Ftmp%2Fpg&sslmode=disable")
        #expect(x.socketPath == "/tmp/pg/.s.PGSQL.5432" && x.password == "p" && x.database == "d" && !x.description.contains("p@"))
        #expect(try PostgresURI(parsing: x.description).socketPath == x.socketPath)
        #expect(try PostgresURI(parsing: "postgresql://u@h:1/d?host=/s").socketPath == "/s/.s.PGSQL.1")
        #expect(u.socketPath == nil && u.address == "db.example.com:6543")
    }

    /// TLS as libpq's sslmodes promise it, against the test cluster's TLS (scripts/pg-test: a test CA, a server
    /// certificate for `localhost` only, a client certificate for the role `tally_cert`).
    /// Connections closed over TLS close to the end: their sockets are released (NIOSSL waits for the server's
    /// close_notify, which only a thread reading the connection receives), not left open for ever.
    @Test func tlsConnectionsReleaseTheirSocketsWhenClosed() throws {
        let tcp = try PostgresURI(parsing: Self.uri!)
        let uri = try PostgresURI(parsing: "postgresql://tally:tally@127.0.0.1:\(tcp.port)/tally?sslmode=require")
        func descriptors() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count }
        let before = try descriptors()
        for _ in 0..<5 {
            let db = try PostgresDatabase(uri: uri, poolSize: 1)
            #expect(try db.withConnection { try $0.rows("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") } == [[.integer(1)]])
            db.close()
        }
        // other suites run beside this one and open descriptors of their own: five leaked sockets would show above them
        var after = try descriptors()
        for _ in 0..<50 where after >= before + 5 {
            Thread.sleep(forTimeInterval: 0.05)
            after = try descriptors()
        }
        #expect(after < before + 5, "\(before) descriptors before, \(after) after")
    }

    @Test(.enabled(if: available && !(ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_TLS_DIR"] ?? "").isEmpty))
    func tlsAsTheURIAsks() throws {
        let tcp = try PostgresURI(parsing: Self.uri!)
        let dir = ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_TLS_DIR"]!
        func encrypted(_ text: String) throws -> Bool {
            let db = try PostgresDatabase(uri: try PostgresURI(parsing: text), poolSize: 1)
            defer { db.close() }
            return try db.withConnection { try $0.rows("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") } == [[.integer(1)]]
        }
        let base = "postgresql://tally:tally@127.0.0.1:\(tcp.port)/tally"
        #expect(try !encrypted(base + "?sslmode=disable"))
        #expect(try encrypted(base))  // prefer: the server offers TLS
        #expect(try encrypted(base + "?sslmode=require"))  // any certificate
        // verify-ca: the chain, not the name (the certificate names localhost, the URI 127.0.0.1); require with a CA
        // file is verify-ca (libpq), so a file that is not the server's CA refuses it.
        #expect(try encrypted(base + "?sslmode=verify-ca&sslrootcert=\(dir)/ca.crt"))
        expectError(.internalError, "Cannot reach PostgreSQL at 127.0.0.1:\(tcp.port)") {
            _ = try encrypted(base + "?sslmode=require&sslrootcert=\(dir)/client.crt")
        }
        // verify-full: the name too, so only `localhost` passes; and a chain to the system's roots fails.
        #expect(try encrypted("postgresql://tally:tally@localhost:\(tcp.port)/tally?sslmode=verify-full&sslrootcert=\(dir)/ca.crt"))
        for refused in [base + "?sslmode=verify-full&sslrootcert=\(dir)/ca.crt", base + "?sslmode=verify-ca"] {
            expectError(.internalError, "Cannot reach PostgreSQL at 127.0.0.1:\(tcp.port)") { _ = try encrypted(refused) }
        }
        // A client certificate logs in the role it names, without a password.
        let cert = "postgresql://tally_cert@127.0.0.1:\(tcp.port)/tally?sslmode=verify-ca&sslrootcert=\(dir)/ca.crt&sslcert=\(dir)/client.crt&sslkey=\(dir)/client.key"
        #expect(try encrypted(cert))
        expectError(.internalError, "Cannot reach PostgreSQL at 127.0.0.1:\(tcp.port)") {
            _ = try encrypted("postgresql://tally_cert@127.0.0.1:\(tcp.port)/tally?sslmode=verify-ca&sslrootcert=\(dir)/ca.crt")
        }
        // A certificate file that is not there: the same clear start-up error, before any connection.
        expectError(.internalError, "Cannot reach PostgreSQL at 127.0.0.1:\(tcp.port)") {
            _ = try encrypted(base + "?sslmode=verify-ca&sslrootcert=\(dir)/missing.crt")
        }
    }

    @Test(.enabled(if: available && ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_SOCKET_DIR"] != nil))
    func connectsOverTheUnixSocket() throws {
        let tcp = try PostgresURI(parsing: Self.uri!)
        let dir = ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_SOCKET_DIR"]!
        let uri = try PostgresURI(parsing: "postgresql://\(tcp.user):\(tcp.password ?? "")@:\(tcp.port)/\(tcp.database)?host=\(dir)")
        let db = try PostgresDatabase(uri: uri)
        defer { db.close() }
        #expect(try db.withConnection { try $0.rows("SELECT ? + 1, inet_server_addr() IS NULL", [.integer(41)]) } == [[.integer(42), .integer(1)]])
        // A socket directory where no server listens: the start-up error names the socket.
        expectError(.internalError, "Cannot reach PostgreSQL at \(dir)/nowhere/.s.PGSQL.\(tcp.port)") {
            _ = try PostgresDatabase(uri: try PostgresURI(parsing: "postgresql://\(tcp.user)@:\(tcp.port)/d?host=\(dir)/nowhere"))
        }
    }

    /// A call waits for a free connection only so long (in an outage every holder spends its retry budget
    /// reconnecting): then it fails, which a request answers with 503; a connection that comes free serves again.
    @Test(.enabled(if: available)) func waitingForAConnectionIsBounded() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1, poolWait: .milliseconds(200))
        defer { db.close() }
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread {
            _ = try? db.withConnection { _ in
                holding.signal()
                release.wait()
            }
            done.signal()
        }.start()
        holding.wait()
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            _ = try db.withConnection { try $0.rows("SELECT 1") }
            Issue.record("a call got a connection the pool did not have")
        } catch let e as PostgresError {
            #expect(e.sqlState == nil && e.message == "none of its 1 pooled connection(s) came free within 0.2 s", "\(e)")
        }
        #expect(DispatchTime.now().uptimeNanoseconds - start < 5_000_000_000)
        release.signal()
        done.wait()
        #expect(try db.withConnection { try $0.rows("SELECT 1") } == [[.integer(1)]])
        let store = PostgresMetadataStore.trackingError(PostgresError(PostgresDatabase.NoFreeConnection(poolSize: 8, waited: .seconds(10)), sql: nil), db.uri)
        #expect(store.code == .temporarilyUnavailable && store.message.hasSuffix("none of its 8 pooled connection(s) came free within 10 s"), "\(store)")
    }

    @Test(.enabled(if: available)) func valuesRoundTrip() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 2)
        defer { db.close() }
        let t = "rt_\(UInt32.random(in: 0...UInt32.max))"
        try db.withConnection { c in
            try c.execute("CREATE TABLE \(t) (i BIGINT, d DOUBLE PRECISION, s TEXT, b BYTEA, flag BOOLEAN); CREATE UNIQUE INDEX \(t)_i ON \(t) (i)")
            let rows: [[SQLValue]] = [
                [.integer(.max), .real(.nan), .text("it's \"quoted\" ? ünïcode 🎯"), .blob([0, 255, 7]), .null],
                [.integer(.min), .real(-.infinity), .text(""), .blob([]), .null],
                [.integer(0), .null, .null, .null, .null],
            ]
            for r in rows { try c.run("INSERT INTO \(t) (i, d, s, b) VALUES (?, ?, ?, ?)", Array(r.prefix(4))) }
            let back = try c.rows("SELECT i, d, s, b, flag FROM \(t) ORDER BY i")
            #expect(back[0][0] == .integer(.min) && back[0][1] == .real(-.infinity) && back[0][2] == .text("") && back[0][3] == .blob([]))
            #expect(back[1] == [.integer(0), .null, .null, .null, .null])
            #expect(back[2][0] == .integer(.max) && back[2][1].double?.isNaN == true && back[2][2] == rows[0][2] && back[2][3] == .blob([0, 255, 7]))
            #expect(try c.rows("SELECT ? = 'a?b', '?'", [.text("a?b")]) == [[.integer(1), .text("?")]])  // ? inside quotes stays
            do {
                try c.run("INSERT INTO \(t) (i) VALUES (?)", [.integer(0)])
                Issue.record("expected a unique violation")
            } catch let e as PostgresError {
                #expect(e.isConstraint && e.sqlState == "23505", "\(e)")
            }
            #expect(try c.run("UPDATE \(t) SET s = 'x' WHERE i <> ?", [.integer(0)]) == 2)
            try c.execute("DROP TABLE \(t)")
        }
    }

    /// Statements with binds are prepared once per connection and reused; the values' types are part of the text
    /// (a NULL and a number in one place are two statements); past the bound statements still run, unprepared; a
    /// prepared statement's errors keep their SQLSTATE.
    @Test(.enabled(if: available)) func preparedStatementsAreReusedAndBounded() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1)
        defer { db.close() }
        let t = "ps_\(UInt32.random(in: 0...UInt32.max))"
        try db.withConnection { c in
            try c.execute("CREATE TABLE \(t) (i BIGINT PRIMARY KEY, d DOUBLE PRECISION, s TEXT)")
            let prepared = { c.pooled.prepared.withLock { $0.count } }
            let before = prepared()
            for i in 0..<10 { try c.exec("INSERT INTO \(t) VALUES (?, ?, ?)", [.integer(Int64(i)), .real(Double(i) / 2), .text("v\(i)")]) }
            #expect(prepared() == before + 1)
            try c.exec("INSERT INTO \(t) VALUES (?, ?, ?)", [.integer(10), .null, .text("null d")])
            #expect(prepared() == before + 2)
            #expect(try c.rows("SELECT i, d, s FROM \(t) WHERE i >= ? ORDER BY i", [.integer(9)])
                    == [[.integer(9), .real(4.5), .text("v9")], [.integer(10), .null, .text("null d")]])
            #expect(try c.rows("SELECT ? <> 0, ?::text || 'x'", [.integer(1), .text("a")]) == [[.integer(1), .text("ax")]])
            // exec does not wait: its error comes with the next statement waited for (whose own answer is dropped),
            // and the connection goes on.
            try c.exec("INSERT INTO \(t) VALUES (?, ?, ?)", [.integer(3), .real(0), .text("again")])
            try c.exec("INSERT INTO \(t) VALUES (?, ?, ?)", [.integer(11), .real(0), .text("after the failed one")])
            do {
                _ = try c.rows("SELECT count(*) FROM \(t) WHERE i > ?", [.integer(-1)])
                Issue.record("expected a unique violation")
            } catch let e as PostgresError {
                #expect(e.isConstraint && e.sqlState == "23505" && e.sql?.contains("INSERT") == true, "\(e)")
            }
            #expect(try c.rows("SELECT count(*) FROM \(t) WHERE i > ?", [.integer(-1)]) == [[.integer(12)]])
            for n in 0..<(PostgresDatabase.preparedPerConnection + 10) {
                #expect(try c.rows("SELECT ? + \(n)", [.integer(1)]) == [[.integer(Int64(1 + n))]])
            }
            #expect(prepared() == PostgresDatabase.preparedPerConnection)
            try c.execute("DROP TABLE \(t)")
        }
    }

    @Test(.enabled(if: available)) func unwaitedStatementsAreAnsweredBeforeTheConnectionIsLent() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1)
        defer { db.close() }
        let t = "ex_\(UInt32.random(in: 0...UInt32.max))"
        try db.withConnection { try $0.execute("CREATE TABLE \(t) (i BIGINT PRIMARY KEY)") }
        // Written when withConnection returns, though nothing waited inside.
        try db.withConnection { c in for i in 0..<5 { try c.exec("INSERT INTO \(t) VALUES (?)", [.integer(Int64(i))]) } }
        #expect(try db.withConnection { try $0.rows("SELECT count(*) FROM \(t) WHERE i >= ?", [.integer(0)]) } == [[.integer(5)]])
        // A failure no statement waited for is the call's error, and the next call starts clean.
        do {
            try db.withConnection { try $0.exec("INSERT INTO \(t) VALUES (?)", [.integer(1)]) }
            Issue.record("expected a unique violation")
        } catch let e as PostgresError {
            #expect(e.sqlState == "23505", "\(e)")
        }
        #expect(try db.withConnection { $0.pooled.unanswered.withLock { $0.count } } == 0)
        // In a transaction the failed write aborts it: COMMIT answers the write's error and nothing stays.
        do {
            try db.transaction { c in
                try c.exec("INSERT INTO \(t) VALUES (?)", [.integer(100)])
                try c.exec("INSERT INTO \(t) VALUES (?)", [.integer(2)])
            }
            Issue.record("expected a unique violation")
        } catch let e as PostgresError {
            #expect(e.sqlState == "23505", "\(e)")
        }
        #expect(try db.withConnection { try $0.rows("SELECT count(*) FROM \(t) WHERE i >= ?", [.integer(0)]) } == [[.integer(5)]])
        try db.withConnection { try $0.execute("DROP TABLE \(t)") }
    }

    @Test(.enabled(if: available)) func transactionsRollBackAndSerializableOnesRetry() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 4)
        defer { db.close() }
        let t = "tx_\(UInt32.random(in: 0...UInt32.max))"
        try db.withConnection { try $0.execute("CREATE TABLE \(t) (k TEXT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO \(t) VALUES ('c', 0)") }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction { c in
                try c.run("UPDATE \(t) SET n = 100 WHERE k = 'c'")
                throw Boom()
            }
        }
        #expect(try db.withConnection { try $0.rows("SELECT n FROM \(t)") } == [[.integer(0)]])
        // Read-modify-write increments from four threads in serializable transactions: conflicts are retried, none is
        // lost.
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<10 {
                do {
                    try db.transaction(serializable: true) { c in
                        let n = try c.rows("SELECT n FROM \(t) WHERE k = 'c'")[0][0].int!
                        try c.run("UPDATE \(t) SET n = ? WHERE k = 'c'", [.integer(n + 1)])
                    }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        let n = try db.withConnection { try $0.rows("SELECT n FROM \(t)")[0][0].int! }
        #expect(n == 40 && failures.withLock { $0 } == 0, "n = \(n), failures = \(failures.withLock { $0 })")
        try db.withConnection { try $0.execute("DROP TABLE \(t)") }
    }

    @Test(.enabled(if: available)) func lostConnectionsAreReplaced() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1)
        defer { db.close() }
        let pid = try db.withConnection { try $0.rows("SELECT pg_backend_pid()")[0][0].int! }
        // Another session ends this one's backend, as a failover or an idle timeout would.
        let admin = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1)
        try admin.withConnection { c in
            _ = try c.rows("SELECT pg_terminate_backend(?::int)", [.integer(pid)])
            while try c.rows("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?::int", [.integer(pid)]) != [[.integer(0)]] { usleep(2_000) }
        }
        admin.close()
        // The broken connection fails its call and leaves the pool; the next call gets a new one.
        _ = try? db.withConnection { try $0.rows("SELECT 1") }
        let again = try db.withConnection { try $0.rows("SELECT pg_backend_pid()")[0][0].int! }
        #expect(again != pid)
    }

    @Test(.enabled(if: available)) func anAnswerCanBeWaitedForAgain() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1)
        defer { db.close() }
        try db.withConnection { c in
            // A transaction's BEGIN is waited for a second time on its error path: each wait gives the same answer.
            let bad = c.start("SELECT * FROM no_such_table")
            #expect(throws: PostgresError.self) { try bad.wait() }
            #expect(throws: PostgresError.self) { try bad.wait() }
            let good = c.start("SELECT 1")
            try good.wait()
            try good.wait()
        }
    }

    @Test(.enabled(if: available)) func statementsUnansweredPastTheDeadlineFailAndTheirConnectionIsReplaced() throws {
        let db = try PostgresDatabase(uri: try PostgresURI(parsing: Self.uri!), poolSize: 1, answerTimeout: .milliseconds(300))
        defer { db.close() }
        let pid = try db.withConnection { try $0.rows("SELECT pg_backend_pid()")[0][0].int! }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try db.withConnection { try $0.execute("SELECT pg_sleep(20)") }
            Issue.record("expected no answer")
        } catch let e as PostgresError {
            #expect(e.message.contains("no answer from PostgreSQL within 0.3 s"), "\(e.message)")
        }
        let waited = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        #expect(waited < 15, "waited \(waited) s for a statement with a 0.3 s deadline")
        // The silent connection was closed and left the pool; the next call runs on a new one.
        let again = try db.withConnection { try $0.rows("SELECT pg_backend_pid()")[0][0].int! }
        #expect(again != pid)
        // Statements sent without waiting are held to the deadline too.
        #expect(throws: PostgresError.self) {
            try db.withConnection { c in
                try c.exec("SELECT pg_sleep(?)", [.real(20)])
                _ = try c.rows("SELECT 1")
            }
        }
    }

    @Test(.enabled(if: available)) func unreachableOrRefusedDatabasesAreClearErrors() throws {
        var wrong = try PostgresURI(parsing: Self.uri!)
        wrong.password = "not-the-password"
        #expect(throws: TrackingError.self) { _ = try PostgresDatabase(uri: wrong) }
        do {
            _ = try PostgresDatabase(uri: try PostgresURI(parsing: "postgresql://tally:tally@127.0.0.1:1/tally?sslmode=disable"))
            Issue.record("expected an error")
        } catch let e as TrackingError {
            #expect(e.message.contains("Cannot reach PostgreSQL at 127.0.0.1:1"), "\(e.message)")
        }
    }
}

/// A database of its own on the test cluster for one test (dropped by ``drop()``).
struct ScratchDatabase {
    let uri: PostgresURI
    let name: String

    init() throws {
        var u = try PostgresURI(parsing: PostgresDatabaseTests.uri!)
        let fresh = "t_\(UInt64.random(in: 0...UInt64.max))"
        let admin = try PostgresDatabase(uri: u, poolSize: 1)
        try admin.withConnection { try $0.execute("CREATE DATABASE \(fresh)") }
        admin.close()
        u.database = fresh
        uri = u
        name = fresh
    }

    /// Lets clients connect to the database again, or refuses them and ends every session already open (a database
    /// away, for the tests of what a server does without it).
    func allowConnections(_ allowed: Bool) throws {
        var u = uri
        u.database = "tally"
        let admin = try PostgresDatabase(uri: u, poolSize: 1)
        defer { admin.close() }
        try admin.withConnection { c in
            try c.execute("ALTER DATABASE \(name) ALLOW_CONNECTIONS \(allowed)")
            if !allowed { _ = try c.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?", [.text(name)]) }
        }
    }

    func drop() throws {
        var u = uri
        u.database = "tally"
        let admin = try PostgresDatabase(uri: u, poolSize: 1)
        try admin.withConnection { try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        admin.close()
    }
}

/// The PostgreSQL schema's versions: applied once, checked with `--no-migrate`, safe when servers start together.
@Suite struct PostgresSchemaTests {
    @Test(.enabled(if: PostgresDatabaseTests.available)) func migratesOnceAndChecks() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 2)
        defer { db.close() }
        expectError(.internalError, "start without --no-migrate") {
            try PostgresSchema.migrate(db, migrate: false, defaultArtifactLocation: "mlflow-artifacts:/0", now: 1)
        }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: 5)
        try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: 6)
        try PostgresSchema.migrate(db, migrate: false, defaultArtifactLocation: "mlflow-artifacts:/0", now: 7)
        try db.withConnection { c in
            #expect(try c.rows("SELECT version, applied_time FROM tally_schema ORDER BY version") == (1...PostgresSchema.current).map { [.integer(Int64($0)), .integer(5)] })
            #expect(try c.rows("SELECT experiment_id, name, artifact_location FROM experiments") == [[.integer(0), .text("Default"), .text("mlflow-artifacts:/0")]])
            #expect(try c.rows("SELECT nextval('experiment_ids')") == [[.integer(1)]])
            for table in ["experiment_tags", "runs", "params", "tags", "inputs", "datasets", "metric_keys", "run_latest", "logged_models", "logged_model_tags",
                          "logged_model_params", "logged_model_metrics", "run_outputs", "registered_models", "registered_model_tags",
                          "registered_model_aliases", "model_versions", "model_version_tags", "users", "user_grants", "access_tokens"] {
                #expect(try c.rows("SELECT COUNT(*) FROM \(table)") == [[.integer(0)]], "\(table)")
            }
            try c.run("INSERT INTO tally_schema VALUES (99, 0)")
        }
        expectError(.internalError, "newer than this build") { try PostgresSchema.migrate(db, defaultArtifactLocation: "x", now: 8) }
    }

    /// A role with data rights only (no CREATE on the schema, PostgreSQL 15's default for `public`) starts on a
    /// current database, with or without `--no-migrate`, and writes; on a database behind this build it is told to
    /// migrate, not refused by the schema's permissions.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func aRoleWithDataRightsOnlyStarts() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let role = "data_\(UInt32.random(in: 0...UInt32.max))"
        var limited = scratch.uri
        limited.user = role
        limited.password = "secret"
        let behind = try ScratchDatabase()
        defer { try? behind.drop() }
        var limitedBehind = behind.uri
        limitedBehind.user = role
        limitedBehind.password = "secret"
        let admin = try PostgresDatabase(uri: scratch.uri, poolSize: 1)
        defer { admin.close() }
        try admin.withConnection { try $0.execute("CREATE ROLE \(role) LOGIN PASSWORD 'secret'") }
        defer { try? admin.withConnection { try $0.execute("DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)") } }
        let owner = try PostgresMetadataStore(uri: scratch.uri, poolSize: 1, now: 1)
        owner.close()
        for (uri, grant) in [(scratch.uri, true), (behind.uri, false)] {
            let db = try PostgresDatabase(uri: uri, poolSize: 1)
            try db.withConnection { c in
                try c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
                guard grant else { return }
                try c.execute("GRANT USAGE ON SCHEMA public TO \(role); GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \(role); "
                              + "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO \(role)")
            }
            db.close()
        }
        for migrate in [false, true] {
            let store = try PostgresMetadataStore(uri: limited, poolSize: 2, migrate: migrate, now: 2)
            defer { store.close() }
            let s = TrackingService(metadata: store, metrics: try Fixture.metricStore(NSTemporaryDirectory() + "/tally-limited-\(role)-\(migrate)"))
            let run = try s.createRun(experimentID: "0").info.runID
            try s.logParam(runID: run, key: "lr", value: "0.1")
            #expect(try s.run(id: run).params == [KeyValue(key: "lr", value: "0.1")])
        }
        expectError(.internalError, "start without --no-migrate") {
            _ = try PostgresMetadataStore(uri: limitedBehind, poolSize: 1, migrate: false, now: 3)
        }
        // Out of connections (SQLSTATE class 53, here `53300`) while serving: the database is there but busy, a 503
        // to retry. At startup the error names where the database is.
        let store = try PostgresMetadataStore(uri: limited, poolSize: 1, migrate: false, now: 4)
        defer { store.close() }
        try admin.withConnection { c in
            try c.execute("ALTER ROLE \(role) CONNECTION LIMIT 0")
            try c.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ?", [.text(role)])
        }
        // The first request may meet its pooled connection closed (also a 503); the next one connects again.
        var messages: [String] = []
        for _ in 0..<3 where !(messages.last ?? "").contains("too many connections") {
            do {
                _ = try store.experiment(id: 0)
                Issue.record("a request without a connection succeeded")
            } catch let e as TrackingError {
                #expect(e.code == .temporarilyUnavailable, "\(e)")
                messages.append(e.message)
            }
        }
        #expect(messages.last?.contains("too many connections") == true, "\(messages)")
        expectError(.internalError, "Cannot reach PostgreSQL at \(limited.address)") {
            _ = try PostgresMetadataStore(uri: limited, poolSize: 1, migrate: false, now: 5)
        }
    }

    /// A migration never runs under a connected server of an older build (it would go on writing by its own version's
    /// rules): the start is refused, naming them, until they are gone. Servers of this build, and other clients, do not
    /// hold it back.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func noMigrationUnderAnOlderServer() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 2)
        defer { db.close() }
        #expect(try db.withConnection { try $0.rows("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()") }
                == [[.text("tally schema \(PostgresSchema.current)")]])
        try PostgresSchema.migrate(db, defaultArtifactLocation: "x", now: 1, through: PostgresSchema.current - 1)
        let peer = try PostgresDatabase(uri: scratch.uri, poolSize: 1)  // this build: no objection
        defer { peer.close() }
        let tool = try PostgresDatabase(uri: scratch.uri, poolSize: 1, applicationName: "psql")
        defer { tool.close() }
        let old = try PostgresDatabase(uri: scratch.uri, poolSize: 1, applicationName: "tally schema \(PostgresSchema.current - 1)")
        expectError(.internalError, "1 connection(s) of servers built for an older schema are open (tally schema \(PostgresSchema.current - 1))") {
            try PostgresSchema.migrate(db, defaultArtifactLocation: "x", now: 2)
        }
        #expect(try db.withConnection { try $0.rows("SELECT MAX(version) FROM tally_schema") } == [[.integer(Int64(PostgresSchema.current - 1))]])
        old.close()
        // The closed connection leaves pg_stat_activity a moment later.
        var left = false
        for _ in 0..<100 where !left {
            left = try db.withConnection { try $0.rows("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tally schema %' AND application_name <> ?",
                                                       [.text(PostgresDatabase.applicationName)]) } == [[.integer(0)]]
            if !left { Thread.sleep(forTimeInterval: 0.05) }
        }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "x", now: 3)
        #expect(try db.withConnection { try $0.rows("SELECT MAX(version) FROM tally_schema") } == [[.integer(Int64(PostgresSchema.current))]])
    }

    /// Version 2 on a database with version 1's data: old runs get version 0, and from then on every change to a
    /// run or its children stamps the run with the writing transaction — or, since version 18, a latest row written
    /// stamps itself (and so would a param inserted).
    @Test(.enabled(if: PostgresDatabaseTests.available)) func version2StampsRunsOfAnOlderDatabase() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 2)
        defer { db.close() }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: 1, through: 1)
        try db.withConnection { c in
            try c.run("INSERT INTO runs VALUES ('r1', 0, 'n', 'u', 'RUNNING', 1, NULL, 'a', 'active', NULL)")
            try c.run("INSERT INTO params VALUES ('r1', 'lr', '0.1')")
        }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: 2)
        try db.withConnection { c in
            #expect(try c.rows("SELECT version FROM runs") == [[.integer(0)]])
            for (write, stamped) in [("INSERT INTO tags VALUES ('r1', 't', 'v')", "runs"), ("UPDATE params SET value = '0.2'", "runs"),
                                     ("DELETE FROM tags", "runs"), ("INSERT INTO run_latest VALUES ('r1', '')", "run_latest"),
                                     ("UPDATE run_latest SET data = '\\x01'", "run_latest"), ("UPDATE runs SET status = 'FINISHED'", "runs")] {
                let before = try c.rows("SELECT COALESCE(MAX(version), -1) FROM \(stamped)")[0][0].int ?? -1
                let xid = try c.rows("SELECT pg_current_xact_id()::text::bigint").first?.first?.int ?? 0  // its own transaction
                try c.run(write)
                let after = try c.rows("SELECT version FROM \(stamped)")[0][0].int ?? -1
                #expect(after > before && after > xid, "\(write)")
            }
            // A latest row's write leaves the run's version alone (and an older param keeps version 0).
            let run = try c.rows("SELECT version FROM runs")
            try c.run("UPDATE run_latest SET data = '\\x02'")
            #expect(try c.rows("SELECT version FROM runs") == run)
            #expect(try c.rows("SELECT version FROM params") == [[.integer(0)]])
        }
    }

    @Test(.enabled(if: PostgresDatabaseTests.available)) func serversStartingTogetherMigrateOnce() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let errors = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            do {
                let db = try PostgresDatabase(uri: scratch.uri, poolSize: 1)
                defer { db.close() }
                try PostgresSchema.migrate(db, defaultArtifactLocation: "mlflow-artifacts:/0", now: Int64(i))
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
        #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 1)
        defer { db.close() }
        #expect(try db.withConnection { try $0.rows("SELECT COUNT(*) FROM tally_schema") } == [[.integer(Int64(PostgresSchema.current))]])
        #expect(try db.withConnection { try $0.rows("SELECT COUNT(*) FROM experiments") } == [[.integer(1)]])
    }
}

/// Users, grants, tokens and sessions behave the same on both stores (the first part of the conformance suite: the
/// rest of the metadata follows with the PostgreSQL store).
@Suite struct AccessStoreConformanceTests {
    @Test(arguments: ["sqlite", "postgres"])
    func accessControlOnEitherStore(_ backend: String) throws {
        guard backend == "sqlite" || PostgresDatabaseTests.available else { return }
        let f = try Fixture("acl-conf")
        var scratch: ScratchDatabase?
        let store: any AccessStore
        if backend == "postgres" {
            scratch = try ScratchDatabase()
            store = try PostgresMetadataStore(uri: scratch!.uri, poolSize: 2, now: 1)
        } else {
            store = f.service.metadata
        }
        defer {
            (store as? PostgresMetadataStore)?.close()
            try? scratch?.drop()
        }
        var c = AccessConfiguration()
        c.adminPassword = "admin-password-1"
        c.passwordHashRounds = 1 << 10
        let a = AccessControl(store: store, configuration: c)
        try a.bootstrap()
        let admin = try a.authenticate(AccessControlTests.basic("admin", "admin-password-1"), address: nil)
        #expect(admin.isAdmin && admin.userID == 1)
        let alice = try a.createUser("alice", password: "alice-password", by: admin)
        expectError(.resourceAlreadyExists, "already exists") { _ = try a.createUser("alice", password: "alice-password", by: admin) }
        let al = try a.localCaller("alice")
        // Grants in the order made; a second on the same resource refused; DENY on '*'; moved with a renamed model.
        try a.grant("alice", type: "experiment", id: "3", permission: "EDIT", by: admin)
        try a.grant("alice", type: "registered_model", id: "m", permission: "MANAGE", by: admin)
        try a.grant("alice", type: "registered_model", id: "m2", permission: "READ", by: admin)
        expectError(.resourceAlreadyExists, "already exists") { try a.grant("alice", type: "experiment", id: "3", permission: "READ", by: admin) }
        try store.moveGrants(from: .registeredModel("m"), to: "m2")
        #expect(try store.grants(userID: alice.id) == [Grant(resource: .experiment("3"), permission: .edit),
                                                      Grant(resource: .registeredModel("m2"), permission: .manage)])
        try store.deleteGrants(on: .registeredModel("m2"))
        try a.grant("alice", type: "experiment", id: "*", permission: "DENY", by: admin)
        #expect(try a.grants(for: al).permission(on: .experiment("3")) == .deny)
        // Tokens and sessions: by digest, each kind only where it belongs, expired ones dropped.
        let (info, token) = try a.createToken(name: "ci", expiresInDays: 1, for: al)
        #expect(try a.authenticate("Bearer " + token, address: nil).userID == alice.id)
        let session = try a.login(username: "alice", password: "alice-password", address: nil)
        #expect(try a.authenticate(session: session.token, address: nil).username == "alice")
        expectError(.unauthenticated, "") { _ = try a.authenticate("Bearer " + session.token, address: nil) }
        #expect(try a.tokens(of: al).map(\.id) == [info.id])
        try store.deleteExpiredTokens(now: info.creationTime + 2 * 86_400_000)
        #expect(try store.token(digest: Secrets.digest(token)) == nil)
        // Password and admin changes, and deleting a user takes their grants and tokens.
        try a.updateAdmin("alice", isAdmin: true, by: admin)
        #expect(try store.user(named: "alice")?.isAdmin == true)
        try a.deleteUser("alice", by: admin)
        #expect(try store.user(id: alice.id) == nil && store.grants(userID: alice.id).isEmpty)
        #expect(try store.users().map(\.username) == ["admin"])
    }
}
