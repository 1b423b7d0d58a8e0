extension PostgresMetadataStore {
    // The same columns, read by the same decoders, as SQLite's (one schema design).
    static let userColumns = SQLiteMetadataStore.userColumns
    static let tokenColumns = SQLiteMetadataStore.tokenColumns

    public func insertUser(username: String, passwordHash: String, isAdmin: Bool, now: Int64) throws -> StoredUser? {
        try conn { c in
            try c.rows("INSERT INTO users (username, password_hash, is_admin, creation_time) VALUES (?, ?, ? <> 0, ?) ON CONFLICT DO NOTHING "
                       + "RETURNING \(Self.userColumns)", [.text(username), .text(passwordHash), .integer(isAdmin ? 1 : 0), .integer(now)])
                .first.map(SQLiteMetadataStore.user)
        }
    }

    public func user(named name: String) throws -> StoredUser? {
        try conn { try $0.rows("SELECT \(Self.userColumns) FROM users WHERE username = ?", [.text(name)]).first.map(SQLiteMetadataStore.user) }
    }

    public func user(id: Int64) throws -> StoredUser? {
        try conn { try $0.rows("SELECT \(Self.userColumns) FROM users WHERE id = ?", [.integer(id)]).first.map(SQLiteMetadataStore.user) }
    }

    public func users() throws -> [StoredUser] {
        try conn { try $0.rows("SELECT \(Self.userColumns) FROM users ORDER BY id").map(SQLiteMetadataStore.user) }
    }

    public func updateUser(id: Int64, passwordHash: String?, isAdmin: Bool?) throws {
        try write { c in
            if let passwordHash { try c.run("UPDATE users SET password_hash = ? WHERE id = ?", [.text(passwordHash), .integer(id)]) }
            if let isAdmin { try c.run("UPDATE users SET is_admin = (? <> 0) WHERE id = ?", [.integer(isAdmin ? 1 : 0), .integer(id)]) }
        }
    }

    public func deleteUser(id: Int64) throws {
        try conn { try $0.run("DELETE FROM users WHERE id = ?", [.integer(id)]) }
    }

    public func grants(userID: Int64) throws -> [Grant] {
        try conn { c in
            try c.rows("SELECT resource_type, resource_id, permission FROM user_grants WHERE user_id = ? ORDER BY seq", [.integer(userID)])
                .compactMap(SQLiteMetadataStore.grant)
        }
    }

    public func setGrant(userID: Int64, _ grant: Grant) throws {
        try write { _ = try SQLiteMetadataStore.insertGrant($0, userID: userID, grant, replacing: true) }
    }

    public func insertGrant(userID: Int64, _ grant: Grant) throws -> Bool {
        try write { try SQLiteMetadataStore.insertGrant($0, userID: userID, grant) }
    }

    public func deleteGrant(userID: Int64, resource: Resource) throws -> Bool {
        try conn {
            try $0.run("DELETE FROM user_grants WHERE user_id = ? AND resource_type = ? AND resource_id = ?",
                       [.integer(userID), .text(resource.type.rawValue), .text(resource.id)]) > 0
        }
    }

    public func deleteGrants(on resource: Resource) throws {
        try conn {
            try $0.run("DELETE FROM user_grants WHERE resource_type = ? AND resource_id = ?", [.text(resource.type.rawValue), .text(resource.id)])
        }
    }

    public func moveGrants(from resource: Resource, to id: String) throws {
        // As SQLite's UPDATE OR REPLACE: where a user already holds a grant on the new id, the moved grant replaces it.
        try write { c in
            try c.run("""
                DELETE FROM user_grants n USING user_grants o
                WHERE n.resource_type = ? AND n.resource_id = ? AND o.user_id = n.user_id AND o.resource_type = n.resource_type AND o.resource_id = ?
                """, [.text(resource.type.rawValue), .text(id), .text(resource.id)])
            try c.run("UPDATE user_grants SET resource_id = ? WHERE resource_type = ? AND resource_id = ?",
                      [.text(id), .text(resource.type.rawValue), .text(resource.id)])
        }
    }

    public func insertToken(_ t: StoredToken) throws { try write { try SQLiteMetadataStore.insertToken($0, t) } }

    public func token(digest: String) throws -> StoredToken? {
        try conn { try $0.rows("SELECT \(Self.tokenColumns) FROM access_tokens WHERE digest = ?", [.text(digest)]).first.map(SQLiteMetadataStore.token) }
    }

    public func tokens(userID: Int64) throws -> [StoredToken] {
        try conn {
            try $0.rows("SELECT \(Self.tokenColumns) FROM access_tokens WHERE user_id = ? AND kind = 'token' ORDER BY creation_time, id",
                        [.integer(userID)]).map(SQLiteMetadataStore.token)
        }
    }

    public func deleteToken(id: String, userID: Int64) throws -> Bool {
        try conn { try $0.run("DELETE FROM access_tokens WHERE id = ? AND user_id = ? AND kind = 'token'", [.text(id), .integer(userID)]) > 0 }
    }

    public func deleteToken(digest: String) throws -> Bool {
        try conn { try $0.run("DELETE FROM access_tokens WHERE digest = ?", [.text(digest)]) > 0 }
    }

    public func deleteExpiredTokens(now: Int64) throws {
        try conn { try $0.run("DELETE FROM access_tokens WHERE expiry_time IS NOT NULL AND expiry_time <= ?", [.integer(now)]) }
    }
}
