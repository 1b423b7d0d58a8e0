import Foundation

/// Where a PostgreSQL metadata store lives, resolved as libpq (and so MLflow, through psycopg2) resolves a
/// connection URI: `postgresql://user:password@host:port/database?param=value&…`, also spelled `postgres://` and
/// (SQLAlchemy's, as MLflow deployments write it) `postgresql+psycopg2://` and `postgresql+psycopg://`.
///
/// - User, password, host and database are percent-decoded; a query parameter overrides the part of the URI it names
///   (`?host=`, `?port=`, `?user=`, `?password=`, `?dbname=`). The parameters taken are libpq's
///   (``parameters``); an unknown one is an error, as it is to libpq, and so is one that asks for what Tally cannot do
///   (several hosts, a service file, `channel_binding=require`, …), rather than being ignored.
/// - What the URI leaves out comes from libpq's environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
///   `PGDATABASE`, `PGSSLMODE`, …), then libpq's defaults: the Unix-domain socket in `/var/run/postgresql` (Debian's
///   libpq), port 5432, the operating system's user name, a database named after the user.
/// - A password neither gives is looked up in the password file (`passfile`, `PGPASSFILE`, or `~/.pgpass`), by
///   libpq's rules (``Passfile``).
/// - `sslmode` is libpq's (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`; default `prefer`;
///   JDBC's `ssl=true` is `require`), and so are `sslrootcert` (the CA certificates to verify the server with, PEM;
///   default the system's; with `require` it makes it `verify-ca`, and `system` means the system's with
///   `verify-full`, as libpq 16), `sslcert` and `sslkey` (a client certificate and its key, PEM, for `cert`
///   authentication), `ssl_min_protocol_version` and `ssl_max_protocol_version`.
/// - A host that is an absolute path is the directory of the server's Unix-domain socket (`DIR/.s.PGSQL.PORT`),
///   given percent-encoded (`postgresql://tally@%2Fvar%2Frun%2Fpostgresql/tally`) or as the `host` parameter
///   (`postgresql://tally@/tally?host=/var/run/postgresql`); TLS does not apply to a socket.
/// - Several hosts, as libpq takes them (`postgresql://db1:5432,db2:5433/tally`, or `host=db1,db2&port=5432,5433`: one
///   port for all or one per host) are ``endpoints``, tried in turn (in random order with `load_balance_hosts=random`)
///   until one answers and suits `target_session_attrs` (``SessionAttributes``): a primary and its standbys listed
///   together, so that a server reaches whichever is the primary after a failover.
public struct PostgresURI: Sendable, Equatable, CustomStringConvertible {
    /// How TLS is used.
    public enum TLSMode: String, Sendable {
        /// Never.
        case disable
        /// If the server offers it (libpq's `allow` and `prefer`).
        case prefer
        /// Always, without checking the certificate (libpq's `require`).
        case require
        /// Always, checking the certificate chain but not the host name (libpq's `verify-ca`).
        case verifyCA = "verify-ca"
        /// Always, checking the certificate chain and that it names the host (libpq's `verify-full`).
        case verifyFull = "verify-full"
    }

    /// A TLS protocol version, as libpq's `ssl_min_protocol_version` and `ssl_max_protocol_version` name it.
    public enum TLSVersion: String, Sendable, CaseIterable, Comparable {
        /// TLS 1.0.
        case v1 = "TLSv1"
        /// TLS 1.1.
        case v1_1 = "TLSv1.1"
        /// TLS 1.2.
        case v1_2 = "TLSv1.2"
        /// TLS 1.3.
        case v1_3 = "TLSv1.3"

        /// Older first.
        public static func < (a: Self, b: Self) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// One server a connection may be made to.
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        /// Host name or address, or the directory of a Unix-domain socket (an absolute path).
        public var host: String
        /// TCP port (for a socket, the number in its file's name).
        public var port: Int
        /// The password to give this server: the connection's, else the password file's line for this host.
        public var password: String?

        /// The path of the server's Unix-domain socket when the host is a directory, else `nil` (TCP).
        public var socketPath: String? {
            host.hasPrefix("/") ? host + "/.s.PGSQL.\(port)" : nil
        }

