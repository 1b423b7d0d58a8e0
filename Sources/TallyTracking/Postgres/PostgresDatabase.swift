import Dispatch
import Foundation
import Logging
import NIOCore
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
    /// No answer came within the connection's deadline (``PostgresDatabase/NoAnswer``): the connection was closed.
    public var isUnanswered = false

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
    /// The server accepts no writes (`25006`): a standby, a primary a failover demoted, or `default_transaction_read_only`.
    public var isReadOnly: Bool { sqlState == "25006" }
    /// The server refused the login (class `28`: a wrong or changed password, a role dropped or not allowed in).
    public var isLoginRefused: Bool { sqlState?.hasPrefix("28") == true }
    /// The server does not know a prepared statement the connection prepared (`26000`): a pooler in transaction mode
    /// handed the connection another server connection (``PostgresURI/PoolMode``).
    public var isLostStatement: Bool { sqlState == "26000" }

    init(_ error: any Error, sql: String?) {
        self.sql = sql
        if let e = error as? PSQLError {
            sqlState = e.serverInfo?[.sqlState]
            message = e.serverInfo?[.message] ?? "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
        } else if case .server(let e) = error as? PostgresNIO.PostgresError {  // prepared statements' errors (PostgresNIO's older API)
            sqlState = e.fields[.sqlState]
            message = e.fields[.message] ?? "\(e)"
        } else {
            sqlState = nil
            message = "\(error)"
            isUnanswered = error is PostgresDatabase.NoAnswer
        }
    }
}

/// Blocking access to PostgreSQL for the synchronous metadata store: a pool of connections driven by their callers,
/// as libpq's are. Each connection is PostgresNIO's protocol over a ``DrivenChannel``: the thread that holds it (the
/// server's blocking threads, tests) writes each statement to the socket itself and reads the answer itself, so no
/// event loop thread stands between a caller and PostgreSQL and a statement costs one wake-up, its caller's, when the
/// answer arrives (``Answer/wait()``). A connection found closed is replaced, retrying with backoff for up to
/// ``reconnectMillis``; the first connection is made at once, so a database that cannot be reached stops the start
/// with an error naming host and port. With several hosts (``PostgresURI/endpoints``), each connection tries them in
/// turn until one answers and suits the URI's `target_session_attrs`; a connection on a server that turns read-only (a
/// failover demoted it) is dropped at its first refused write, and the next one finds the new primary.
public final class PostgresDatabase: Sendable {
    /// Where the database is.
    public let uri: PostgresURI
    /// How connections to each of the URI's hosts are made, in the URI's order (host and port aside: each connection
    /// is made over a ``DrivenChannel`` already connected, see ``connect()``).
    let configurations: [PostgresConnection.Configuration]
    let logger: Logger
    /// One permit per connection the pool may hold.
    let permits: DispatchSemaphore
    /// How many connections the pool may hold.
    let poolSize: Int
    let idle = Mutex<[Pooled]>([])
    let nextID = Atomic<Int>(0)
    /// Connections with an id below this are retired: closed when next lent or given back. Raised to every connection
    /// made so far when one finds its server refusing writes (a failover demoted it): the others reached the same
    /// server, and would keep serving reads from it after a standby took over.
    let retiredBelow = Atomic<Int>(0)
    /// The same per host of the URI (by index): raised when a connection finds that host unsuitable (a new
    /// connection's question, or the pool's periodic one), retiring the connections made to it before.
    let hostRetiredBelow: [Bound]
    /// A connection id bound (``hostRetiredBelow``).
    final class Bound: Sendable {
        let below = Atomic<Int>(0)
    }
    /// When (monotonic nanoseconds) the next connection lent is asked again whether its server suits the URI's
    /// `target_session_attrs` (``rechecked(_:reconnecting:)``): ``recheckMillis`` after the last time one was asked.
    let recheckAt = Atomic<UInt64>(0)
    /// How often a pool whose URI asks for a server that takes writes asks again whether its connections' server still
    /// does (one round trip, on the connection lent at that moment): a server fenced by a failover (read-only, still
    /// answering) is left within this time even by a server that only reads from it.
    public static let recheckMillis: UInt64 = 1_000
    /// Calls holding a connection of the pool now, and calls that gave up waiting for one.
    let inUse = Atomic<Int>(0), poolTimeouts = Atomic<Int>(0)
    /// How long a lost connection is retried before a request fails.
    public static let reconnectMillis = 10_000
    /// How this project's connections name themselves to PostgreSQL, before the schema version their build writes.
    public static let applicationNamePrefix = "tally schema "
    /// The name this build's connections give PostgreSQL: `tally schema N`, N the schema version the build writes.
    public static let applicationName = applicationNamePrefix + "\(PostgresSchema.current)"

