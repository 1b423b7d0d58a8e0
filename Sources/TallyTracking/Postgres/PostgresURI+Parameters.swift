import Foundation

extension PostgresURI {
    /// What Tally does with one of libpq's connection parameters.
    enum Use: Sendable {
        /// Taken (``PostgresURI/init(_:variables:environment:systemUser:)`` reads it).
        case taken
        /// Accepted, with no effect on what is connected to or how safely: keepalives, SNI, GSSAPI's names (Tally
        /// never authenticates by GSSAPI), and `application_name`, since Tally names its connections itself (the
        /// schema version they write, which a migration reads).
        case noEffect
        /// Accepted only with these values (libpq's defaults and what amounts to them); any other asks for what Tally
        /// cannot do.
        case only([String])
        /// Not supported at all: refused rather than ignored.
        case refused
    }

    /// A libpq connection parameter: what Tally does with it, and the environment variable that supplies it when the
    /// URI does not.
    struct Parameter: Sendable {
        let use: Use
        let variable: String?
    }

    /// libpq's connection parameters (PostgreSQL 17's list), by keyword.
    static let parameters: [String: Parameter] = {
        var p: [String: Parameter] = [:]
        func add(_ use: Use, _ pairs: [(String, String?)]) {
            for (k, v) in pairs { p[k] = Parameter(use: use, variable: v) }
        }
        add(.taken, [("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE"), ("user", "PGUSER"), ("password", "PGPASSWORD"),
                     ("passfile", "PGPASSFILE"), ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                     ("sslkey", "PGSSLKEY"), ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
                     ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"), ("connect_timeout", "PGCONNECT_TIMEOUT"), ("options", "PGOPTIONS"),
                     ("client_encoding", "PGCLIENTENCODING")])
        add(.noEffect, [("application_name", "PGAPPNAME"), ("fallback_application_name", nil), ("keepalives", nil), ("keepalives_idle", nil),
                        ("keepalives_interval", nil), ("keepalives_count", nil), ("tcp_user_timeout", nil), ("sslcompression", "PGSSLCOMPRESSION"),
                        ("sslsni", "PGSSLSNI"), ("krbsrvname", "PGKRBSRVNAME"), ("gsslib", "PGGSSLIB")])
        p["gssencmode"] = Parameter(use: .only(["disable", "prefer"]), variable: "PGGSSENCMODE")
        p["channel_binding"] = Parameter(use: .only(["disable", "prefer"]), variable: "PGCHANNELBINDING")
        // A server that writes cannot stay on a standby: libpq's `read-only`, `standby` and `prefer-standby` are refused.
        p["target_session_attrs"] = Parameter(use: .only(["any", "read-write", "primary"]), variable: "PGTARGETSESSIONATTRS")
        p["load_balance_hosts"] = Parameter(use: .only(["disable", "random"]), variable: "PGLOADBALANCEHOSTS")
        // Tally's own, not libpq's: how a pooler between Tally and the database shares its server connections
        // (``PostgresURI/PoolMode``). PgBouncer's statement mode, which refuses transactions, is refused.
        p["pool_mode"] = Parameter(use: .only(["session", "transaction"]), variable: nil)
        p["sslcertmode"] = Parameter(use: .only(["allow"]), variable: "PGSSLCERTMODE")
        p["require_auth"] = Parameter(use: .refused, variable: "PGREQUIREAUTH")
        add(.refused, [("hostaddr", "PGHOSTADDR"), ("service", "PGSERVICE"), ("sslpassword", nil), ("sslcrl", "PGSSLCRL"), ("sslcrldir", "PGSSLCRLDIR"),
                       ("requirepeer", "PGREQUIREPEER"), ("replication", nil), ("gssdelegation", "PGGSSDELEGATION")])
        return p
    }()

    /// The keywords whose value must be one of a few names (libpq refuses an empty one): `sslmode`, and those Tally
    /// takes only at certain values (``Use/only(_:)``).
    static let modes = ["sslmode"] + parameters.compactMap { k, p in if case .only = p.use { k } else { nil } }.sorted()

