import Foundation

/// A signed-in UI session.
public struct Session: Sendable {
    /// The cookie's value (shown once, stored as its digest).
    public var token: String
    /// What state-changing requests of the session must carry in `X-CSRF-Token`.
    public var csrf: String
    /// Who signed in.
    public var caller: Caller
    /// Seconds until it expires.
    public var maxAgeSeconds: Int64
}

extension AccessControl {
    /// How long a UI session lasts.
    public static let sessionMillis: Int64 = 12 * 3_600_000
    /// The cookie that carries it.
    public static let sessionCookie = "tally_session"
    /// The header that carries the CSRF token.
    public static let csrfHeader = "X-CSRF-Token"

    /// The UI's login: the password is verified as a Basic credential would be (same failure limit, same timing),
    /// then a session is stored (as its digest) and returned. Expired sessions and tokens are dropped on the way.
    public func login(username: String?, password: String?, address: String?) throws -> Session {
        let name = try Self.required(username, "username"), password = try Self.required(password, "password")
        let caller = try verify(.basic(name, password), key: "login " + Secrets.digest(name + "\u{0}" + password), address: address)
        let token = Secrets.newToken(), now = clock()
        try store.deleteExpiredTokens(now: now)
        try store.insertToken(StoredToken(id: Secrets.newTokenID(), userID: caller.userID, name: "session", digest: Secrets.digest(token),
                                          creationTime: now, expiryTime: now + Self.sessionMillis, kind: .session))
        return Session(token: token, csrf: Self.csrfToken(for: token), caller: caller, maxAgeSeconds: Self.sessionMillis / 1000)
    }

    /// Ends a session (at once on this server).
    public func logout(session: String) throws {
        _ = try store.deleteToken(digest: Secrets.digest(session))
        forgetCredentials()
    }

    /// The CSRF token of a session: derived from it, so nothing else is stored, and only a page that can read the
    /// session's answers (same origin) learns it.
    public static func csrfToken(for session: String) -> String { Secrets.digest("csrf\u{0}" + session) }

    /// A state-changing request authenticated by a session cookie must carry the session's CSRF token (403 if not).
    public func checkCSRF(session: String, token: String?) throws {
        guard let token, Secrets.constantTimeEqual(Array(token.utf8), Array(Self.csrfToken(for: session).utf8)) else {
            throw TrackingError(.permissionDenied, "Missing or wrong \(Self.csrfHeader) header: state-changing requests of a browser session must carry it")
        }
    }
}
