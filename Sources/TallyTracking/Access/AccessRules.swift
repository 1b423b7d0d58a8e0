import Foundation

/// MLflow's basic-auth rules and messages, in one place: credentials, password length, the 401/403 texts.
public enum AccessRules {
    /// Shortest password MLflow accepts.
    public static let minPasswordLength = 12
    /// Longest user name accepted.
    static let maxUsernameLength = 256

    /// 401: no, unknown or wrong credentials (MLflow's text).
    public static let unauthenticated = TrackingError(.unauthenticated, "You are not authenticated. Please see "
        + "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.")

    /// 403 for a route that needs `need` on `resource`.
    static func denied(_ need: Permission.Need, _ resource: Resource) -> TrackingError {
        TrackingError(.permissionDenied, "Permission denied: \(level(need)) on \(resource.type.rawValue) '\(resource.id)' is needed")
    }

    /// 403 that names nothing: a trace or dataset that may not exist (whether it does is not told), a dataset linked to
    /// no experiment, a request that names no experiment to check (MLflow's auth app's bare "Permission denied").
    public static let deniedUnnamed = TrackingError(.permissionDenied, "Permission denied")

    /// 403 for admin-only routes.
    public static let adminOnly = TrackingError(.permissionDenied, "Permission denied: only an admin may do this")

    /// 403 for a request about another user.
    static let otherUser = TrackingError(.permissionDenied, "Permission denied: only an admin or the user themselves may do this")

    /// 429 after too many failed logins.
    static func tooManyFailures(retryAfterSeconds: Int) -> TrackingError {
        TrackingError(.requestLimitExceeded, "Too many failed login attempts; retry after \(max(1, retryAfterSeconds)) seconds")
    }

    /// The seconds a 429's `Retry-After` carries, from its message.
    public static func retryAfter(_ e: TrackingError) -> Int? {
        guard e.code == .requestLimitExceeded, let r = e.message.range(of: "retry after ") else { return nil }
        return Int(e.message[r.upperBound...].prefix { $0.isNumber })
    }

    /// The level name a need takes.
    static func level(_ need: Permission.Need) -> String {
        switch need {
        case .read: "READ"
        case .use: "USE"
        case .update: "EDIT"
        case .delete, .manage: "MANAGE"
        }
    }

    /// Credentials of an `Authorization` header.
    enum Credentials {
        case basic(String, String)
        case bearer(String)
        /// A UI session cookie (never read from a header).
        case session(String)
    }

    /// `Basic base64(user:password)` or `Bearer token` (scheme case-insensitive); anything else is `nil`.
    static func credentials(_ header: String) -> Credentials? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return nil }
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch parts[0].lowercased() {
        case "basic":
            guard let data = Data(base64Encoded: value), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":") else { return nil }
            return .basic(String(text[..<colon]), String(text[text.index(after: colon)...]))
        case "bearer": return value.isEmpty ? nil : .bearer(value)
        default: return nil
        }
    }

    /// Refuses passwords shorter than MLflow's minimum.
    static func checkPassword(_ p: String) throws {
        guard p.count >= minPasswordLength else {
            throw TrackingError.invalid("Password must be at least \(minPasswordLength) characters.")
        }
    }

    /// A user name: not empty, no control characters or `:` (Basic credentials could not carry it), bounded.
    static func username(_ name: String) throws -> String {
        guard !name.isEmpty else { throw TrackingError.invalid("Username and password cannot be empty.") }
        guard name.count <= maxUsernameLength, !name.contains(":"), !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw TrackingError.invalid("Invalid username '\(name)': at most \(maxUsernameLength) characters, no ':' and no control characters")
        }
        return name
    }

    /// `('A', 'B')`: how MLflow's messages print a tuple of names.
    static func pythonTuple(_ names: [String]) -> String {
        "(" + names.map { "'\($0)'" }.joined(separator: ", ") + ")"
    }

    /// MLflow's auth app's 400 for a request without the query parameter naming what it reads
    /// (`validate_can_read_trace_artifact`'s `request_id`).
    public static func missingQueryParameter(_ name: String) -> TrackingError { TrackingError.invalid("Request must specify \(name) parameter") }
    /// 404 for an unknown user.
    static func noUser(_ name: String) -> TrackingError { TrackingError.notFound("User with username=\(name) not found") }
}
