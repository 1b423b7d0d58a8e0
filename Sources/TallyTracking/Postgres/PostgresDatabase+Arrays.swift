import NIOCore
import PostgresNIO

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
            binds = .values(values)
        }

        /// `text`, PostgreSQL's already, bound to `columns`.
        init(text: String, columns: [Column]) {
            self.text = text
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

    /// The rows of `statement` (prepared on the connection the first time, like ``rows(_:_:)``).
    func rows(_ statement: Statement) throws -> [[SQLValue]] {
        try rows(statement.text, text: { statement.text }, preparable: statement.preparable, data: { try statement.data() },
                 binds: { try statement.bindings() })
    }
}
