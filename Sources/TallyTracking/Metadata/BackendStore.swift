import Foundation

/// MLflow's `--backend-store-uri` forms and the metadata store each one opens.
public enum BackendStore {
    /// Whether `uri` names an embedded SQLite store (`nil` included): a file one process holds while it runs.
    public static func isSQLite(_ uri: String?) -> Bool {
        uri.map { $0.hasPrefix("sqlite://") } ?? true
    }

    /// Opens the store `uri` names: `nil` is SQLite at `defaultPath`; `sqlite:///relative.db`, `sqlite:////absolute.db`
    /// and `sqlite://` (in memory) are SQLite as SQLAlchemy spells it; `postgresql://`, `postgres://` and
    /// `postgresql+psycopg2://` are PostgreSQL.
    /// - Parameters:
    ///   - poolSize: the most PostgreSQL connections this server opens.
    ///   - migrate: `false` refuses to start on a PostgreSQL schema behind this build instead of migrating it.
    public static func open(uri: String?, defaultPath: String, defaultArtifactLocation: String, poolSize: Int = 8, migrate: Bool = true,
                            now: Int64) throws -> any MetadataStore {
        switch uri {
        case nil:
            try refuseBackupOfPostgres(defaultPath)
            return try SQLiteMetadataStore(path: defaultPath, defaultArtifactLocation: defaultArtifactLocation, now: now)
        case let uri? where uri.hasPrefix("sqlite:///"):
            return try SQLiteMetadataStore(path: String(uri.dropFirst("sqlite:///".count)), defaultArtifactLocation: defaultArtifactLocation, now: now)
        case "sqlite://"?: return try SQLiteMetadataStore(path: ":memory:", defaultArtifactLocation: defaultArtifactLocation, now: now)
        case let uri? where PostgresURI.schemes.contains(where: { uri.hasPrefix($0 + "://") }):
            guard poolSize >= 1 else { throw TrackingError.invalid("The PostgreSQL pool needs at least one connection, got \(poolSize)") }
            return try PostgresMetadataStore(uri: try PostgresURI(parsing: uri), poolSize: poolSize, migrate: migrate,
                                             defaultArtifactLocation: defaultArtifactLocation, now: now)
        case let uri?:
            throw TrackingError(.invalidParameterValue, "Unsupported --backend-store-uri '\(uri)': use sqlite:///path or postgresql://user:password@host:port/database")
        }
    }

    /// A data directory that holds a backup's PostgreSQL dump and no embedded database is a PostgreSQL server's
    /// backup: starting on it with an empty embedded database would serve its points without their runs.
    static func refuseBackupOfPostgres(_ defaultPath: String) throws {
        let dump = (defaultPath as NSString).deletingLastPathComponent + "/" + DataDirectory.metadataDumpName
        guard !FileManager.default.fileExists(atPath: defaultPath), FileManager.default.fileExists(atPath: dump) else { return }
        throw TrackingError(.invalidParameterValue,
                            "\(dump) is a backup of a PostgreSQL metadata database and there is no \(DataDirectory.metadataName): restore it "
                            + "into an empty database (pg_restore --no-owner --dbname=… \(dump)) and start with --backend-store-uri "
                            + "postgresql://…/that-database (docs/postgresql.md, \"Backups\")")
    }
}
