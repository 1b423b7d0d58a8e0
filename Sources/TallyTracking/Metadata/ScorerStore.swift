/// Where registered scorers are kept (MLflow 3's `mlflow.genai.scorers` registry): both metadata stores, with the
/// same SQL (``ScorerSQL``). A scorer is one experiment's name; its versions and online-scoring settings go with it.
public protocol ScorerStore {
    /// Adds a version of the experiment's scorer `name`, creating the scorer (its id `newID`) when there is none, in one
    /// transaction holding the scorer's row: the version is one more than the highest left (1 when none are), and two
    /// registrations at once get two versions.
    func registerScorer(experimentID: String, name: String, serialized: String, time: Int64, newID: String) throws -> ScorerVersion
    /// The highest version of every scorer of these experiments that has one, in no particular order.
    func latestScorers(experimentIDs: [String]) throws -> [ScorerVersion]
    /// Every version of the experiment's scorer `name`, lowest first; `nil` when there is no such scorer (a scorer whose
    /// versions were each deleted is still there, with none).
    func scorerVersions(experimentID: String, name: String) throws -> [ScorerVersion]?
    /// Deletes one version of the scorer, or (`version` `nil`) the scorer with its versions and online-scoring
    /// settings. Returns how many versions went; `nil` when there is no such scorer.
    func deleteScorer(experimentID: String, name: String, version: Int64?) throws -> Int?
    /// The online-scoring settings of these scorers (unknown ids are left out).
    func onlineScoringConfigs(scorerIDs: [String]) throws -> [OnlineScoringConfig]
    /// Replaces the scorer's online-scoring settings by the one `make` builds from its id and highest version (`nil`:
    /// it has none), in one transaction holding the scorer's row; `nil`, with nothing written, when there is no such
    /// scorer. A throw writes nothing.
    func setOnlineScoringConfig(experimentID: String, name: String,
                                _ make: (_ scorerID: String, _ latest: ScorerVersion?) throws -> OnlineScoringConfig) throws -> OnlineScoringConfig?
    /// Stores scorers as another server gave them (`tally import`): each version under its scorer's id, the scorer made
    /// when it is not there; a version already there is kept as it is. Settings replace the scorer's.
    func importScorers(_ versions: [ScorerVersion], configs: [OnlineScoringConfig]) throws
}

/// The scorer tables' statements, in the SQL both dialects read alike.
enum ScorerSQL {
    /// SQLite's version 12 and PostgreSQL's version 11 (`text`, `integer` and `real` are the dialect's types).
    static func schema(text: String, integer: String, real: String) -> String {
        """
        CREATE TABLE scorers (
            scorer_id \(text) PRIMARY KEY, experiment_id \(text) NOT NULL, name \(text) NOT NULL, UNIQUE (experiment_id, name));
        CREATE TABLE scorer_versions (
            scorer_id \(text) NOT NULL REFERENCES scorers(scorer_id) ON DELETE CASCADE, version \(integer) NOT NULL,
            serialized_scorer \(text) NOT NULL, creation_time \(integer) NOT NULL, PRIMARY KEY (scorer_id, version));
        CREATE TABLE online_scoring_configs (
            config_id \(text) PRIMARY KEY, scorer_id \(text) NOT NULL REFERENCES scorers(scorer_id) ON DELETE CASCADE,
            experiment_id \(text) NOT NULL, sample_rate \(real) NOT NULL, filter_string \(text));
        CREATE INDEX online_scoring_configs_by_scorer ON online_scoring_configs (scorer_id);
        """
    }

    /// The tables `tally metadata migrate` copies, in an order that satisfies their references.
    static let tables = ["scorers", "scorer_versions", "online_scoring_configs"]

    static let versionColumns = "s.scorer_id, s.experiment_id, s.name, v.version, v.serialized_scorer, v.creation_time"

    static func version(_ r: [SQLValue]) -> ScorerVersion {
        ScorerVersion(scorerID: r[0].string ?? "", experimentID: r[1].string ?? "", name: r[2].string ?? "", version: r[3].int ?? 0,
                      serialized: r[4].string ?? "", creationTime: r[5].int ?? 0)
    }