    /// The longest a statement's answer is waited for on this pool's connections (see ``answerSeconds``).
    let answerTimeout: TimeAmount
    /// The longest a call waits for a connection of the pool to come free (see ``poolWaitMillis``).
    let poolWait: TimeAmount
    /// How long a call waits for a free connection by default: as long as a lost connection is retried, so that in an
    /// outage the calls queued behind the pool fail (`503`) within that time too, not one retry budget after another.
    public static let poolWaitMillis = reconnectMillis

    /// Connects (one connection now, up to `poolSize` on demand).
    /// - Parameters:
    ///   - answerTimeout: the longest a statement's answer is waited for before its connection is closed (default
    ///     ``answerSeconds``); it bounds every statement, so it must exceed the slowest one the caller runs.
    ///   - poolWait: the longest a call waits for one of the `poolSize` connections to come free before it fails
    ///     (default ``poolWaitMillis``).
    ///   - applicationName: what the connections call themselves (`pg_stat_activity.application_name`; default
    ///     ``applicationName``, which a migration reads to find servers of an older build).
    public init(uri: PostgresURI, poolSize: Int = 8, answerTimeout: TimeAmount = .seconds(answerSeconds),
                poolWait: TimeAmount = .milliseconds(Int64(poolWaitMillis)), applicationName: String = PostgresDatabase.applicationName) throws {
        precondition(poolSize >= 1, "a pool needs at least one connection")
        precondition(answerTimeout > .zero, "a statement needs time to be answered")
        precondition(poolWait > .zero, "a call needs time to get a connection")
        self.uri = uri
        self.answerTimeout = answerTimeout
        self.poolWait = poolWait
        self.poolSize = poolSize
        var logger = Logger(label: "tally.postgres")
        logger.logLevel = .error
        self.logger = logger
        // The start-up error: where the database is, and why it cannot be used (and a password file passed over).
        func unreachable(_ why: String) -> TrackingError {
            TrackingError(.internalError, "Cannot reach PostgreSQL at \(uri.address) (database '\(uri.database)', user '\(uri.user)'): \(why)"
                          + (uri.passfileNote.map { " (\($0))" } ?? ""))
        }
        do {
            configurations = try Self.configurations(uri, applicationName: applicationName)
        } catch {
            // A certificate or key file missing or unreadable: said before any connection is tried.
            throw unreachable("the URI's TLS files (sslrootcert, sslcert, sslkey) cannot be used: \(error)")
        }
        permits = DispatchSemaphore(value: poolSize)
        hostRetiredBelow = uri.endpoints.map { _ in Bound() }
        recheckAt.store(DispatchTime.now().uptimeNanoseconds + Self.recheckMillis * 1_000_000, ordering: .relaxed)
        do {
            idle.withLock { $0 = [] }
            let first = try connect()
            idle.withLock { $0.append(first) }
        } catch let e as PostgresError {
            throw unreachable(e.message)
        }
    }

    deinit {
        // Each closing connection is kept until its close completes (PostgresNIO insists on it).
        for p in idle.withLock({ $0 }) { p.close() }
    }

    /// A connection of the pool with the statements prepared on it.
    final class Pooled: Sendable {
        let connection: PostgresConnection
        /// The channel it runs on, driven by the thread that holds it.
        let channel: DrivenChannel
        /// The server it reached, and its place in the URI's list.
        let endpoint: PostgresURI.Endpoint, endpointIndex: Int
        /// Set when a statement on it was refused as a write on a read-only server (SQLSTATE `25006`), however the
        /// caller then reports the error: the pool retires it, and every connection made before it.
        let refusedWrite = Atomic<Bool>(false)
        /// Set when the server did not know a statement prepared on this connection (SQLSTATE `26000`: a pooler in
        /// transaction mode gave the connection another server connection): the pool closes it (its statements are
        /// prepared again on the next).
        let lostStatement = Atomic<Bool>(false)
        /// Prepared statements by their text (with the binds' types spelled out: see ``Connection/text(_:_:)``).
        let prepared = Mutex<[String: PreparedQuery]>([:])
        /// Statements sent and not waited for yet, oldest first (``Connection/exec(_:_:)``).
        let unanswered = Mutex<[(answer: Answer<Void>, sql: String)]>([])
        /// The longest a statement's answer is waited for (``PostgresDatabase/answerTimeout``).
        let answerTimeout: TimeAmount
        /// The most statements prepared on it: ``PostgresDatabase/preparedPerConnection``, or none behind a pooler in
        /// transaction mode (``PostgresURI/PoolMode/transaction``).
        let preparedLimit: Int

