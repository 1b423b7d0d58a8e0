extension SQLiteMetadataStore {
    /// Version 5: access control. Users with scrypt password hashes, grants per user and resource, access tokens and
    /// the UI's sessions (`kind`) by SHA-256 digest. Deleting a user deletes their grants and tokens (foreign keys are on).
    static let schemaVersion5 = """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, is_admin INTEGER NOT NULL,
            creation_time INTEGER NOT NULL);
        CREATE TABLE user_grants (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
            permission TEXT NOT NULL, PRIMARY KEY (user_id, resource_type, resource_id));
        CREATE INDEX user_grants_resource ON user_grants (resource_type, resource_id);
        CREATE TABLE access_tokens (
            id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, name TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE, creation_time INTEGER NOT NULL, expiry_time INTEGER, kind TEXT NOT NULL);
        """

    static func user(_ r: [SQLValue]) -> StoredUser {
        StoredUser(id: r[0].int ?? 0, username: r[1].string ?? "", passwordHash: r[2].string ?? "", isAdmin: (r[3].int ?? 0) != 0,
                   creationTime: r[4].int ?? 0)
    }

    static let userColumns = "id, username, password_hash, is_admin, creation_time"

    public func insertUser(username: String, passwordHash: String, isAdmin: Bool, now: Int64) throws -> StoredUser? {
        try with { db in
            do {
                try db.run("INSERT INTO users (username, password_hash, is_admin, creation_time) VALUES (?, ?, ?, ?)",
                           [.text(username), .text(passwordHash), .integer(isAdmin ? 1 : 0), .integer(now)])
            } catch let e as SQLiteError where e.isConstraint {
                return nil
            }
            return try db.rows("SELECT \(Self.userColumns) FROM users WHERE username = ?", [.text(username)]).first.map(Self.user)
        }
    }

    public func user(named name: String) throws -> StoredUser? {
        try with { try $0.rows("SELECT \(Self.userColumns) FROM users WHERE username = ?", [.text(name)]).first.map(Self.user) }
    }

    public func user(id: Int64) throws -> StoredUser? {
        try with { try $0.rows("SELECT \(Self.userColumns) FROM users WHERE id = ?", [.integer(id)]).first.map(Self.user) }
    }

    public func users() throws -> [StoredUser] {
        try with { try $0.rows("SELECT \(Self.userColumns) FROM users ORDER BY id").map(Self.user) }
    }

    public func updateUser(id: Int64, passwordHash: String?, isAdmin: Bool?) throws {
        try with { db in
            if let passwordHash { _ = try db.run("UPDATE users SET password_hash = ? WHERE id = ?", [.text(passwordHash), .integer(id)]) }
            if let isAdmin { _ = try db.run("UPDATE users SET is_admin = ? WHERE id = ?", [.integer(isAdmin ? 1 : 0), .integer(id)]) }
        }
    }

    public func deleteUser(id: Int64) throws {
        try with { _ = try $0.run("DELETE FROM users WHERE id = ?", [.integer(id)]) }
    }

    public func grants(userID: Int64) throws -> [Grant] {
        try with { db in
            try db.rows("SELECT resource_type, resource_id, permission FROM user_grants WHERE user_id = ? ORDER BY rowid", [.integer(userID)])
                .compactMap(Self.grant)
        }
    }

    /// A grant from (resource_type, resource_id, permission); `nil` for names this build does not know.
    static func grant(_ r: [SQLValue]) -> Grant? {
        guard let t = ResourceType(rawValue: r[0].string ?? ""), let p = Permission(rawValue: r[2].string ?? "") else { return nil }
        return Grant(resource: Resource(t, r[1].string ?? ""), permission: p)
    }

    public func insertGrant(userID: Int64, _ grant: Grant) throws -> Bool { try with { try Self.insertGrant($0, userID: userID, grant) } }

    // Rows under a user, in the SQL both stores run: inserted only while the user is there, kept so until the
    // insert commits (``SQLConnection/locking(_:)``); a user deleted since the caller looked gets none.

    public func setGrant(userID: Int64, _ grant: Grant) throws {
        try with { _ = try Self.insertGrant($0, userID: userID, grant, replacing: true) }
    }

    /// With `replacing`, a grant the user has on the resource takes the new level (and `true` is returned).
    static func insertGrant(_ db: some SQLConnection, userID: Int64, _ grant: Grant, replacing: Bool = false) throws -> Bool {
        let conflict = replacing ? "ON CONFLICT (user_id, resource_type, resource_id) DO UPDATE SET permission = excluded.permission" : "ON CONFLICT DO NOTHING"
        if try db.run("INSERT INTO user_grants (user_id, resource_type, resource_id, permission) SELECT id, ?, ?, ? FROM users WHERE id = ?\(db.locking(.keep)) "
                      + conflict, [.text(grant.resource.type.rawValue), .text(grant.resource.id), .text(grant.permission.rawValue), .integer(userID)]) > 0 {
            return true
        }
        guard try !db.rows("SELECT 1 FROM users WHERE id = ?", [.integer(userID)]).isEmpty else { throw AccessRules.unauthenticated }
        return false
    }

    static func insertToken(_ db: some SQLConnection, _ t: StoredToken) throws {
        guard try db.run("INSERT INTO access_tokens (\(tokenColumns)) SELECT ?, id, ?, ?, ?, ?, ? FROM users WHERE id = ?\(db.locking(.keep))",
                         [.text(t.id), .text(t.name), .text(t.digest), .integer(t.creationTime), t.expiryTime.map(SQLValue.integer) ?? .null,
                          .text(t.kind.rawValue), .integer(t.userID)]) > 0 else {
            throw AccessRules.unauthenticated
        }
    }

    public func deleteGrant(userID: Int64, resource: Resource) throws -> Bool {
        try with {
            try $0.run("DELETE FROM user_grants WHERE user_id = ? AND resource_type = ? AND resource_id = ?",
                       [.integer(userID), .text(resource.type.rawValue), .text(resource.id)]) > 0
        }
    }

    public func deleteGrants(on resource: Resource) throws {
        try with {
            _ = try $0.run("DELETE FROM user_grants WHERE resource_type = ? AND resource_id = ?", [.text(resource.type.rawValue), .text(resource.id)])
        }
    }

    public func moveGrants(from resource: Resource, to id: String) throws {
        try with {
            _ = try $0.run("UPDATE OR REPLACE user_grants SET resource_id = ? WHERE resource_type = ? AND resource_id = ?",
                           [.text(id), .text(resource.type.rawValue), .text(resource.id)])
        }
    }

    public func insertToken(_ t: StoredToken) throws { try with { try Self.insertToken($0, t) } }

    static func token(_ r: [SQLValue]) -> StoredToken {
        StoredToken(id: r[0].string ?? "", userID: r[1].int ?? 0, name: r[2].string ?? "", digest: r[3].string ?? "",
                    creationTime: r[4].int ?? 0, expiryTime: r[5].int, kind: TokenKind(rawValue: r[6].string ?? "") ?? .token)
    }

    static let tokenColumns = "id, user_id, name, digest, creation_time, expiry_time, kind"

    public func token(digest: String) throws -> StoredToken? {
        try with { try $0.rows("SELECT \(Self.tokenColumns) FROM access_tokens WHERE digest = ?", [.text(digest)]).first.map(Self.token) }
    }

    public func tokens(userID: Int64) throws -> [StoredToken] {
        try with {
            try $0.rows("SELECT \(Self.tokenColumns) FROM access_tokens WHERE user_id = ? AND kind = 'token' ORDER BY creation_time, id",
                        [.integer(userID)]).map(Self.token)
        }
    }

    public func deleteToken(id: String, userID: Int64) throws -> Bool {
        try with { try $0.run("DELETE FROM access_tokens WHERE id = ? AND user_id = ? AND kind = 'token'", [.text(id), .integer(userID)]) > 0 }
    }

    public func deleteToken(digest: String) throws -> Bool {
        try with { try $0.run("DELETE FROM access_tokens WHERE digest = ?", [.text(digest)]) > 0 }
    }

    public func deleteExpiredTokens(now: Int64) throws {
        try with { _ = try $0.run("DELETE FROM access_tokens WHERE expiry_time IS NOT NULL AND expiry_time <= ?", [.integer(now)]) }
    }
}
