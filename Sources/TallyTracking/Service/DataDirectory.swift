/// The layout of a server's data directory (`tally server --data-dir`), named once: what a server opens there and what
/// a backup of it copies (``TrackingService/backup(into:dataDirectory:artifacts:)``).
public struct DataDirectory: Sendable {
    /// The directory.
    public let path: String

    /// A data directory at `path`.
    public init(_ path: String) { self.path = path }

    /// The embedded metadata database's file name.
    public static let metadataName = "metadata.sqlite"
    /// A backup's dump of a PostgreSQL metadata database (`pg_dump`'s custom format; `pg_restore` restores it).
    public static let metadataDumpName = "metadata.pgdump"
    /// The metric store's directory name.
    public static let metricsName = "metrics"
    /// The proxied artifacts' directory name (when `--artifacts-destination` names no other).
    public static let artifactsName = "artifacts"
    /// The import journals' directory name (`tally import`).
    public static let importsName = "imports"

    /// The embedded metadata database.
    public var metadata: String { path + "/" + Self.metadataName }
    /// A backup's dump of its PostgreSQL metadata database.
    public var metadataDump: String { path + "/" + Self.metadataDumpName }
    /// The metric store's directory.
    public var metrics: String { path + "/" + Self.metricsName }
    /// The default artifact destination.
    public var artifacts: String { path + "/" + Self.artifactsName }
    /// The import journals' directory.
    public var imports: String { path + "/" + Self.importsName }
    /// The webhook secrets' key file (``WebhookSecrets``).
    public var webhookKey: String { path + "/" + WebhookSecrets.fileName }
}
