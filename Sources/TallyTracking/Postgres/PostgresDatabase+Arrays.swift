import Logging
import NIOCore
import PostgresNIO
import Synchronization

extension PostgresDatabase.Connection {
    /// A column of values bound as one PostgreSQL array: `unnest(?, ?, …)` turns columns into rows, so one statement
    /// text (prepared once) writes any number of rows — a ``PostgresDatabase/Lane``'s batch.
    enum Column: Sendable {
        case texts([String])
        case integers([Int64])
        case blobs([[UInt8]])
    }

    /// A statement as PostgreSQL reads it (placeholders `$1`, `$2`, … with their casts) and its binds.
    struct Statement: Sendable {
        /// The statement's text.
        let text: String
        /// The statement as written (with `?` placeholders), for errors.
        let sql: String
        /// Its binds.
        let binds: Binds

        /// A statement's binds: single values, or one array per column.
        enum Binds: Sendable {
            case values([SQLValue])
            case columns([Column])
        }

        /// `sql` with SQLite-style `?` placeholders bound to `values` (see ``PostgresDatabase/Connection/text(_:_:)``).
        init(_ sql: String, _ values: [SQLValue]) throws {
            text = try PostgresDatabase.Connection.text(sql, values)
            self.sql = sql
            binds = .values(values)
        }

        /// `text`, PostgreSQL's already, bound to `columns`.
        init(text: String, columns: [Column]) {
            self.text = text
            sql = text
            binds = .columns(columns)
        }

        /// Whether it may be prepared on a connection (a statement with binds, not too many of them).
        var preparable: Bool {
            switch binds {
            case .values(let v): !v.isEmpty && v.count <= 64
            case .columns: true
            }
        }

        /// The binds of the prepared statement; text with NUL is refused.
        func data() throws -> [PostgresData] {
            switch binds {
            case .values(let v): return try PostgresDatabase.Connection.data(v)
            case .columns(let columns):
                return try columns.map { column in
                    switch column {
                    case .texts(let v):
                        for x in v { try PostgresDatabase.Connection.refuseNUL(x) }
                        return PostgresData(array: v.map { PostgresData(string: $0) }, elementType: .text)
                    case .integers(let v): return PostgresData(array: v.map { PostgresData(int64: $0) }, elementType: .int8)
                    case .blobs(let v): return PostgresData(array: v.map { PostgresData(bytes: $0) }, elementType: .bytea)
                    }
                }
            }
        }

        /// The binds of the statement run unprepared; text with NUL is refused.
        func bindings() throws -> PostgresBindings {
            switch binds {
            case .values(let v): return try PostgresDatabase.Connection.binds(v)
            case .columns(let columns):
                var binds = PostgresBindings(capacity: columns.count)
                for column in columns {
                    switch column {
                    case .texts(let v):
                        for x in v { try PostgresDatabase.Connection.refuseNUL(x) }
                        binds.append(v)
                    case .integers(let v): binds.append(v)
                    case .blobs(let v): binds.append(v.map { ByteBuffer(bytes: $0) })
                    }
                }
                return binds
            }
        }
    }

    /// The rows of `sql`, each of its `?` placeholders (outside quotes) bound to one of `columns` as a whole array
    /// (`unnest(?, ?)` makes rows of them): a request's many rows in one statement and one round trip, prepared once
    /// whatever their number.
    @discardableResult
    func rows(_ sql: String, arrays columns: [Column]) throws -> [[SQLValue]] {
        let types = columns.map { column in
            switch column {
            case .texts: "::text[]"
            case .integers: "::int8[]"
            case .blobs: "::bytea[]"
            }
        }
        return try rows(Statement(text: try Self.text(sql, types: types), columns: columns))
    }

    /// The rows of `statement`: prepared on the connection the first time it runs (up to
    /// ``PostgresDatabase/preparedPerConnection``), so later runs skip the server's parsing and planning.
    func rows(_ statement: Statement) throws -> [[SQLValue]] {
        try checkOpen(statement.sql)
        do {
            let pooled = pooled, logger = logger
            let answer = pooled.send { pooled.execute(statement, logger: logger) }
            return try afterEarlier(statement.sql) { try answer.wait() }
        } catch let e as PostgresError {
            throw e
        } catch {
            throw PostgresError(error, sql: statement.sql)
        }
    }
}

extension PostgresDatabase.Pooled {
    /// Runs `statement` on this connection, in its loop (``DrivenLoop``): a statement prepared here before is only bound
    /// and executed; one that may be prepared is prepared first, while the connection holds fewer than
    /// ``preparedLimit``; any other runs unprepared. Its rows, each cell as a ``SQLValue``.
    func execute(_ statement: PostgresDatabase.Connection.Statement, logger: Logger) -> EventLoopFuture<[[SQLValue]]> {
        typealias C = PostgresDatabase.Connection
        let text = statement.text
        do {
            if statement.preparable, let p = self.prepared.withLock({ $0[text] }) {
                return p.execute(try statement.data()).map(C.values)
            }
            if statement.preparable, self.prepared.withLock({ $0.count }) < preparedLimit {
                let data = try statement.data()
                return connection.prepare(query: text).flatMap { p in
                    self.prepared.withLock { $0[text] = p }
                    return p.execute(data)
                }.map(C.values)
            }
            return connection.query(PostgresQuery(unsafeSQL: text, binds: try statement.bindings()), logger: logger).map { result in
                result.rows.map { $0.map(C.value) }
            }
        } catch {
            return connection.eventLoop.makeFailedFuture(error)
        }
    }
}