        init(_ connection: PostgresConnection, channel: DrivenChannel, endpoint: PostgresURI.Endpoint, index: Int, answerTimeout: TimeAmount,
             preparedLimit: Int) {
            self.connection = connection
            self.channel = channel
            self.endpoint = endpoint
            endpointIndex = index
            self.answerTimeout = answerTimeout
            self.preparedLimit = preparedLimit
        }

        /// Sends what `send` sends, from the calling thread (in the connection's loop: PostgresNIO writes it to the
        /// socket before this returns), and returns at once; ``Answer/wait()`` reads the answer, within
        /// ``answerTimeout`` of now.
        func send<T: Sendable>(_ send: () -> EventLoopFuture<T>) -> Answer<T> {
            let answer = Answer<T>(on: self, within: answerTimeout)
            channel.loop.run {
                guard !connection.isClosed else { answer.settle(.failure(Closed())); return }
                send().whenComplete { result in
                    if case .failure(let error) = result { self.note(error) }
                    answer.settle(result)
                }
            }
            return answer
        }

        /// Marks the connection for the pool to drop when `error` says its server refused a write as read-only, or
        /// lost a statement prepared on it.
        func note(_ error: any Error) {
            let e = PostgresError(error, sql: nil)
            if e.isReadOnly { refusedWrite.store(true, ordering: .relaxed) }
            if e.isLostStatement { lostStatement.store(true, ordering: .relaxed) }
        }

        /// Closes the connection, to its end (TLS's close_notify included, ``DrivenChannel/shut()``): from any
        /// thread; from inside its loop (a callback of one of its statements), the drive in progress finishes it.
        /// `self` is kept until the close completes, as PostgresNIO requires.
        func close() {
            channel.requestClose()
            connection.close().whenComplete { _ in withExtendedLifetime(self) {} }
            if !channel.loop.inEventLoop { channel.shut() }
        }
    }

    /// The most statements prepared on one connection; later ones run unprepared (all of them behind a pooler in
    /// transaction mode).
    static let preparedPerConnection = 256

    /// The longest a statement's answer is waited for. A connection silent that long is closed (its pending
    /// statements fail, the pool replaces it): a lost connection PostgreSQL never answers on again — seen once in
    /// a ROLLBACK across a server restart — fails a request instead of holding its thread and locks for ever.
    public static let answerSeconds: Int64 = 120

    /// A statement's answer: settled in its connection's loop, as its caller reads it (``wait()``).
    final class Answer<T: Sendable>: Sendable {
        private let slot = Mutex<Result<T, any Error>?>(nil)
        let pooled: Pooled
        let timeout: TimeAmount
        /// When the answer is given up (``NoAnswer``), and the connection closed.
        let deadline: NIODeadline

        init(on pooled: Pooled, within timeout: TimeAmount) {
            self.pooled = pooled
            self.timeout = timeout
            deadline = .now() + timeout
        }

        /// Settles the answer; `false` when it was settled already (the answer and the deadline race).
        @discardableResult
        func settle(_ result: Result<T, any Error>) -> Bool {
            slot.withLock { s in
                guard s == nil else { return false }
                s = result
                return true
            }
        }

        /// Whether the answer is settled.
        var isSettled: Bool { slot.withLock { $0 != nil } }

        /// Fails the answer with ``NoAnswer`` past its deadline and closes the silent connection (its other statements
        /// fail, the pool replaces it); nothing when the answer came first.
        func expire() {
            guard settle(.failure(NoAnswer(timeout: timeout))) else { return }
            pooled.close()
        }

        /// Reads the connection until the answer is in (or its deadline passes: ``expire()``); any number of times
        /// (each returns or throws the same). Answers to statements sent before it are settled on the way.
        func wait() throws -> T {
            if !isSettled {
                switch pooled.channel.drive(until: { isSettled }, deadline: deadline) {
                case .done: break
                case .timedOut: expire()
                case .closed: settle(.failure(Closed()))
                }
            }
            return try slot.withLock { $0! }.get()
        }
    }

    /// A statement not sent: the connection had closed (PostgresNIO would never answer a query written to it).
    struct Closed: Error, CustomStringConvertible {
        var description: String { "the connection to PostgreSQL is closed" }
    }