        /// `host:port` (`[v6]:port`), or the socket's path: where the server is, for messages.
        public var description: String {
            socketPath ?? "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }

    /// What a server must be for a connection to stay on it (libpq's `target_session_attrs`, the values a server
    /// that writes can use).
    public enum SessionAttributes: String, Sendable {
        /// Any server that answers (the default).
        case any
        /// One that accepts writes by default: not a standby, and `default_transaction_read_only` off.
        case readWrite = "read-write"
        /// One that is not a standby (not in recovery).
        case primary
    }

    /// The servers to try, in the order given (libpq's host list; at least one).
    public var endpoints: [Endpoint]
    /// `target_session_attrs`: what a server must be for a connection to stay on it; the next host is tried otherwise.
    public var sessionAttributes: SessionAttributes = .any
    /// What a server on several hosts should be told at start when the URI leaves the primary to chance: with `any`
    /// (libpq's default) a connection stays on the first host that answers, a standby included, and every write on it
    /// then fails until that host is promoted (docs/postgresql.md, "A primary and its standbys"). `nil` otherwise.
    public var hostListCaution: String? {
        guard endpoints.count > 1, sessionAttributes == .any else { return nil }
        return "\(endpoints.count) PostgreSQL hosts with target_session_attrs=any: a connection stays on the first that answers, "
            + "even a standby, and writes fail while it does; add target_session_attrs=read-write to the URI to connect to the primary only"
    }
    /// `load_balance_hosts=random`: each connection tries the hosts in a random order, spreading connections over them.
    public var loadBalanceHosts = false
    /// `pool_mode` (Tally's, not libpq's): how the server connections behind Tally's are shared.
    public var poolMode: PoolMode = .session

    /// How a pooler between Tally and PostgreSQL (PgBouncer, a managed database's) hands out server connections.
    public enum PoolMode: String, Sendable, CaseIterable {
        /// Each of Tally's connections has a server connection of its own for its whole life (no pooler, or PgBouncer's
        /// `pool_mode = session`): statements are prepared once per connection, and the concurrent-writes lane sets
        /// its session's lock timeout and planner settings.
        case session
        /// A server connection only for the length of a transaction (PgBouncer's `pool_mode = transaction`): the next
        /// statement may reach another one, where a statement prepared before does not exist and a session setting
        /// would stay behind for another client. Nothing is prepared (each statement is parsed with its binds, as
        /// psycopg2 sends them) and no session setting is made.
        case transaction
    }
    /// Role to log in as.
    public var user: String
    /// The first host's name or address, or socket directory.
    public var host: String { endpoints[0].host }
    /// The first host's port.
    public var port: Int { endpoints[0].port }
    /// The password (the first host's, when a password file gives each its own); setting it gives every host this one.
    public var password: String? {
        get { endpoints[0].password }
        set { for i in endpoints.indices { endpoints[i].password = newValue } }
    }
    /// Database name (default: the user's name, as libpq does).
    public var database: String
    /// TLS use.
    public var tls: TLSMode
    /// `sslrootcert`: a PEM file of the certificate authorities the server's certificate must chain to (`nil`: the
    /// system's).
    public var rootCertificate: String?
    /// `sslcert` and `sslkey`: a PEM client certificate (chain) and its private key, presented when TLS is used.
    public var clientCertificate: String?, clientKey: String?
    /// `ssl_min_protocol_version` (libpq's default: TLS 1.2) and `ssl_max_protocol_version` (default: none).
    public var minimumTLSVersion: TLSVersion = .v1_2, maximumTLSVersion: TLSVersion?
    /// `connect_timeout`: how long a connection attempt may take, in seconds (at least 2, as libpq); `nil`: the
    /// default, 10 s (libpq's `0`, no limit, is taken as the default too: a server never waits without bound).
    public var connectTimeout: Int?
    /// `options`: command-line options sent to the server at connection start (`-c statement_timeout=5s`).
    public var serverOptions: String?
    /// Why a password file was passed over (its permissions, or not a plain file), for the error should the
    /// connection then be refused; `nil` when none was.
    public var passfileNote: String?

    /// Parses and resolves a URI as libpq would with `environment` (its `PG…` variables and `HOME`); a clear error
    /// (never echoing the password) when it is not one, or asks for what Tally cannot do.
    /// - Parameter systemUser: the operating system's user name (libpq's default role).
    public init(parsing text: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                systemUser: String = ProcessInfo.processInfo.userName) throws {
        let given = try Self.components(text)
        var values: [String: String] = [:], variables: [String: String] = [:]
        for (keyword, spec) in Self.parameters {
            if let v = given[keyword] {
                values[keyword] = v
            } else if let variable = spec.variable, let v = environment[variable] {  // empty too, as libpq takes it
                values[keyword] = v
                variables[keyword] = variable
            }
        }
        try self.init(values, variables: variables, environment: environment, systemUser: systemUser)
    }

    /// The path of the first host's Unix-domain socket when it is a directory, else `nil` (TCP).
    public var socketPath: String? { endpoints[0].socketPath }

    /// `host:port`, or the socket's path, for each host (comma-separated): where the database is, for messages.
    public var address: String {
        endpoints.map(\.description).joined(separator: ",")
    }

    /// The URI schemes taken for PostgreSQL (MLflow's SQLAlchemy spelling among them).
    public static let schemes = ["postgresql+psycopg2", "postgresql+psycopg", "postgresql", "postgres"]

    /// How long a connection attempt may take when the URI does not say (`connect_timeout`), in seconds: libpq waits
    /// without bound, Tally never does.
    public static let defaultConnectTimeout = 10

    /// libpq's default socket directory, where a URI without a host connects (Debian's libpq).
    public static let defaultSocketDirectory = "/var/run/postgresql"

    /// `postgresql://user@host:port/database` (no password); several hosts, or a socket, as `host` and `port`
    /// parameters; `target_session_attrs`, `load_balance_hosts` and `pool_mode` when they are not the defaults.
    public var description: String {
        var query: [String] = [], authority = address
        if endpoints.count > 1 || socketPath != nil {
            authority = ""
            query = ["host=" + endpoints.map(\.host).joined(separator: ","), "port=" + endpoints.map { String($0.port) }.joined(separator: ",")]
        }
        if sessionAttributes != .any { query.append("target_session_attrs=\(sessionAttributes.rawValue)") }
        if loadBalanceHosts { query.append("load_balance_hosts=random") }
        if poolMode != .session { query.append("pool_mode=\(poolMode.rawValue)") }
        return "postgresql://\(user)@\(authority)/\(database)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// The URI's parts as libpq's keywords (`user`, `password`, `host`, `port`, `dbname`, then its query
    /// parameters, which override them), percent-decoded; empty parts are absent.
    static func components(_ text: String) throws -> [String: String] {
        guard let scheme = Self.schemes.map({ $0 + "://" }).first(where: { text.hasPrefix($0) }) else {
            throw TrackingError.invalid("Not a PostgreSQL URI: it must start with postgresql://, postgres://, postgresql+psycopg2:// or postgresql+psycopg://")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        var out: [String: String] = [:]
        let decode = { (s: Substring) in s.removingPercentEncoding ?? String(s) }
        func put(_ keyword: String, _ value: Substring) {
            if !value.isEmpty { out[keyword] = decode(value) }
        }
        // The user and password first, as SQLAlchemy reads MLflow's URIs: up to the first `@`, the user holding no `:`,
        // `/` or `?`; the password may then hold `/`, `?` or `:` unencoded (only `@` must be `%40`). Not when the `@`
        // is in what libpq reads as the query and no path follows it (`…/tally?user=alice@corp`): that is libpq's
        // reading, and SQLAlchemy's would take `corp` for the host and the text before it for a password.
        if let at = rest.firstIndex(of: "@"), !rest[..<at].prefix(while: { $0 != ":" }).contains(where: { $0 == "/" || $0 == "?" }),
           !(rest[..<at].contains("?") && !rest[at...].contains("/")) {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                put("user", userInfo[..<colon])
                put("password", userInfo[userInfo.index(after: colon)...])
            } else {
                put("user", userInfo)
            }
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        if let slash = rest.firstIndex(of: "/") {
            put("dbname", rest[rest.index(after: slash)...])
            rest = rest[..<slash]
        }
        // host, host:port, [v6], [v6]:port; several of them separated by commas (libpq's host and port lists, an
        // empty item the default).
        if !rest.isEmpty {
            var hosts: [String] = [], ports: [String] = []
            for item in rest.split(separator: ",", omittingEmptySubsequences: false) {
                var host = item, port: Substring = ""
                if item.hasPrefix("["), let close = item.firstIndex(of: "]") {
                    host = item[item.index(after: item.startIndex)..<close]
                    let tail = item[item.index(after: close)...]
                    if tail.hasPrefix(":") { port = tail.dropFirst() }
                } else if let colon = item.lastIndex(of: ":") {
                    host = item[..<colon]
                    port = item[item.index(after: colon)...]
                    // Not echoed unless a number: text here may be a password's, its `@` unencoded.
                    guard port.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                        throw TrackingError.invalid("The PostgreSQL URI's port (after the host's ':') is not a number; a password holding '@' must write it as %40")
                    }
                }
                hosts.append(decode(host))
                ports.append(String(port))
            }
            // As libpq keeps them: a list is given when its text is not empty, so `h1,h2` gives the port `,` (5432 for
            // both, whatever PGPORT says) and `:1,:2` two default hosts.
            let host = hosts.joined(separator: ","), port = ports.joined(separator: ",")
            if !host.isEmpty { out["host"] = host }
            if !port.isEmpty { out["port"] = port }
        }
        // A second `@` (the host is never echoed: it would be the password's tail).
        if out["host"]?.contains("@") == true { throw TrackingError.invalid("The PostgreSQL URI's password holds '@': write it as %40") }
        for pair in query.split(separator: "&") {
            guard let eq = pair.firstIndex(of: "=") else {  // not echoed: it may be a password's tail after an unencoded `&`
                throw TrackingError.invalid("The PostgreSQL URI has a query parameter without a value (write name=value, and '&' within a value as %26)")
            }
            var keyword = decode(pair[..<eq]), value = decode(pair[pair.index(after: eq)...])
            if keyword == "ssl" && value == "true" { (keyword, value) = ("sslmode", "require") }  // JDBC's spelling, as libpq takes it
            guard Self.parameters[keyword] != nil else {
                throw TrackingError.invalid("Unknown parameter '\(keyword)' in the PostgreSQL URI (libpq's connection parameters are taken: "
                                            + "host, port, dbname, user, password, passfile, sslmode, sslrootcert, sslcert, sslkey, connect_timeout, options, …)")
            }
            out[keyword] = value
        }
        return out
    }
}
