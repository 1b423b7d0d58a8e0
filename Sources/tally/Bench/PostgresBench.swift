import ArgumentParser
import Dispatch
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import TallyTracking

/// `tally bench postgres`: what the PostgreSQL client itself costs. Clients send a trivial prepared statement
/// (`SELECT $1::int8`) one after the other, so PostgreSQL does almost nothing and the rate is the client path's:
/// through Tally's blocking pool (``PostgresDatabase``, what the metadata store uses: a caller's thread, a hop to
/// the event loop and back per statement) and through PostgresNIO's async API on the event loop directly (tasks, no
/// thread of the caller's), and PostgresNIO's protocol driven by each client's own thread over a blocking socket
/// (``callerRate(_:)``, no event loop thread). `pgbench -M prepared` with the same statement is the C client's figure
/// to set beside them. Every mode connects without TLS over TCP; the pool's figure includes lending a connection per
/// statement (what every metadata call does), the others' are bare connections.
struct PostgresBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Measure the PostgreSQL client path: trivial statements per second, blocking pool vs async vs caller-driven (prints JSON with --json)."
    )

    @Option(help: "The database (postgresql://user:password@host:port/database).")
    var uri: String
    @Option(help: "Concurrent clients (threads for the pool, tasks for async), one connection each.")
    var clients = 4
    @Option(help: "Statements per client and mode.")
    var statements = 5_000
    @Option(help: "Rounds (modes alternate; the median of each is reported).")
    var rounds = 3
    @OptionGroup var output: BenchOutput

    func validate() throws {
        guard clients >= 1, statements >= 1, rounds >= 1 else { throw ValidationError("clients, statements and rounds must be at least 1") }
        guard try PostgresURI(parsing: uri).socketPath == nil else { throw ValidationError("give a host and port: every mode connects over TCP") }
    }

    func run() throws {
        var target = try PostgresURI(parsing: uri)
        target.tls = .disable  // as the async mode connects
        var blocking: [Double] = [], async: [Double] = [], caller: [Double] = []
        for round in 0..<rounds {  // the order alternates
            if round % 2 == 1 {
                caller.append(try callerRate(target))
                async.append(try asyncRate(target))
            }
            blocking.append(try blockingRate(target))
            if round % 2 == 0 {
                async.append(try asyncRate(target))
                caller.append(try callerRate(target))
            }
        }
        var out = JSONObject()
        out.add("clients", clients)
        out.add("statements_per_client", statements)
        out.add("blocking_pool_per_s", median(blocking), digits: 0)
        out.add("async_per_s", median(async), digits: 0)
        out.add("async_over_blocking", median(async) / median(blocking), digits: 2)
        out.add("caller_driven_per_s", median(caller), digits: 0)
        out.add("caller_driven_over_blocking", median(caller) / median(blocking), digits: 2)
        output.emit(out)
    }

    /// Statements per second through the pool, each client on a thread of its own.
    func blockingRate(_ target: PostgresURI) throws -> Double {
        let db = try PostgresDatabase(uri: target, poolSize: clients)
        defer { db.close() }
        let per = statements
        // Every connection opened and the statement prepared on it before the clock starts: each client holds its
        // connection until all have one.
        let holding = Atomic<Int>(0), clients = clients
        try onThreads(clients) { _ in
            _ = try db.withConnection { c in
                _ = try c.rows("SELECT ?::int8", [.integer(0)])
                holding.add(1, ordering: .relaxed)
                while holding.load(ordering: .relaxed) < clients { usleep(1_000) }
            }
        }
        return Double(per * clients) / (try seconds {
            try onThreads(clients) { c in
                for i in 0..<per { _ = try db.withConnection { try $0.rows("SELECT ?::int8", [.integer(Int64(i + c))]) } }
            }
        })
    }

    /// Statements per second through PostgresNIO's async API, each client a task with its own connection.
    func asyncRate(_ target: PostgresURI) throws -> Double {
        let configuration = PostgresConnection.Configuration(host: target.host, port: target.port, username: target.user,
                                                             password: target.password, database: target.database, tls: .disable)
        let clients = clients, per = statements
        let result = Mutex<Result<Double, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let logger = Logger(label: "tally.bench.postgres")
                var connections: [PostgresConnection] = []
                defer { for c in connections { c.close().whenComplete { _ in withExtendedLifetime(c) {} } } }
                for c in 0..<clients {
                    connections.append(try await PostgresConnection.connect(configuration: configuration, id: c, logger: logger))
                }
                for c in connections { _ = try await c.execute(Echo(n: 0), logger: logger).reduce(0) { $0 + $1 } }
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (k, c) in connections.enumerated() {
                        group.addTask {
                            for i in 0..<per { _ = try await c.execute(Echo(n: Int64(i + k)), logger: logger).reduce(0) { $0 + $1 } }
                        }
                    }
                    try await group.waitForAll()
                }
                let s = seconds(since: start)
                result.withLock { $0 = .success(Double(per * clients) / s) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }
}

/// The statement both modes send: one bind, one row back.
private struct Echo: PostgresPreparedStatement {
    static let sql = "SELECT $1::int8"
    typealias Row = Int64
    let n: Int64
    func makeBindings() throws -> PostgresBindings {
        var b = PostgresBindings()
        b.append(n)
        return b
    }
    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}
