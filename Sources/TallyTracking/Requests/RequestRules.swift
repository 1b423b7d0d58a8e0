/// MLflow's rules for a request as a whole, before any field is read: content type, body size and syntax, unknown
/// endpoints and methods. The server decides only which HTTP status class an error belongs to; the codes and
/// messages live here, once.
public enum RequestRules {
    /// The only content type MLflow's JSON endpoints accept (parameters such as `; charset=utf-8` are ignored).
    public static let jsonContentType = "application/json"

    /// MLflow's check of a JSON endpoint's `Content-Type` (POST and PUT only): `nil` when acceptable.
    public static func contentTypeError(_ contentType: String?) -> TrackingError? {
        guard let contentType else {
            return TrackingError(.invalidParameterValue, "Bad Request. Content-Type header is missing.")
        }
        let base = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard base.trimmingSpaces().lowercased() == jsonContentType else {
            return TrackingError(.invalidParameterValue, "Bad Request. Content-Type must be one of ['\(jsonContentType)'].")
        }
        return nil
    }

    /// A body that is not JSON. MLflow parses such a body as `{}` (a missing-field error, or 200 on `runs/search`);
    /// Tally answers 400 on every endpoint instead, naming the byte where parsing stopped.
    public static func malformedJSON(offset: Int, _ message: String) -> TrackingError {
        TrackingError(.invalidParameterValue, "Malformed JSON request body at byte \(offset): \(message)")
    }

    /// Why text with the NUL character (U+0000, `\u0000` in JSON, `%00` in a path or query string) is refused in every request,
    /// whichever the metadata store: PostgreSQL's text cannot hold it (MLflow on PostgreSQL fails there with a 500),
    /// and SQLite's could, so a value one deployment stored another could not, nor could `tally metadata migrate`
    /// copy it. No MLflow name, value or id needs it.
    public static let nulText = "text containing the NUL character (\\u0000) cannot be stored"

    /// A path holding NUL once percent-decoded (see ``nulText``).
    public static let nulInPath = TrackingError(.invalidParameterValue, "Invalid path: \(nulText)")

    /// A query-string parameter holding NUL (see ``nulText``).
    public static func nulInQuery(_ name: String) -> TrackingError {
        TrackingError(.invalidParameterValue, "Invalid value for parameter '\(name)': \(nulText)")
    }

    /// The header in which MLflow's clients name the workspace a request is for (`mlflow.set_workspace`,
    /// `MLFLOW_WORKSPACE`).
    public static let workspaceHeader = "X-MLflow-Workspace"

    /// MLflow's answer, when it runs without workspaces, to a request whose ``workspaceHeader`` names one (any
    /// value but blanks, `default` included): `FEATURE_DISABLED`, on every path but `…/mlflow/server-info`, which a
    /// client reads to learn that there are none. Tally has one space and no workspaces, so a request meant for one is
    /// refused instead of served from the only space there is. MLflow's client checks `server-info` before it sends
    /// the header; other clients may not. `nil` when the request may go on.
    public static func workspaceError(header: String, path: String) -> TrackingError? {
        guard header.contains(where: { $0 != " " && $0 != "\t" }) else { return nil }
        var p = Substring(path)
        while p.hasSuffix("/") { p = p.dropLast() }
        guard !p.hasSuffix("/mlflow/server-info") else { return nil }
        return TrackingError(.featureDisabled, "Workspace APIs are not available: workspaces are not enabled on this server")
    }

    /// Metric points refused for now (the store's unsealed points fill their memory until queued seals catch up):
    /// 429 with `Retry-After`, which the MLflow client and `tally_client` retry after backing off. Nothing was stored.
    public static func metricsOverloaded(_ detail: String, retryAfterSeconds: Int = 1) -> TrackingError {
        TrackingError(.requestLimitExceeded, "Metric ingest is momentarily over capacity (\(detail)); nothing was stored, retry after \(retryAfterSeconds) second\(retryAfterSeconds == 1 ? "" : "s")")
    }

    /// A JSON body that is not an object.
    public static let bodyNotObject = TrackingError(.invalidParameterValue, "The request body must be a JSON object")

    /// A body over the endpoint's limit. The code is `BAD_REQUEST`, which the MLflow client does not retry.
    public static func bodyTooLarge(limit: Int?, path: String) -> TrackingError {
        guard let limit else { return TrackingError(.badRequest, "The request body is too large for \(path)") }
        return TrackingError(.badRequest, "The request body exceeds the limit of \(limit) bytes for \(path)")
    }

    /// A path no endpoint serves.
    public static func endpointNotFound(method: String, path: String) -> TrackingError {
        TrackingError(.endpointNotFound, "No endpoint \(method) \(path)")
    }

    /// A known path called with a method it does not serve (MLflow answers an HTML 405 page; Tally its error JSON).
    public static func methodNotAllowed(method: String, path: String) -> TrackingError {
        TrackingError(.badRequest, "Method \(method) is not allowed for \(path)")
    }

    /// An HTTP request the server could not read (truncated body, broken chunking).
    public static func unreadableBody(_ detail: String) -> TrackingError {
        TrackingError(.badRequest, "The request body could not be read: \(detail)")
    }

    /// What is wrong with a `--static-prefix` (`mlflow server`'s: every path served under it, `/mlflow/api/2.0/…`),
    /// `nil` when it is one: MLflow's three rules with its messages, and plain path segments, so that the prefix is
    /// mounted as written (`:` and `*` name route parameters, `%`, `?` and `#` are not path text).
    public static func staticPrefixError(_ prefix: String) -> String? {
        if !prefix.hasPrefix("/") { return "--static-prefix must begin with a '/'." }
        if prefix.hasSuffix("/") { return "--static-prefix should not end with a '/'." }
        if prefix.contains("{") || prefix.contains("}") { return "--static-prefix must not contain '{' or '}'." }
        let segments = prefix.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        let plain = segments.allSatisfy { seg in
            !seg.isEmpty && seg != "." && seg != ".." && seg.allSatisfy { c in c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) }
        }
        return plain ? nil : "--static-prefix '\(prefix)': use path segments of letters, digits and - . _ ~ (such as /mlflow or /team/tracking)"
    }
}

/// MLflow's rule for an optional step window (`start_step` / `end_step`), shared by every endpoint that takes one.
public enum StepWindow {
    /// `nil` when neither bound is given; both or neither must be given, and `start ≤ end`.
    public static func range(start: Int64?, end: Int64?) throws -> ClosedRange<Int64>? {
        switch (start, end) {
        case (nil, nil): return nil
        case let (a?, b?):
            guard a <= b else {
                throw TrackingError.invalid("end_step must be greater than start_step. Found start_step=\(a) and end_step=\(b).")
            }
            return a...b
        default:
            throw TrackingError.invalid("If either start step or end step are specified, both must be specified.")
        }
    }
}
