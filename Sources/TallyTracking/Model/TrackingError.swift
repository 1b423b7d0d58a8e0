/// A tracking error: one of MLflow's error codes and MLflow's message for it, so the server only translates.
public struct TrackingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// MLflow's `error_code` values used by the tracking API.
    public enum Code: String, Sendable {
        /// HTTP 400.
        case invalidParameterValue = "INVALID_PARAMETER_VALUE"
        /// HTTP 400 (MLflow returns 400, not 409).
        case resourceAlreadyExists = "RESOURCE_ALREADY_EXISTS"
        /// HTTP 404.
        case resourceDoesNotExist = "RESOURCE_DOES_NOT_EXIST"
        /// HTTP 500 in MLflow (renaming a deleted experiment).
        case invalidState = "INVALID_STATE"
        /// HTTP 400.
        case badRequest = "BAD_REQUEST"
        /// HTTP 500.
        case internalError = "INTERNAL_ERROR"
        /// HTTP 404: no such endpoint.
        case endpointNotFound = "ENDPOINT_NOT_FOUND"
        /// HTTP 404: a file a resource should have is not there (MLflow's `MlflowTraceDataNotFound`).
        case notFound = "NOT_FOUND"
        /// HTTP 401: missing or wrong credentials.
        case unauthenticated = "UNAUTHENTICATED"
        /// HTTP 403: authenticated, not allowed.
        case permissionDenied = "PERMISSION_DENIED"
        /// HTTP 429: too many failed logins, or metric ingest over capacity for now (answered with `Retry-After`).
        case requestLimitExceeded = "REQUEST_LIMIT_EXCEEDED"
        /// HTTP 503: the metadata database cannot be reached (or a write lost a conflict): the client retries.
        case temporarilyUnavailable = "TEMPORARILY_UNAVAILABLE"
        /// HTTP 501: a capability this deployment does not have (multipart uploads and presigned URLs without object
        /// storage), which MLflow's client recognises and works around.
        case notImplemented = "NOT_IMPLEMENTED"
        /// HTTP 400 here (MLflow answers 500, which its client retries for minutes): a request for a feature this
        /// server does not have, such as a workspace.
        case featureDisabled = "FEATURE_DISABLED"
    }

    /// The error code.
    public var code: Code
    /// MLflow's message.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `ERROR_CODE: message`, as the MLflow client shows it.
    public var description: String { "\(code.rawValue): \(message)" }

    static func invalid(_ message: String) -> TrackingError { TrackingError(.invalidParameterValue, message) }
    static func notFound(_ message: String) -> TrackingError { TrackingError(.resourceDoesNotExist, message) }
}