    /// Resolves libpq's keywords (`values`: the URI's, else the environment's, empty ones included; `variables`: the
    /// variable each keyword taken from the environment came from) with libpq's defaults, and looks the password up
    /// in the password file when none is given. An empty value is libpq's default, except where libpq refuses it (a
    /// mode left empty, as by `?sslmode=${UNSET}`, is not quietly `prefer`).
    init(_ values: [String: String], variables: [String: String], environment: [String: String], systemUser: String) throws {
        /// ` (from PGSSLMODE)` for a keyword the environment gave, so that an error names where its value came from.
        func from(_ keyword: String) -> String { variables[keyword].map { " (from \($0))" } ?? "" }
        for keyword in Self.modes where values[keyword] == "" {
            throw TrackingError.invalid("The PostgreSQL connection's \(keyword) is empty\(from(keyword)): give a value or leave it out")
        }
        let given = values.filter { !$0.value.isEmpty }
        for (keyword, value) in given.sorted(by: { $0.key < $1.key }) {
            switch Self.parameters[keyword]?.use {
            case .only(let allowed) where !allowed.contains(value):
                throw TrackingError.invalid("The PostgreSQL connection's \(keyword)=\(value)\(from(keyword)) is not supported by Tally (only "
                                            + allowed.joined(separator: " or ") + ")")
            case .refused:
                throw TrackingError.invalid("The PostgreSQL connection's parameter \(keyword)\(from(keyword)) is not supported by Tally: give the "
                                            + "connection in the URI without it")
            default:
                continue
            }
        }
        // libpq's lists: hosts tried in turn (an empty item is the default socket directory), and one port for all of
        // them or one per host (an empty item is 5432), kept as written for the password file.
        let hosts = (given["host"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map { $0.isEmpty ? Self.defaultSocketDirectory : String($0) }
        var ports = (given["port"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map { $0.isEmpty ? "5432" : String($0) }
        if ports.count == 1 { ports = Array(repeating: ports[0], count: hosts.count) }
        guard ports.count == hosts.count else {
            throw TrackingError.invalid("The PostgreSQL connection gives \(ports.count) ports for \(hosts.count) hosts (port=\(given["port"]!)\(from("port"))): "
                                        + "give one port for all of them, or one per host")
        }
        endpoints = try zip(hosts, ports).map { Endpoint(host: $0, port: try Self.port(Substring($1), from("port")), password: given["password"]) }
        sessionAttributes = given["target_session_attrs"].flatMap(SessionAttributes.init(rawValue:)) ?? .any
        loadBalanceHosts = given["load_balance_hosts"] == "random"
        poolMode = given["pool_mode"].flatMap(PoolMode.init(rawValue:)) ?? .session
        user = given["user"] ?? systemUser
        database = given["dbname"] ?? user
        switch given["sslmode"] ?? "prefer" {
        case "disable": tls = .disable
        case "allow", "prefer": tls = .prefer
        case "require": tls = .require
        case "verify-ca": tls = .verifyCA
        case "verify-full": tls = .verifyFull
        case let other:
            throw TrackingError.invalid("Unknown sslmode '\(other)'\(from("sslmode")) for the PostgreSQL connection: use disable, prefer, require, "
                                        + "verify-ca or verify-full")
        }
        try resolveCertificates(given, home: Self.home(environment))
        if let v = given["ssl_min_protocol_version"] { minimumTLSVersion = try Self.tlsVersion(v, "ssl_min_protocol_version", from) }
        maximumTLSVersion = try given["ssl_max_protocol_version"].map { try Self.tlsVersion($0, "ssl_max_protocol_version", from) }
        if let max = maximumTLSVersion, max < minimumTLSVersion {
            throw TrackingError.invalid("The PostgreSQL connection's ssl_max_protocol_version (\(max.rawValue)) is older than its "
                                        + "ssl_min_protocol_version (\(minimumTLSVersion.rawValue))")
        }
        if let t = given["connect_timeout"] {
            guard let seconds = Int(t) else {
                throw TrackingError.invalid("Invalid connect_timeout '\(t)'\(from("connect_timeout")) for the PostgreSQL connection: a whole number of seconds")
            }
            connectTimeout = seconds > 0 ? max(seconds, 2) : nil
        }
        serverOptions = given["options"]
        if let encoding = given["client_encoding"], !["utf8", "utf-8", "unicode", "auto"].contains(encoding.lowercased()) {
            throw TrackingError.invalid("The PostgreSQL connection's client_encoding=\(encoding)\(from("client_encoding")) is not supported by Tally, "
                                        + "which speaks UTF8 only")
        }
        if given["password"] == nil {
            // Each host's own line, as libpq looks the file up for each host it tries; the port as written (libpq matches
            // `05432` against the file's field as text).
            let file = given["passfile"] ?? Passfile.defaultPath(environment: environment)
            for i in endpoints.indices {
                switch Passfile.lookup(file, host: Passfile.host(endpoints[i].host), port: ports[i], database: database, user: user) {
                case .found(let p): endpoints[i].password = p
                case .passedOver(let why): passfileNote = why
                case .none: break
                }
            }
        }
    }

    /// The certificate files, as libpq finds them: those the connection names, else those of `~/.postgresql` that
    /// exist (`root.crt`; `postgresql.crt`, its key `postgresql.key` unless `sslkey` names one; a key without a
    /// certificate is not used). A CA file makes `require` check the chain (`verify-ca`), as in libpq;
    /// `sslrootcert=system` (libpq 16) means the system's authorities, and then the name is checked too. A file the
    /// connection names and that is missing stops the start when it is used (libpq would go on without it, unverified
    /// or without a client certificate: Tally does not weaken a connection for a typo).
    mutating func resolveCertificates(_ given: [String: String], home: String) throws {
        let files = home + "/.postgresql/", exists = { FileManager.default.fileExists(atPath: $0) }
        rootCertificate = given["sslrootcert"] ?? (exists(files + "root.crt") ? files + "root.crt" : nil)
        clientCertificate = given["sslcert"] ?? (exists(files + "postgresql.crt") ? files + "postgresql.crt" : nil)
        clientKey = clientCertificate == nil ? nil : given["sslkey"] ?? files + "postgresql.key"
        if let cert = clientCertificate, let key = clientKey, exists(cert), !exists(key) {
            throw TrackingError.invalid("The PostgreSQL connection's client certificate \(cert) is there but not its private key file \(key) "
                                        + "(sslkey names it; default ~/.postgresql/postgresql.key)")
        }
        if rootCertificate == "system" {
            rootCertificate = nil
            if tls != .disable { tls = .verifyFull }
        } else if rootCertificate != nil, tls == .require {
            tls = .verifyCA
        }
    }

    /// The home directory libpq reads its files from: `HOME`, else the account's.
    static func home(_ environment: [String: String]) -> String {
        environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    }

    /// A TLS version by libpq's name for it (in any case, as libpq compares them).
    static func tlsVersion(_ value: String, _ keyword: String, _ from: (String) -> String) throws -> TLSVersion {
        guard let v = TLSVersion.allCases.first(where: { $0.rawValue.lowercased() == value.lowercased() }) else {
            throw TrackingError.invalid("Invalid \(keyword) '\(value)'\(from(keyword)) for the PostgreSQL connection: use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3")
        }
        return v
    }

    /// A port number; `from`: where it came from, for the error.
    static func port(_ s: Substring, _ from: String = "") throws -> Int {
        guard let p = Int(s), (1...65535).contains(p) else { throw TrackingError.invalid("Invalid port '\(s)'\(from) for the PostgreSQL connection") }
        return p
    }
}
