/// A user as stored.
public struct StoredUser: Sendable, Hashable {
    /// The id (assigned by the store, from 1).
    public var id: Int64
    /// The unique name.
    public var username: String
    /// ``Secrets/hashPassword(_:)``'s output.
    public var passwordHash: String
    /// Admins pass every check.
    public var isAdmin: Bool
    /// Creation time (ms).
    public var creationTime: Int64

    /// A user.
    public init(id: Int64, username: String, passwordHash: String, isAdmin: Bool, creationTime: Int64) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.isAdmin = isAdmin
        self.creationTime = creationTime
    }
}

/// What a stored secret is for.
public enum TokenKind: String, Sendable {
    /// An access token (`Authorization: Bearer`).
    case token
    /// A UI session (the `tally_session` cookie).
    case session
}

/// An access token or UI session as stored: its digest, never the secret.
public struct StoredToken: Sendable, Hashable {
    /// The public id (`tok-…`), what lists show and revocation names.
    public var id: String
    /// The owner.
    public var userID: Int64
    /// The owner's label for it.
    public var name: String
    /// SHA-256 of the token, hex.
    public var digest: String
    /// Creation time (ms).
    public var creationTime: Int64
    /// Expiry (ms), `nil`: never.
    public var expiryTime: Int64?
    /// Token or session.
    public var kind: TokenKind

    /// A token record.
    public init(id: String, userID: Int64, name: String, digest: String, creationTime: Int64, expiryTime: Int64?, kind: TokenKind = .token) {
        self.kind = kind
        self.id = id
        self.userID = userID
        self.name = name
        self.digest = digest
        self.creationTime = creationTime
        self.expiryTime = expiryTime
    }
}

/// Where users, password hashes, access tokens and grants live: beside the tracking metadata, in the same database
/// (``MetadataStore`` refines it), so they move with it.
public protocol AccessStore: Sendable {
    /// Inserts a user; `nil` when the name is taken.
    func insertUser(username: String, passwordHash: String, isAdmin: Bool, now: Int64) throws -> StoredUser?
    /// A user by name.
    func user(named name: String) throws -> StoredUser?
    /// A user by id.
    func user(id: Int64) throws -> StoredUser?
    /// Every user, by id.
    func users() throws -> [StoredUser]
    /// Changes a user's password hash and/or admin flag.
    func updateUser(id: Int64, passwordHash: String?, isAdmin: Bool?) throws
    /// Deletes a user with their grants and tokens.
    func deleteUser(id: Int64) throws
    /// A user's grants, in the order they were made.
    func grants(userID: Int64) throws -> [Grant]
    /// Inserts a grant; `false` when the user already has one on the resource. A user deleted meanwhile (another
    /// server, another thread) gets none: ``AccessRules/unauthenticated`` is thrown.
    func insertGrant(userID: Int64, _ grant: Grant) throws -> Bool
    /// Inserts a grant, or sets the level of the one the user has on the resource (MLflow's upsert). A user deleted
    /// meanwhile gets none: ``AccessRules/unauthenticated`` is thrown.
    func setGrant(userID: Int64, _ grant: Grant) throws
    /// Deletes a grant; `false` when there was none.
    func deleteGrant(userID: Int64, resource: Resource) throws -> Bool
    /// Drops every grant on a resource (it was deleted).
    func deleteGrants(on resource: Resource) throws
    /// Moves every grant on a resource to a new id (a registered model was renamed).
    func moveGrants(from resource: Resource, to id: String) throws
    /// Inserts a token; for a user deleted meanwhile, none: ``AccessRules/unauthenticated`` is thrown.
    func insertToken(_ token: StoredToken) throws
    /// A token or session by digest.
    func token(digest: String) throws -> StoredToken?
    /// A user's access tokens (not sessions), oldest first.
    func tokens(userID: Int64) throws -> [StoredToken]
    /// Deletes a user's access token; `false` when they have none with that id.
    func deleteToken(id: String, userID: Int64) throws -> Bool
    /// Deletes a token or session by digest; `false` when there was none.
    func deleteToken(digest: String) throws -> Bool
    /// Deletes every token and session expired at `now`.
    func deleteExpiredTokens(now: Int64) throws
}