    /// How connections to each of `uri`'s hosts are made: where, as whom, with what TLS (one context for all), in how
    /// long (`connect_timeout`, per host as in libpq), with the URI's server `options` and `applicationName`.
    static func configurations(_ uri: PostgresURI, applicationName: String) throws -> [PostgresConnection.Configuration] {
        let tls = uri.endpoints.contains { $0.socketPath == nil } ? try tls(uri) : .disable
        return uri.endpoints.map { e in
            var configuration = e.socketPath.map {
                PostgresConnection.Configuration(unixSocketPath: $0, username: uri.user, password: e.password, database: uri.database)
            } ?? PostgresConnection.Configuration(host: e.host, port: e.port, username: uri.user, password: e.password, database: uri.database, tls: tls)
            configuration.options.additionalStartupParameters = [("application_name", applicationName)] + (uri.serverOptions.map { [("options", $0)] } ?? [])
            configuration.options.connectTimeout = .seconds(Int64(uri.connectTimeout ?? PostgresURI.defaultConnectTimeout))
            return configuration
        }
    }

    /// The TLS `uri` asks for, as libpq's sslmodes mean it: `prefer` and `require` encrypt without checking the
    /// certificate, `verify-ca` checks its chain, `verify-full` its chain and that it names the host; the protocol
    /// versions within `ssl_min_protocol_version` and `ssl_max_protocol_version`.
    static func tls(_ uri: PostgresURI) throws -> PostgresConnection.Configuration.TLS {
        guard uri.tls != .disable else { return .disable }
        var c = TLSConfiguration.makeClientConfiguration()
        c.certificateVerification = uri.tls == .verifyFull ? .fullVerification : uri.tls == .verifyCA ? .noHostnameVerification : .none
        let versions: [PostgresURI.TLSVersion: TLSVersion] = [.v1: .tlsv1, .v1_1: .tlsv11, .v1_2: .tlsv12, .v1_3: .tlsv13]
        c.minimumTLSVersion = versions[uri.minimumTLSVersion]!
        c.maximumTLSVersion = uri.maximumTLSVersion.map { versions[$0]! }
        if let roots = uri.rootCertificate { c.trustRoots = .file(roots) }
        if let cert = uri.clientCertificate, let key = uri.clientKey {
            // As libpq: a key file its group or others may use is refused, except that root's may be read by its group
            // (system-wide certificates).
            var st = stat()
            if stat(key, &st) == 0, st.st_mode & (st.st_uid == 0 ? 0o037 : 0o077) != 0 {
                throw KeyFileExposed(path: key)
            }
            c.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            c.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        let context = try NIOSSLContext(configuration: c)
        return uri.tls == .prefer ? .prefer(context) : .require(context)
    }

    /// A client key file others may read (libpq refuses it too).
    struct KeyFileExposed: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "the private key file \(path) has group or world access; it must have permissions u=rw (0600) or less, or u=rw,g=r "
                + "(0640) or less if owned by root"
        }
    }

    /// A statement left unanswered past its connection's ``answerTimeout``.
    struct NoAnswer: Error, CustomStringConvertible {
        let timeout: TimeAmount
        var description: String { "no answer from PostgreSQL within \(PostgresDatabase.seconds(timeout)) s: the connection was closed" }
    }

    /// No connection of the pool came free within ``poolWait`` (all busy, or being reconnected in an outage).
    struct NoFreeConnection: Error, CustomStringConvertible {
        let poolSize: Int
        let waited: TimeAmount
        var description: String { "none of its \(poolSize) pooled connection(s) came free within \(PostgresDatabase.seconds(waited)) s" }
    }

    /// `t` in seconds for messages: `120`, `0.25`.
    static func seconds(_ t: TimeAmount) -> String {
        let seconds = Double(t.nanoseconds) / 1e9
        return seconds == seconds.rounded() ? String(Int64(seconds)) : String(format: "%.3g", seconds)
    }

    /// A new connection: to the first of the URI's hosts that answers and suits its `target_session_attrs` (in
    /// random order with `load_balance_hosts=random`), as libpq tries them. The error, when none does, says why for
    /// each host.
    func connect() throws -> Pooled {
        var order = Array(uri.endpoints.indices)
        if uri.loadBalanceHosts { order.shuffle() }
        var failures: [String] = []
        for i in order {
            let endpoint = uri.endpoints[i]
            do {
                let pooled = try open(endpoint: i)
                let unsuitable: String?
                do {
                    unsuitable = try self.unsuitable(pooled)
                } catch {
                    pooled.close()
                    throw error
                }
                guard let unsuitable else { return pooled }
                pooled.close()
                retire(host: i)
                failures.append(uri.endpoints.count == 1 ? unsuitable : "\(endpoint): \(unsuitable)")
            } catch {
                let e = error as? PostgresError ?? PostgresError(error, sql: nil)
                // A server that answered and refused the login stops the search, as in libpq: the other hosts are the
                // same database's, and would refuse it too (or, worse, take credentials meant for this one).
                if uri.endpoints.count == 1 { throw e }
                guard !e.isLoginRefused else {
                    var refused = PostgresError(NoSuitableServer(reasons: failures + ["\(endpoint): \(e.message)"]), sql: nil)
                    refused.sqlState = e.sqlState
                    throw refused
                }
                failures.append("\(endpoint): \(e.message)")
            }
        }
        throw PostgresError(NoSuitableServer(reasons: failures), sql: nil)
    }

    /// A connection to the URI's host `index`: a socket connected within `connect_timeout`, PostgresNIO's start-up
    /// (TLS, login) on a ``DrivenChannel`` over it, driven by the calling thread within the same time.
    func open(endpoint index: Int) throws -> Pooled {
        let endpoint = uri.endpoints[index], template = configurations[index]
        let timeout = template.options.connectTimeout
        let socket: DrivenSocket.Connected
        do {
            socket = try endpoint.socketPath.map { try DrivenSocket.unix(path: $0) }
                ?? DrivenSocket.tcp(host: endpoint.host, port: endpoint.port, timeoutMillis: Int(timeout.nanoseconds / 1_000_000))
        } catch {
            throw PostgresError(error, sql: nil)
        }
        DrivenSocket.limitSends(socket.fd, to: answerTimeout)
        let channel = DrivenChannel(socket)
        var configuration = PostgresConnection.Configuration(establishedChannel: channel, tls: template.tls, username: template.username,
                                                             password: template.password, database: template.database)
        configuration.options = template.options
        if endpoint.socketPath == nil, !DrivenSocket.isAddress(endpoint.host) { configuration.options.tlsServerName = endpoint.host }
        let started = PostgresConnection.connect(on: channel.loop, configuration: configuration, id: nextID.add(1, ordering: .relaxed).newValue,
                                                 logger: logger)
        let outcome = Mutex<Result<PostgresConnection, any Error>?>(nil)
        started.whenComplete { r in outcome.withLock { $0 = r } }
        // PostgresNIO's own timer fails the start at `connect_timeout`; the drive's deadline is a second later.
        _ = channel.drive(until: { outcome.withLock { $0 != nil } }, deadline: .now() + timeout + .seconds(1))
        switch outcome.withLock({ $0 }) {
        case .success(let connection)?:
            return Pooled(connection, channel: channel, endpoint: endpoint, index: index, answerTimeout: answerTimeout,
                          preparedLimit: uri.poolMode == .session ? Self.preparedPerConnection : 0)
        case .failure(let error)?:
            channel.shut(grace: .zero)  // nothing left to say to a server that failed the start-up
            throw PostgresError(error, sql: nil)
        case nil:
            channel.shut(grace: .zero)  // nothing left to say to a server that failed the start-up
            throw PostgresError(DrivenSocket.Failure(description: "no answer to the start-up within \(Self.seconds(timeout)) s"), sql: nil)
        }
    }

    /// Why the server `p` reached does not suit the URI's `target_session_attrs`, or `nil` when it does (always for
    /// `any`: no question asked). One round trip: whether it is a standby, and whether it takes writes by default. Its
    /// answer is waited for as long as the connection itself was (`connect_timeout`), as libpq waits: a host that
    /// accepts connections and answers nothing is passed over as soon as one that does not accept them.
    func unsuitable(_ p: Pooled) throws -> String? {
        guard uri.sessionAttributes != .any else { return nil }
        let probe = Pooled(p.connection, channel: p.channel, endpoint: p.endpoint, index: p.endpointIndex,
                           answerTimeout: .seconds(Int64(uri.connectTimeout ?? PostgresURI.defaultConnectTimeout)), preparedLimit: 0)
        let row = try Connection(pooled: probe, logger: logger)
            .rows("SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('default_transaction_read_only')").first
        let attrs = "target_session_attrs=\(uri.sessionAttributes.rawValue)"
        if row?.first == .integer(1) { return "a standby (in recovery), and \(attrs) asks for a server that takes writes" }
        if uri.sessionAttributes == .readWrite, row?.last == .text("on") {
            return "takes no writes by default (default_transaction_read_only is on), and \(attrs) asks for one that does"
        }
        return nil
    }

    /// `p`, or a new connection when `p`'s server no longer suits the URI's `target_session_attrs`: asked at most once
    /// per ``recheckMillis`` across the pool (the caller that finds the time has come asks; the others go on). A server
    /// found unsuitable (a failover fenced or demoted it), or silent for `connect_timeout` (a machine hung), retires
    /// every connection made to it so far (``retire(host:)``); any other failure of the question (the connection
    /// lost, the server's own error) drops `p` alone.
    func rechecked(_ p: Pooled, reconnecting: Bool) throws -> Pooled {
        guard uri.sessionAttributes != .any else { return p }
        let now = DispatchTime.now().uptimeNanoseconds, at = recheckAt.load(ordering: .relaxed)
        guard now >= at, recheckAt.compareExchange(expected: at, desired: now + Self.recheckMillis * 1_000_000, ordering: .relaxed).exchanged else { return p }
        do {
            guard try unsuitable(p) != nil else { return p }
            retire(host: p.endpointIndex)
        } catch let e as PostgresError where e.isUnanswered {  // the question's errors all come as PostgresError (Connection.rows)
            retire(host: p.endpointIndex)
        } catch {}
        p.close()
        return try reconnecting ? reconnect() : connect()
    }

    /// Retires every connection made so far to the URI's host `index` (closed when next lent or given back).
    func retire(host index: Int) {
        hostRetiredBelow[index].below.max(nextID.load(ordering: .relaxed) + 1, ordering: .relaxed)
    }

    /// None of the URI's hosts could be used: why, host by host.
    struct NoSuitableServer: Error, CustomStringConvertible {
        let reasons: [String]
        var description: String { reasons.joined(separator: "; ") }
    }

    /// A new connection, retried with exponential backoff (50 ms doubling to 2 s) for up to ``reconnectMillis``; a
    /// refused login is not retried (the same credentials would be refused again: the request answers at once).
    func reconnect() throws -> Pooled {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.reconnectMillis) * 1_000_000
        var wait: UInt64 = 50_000_000
        while true {
            do {
                return try connect()
            } catch {
                guard DispatchTime.now().uptimeNanoseconds + wait < deadline, (error as? PostgresError)?.isLoginRefused != true else { throw error }
                Thread.sleep(forTimeInterval: Double(wait) / 1e9)
                wait = min(wait * 2, 2_000_000_000)
            }
        }
    }

    /// Runs `body` with a connection of the pool (waiting while all are busy). A connection that closed, or failed
    /// with an error that is not the server's answer (reset, timeout, protocol), is dropped from the pool: that call
    /// fails, the next gets a new connection.
    /// - Parameter reconnecting: whether a new connection is retried with backoff (``reconnect()``); `false` tries
    ///   once (a probe asks whether the database answers now, not whether it will within ``reconnectMillis``).
    @discardableResult
    public func withConnection<R>(reconnecting: Bool = true, _ body: (Connection) throws -> R) throws -> R {
        guard permits.wait(timeout: .now() + .nanoseconds(Int(poolWait.nanoseconds))) == .success else {
            poolTimeouts.add(1, ordering: .relaxed)
            throw PostgresError(NoFreeConnection(poolSize: poolSize, waited: poolWait), sql: nil)
        }
        inUse.add(1, ordering: .relaxed)
        defer {
            inUse.subtract(1, ordering: .relaxed)
            permits.signal()
        }
        var pooled = idle.withLock { $0.popLast() }
        while let p = pooled, isRetired(p) {
            p.close()
            pooled = idle.withLock { $0.popLast() }
        }
        pooled?.channel.pump()  // a connection its server closed while it sat idle is found closed now, not at its next statement
        if let p = pooled, !p.connection.isClosed {
            pooled = try rechecked(p, reconnecting: reconnecting)
        } else {
            pooled = try reconnecting ? reconnect() : connect()
        }
        let p = pooled!
        do {
            let connection = Connection(pooled: p, logger: logger)
            let r = try body(connection)
            try connection.settle()  // statements sent without waiting are answered before the call returns
            giveBack(p)
            return r
        } catch let e as PostgresError where e.sqlState == nil {
            p.close()
            throw e
        } catch {
            try? Connection(pooled: p, logger: logger).settle()
            giveBack(p)
            throw error
        }
    }

    /// Whether `p` is retired (see ``retiredBelow`` and ``hostRetiredBelow``), or lost a prepared statement, or refused a
    /// write itself: then every connection made so far is.
    func isRetired(_ p: Pooled) -> Bool {
        if p.refusedWrite.load(ordering: .relaxed) {
            retiredBelow.max(nextID.load(ordering: .relaxed) + 1, ordering: .relaxed)  // never lowered by a racing caller
            return true
        }
        return p.lostStatement.load(ordering: .relaxed) || p.connection.id < retiredBelow.load(ordering: .relaxed)
            || p.connection.id < hostRetiredBelow[p.endpointIndex].below.load(ordering: .relaxed)
    }

    /// Puts a lent connection back in the pool, or closes it: closed already, or retired.
    func giveBack(_ p: Pooled) {
        if isRetired(p) {
            p.close()
        } else if !p.connection.isClosed {
            idle.withLock { $0.append(p) }
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
        for p in idle.withLock({ s in defer { s = [] }; return s }) {
            p.close()
        }
    }

    /// One connection, lent for a call: statements with SQLite-style `?` placeholders and ``SQLValue`` binds and cells,
    /// so SQL written for both dialects reads the same.
    public struct Connection: Sendable {
        let pooled: Pooled
        let logger: Logger
        var connection: PostgresConnection { pooled.connection }

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
            let connection = connection, logger = logger
            return Pending(answer: pooled.send { connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) }, sql: sql)
        }

        /// A statement sent and not waited for yet.
        public struct Pending: Sendable {
            let answer: Answer<PostgresQueryResult>
            let sql: String

            /// Waits for the statement's answer; throws its error.
            public func wait() throws {
                do {
                    _ = try answer.wait()
                } catch {
                    throw PostgresError(error, sql: sql)
                }
            }
        }

        /// Runs a statement; returns the rows it touched (or returned).
        @discardableResult
        public func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
            try checkOpen(sql)
            do {
                let query = try Self.query(sql, values), connection = connection, logger = logger
                let answer = pooled.send { connection.query(query, logger: logger) }
                return try afterEarlier(sql) { try answer.wait().metadata.rows ?? 0 }
            } catch let e as PostgresError {
                throw e
            } catch {
                throw PostgresError(error, sql: sql)
            }
        }

        /// Sends a write whose answer nothing needs (prepared on this connection, like ``rows(_:_:)``) without
        /// waiting for it: the next statement waited for on this connection — at the latest the transaction's
        /// `COMMIT`, or the end of ``PostgresDatabase/withConnection(_:)`` — waits for it too, in the same trip, and
        /// throws its error first. Binds are checked (NUL in text) before anything is sent.
        public func exec(_ sql: String, _ values: [SQLValue]) throws {
            try checkOpen(sql)
            do {
                let statement = try Statement(sql, values)
                let answer: Answer<Void>
                if statement.preparable, let prepared = try prepared(statement.text) {
                    let data = try statement.data()
                    answer = pooled.send { prepared.execute(data).map { _ in } }
                } else {
                    let query = PostgresQuery(unsafeSQL: statement.text, binds: try statement.bindings()), connection = connection, logger = logger
                    answer = pooled.send { connection.query(query, logger: logger).map { _ in } }
                }
                pooled.unanswered.withLock { $0.append((answer, sql)) }
            } catch let e as PostgresError {
                throw e
            } catch {
                throw PostgresError(error, sql: sql)
            }
        }

        /// Waits for the statements sent without waiting; throws the first one's error (after all are answered).
        public func settle() throws {
            let sent = pooled.unanswered.withLock { s in defer { s = [] }; return s }
            var first: PostgresError?
            for s in sent {
                do { try s.answer.wait() } catch { if first == nil { first = PostgresError(error, sql: s.sql) } }
            }
            if let first { throw first }
        }

        /// `wait` for a statement already sent, after the ones sent before it without waiting: their error wins
        /// (once one failed, a transaction's later statements fail only because of it).
        func afterEarlier<R>(_ sql: String, _ wait: () throws -> R) throws -> R {
            do {
                try settle()
            } catch {
                _ = try? wait()
                throw error
            }
            return try wait()
        }

        /// The rows of a query, each cell as a ``SQLValue``. Statements with binds are prepared on the connection
        /// the first time it runs them (up to its ``Pooled/preparedLimit``: none behind a pooler in transaction
        /// mode): later runs skip the server's parsing and planning.
        public func rows(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
            try rows(try Statement(sql, values))
        }

        /// Throws instead of sending on a closed connection.
        func checkOpen(_ sql: String) throws {
            if connection.isClosed { throw PostgresError(Closed(), sql: sql) }
        }

        /// The statement `text` prepared on this connection (prepared now the first time), `nil` when the
        /// connection holds as many as it may.
        func prepared(_ text: String) throws -> PreparedQuery? {
            try checkOpen(text)
            if let p = pooled.prepared.withLock({ $0[text] }) { return p }
            guard pooled.prepared.withLock({ $0.count }) < pooled.preparedLimit else { return nil }
            let connection = connection
            let preparing = pooled.send { connection.prepare(query: text) }
            let p = try afterEarlier(text) { try preparing.wait() }
            pooled.prepared.withLock { $0[text] = p }
            return p
        }

        /// `?` placeholders (outside quotes) become `$1`, `$2`, …, bound to `values`.
        static func query(_ sql: String, _ values: [SQLValue]) throws -> PostgresQuery {
            PostgresQuery(unsafeSQL: try text(sql, values), binds: try binds(values))
        }

        /// The statement's text for PostgreSQL: each `?` outside quotes becomes `$n` with the type of its value
        /// spelled out (`$1::int8`, `$2::text`, …; a NULL's type is the server's to infer), so a statement
        /// prepared once takes the same types on every run.
        static func text(_ sql: String, _ values: [SQLValue]) throws -> String {
            try text(sql, types: values.map { v in
                switch v {
                case .null: ""
                case .integer: "::int8"
                case .real: "::float8"
                case .text: "::text"
                case .blob: "::bytea"
                }
            })
        }

        /// The statement's text for PostgreSQL: the `n`th `?` outside quotes becomes `$n` followed by `types[n - 1]`
        /// (a cast such as `::int8`, or nothing).
        static func text(_ sql: String, types: [String]) throws -> String {
            var text = [UInt8](), n = 0, quote: UInt8 = 0
            text.reserveCapacity(sql.utf8.count + types.count * 8)
            for b in sql.utf8 {
                if quote != 0 {
                    if b == quote { quote = 0 }
                    text.append(b)
                } else if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                    quote = b
                    text.append(b)
                } else if b == UInt8(ascii: "?") {
                    n += 1
                    text.append(UInt8(ascii: "$"))
                    text.append(contentsOf: String(n).utf8)
                    if n <= types.count { text.append(contentsOf: types[n - 1].utf8) }
                } else {
                    text.append(b)
                }
            }
            guard n == types.count else {
                throw PostgresError(TrackingError(.internalError, "\(n) placeholders, \(types.count) values"), sql: sql)
            }
            return String(decoding: text, as: UTF8.self)
        }

        /// PostgreSQL text cannot hold NUL: refused here with the SQLSTATE the server would answer.
        static func refuseNUL(_ x: String) throws {
            guard !x.utf8.contains(0) else {
                var e = PostgresError(TrackingError(.invalidParameterValue, "NUL"), sql: nil)
                e.sqlState = "22021"
                e.message = "text containing the NUL character (\\u0000) cannot be stored or looked up in PostgreSQL"
                throw e
            }
        }

        /// The values as binds of an unprepared statement.
        static func binds(_ values: [SQLValue]) throws -> PostgresBindings {
            var binds = PostgresBindings(capacity: values.count)
            for v in values {
                switch v {
                case .null: binds.appendNull()
                case .integer(let x): binds.append(x)
                case .real(let x): binds.append(x)
                case .text(let x):
                    try refuseNUL(x)
                    binds.append(x)
                case .blob(let x): binds.append(ByteBuffer(bytes: x))
                }
            }
            return binds
        }

        /// The values as binds of a prepared statement.
        static func data(_ values: [SQLValue]) throws -> [PostgresData] {
            try values.map { v in
                switch v {
                case .null: return .null
                case .integer(let x): return PostgresData(int64: x)
                case .real(let x): return PostgresData(double: x)
                case .text(let x):
                    try refuseNUL(x)
                    return PostgresData(string: x)
                case .blob(let x): return PostgresData(bytes: x)
                }
            }
        }

        /// The rows of a prepared statement's answer, each cell as a ``SQLValue``. The description a statement is
        /// prepared with says text; the rows come in binary (as asked).
        static func values(_ rows: [PostgresRow]) -> [[SQLValue]] {
            rows.map { row in
                row.map { c in
                    value(PostgresCell(bytes: c.bytes, dataType: c.dataType, format: .binary, columnName: c.columnName, columnIndex: c.columnIndex))
                }
            }
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
