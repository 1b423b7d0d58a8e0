import Foundation
import NIOCore
import PostgresNIO
import Testing
@testable import TallyTracking

/// Connection URIs resolved as libpq resolves them: its parameters and environment variables, its defaults, and its
/// password file — the last differential-tested against libpq itself (`psql`, from the `postgresql` package
/// `scripts/bootstrap` installs) on the test cluster.
@Suite struct PostgresURITests {
    /// `text` resolved with only `environment` (no `PG…` variable of the machine's, no home directory's password file).
    static func resolve(_ text: String, _ environment: [String: String] = [:]) throws -> PostgresURI {
        try PostgresURI(parsing: text, environment: ["HOME": "/nonexistent"].merging(environment) { _, new in new }, systemUser: "osuser")
    }

    @Test func theEnvironmentFillsWhatTheURILeavesOut() throws {
        let env = ["PGHOST": "db.internal", "PGPORT": "6000", "PGUSER": "alice", "PGPASSWORD": "s3cret", "PGDATABASE": "runs",
                   "PGSSLMODE": "verify-full", "PGCONNECT_TIMEOUT": "7", "PGOPTIONS": "-c statement_timeout=5s"]
        let u = try Self.resolve("postgresql://", env)
        #expect(u.host == "db.internal" && u.port == 6000 && u.user == "alice" && u.password == "s3cret" && u.database == "runs")
        #expect(u.tls == .verifyFull && u.connectTimeout == 7 && u.serverOptions == "-c statement_timeout=5s")
        // The URI's parts and parameters win; a parameter wins over the part of the URI it names.
        let v = try Self.resolve("postgresql://bob:pw@h:1/d?sslmode=disable&port=2&dbname=e", env)
        #expect(v.host == "h" && v.port == 2 && v.user == "bob" && v.password == "pw" && v.database == "e" && v.tls == .disable)
        // libpq's defaults: the default socket directory, 5432, the system's user, a database of the user's name.
        let d = try Self.resolve("postgresql:///")
        #expect(d.socketPath == "/var/run/postgresql/.s.PGSQL.5432" && d.user == "osuser" && d.database == "osuser" && d.password == nil)
        #expect(d.tls == .prefer && d.connectTimeout == nil && d.serverOptions == nil && d.minimumTLSVersion == .v1_2 && d.maximumTLSVersion == nil)
        // An empty value is libpq's default, but not for a mode: `?sslmode=${UNSET}` is no quiet `prefer`.
        #expect(try Self.resolve("postgresql://u@h/d?host=", ["PGPORT": "", "PGHOST": "elsewhere"]).socketPath == "/var/run/postgresql/.s.PGSQL.5432")
        expectError(.invalidParameterValue, "sslmode is empty (from PGSSLMODE)") { _ = try Self.resolve("postgresql://u@h/d", ["PGSSLMODE": ""]) }
        expectError(.invalidParameterValue, "sslmode is empty") { _ = try Self.resolve("postgresql://u@h/d?sslmode=", ["PGSSLMODE": "require"]) }
        // Errors say where a value came from.
        expectError(.invalidParameterValue, "Unknown sslmode 'requre' (from PGSSLMODE)") { _ = try Self.resolve("postgresql://u@h/d", ["PGSSLMODE": "requre"]) }
        expectError(.invalidParameterValue, "Invalid port 'x' (from PGPORT)") { _ = try Self.resolve("postgresql://u@h/d", ["PGPORT": "x"]) }
        // An `@` in the query is libpq's reading; SQLAlchemy's (MLflow's) password with `/` and `?` stays as it was.
        let at = try Self.resolve("postgresql://127.0.0.1:5432/tally?user=alice@corp")
        #expect(at.host == "127.0.0.1" && at.user == "alice@corp" && at.password == nil && at.database == "tally")
        let mlflow = try Self.resolve("postgresql://u:pa/ss?x@db/tally")
        #expect(mlflow.user == "u" && mlflow.password == "pa/ss?x" && mlflow.host == "db" && mlflow.database == "tally")
        // Text that may be a password's is not echoed.
        for (uri, tail) in [("postgresql://127.0.0.1:5432/tally?password=p@qz8y", "qz8y"), ("postgresql://u:pa@ss:qz7x@db/t", "qz7x"),
                            ("postgresql://u@h/d?password=a&qz9w", "qz9w")] {
            do { _ = try Self.resolve(uri) } catch { #expect(!"\(error)".contains(tail), "\(error)") }
        }
        #expect(try Self.resolve("postgresql://u@/d?host=%2Fs&user=x").socketPath == "/s/.s.PGSQL.5432")
    }

    @Test func parametersAreLibpqsAndNoneIsIgnoredSilently() throws {
        expectError(.invalidParameterValue, "Unknown parameter 'sslmod'") { _ = try Self.resolve("postgresql://u@h/d?sslmod=require") }
        expectError(.invalidParameterValue, "Unknown parameter 'ssl'") { _ = try Self.resolve("postgresql://u@h/d?ssl=false") }
        expectError(.invalidParameterValue, "a query parameter without a value") { _ = try Self.resolve("postgresql://u@h/d?sslmode") }
        #expect(try Self.resolve("postgresql://u@h/d?ssl=true").tls == .require)  // JDBC's spelling, which libpq takes
        // Accepted with no effect, or only at the value that asks for nothing Tally lacks.
        let quiet = try Self.resolve("postgresql://u@h/d?application_name=x&keepalives=1&keepalives_idle=30&sslsni=1&gssencmode=disable"
                                     + "&channel_binding=prefer&target_session_attrs=any&client_encoding=UTF8")
        #expect(quiet.host == "h" && quiet.tls == .prefer)
        expectError(.invalidParameterValue, "channel_binding=require is not supported") {
            _ = try Self.resolve("postgresql://u@h/d?channel_binding=require")
        }
        expectError(.invalidParameterValue, "target_session_attrs=read-only is not supported") {
            _ = try Self.resolve("postgresql://u@h/d?target_session_attrs=read-only")
        }
        expectError(.invalidParameterValue, "parameter service (from PGSERVICE) is not supported") { _ = try Self.resolve("postgresql://u@h/d", ["PGSERVICE": "prod"]) }
        expectError(.invalidParameterValue, "gssencmode=require (from PGGSSENCMODE)") { _ = try Self.resolve("postgresql://u@h/d", ["PGGSSENCMODE": "require"]) }
        expectError(.invalidParameterValue, "parameter sslpassword is not supported") {
            _ = try Self.resolve("postgresql://u@h/d?sslpassword=hunter2")
        }
        do { _ = try Self.resolve("postgresql://u@h/d?sslpassword=hunter2") } catch { #expect(!"\(error)".contains("hunter2")) }
        expectError(.invalidParameterValue, "client_encoding=LATIN1") { _ = try Self.resolve("postgresql://u@h/d?client_encoding=LATIN1") }
        // Values: the connection timeout in whole seconds (at least 2; 0, no limit, is the default), TLS versions.
        #expect(try Self.resolve("postgresql://u@h/d?connect_timeout=1").connectTimeout == 2)
        #expect(try Self.resolve("postgresql://u@h/d?connect_timeout=0").connectTimeout == nil)
        expectError(.invalidParameterValue, "Invalid connect_timeout 'soon'") { _ = try Self.resolve("postgresql://u@h/d?connect_timeout=soon") }
        let t = try Self.resolve("postgresql://u@h/d?ssl_min_protocol_version=tlsv1.3&ssl_max_protocol_version=TLSv1.3")  // any case, as libpq
        #expect(t.minimumTLSVersion == .v1_3 && t.maximumTLSVersion == .v1_3)
        expectError(.invalidParameterValue, "Invalid ssl_min_protocol_version 'TLSv1.4'") {
            _ = try Self.resolve("postgresql://u@h/d?ssl_min_protocol_version=TLSv1.4")
        }
        expectError(.invalidParameterValue, "older than its ssl_min_protocol_version") {
            _ = try Self.resolve("postgresql://u@h/d?ssl_max_protocol_version=TLSv1.1")
        }
        // What the connections are made with.
        let c = try PostgresDatabase.configurations(try Self.resolve("postgresql://u@h/d?connect_timeout=9&options=-c%20work_mem%3D8MB"),
                                                    applicationName: "tally schema 9")[0]
        #expect(c.options.connectTimeout == .seconds(9))
        #expect(c.options.additionalStartupParameters.map { "\($0.0)=\($0.1)" } == ["application_name=tally schema 9", "options=-c work_mem=8MB"])
    }

    /// `pool_mode`, Tally's own parameter for a pooler in front of the database: read, written back by the
    /// description, and refused at PgBouncer's statement mode (which refuses the transactions Tally runs).
    @Test func poolModeIsTallysParameterForAPooler() throws {
        #expect(try Self.resolve("postgresql://u@h/d").poolMode == .session)
        let t = try Self.resolve("postgresql://u@h/d?pool_mode=transaction")
        #expect(t.poolMode == .transaction && t.description == "postgresql://u@h:5432/d?pool_mode=transaction")
        #expect(try Self.resolve(t.description).poolMode == .transaction)
        #expect(try Self.resolve("postgresql://u@h/d?pool_mode=session").description == "postgresql://u@h:5432/d")
        expectError(.invalidParameterValue, "pool_mode=statement is not supported by Tally") { _ = try Self.resolve("postgresql://u@h/d?pool_mode=statement") }
    }

    @Test func passwordFileLinesMatchAsLibpqReadsThem() {
        let fields = ["127.0.0.1", "5432", "tally", "odd"].map { Array($0.utf8) }
        func password(_ line: String) -> String? { PostgresURI.Passfile.match(Array(line.utf8), fields).map { String(decoding: $0, as: UTF8.self) } }
        #expect(password(#"127.0.0.1:5432:tally:odd:a\:b\\c*d"#) == #"a:b\c*d"#)
        #expect(password(#"*:*:*:*:pw:rest"#) == "pw")
        #expect(password(#"127.0.0.1:05432:tally:odd:pw"#) == nil)
        #expect(password(#"127.0.0.*:*:*:odd:pw"#) == nil)
        #expect(password(#"127.0.0.1:*:*:\odd:pw"#) == "pw")
        #expect(password(#"127.0.0.1:*:*:odd"#) == nil)
        #expect(password(#"127.0.0.1:*:*:od:pw"#) == nil)
        #expect(password(#"127.0.0.1:*:*:oddd:pw"#) == nil)
        #expect(password(#"127.0.0.1:*:*:odd:"#) == "")
        #expect(PostgresURI.Passfile.host("/var/run/postgresql") == "localhost" && PostgresURI.Passfile.host("/tmp/pg") == "/tmp/pg")
    }

    /// libpq's `psql`, when the `postgresql` package is installed.
    static let psql: String? = {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root))?.compactMap(Int.init).sorted() ?? []
        return versions.last.map { "\(root)/\($0)/bin/psql" }.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
    }()

