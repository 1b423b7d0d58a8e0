import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// An error from PostgreSQL (or from reaching it), with its SQLSTATE when the server sent one.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// The five-character SQLSTATE (`23505` unique violation, `40001` serialization failure, …), `nil` for errors
    /// that are not the server's (connection refused, TLS, protocol).
    public var sqlState: String?
    /// The server's message, or a description of the failure.
    public var message: String
    /// The statement, when one was being run.
    public var sql: String?

    /// `PostgreSQL error STATE: message (in: sql)`.
    public var description: String {
        "PostgreSQL error" + (sqlState.map { " \($0)" } ?? "") + ": \(message)" + (sql.map { " (in: \($0))" } ?? "")
    }

    /// A unique, primary-key, foreign-key, not-null or check constraint refused the write (class 23).
    public var isConstraint: Bool { sqlState?.hasPrefix("23") ?? false }
    /// A value the database's text type cannot hold (NUL, invalid encoding: `22021`, `22P05`).
    public var isUnrepresentable: Bool { sqlState == "22021" || sqlState == "22P05" }
    /// A serializable transaction lost to a concurrent one (`40001`) or a deadlock was broken (`40P01`): retry it.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    init(_ error: any Error, sql: String?) {
        self.sql = sql
        if let e = error as? PSQLError {
            sqlState = e.serverInfo?[.sqlState]
            message = e.serverInfo?[.message] ?? "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
        } else {
            sqlState = nil
            message = "\(error)"
        }
    }
}

/// Blocking access to PostgreSQL for the synchronous metadata store: a pool of connections on NIO's event loops,
/// called from the server's blocking threads (and tests) by waiting on their futures — never from a task that an
/// event loop must run. A connection found closed is replaced, retrying with backoff for up to
/// ``reconnectMillis``; the first connection is made at once, so a database that cannot be reached stops the start
/// with an error naming host and port.
public final class PostgresDatabase: Sendable {
    /// Where the database is.
    public let uri: PostgresURI
    let configuration: PostgresConnection.Configuration
    let group: any EventLoopGroup
    let logger: Logger
    /// One permit per connection the pool may hold.
    let permits: DispatchSemaphore
    let idle = Mutex<[PostgresConnection]>([])
    let nextID = Atomic<Int>(0)
    /// How long a lost connection is retried before a request fails.
    public static let reconnectMillis = 10_000

    /// Connects (one connection now, up to `poolSize` on demand).
    public init(uri: PostgresURI, poolSize: Int = 8, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        precondition(poolSize >= 1, "a pool needs at least one connection")
        self.uri = uri
        self.group = group
        var logger = Logger(label: "tally.postgres")
        logger.logLevel = .error
        self.logger = logger
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch uri.tls {
            case .disable: tls = .disable
            case .prefer, .require:
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = .none  // libpq's require: encrypted, not authenticated
                tls = uri.tls == .prefer ? .prefer(try NIOSSLContext(configuration: c)) : .require(try NIOSSLContext(configuration: c))
            case .verify: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw PostgresError(error, sql: nil)
        }
        configuration = PostgresConnection.Configuration(host: uri.host, port: uri.port, username: uri.user, password: uri.password,
                                                         database: uri.database, tls: tls)
        permits = DispatchSemaphore(value: poolSize)
        do {
            idle.withLock { $0 = [] }
            let first = try connect()
            idle.withLock { $0.append(first) }
        } catch let e as PostgresError {
            throw TrackingError(.internalError, "Cannot reach PostgreSQL at \(uri.host):\(uri.port) (database '\(uri.database)', user '\(uri.user)'): \(e.message)")
        }
    }