    /// Two statements: the scorer's row made or, when it is there, updated to itself, which holds it (a concurrent
    /// registration waits) and gives its id either way; then the version numbered from the highest left.
    static func register(_ db: some SQLConnection, experimentID: String, name: String, serialized: String, time: Int64, newID: String) throws -> ScorerVersion {
        let held = try db.rows("INSERT INTO scorers (scorer_id, experiment_id, name) VALUES (?, ?, ?) "
                               + "ON CONFLICT (experiment_id, name) DO UPDATE SET name = excluded.name RETURNING scorer_id",
                               [.text(newID), .text(experimentID), .text(name)])
        let id = held.first?[0].string ?? newID
        let made = try db.rows("""
            INSERT INTO scorer_versions (scorer_id, version, serialized_scorer, creation_time)
            SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ? FROM scorer_versions WHERE scorer_id = ? RETURNING version
            """, [.text(id), .text(serialized), .integer(time), .text(id)])
        guard let version = made.first?[0].int else { throw TrackingError(.internalError, "scorer '\(name)': no version was written") }
        return ScorerVersion(scorerID: id, experimentID: experimentID, name: name, version: version, serialized: serialized, creationTime: time)
    }

    /// The scorer's id, its row held for the transaction when `lock` (`FOR UPDATE` on PostgreSQL).
    static func scorerID(_ db: some SQLConnection, _ experimentID: String, _ name: String, lock: Bool = false) throws -> String? {
        try db.rows("SELECT scorer_id FROM scorers WHERE experiment_id = ? AND name = ?" + (lock ? db.locking(.update) : ""),
                    [.text(experimentID), .text(name)]).first?[0].string
    }

    /// 300 experiments a statement (a statement's binds are bounded).
    static func latest(_ db: some SQLConnection, experimentIDs: [String]) throws -> [ScorerVersion] {
        try Array(Set(experimentIDs)).chunks(of: 300).flatMap { chunk in
            try db.rows("""
                SELECT \(versionColumns) FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
                WHERE s.experiment_id IN (\(sqlMarks(chunk.count)))
                AND v.version = (SELECT MAX(m.version) FROM scorer_versions m WHERE m.scorer_id = s.scorer_id)
                """, chunk.map(SQLValue.text)).map(version)
        }
    }

    static func versions(_ db: some SQLConnection, experimentID: String, name: String) throws -> [ScorerVersion]? {
        guard try scorerID(db, experimentID, name) != nil else { return nil }
        return try db.rows("""
            SELECT \(versionColumns) FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
            WHERE s.experiment_id = ? AND s.name = ? ORDER BY v.version
            """, [.text(experimentID), .text(name)]).map(version)
    }

    static func delete(_ db: some SQLConnection, experimentID: String, name: String, version: Int64?) throws -> Int? {
        guard let id = try scorerID(db, experimentID, name, lock: true) else { return nil }
        guard let version else {
            let n = Int(try db.rows("SELECT COUNT(*) FROM scorer_versions WHERE scorer_id = ?", [.text(id)])[0][0].int ?? 0)
            _ = try db.run("DELETE FROM scorers WHERE scorer_id = ?", [.text(id)])
            return n
        }
        return try db.run("DELETE FROM scorer_versions WHERE scorer_id = ? AND version = ?", [.text(id), .integer(version)])
    }

    static let configColumns = "config_id, scorer_id, experiment_id, sample_rate, filter_string"

    static func config(_ r: [SQLValue]) -> OnlineScoringConfig {
        OnlineScoringConfig(id: r[0].string ?? "", scorerID: r[1].string ?? "", experimentID: r[2].string ?? "", sampleRate: r[3].double ?? 0,
                            filterString: r[4].string)
    }

    static func configs(_ db: some SQLConnection, scorerIDs: [String]) throws -> [OnlineScoringConfig] {
        try Array(Set(scorerIDs)).chunks(of: 300).flatMap { chunk in
            try db.rows("SELECT \(configColumns) FROM online_scoring_configs WHERE scorer_id IN (\(sqlMarks(chunk.count)))",
                        chunk.map(SQLValue.text)).map(config)
        }
    }

    static func setConfig(_ db: some SQLConnection, experimentID: String, name: String,
                          _ make: (String, ScorerVersion?) throws -> OnlineScoringConfig) throws -> OnlineScoringConfig? {
        guard let id = try scorerID(db, experimentID, name, lock: true) else { return nil }
        let latest = try db.rows("""
            SELECT \(versionColumns) FROM scorers s JOIN scorer_versions v ON v.scorer_id = s.scorer_id
            WHERE s.scorer_id = ? ORDER BY v.version DESC LIMIT 1
            """, [.text(id)]).first.map(version)
        let c = try make(id, latest)
        try replaceConfig(db, c)
        return c
    }

    static func replaceConfig(_ db: some SQLConnection, _ c: OnlineScoringConfig) throws {
        _ = try db.run("DELETE FROM online_scoring_configs WHERE scorer_id = ?", [.text(c.scorerID)])
        _ = try db.run("INSERT INTO online_scoring_configs (\(configColumns)) VALUES (?, ?, ?, ?, ?)",
                       [.text(c.id), .text(c.scorerID), .text(c.experimentID), .real(c.sampleRate), c.filterString.map(SQLValue.text) ?? .null])
    }