    /// What libpq (`psql`) answers to `sql` on `uri` with `environment` (never prompting for a password), trimmed;
    /// `nil` when it cannot connect or the query fails.
    static func libpq(_ uri: String, _ sql: String, _ environment: [String: String]) throws -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: psql!)
        p.arguments = ["-X", "-w", "-At", "-c", sql, uri]
        p.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { _, new in new }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? text.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    /// Whether libpq logs `uri` in as `role` with `environment`.
    static func libpqLogsIn(_ uri: String, as role: String, _ environment: [String: String]) throws -> Bool {
        try libpq(uri, "SELECT current_user", environment) == role
    }

    /// Whether Tally logs `uri` in as `role` with `environment`; its error when it does not.
    static func tallyLogsIn(_ uri: String, as role: String, _ environment: [String: String]) -> (Bool, String) {
        do {
            let db = try PostgresDatabase(uri: try PostgresURI(parsing: uri, environment: environment), poolSize: 1)
            defer { db.close() }
            let me = try db.withConnection { try $0.rows("SELECT current_user") }.first?.first?.string
            return (me == role, "")
        } catch {
            return (false, "\(error)")
        }
    }

    @Test(.enabled(if: PostgresDatabaseTests.available && psql != nil))
    func passwordsAreFoundWhereLibpqFindsThem() throws {
        let port = try PostgresURI(parsing: PostgresDatabaseTests.uri!).port
        let role = "odd_\(UInt32.random(in: 0...UInt32.max))", secret = #"a:b\c*d"#, escaped = #"a\:b\\c*d"#
        let admin = try PostgresDatabase(uri: try PostgresURI(parsing: PostgresDatabaseTests.uri!), poolSize: 1)
        defer { admin.close() }
        try admin.withConnection { try $0.execute("CREATE ROLE \(role) LOGIN PASSWORD '\(secret.replacingOccurrences(of: "'", with: "''"))'") }
        defer { try? admin.withConnection { try $0.execute("DROP ROLE IF EXISTS \(role)") } }
        let home = NSTemporaryDirectory() + "tally-pgpass-\(role)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let file = home + "/pass", uri = "postgresql://\(role)@127.0.0.1:\(port)/tally?sslmode=disable"
        // (the file's lines, its mode, the URI, the environment beyond HOME)
        let cases: [(String, Int, String, [String: String])] = [
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("# 127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:*:*:\(role):\(escaped):extra\r\n", 0o600, uri, ["PGPASSFILE": file]),
            ("*:*:*:*:\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:\(port):tally:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:0\(port):tally:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:0\(port):tally:\(role):\(escaped)\n", 0o600, uri.replacingOccurrences(of: ":\(port)/", with: ":0\(port)/"), ["PGPASSFILE": file]),
            ("127.0.0.1:\(port):tally:\(role):\(escaped)\n", 0o600, uri.replacingOccurrences(of: ":\(port)/", with: ":0\(port)/"), ["PGPASSFILE": file]),
            ("localhost:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            (" 127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.*:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:*:*:\\\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:*:*:\(role):\(escaped)\\\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:*:*:\(role)\n\n127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("*:*:*:*:wrong\n127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("*:*:*:\(role):\n127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o640, uri, ["PGPASSFILE": file]),
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o400, uri, ["PGPASSFILE": file]),
            // The file's place: PGPASSFILE, the passfile parameter over it, else the home directory's .pgpass.
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, ["PGPASSFILE": home + "/missing"]),
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri + "&passfile=\(file)", ["PGPASSFILE": home + "/missing"]),
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, uri, [:]),
            // A password given wins over the file: the environment's, and the URI's over the environment's.
            ("127.0.0.1:*:*:\(role):wrong\n", 0o600, uri, ["PGPASSFILE": file, "PGPASSWORD": secret]),
            ("127.0.0.1:*:*:\(role):\(escaped)\n", 0o600, "postgresql://\(role):wrong@127.0.0.1:\(port)/tally?sslmode=disable", ["PGPASSFILE": file]),
            ("", 0o600, "postgresql://\(role):wrong@127.0.0.1:\(port)/tally?sslmode=disable", ["PGPASSWORD": secret]),
        ]
        var outcomes: [Bool] = []
        for (i, (lines, mode, target, extra)) in cases.enumerated() {
            try? FileManager.default.removeItem(atPath: home + "/.pgpass")
            try Data(lines.utf8).write(to: URL(fileURLWithPath: extra.isEmpty ? home + "/.pgpass" : file))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: extra.isEmpty ? home + "/.pgpass" : file)
            let environment = ["HOME": home].merging(extra) { _, new in new }
            let libpq = try Self.libpqLogsIn(target, as: role, environment)
            let (tally, error) = Self.tallyLogsIn(target, as: role, environment)
            #expect(tally == libpq, "case \(i): \(lines.debugDescription) mode \(String(mode, radix: 8)): libpq \(libpq), Tally \(tally) \(error)")
            if mode & 0o077 != 0 { #expect(error.contains("group or world access"), "case \(i): \(error)") }
            outcomes.append(libpq)
        }
        #expect(outcomes.contains(true) && outcomes.contains(false))
    }

    @Test func certificatesInTheHomeDirectoryAreLibpqs() throws {
        let home = NSTemporaryDirectory() + "tally-home-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: home) }
        try FileManager.default.createDirectory(atPath: home + "/.postgresql", withIntermediateDirectories: true)
        let plain = try Self.resolve("postgresql://u@h/d?sslmode=require", ["HOME": home])
        #expect(plain.rootCertificate == nil && plain.clientCertificate == nil && plain.tls == .require)
        for f in ["root.crt", "postgresql.crt", "postgresql.key"] { _ = FileManager.default.createFile(atPath: home + "/.postgresql/" + f, contents: Data()) }
        let u = try Self.resolve("postgresql://u@h/d?sslmode=require", ["HOME": home])
        #expect(u.rootCertificate == home + "/.postgresql/root.crt" && u.tls == .verifyCA)  // a CA file makes require verify-ca
        #expect(u.clientCertificate == home + "/.postgresql/postgresql.crt" && u.clientKey == home + "/.postgresql/postgresql.key")
        let named = try Self.resolve("postgresql://u@h/d?sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem", ["HOME": home])
        #expect(named.rootCertificate == "/ca.pem" && named.clientCertificate == "/c.pem" && named.clientKey == "/k.pem" && named.tls == .prefer)
        // A certificate named takes the home directory's key unless one is named; a key without a certificate is unused.
        #expect(try Self.resolve("postgresql://u@h/d?sslcert=/c.pem", ["HOME": home]).clientKey == home + "/.postgresql/postgresql.key")
        try FileManager.default.removeItem(atPath: home + "/.postgresql/postgresql.crt")
        let keyOnly = try Self.resolve("postgresql://u@h/d?sslkey=/k.pem", ["HOME": home])
        #expect(keyOnly.clientCertificate == nil && keyOnly.clientKey == nil)
        // A certificate that is there without its key: libpq's refusal, before any connection.
        _ = FileManager.default.createFile(atPath: home + "/.postgresql/postgresql.crt", contents: Data())
        try FileManager.default.removeItem(atPath: home + "/.postgresql/postgresql.key")
        expectError(.invalidParameterValue, "is there but not its private key file \(home)/.postgresql/postgresql.key") {
            _ = try Self.resolve("postgresql://u@h/d", ["HOME": home])
        }
    }

    @Test(.enabled(if: PostgresDatabaseTests.available && psql != nil
                   && !(ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_TLS_DIR"] ?? "").isEmpty))
    func certificatesAreTakenWhereLibpqTakesThem() throws {
        let port = try PostgresURI(parsing: PostgresDatabaseTests.uri!).port
        let tls = ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_TLS_DIR"]!
        let home = NSTemporaryDirectory() + "tally-home-\(UInt32.random(in: 0...UInt32.max))", files = home + "/.postgresql/"
        defer { try? FileManager.default.removeItem(atPath: home) }
        // (what ~/.postgresql holds: name → the test cluster's file, the key's mode, the role, the URI's host and sslmode)
        let cases: [([String: String], Int, String, String)] = [
            (["root.crt": "ca.crt"], 0o600, "tally", "127.0.0.1/tally?sslmode=require"),
            (["root.crt": "client.crt"], 0o600, "tally", "127.0.0.1/tally?sslmode=require"),
            ([:], 0o600, "tally", "127.0.0.1/tally?sslmode=require"),
            ([:], 0o600, "tally", "127.0.0.1/tally?sslmode=verify-ca"),
            (["root.crt": "ca.crt"], 0o600, "tally", "localhost/tally?sslmode=verify-full"),
            (["root.crt": "ca.crt"], 0o600, "tally", "127.0.0.1/tally?sslmode=verify-full"),
            (["postgresql.crt": "client.crt", "postgresql.key": "client.key"], 0o600, "tally_cert", "127.0.0.1/tally?sslmode=require"),
            (["postgresql.crt": "client.crt", "postgresql.key": "client.key"], 0o640, "tally_cert", "127.0.0.1/tally?sslmode=require"),
            (["postgresql.crt": "client.crt", "postgresql.key": "client.key"], 0o644, "tally_cert", "127.0.0.1/tally?sslmode=require"),
            (["postgresql.crt": "client.crt", "postgresql.key": "client.key", "root.crt": "ca.crt"], 0o600, "tally_cert",
             "127.0.0.1/tally?sslmode=verify-ca"),
            (["postgresql.crt": "client.crt"], 0o600, "tally_cert", "127.0.0.1/tally?sslmode=require"),
        ]
        var outcomes: [Bool] = []
        for (i, (held, mode, role, target)) in cases.enumerated() {
            try? FileManager.default.removeItem(atPath: home)
            try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
            for (name, source) in held { try FileManager.default.copyItem(atPath: tls + "/" + source, toPath: files + name) }
            if held["postgresql.key"] != nil { try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: files + "postgresql.key") }
            let (host, rest) = (target.prefix { $0 != "/" }, target.drop { $0 != "/" })
            let uri = "postgresql://\(role)@\(host):\(port)\(rest)"
            var environment = ["HOME": home]
            if role == "tally" { environment["PGPASSWORD"] = "tally" }
            let libpq = try Self.libpqLogsIn(uri, as: role, environment)
            let (tally, error) = Self.tallyLogsIn(uri, as: role, environment)
            #expect(tally == libpq, "case \(i): \(held) key mode \(String(mode, radix: 8)) \(uri): libpq \(libpq), Tally \(tally) \(error)")
            outcomes.append(libpq)
        }
        #expect(outcomes.contains(true) && outcomes.contains(false))
    }

    @Test(.enabled(if: PostgresDatabaseTests.available)) func serverOptionsAndTLSVersionsReachTheServer() throws {
        let base = try PostgresURI(parsing: PostgresDatabaseTests.uri!)
        let text = "postgresql://tally:tally@127.0.0.1:\(base.port)/tally"
        func ask(_ uri: String, _ sql: String) throws -> String? {
            let db = try PostgresDatabase(uri: try PostgresURI(parsing: uri), poolSize: 1)
            defer { db.close() }
            return try db.withConnection { try $0.rows(sql) }.first?.first?.string
        }
        #expect(try ask(text + "?options=-c%20statement_timeout%3D4321", "SHOW statement_timeout") == "4321ms")
        guard !(ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_TLS_DIR"] ?? "").isEmpty else { return }
        let version = "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        #expect(try ask(text + "?sslmode=require&ssl_max_protocol_version=TLSv1.2", version) == "TLSv1.2")
        #expect(try ask(text + "?sslmode=require&ssl_min_protocol_version=TLSv1.3", version) == "TLSv1.3")
    }
}