    deinit {
        // Each closing connection is kept until its close completes (PostgresNIO insists on it).
        for c in idle.withLock({ $0 }) { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
    }

    /// A new connection.
    func connect() throws -> PostgresConnection {
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: nextID.add(1, ordering: .relaxed).newValue,
                                                  logger: logger).wait()
        } catch {
            throw PostgresError(error, sql: nil)
        }
    }

    /// A new connection, retried with exponential backoff (50 ms doubling to 2 s) for up to ``reconnectMillis``.
    func reconnect() throws -> PostgresConnection {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.reconnectMillis) * 1_000_000
        var wait: UInt64 = 50_000_000
        while true {
            do {
                return try connect()
            } catch {
                guard DispatchTime.now().uptimeNanoseconds + wait < deadline else { throw error }
                Thread.sleep(forTimeInterval: Double(wait) / 1e9)
                wait = min(wait * 2, 2_000_000_000)
            }
        }
    }

    /// Runs `body` with a connection of the pool (waiting while all are busy). A connection that closed, or failed
    /// with an error that is not the server's answer (reset, timeout, protocol), is dropped from the pool: that call
    /// fails, the next gets a new connection.
    @discardableResult
    public func withConnection<R>(_ body: (Connection) throws -> R) throws -> R {
        permits.wait()
        defer { permits.signal() }
        var conn = idle.withLock { $0.popLast() }
        if conn?.isClosed ?? true { conn = try reconnect() }
        let c = conn!
        do {
            let r = try body(Connection(connection: c, logger: logger))
            if !c.isClosed { idle.withLock { $0.append(c) } }
            return r
        } catch let e as PostgresError where e.sqlState == nil {
            c.close().whenComplete { _ in withExtendedLifetime(c) {} }
            throw e
        } catch {
            if !c.isClosed { idle.withLock { $0.append(c) } }
            throw error
        }
    }

    /// Runs `body` in a transaction (`BEGIN` … `COMMIT`, `ROLLBACK` when it throws). `serializable` transactions that
    /// lose to a concurrent one are run again after a random pause that grows with each try, up to ten times.
    @discardableResult
    public func transaction<R>(serializable: Bool = false, _ body: (Connection) throws -> R) throws -> R {
        var attempt = 0
        while true {
            do {
                return try withConnection { c in
                    try c.execute(serializable ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN")
                    do {
                        let r = try body(c)
                        try c.execute("COMMIT")
                        return r
                    } catch {
                        try? c.execute("ROLLBACK")
                        throw error
                    }
                }
            } catch let e as PostgresError where e.isRetryable && attempt < 10 {
                attempt += 1
                Thread.sleep(forTimeInterval: Double.random(in: 0.001...0.002) * Double(1 << min(attempt, 6)))
            }
        }
    }

    /// Closes every idle connection (busy ones close when returned after this).
    public func close() {
        for c in idle.withLock({ s in defer { s = [] }; return s }) {
            let closing: EventLoopFuture<Void> = c.close()
            try? closing.wait()
        }
    }

    /// One connection, lent for a call: statements with SQLite-style `?` placeholders and ``SQLValue`` binds and cells,
    /// so SQL written for both dialects reads the same.
    public struct Connection: Sendable {
        let connection: PostgresConnection
        let logger: Logger

        /// Runs statements without binds (several allowed, separated by `;`), one after the other.
        public func execute(_ sql: String) throws {
            for statement in Self.statements(sql) { try run(statement) }
        }

        /// `sql` split at the `;`s outside quotes and `$$` bodies, empty statements dropped.
        static func statements(_ sql: String) -> [String] {
            var out: [String] = [], current = "", quote: Character?, dollar = false, previous: Character = " "
            for ch in sql {
                defer { previous = ch }
                if ch == "$" && previous == "$" && quote == nil {
                    dollar.toggle()
                } else if dollar {
                } else if let q = quote {
                    if ch == q { quote = nil }
                } else if ch == "'" || ch == "\"" {
                    quote = ch
                } else if ch == ";" {
                    out.append(current)
                    current = ""
                    continue
                }
                current.append(ch)
            }
            out.append(current)
            return out.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        }

        /// Sends a statement without binds and returns at once; ``Pending/wait()`` waits for its answer. Statements
        /// sent after it on this connection run after it.
        public func start(_ sql: String) -> Pending {
            Pending(future: connection.query(PostgresQuery(unsafeSQL: sql), logger: logger), sql: sql)
        }

        /// A statement sent and not waited for yet.
        public struct Pending: Sendable {
            let future: EventLoopFuture<PostgresQueryResult>
            let sql: String

            /// Waits for the statement's answer; throws its error.
            public func wait() throws {
                do {
                    _ = try future.wait()
                } catch {
                    throw PostgresError(error, sql: sql)
                }
            }
        }

        /// Runs a statement; returns the rows it touched (or returned).
        @discardableResult
        public func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
            do {
                return try connection.query(try Self.query(sql, values), logger: logger).wait().metadata.rows ?? 0
            } catch let e as PostgresError {
                throw e
            } catch {
                throw PostgresError(error, sql: sql)
            }
        }

        /// The rows of a query, each cell as a ``SQLValue``.
        public func rows(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
            do {
                return try connection.query(try Self.query(sql, values), logger: logger).wait().rows.map { row in
                    row.map(Self.value)
                }
            } catch let e as PostgresError {
                throw e
            } catch {
                throw PostgresError(error, sql: sql)
            }
        }

        /// `?` placeholders (outside quotes) become `$1`, `$2`, …, bound to `values`.
        static func query(_ sql: String, _ values: [SQLValue]) throws -> PostgresQuery {
            var text = "", n = 0, quote: Character?
            for ch in sql {
                if let q = quote {
                    if ch == q { quote = nil }
                    text.append(ch)
                } else if ch == "'" || ch == "\"" {
                    quote = ch
                    text.append(ch)
                } else if ch == "?" {
                    n += 1
                    text += "$\(n)"
                } else {
                    text.append(ch)
                }
            }
            guard n == values.count else {
                throw PostgresError(TrackingError(.internalError, "\(n) placeholders, \(values.count) values"), sql: sql)
            }
            var binds = PostgresBindings(capacity: values.count)
            for v in values {
                switch v {
                case .null: binds.appendNull()
                case .integer(let x): binds.append(x)
                case .real(let x): binds.append(x)
                case .text(let x):
                // PostgreSQL text cannot hold NUL: refused here with the SQLSTATE the server would answer.
                guard !x.utf8.contains(0) else {
                    var e = PostgresError(TrackingError(.invalidParameterValue, "NUL"), sql: sql)
                    e.sqlState = "22021"
                    e.message = "text containing the NUL character (\\u0000) cannot be stored or looked up in PostgreSQL"
                    throw e
                }
                binds.append(x)
                case .blob(let x): binds.append(ByteBuffer(bytes: x))
                }
            }
            return PostgresQuery(unsafeSQL: text, binds: binds)
        }

        /// A cell as a ``SQLValue``: integers (and booleans as 0/1), floating point, text, bytea; NULL.
        static func value(_ cell: PostgresCell) -> SQLValue {
            guard cell.bytes != nil else { return .null }
            switch cell.dataType {
            case .int2, .int4, .int8, .oid: return (try? cell.decode(Int64.self)).map(SQLValue.integer) ?? .null
            case .bool: return (try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) } ?? .null
            case .float4, .float8: return (try? cell.decode(Double.self)).map(SQLValue.real) ?? .null
            case .bytea: return (try? cell.decode(ByteBuffer.self)).map { .blob(Array($0.readableBytesView)) } ?? .null
            default: return (try? cell.decode(String.self)).map(SQLValue.text) ?? .null
            }
        }
    }
}
