import Foundation

/// Where a PostgreSQL metadata store lives: `postgresql://user:password@host:port/database?sslmode=…`, also spelled
/// `postgres://` and (SQLAlchemy's, as MLflow deployments write it) `postgresql+psycopg2://` and
/// `postgresql+psycopg://`. User, password and database are percent-decoded; the port defaults to 5432; `sslmode` is
/// libpq's (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`; default `prefer`), and so are
/// `sslrootcert` (the CA certificates to verify the server with, PEM; default the system's; with `require` it makes it
/// `verify-ca`, and `system` means the system's with `verify-full`, as libpq 16), `sslcert` and `sslkey`
/// (a client certificate and its key, PEM, for `cert` authentication). As with libpq, a host that is an absolute path is the
/// directory of the server's Unix-domain socket (`DIR/.s.PGSQL.PORT`), given percent-encoded
/// (`postgresql://tally@%2Fvar%2Frun%2Fpostgresql/tally`) or as the `host` parameter, which overrides the
/// authority's host (`postgresql://tally@/tally?host=/var/run/postgresql`); TLS does not apply to a socket.
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

    /// Host name or address, or the directory of a Unix-domain socket (an absolute path).
    public var host: String
    /// TCP port.
    public var port: Int
    /// Role to log in as.
    public var user: String
    /// Its password, if any.
    public var password: String?
    /// Database name (default: the user's name, as libpq does).
    public var database: String
    /// TLS use.
    public var tls: TLSMode
    /// `sslrootcert`: a PEM file of the certificate authorities the server's certificate must chain to (`nil`: the
    /// system's).
    public var rootCertificate: String?
    /// `sslcert` and `sslkey`: a PEM client certificate (chain) and its private key, presented when TLS is used.
    public var clientCertificate: String?, clientKey: String?

    /// Parses a URI; a clear error (never echoing the password) when it is not one.
    public init(parsing text: String) throws {
        guard let scheme = Self.schemes.map({ $0 + "://" }).first(where: { text.hasPrefix($0) }) else {
            throw TrackingError.invalid("Not a PostgreSQL URI: it must start with postgresql://, postgres://, postgresql+psycopg2:// or postgresql+psycopg://")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        // The user and password first, as SQLAlchemy reads MLflow's URIs: up to the first `@`, the user holding no `:`,
        // `/` or `?`; the password may then hold `/`, `?` or `:` unencoded (only `@` must be `%40`).
        var userInfo: Substring?
        if let at = rest.firstIndex(of: "@"), !rest[..<at].prefix(while: { $0 != ":" }).contains(where: { $0 == "/" || $0 == "?" }) {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        let decode = { (s: Substring) in s.removingPercentEncoding ?? String(s) }
        if let userInfo {
            if let colon = userInfo.firstIndex(of: ":") {
                user = decode(userInfo[..<colon])
                password = decode(userInfo[userInfo.index(after: colon)...])
            } else {
                user = decode(userInfo)
            }
        } else {
            user = ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        }
        // host, host:port, [v6], [v6]:port
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            port = 5432
            if rest.hasPrefix(":") { port = try Self.port(rest.dropFirst()) }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = try Self.port(rest[rest.index(after: colon)...])
        } else {
            host = String(rest)
            port = 5432
        }
        host = decode(Substring(host))
        database = path.isEmpty ? user : decode(path)
        tls = .prefer
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let value = decode(kv[1])
            switch kv[0] {
            case "host": host = value
            case "sslrootcert": rootCertificate = value
            case "sslcert": clientCertificate = value
            case "sslkey": clientKey = value
            case "sslmode":
                switch value {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require": tls = .require
                case "verify-ca": tls = .verifyCA
                case "verify-full": tls = .verifyFull
                default: throw TrackingError.invalid("Unknown sslmode '\(value)' in the PostgreSQL URI: use disable, prefer, require, verify-ca or verify-full")
                }
            default: continue
            }
        }
        guard !host.isEmpty else { throw TrackingError.invalid("PostgreSQL URI without a host (postgresql://user:password@host:port/database)") }
        // A second `@` (the host is never echoed: it would be the password's tail).
        guard !host.contains("@") else { throw TrackingError.invalid("The PostgreSQL URI's password holds '@': write it as %40") }
        // As libpq: a CA file makes `require` check the chain (`verify-ca`); `sslrootcert=system` (libpq 16) means
        // the system's authorities, and then the name is checked too.
        if rootCertificate == "system" {
            rootCertificate = nil
            if tls != .disable { tls = .verifyFull }
        } else if rootCertificate != nil, tls == .require {
            tls = .verifyCA
        }
        guard (clientCertificate == nil) == (clientKey == nil) else {
            throw TrackingError.invalid("The PostgreSQL URI names a client certificate without its key, or a key without its certificate (sslcert and sslkey go together)")
        }
    }

    /// The path of the server's Unix-domain socket when the host is a directory, else `nil` (TCP).
    public var socketPath: String? {
        host.hasPrefix("/") ? host + "/.s.PGSQL.\(port)" : nil
    }

    /// `host:port`, or the socket's path: where the database is, for messages.
    public var address: String {
        socketPath ?? "\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// The URI schemes taken for PostgreSQL (MLflow's SQLAlchemy spelling among them).
    public static let schemes = ["postgresql+psycopg2", "postgresql+psycopg", "postgresql", "postgres"]

    static func port(_ s: Substring) throws -> Int {
        guard let p = Int(s), (1...65535).contains(p) else { throw TrackingError.invalid("Invalid port '\(s)' in the PostgreSQL URI") }
        return p
    }

    /// `postgresql://user@host:port/database` (no password).
    public var description: String {
        if socketPath != nil { return "postgresql://\(user)@:\(port)/\(database)?host=\(host)" }
        return "postgresql://\(user)@\(address)/\(database)"
    }
}