    static func importScorers(_ db: some SQLConnection, _ versions: [ScorerVersion], configs: [OnlineScoringConfig]) throws {
        for v in versions {
            _ = try db.run("INSERT INTO scorers (scorer_id, experiment_id, name) VALUES (?, ?, ?) ON CONFLICT (scorer_id) DO NOTHING",
                           [.text(v.scorerID), .text(v.experimentID), .text(v.name)])
            _ = try db.run("""
                INSERT INTO scorer_versions (scorer_id, version, serialized_scorer, creation_time) VALUES (?, ?, ?, ?)
                ON CONFLICT (scorer_id, version) DO NOTHING
                """, [.text(v.scorerID), .integer(v.version), .text(v.serialized), .integer(v.creationTime)])
        }
        for c in configs { try replaceConfig(db, c) }
    }
}

extension SQLiteMetadataStore: ScorerStore {
    /// Version 12: registered scorers (``ScorerSQL``).
    static let schemaVersion12 = ScorerSQL.schema(text: "TEXT", integer: "INTEGER", real: "REAL")

    public func registerScorer(experimentID: String, name: String, serialized: String, time: Int64, newID: String) throws -> ScorerVersion {
        try transaction { try with { try ScorerSQL.register($0, experimentID: experimentID, name: name, serialized: serialized, time: time, newID: newID) } }
    }
    public func latestScorers(experimentIDs: [String]) throws -> [ScorerVersion] { try with { try ScorerSQL.latest($0, experimentIDs: experimentIDs) } }
    public func scorerVersions(experimentID: String, name: String) throws -> [ScorerVersion]? {
        try with { try ScorerSQL.versions($0, experimentID: experimentID, name: name) }
    }
    public func deleteScorer(experimentID: String, name: String, version: Int64?) throws -> Int? {
        try transaction { try with { try ScorerSQL.delete($0, experimentID: experimentID, name: name, version: version) } }
    }
    public func onlineScoringConfigs(scorerIDs: [String]) throws -> [OnlineScoringConfig] { try with { try ScorerSQL.configs($0, scorerIDs: scorerIDs) } }
    public func setOnlineScoringConfig(experimentID: String, name: String,
                                       _ make: (String, ScorerVersion?) throws -> OnlineScoringConfig) throws -> OnlineScoringConfig? {
        try transaction { try with { try ScorerSQL.setConfig($0, experimentID: experimentID, name: name, make) } }
    }
    public func importScorers(_ versions: [ScorerVersion], configs: [OnlineScoringConfig]) throws {
        try transaction { try with { try ScorerSQL.importScorers($0, versions, configs: configs) } }
    }
}

extension PostgresMetadataStore: ScorerStore {
    /// Version 11: registered scorers (``ScorerSQL``).
    static let schemaVersion11 = ScorerSQL.schema(text: "TEXT COLLATE \"C\"", integer: "BIGINT", real: "DOUBLE PRECISION")

    public func registerScorer(experimentID: String, name: String, serialized: String, time: Int64, newID: String) throws -> ScorerVersion {
        try write { try ScorerSQL.register($0, experimentID: experimentID, name: name, serialized: serialized, time: time, newID: newID) }
    }
    public func latestScorers(experimentIDs: [String]) throws -> [ScorerVersion] { try conn { try ScorerSQL.latest($0, experimentIDs: experimentIDs) } }
    public func scorerVersions(experimentID: String, name: String) throws -> [ScorerVersion]? {
        try conn { try ScorerSQL.versions($0, experimentID: experimentID, name: name) }
    }
    public func deleteScorer(experimentID: String, name: String, version: Int64?) throws -> Int? {
        try write { try ScorerSQL.delete($0, experimentID: experimentID, name: name, version: version) }
    }
    public func onlineScoringConfigs(scorerIDs: [String]) throws -> [OnlineScoringConfig] { try conn { try ScorerSQL.configs($0, scorerIDs: scorerIDs) } }
    public func setOnlineScoringConfig(experimentID: String, name: String,
                                       _ make: (String, ScorerVersion?) throws -> OnlineScoringConfig) throws -> OnlineScoringConfig? {
        try write { try ScorerSQL.setConfig($0, experimentID: experimentID, name: name, make) }
    }
    public func importScorers(_ versions: [ScorerVersion], configs: [OnlineScoringConfig]) throws {
        try write { try ScorerSQL.importScorers($0, versions, configs: configs) }
    }
}
