extension TrackingService {
    /// The file a trace's spans are kept in, in its artifacts (MLflow's `TRACE_DATA_FILE_NAME`).
    public static let traceDataFile = "traces.json"

    /// Where a trace's files are: `traces/<id>/artifacts` under its experiment's artifact location. The trace's own
    /// place, not its `mlflow.artifactLocation` tag, which names where a client was sent (the same place, for a trace
    /// Tally stored; an import's source may have said anything).
    static func traceArtifactsURI(_ traceID: String, in e: Experiment) -> String {
        e.artifactURI("traces/\(traceID)/artifacts")
    }

    /// `get-trace-artifact` (the web UI's read of a trace's spans): opens the trace's `traces.json`, or with `path`
    /// one of its attachments (`attachments/<path>`, `path` a canonical UUID as MLflow requires). MLflow's errors: a
    /// missing `request_id`, an unknown trace, a malformed attachment path, no spans written (`NOT_FOUND`, as
    /// MLflow's `MlflowTraceDataNotFound`); a trace whose artifacts this server does not
    /// keep (an experiment with an artifact location of its own) is refused with where they are.
    public func openTraceArtifact(traceID: String?, path: String?) throws -> (reader: ArtifactStore.Reader, name: String) {
        guard let traceID, !traceID.isEmpty else { throw TrackingError(.badRequest, #"Request must include the "request_id" query parameter."#) }
        let path = path.flatMap { $0.isEmpty ? nil : $0 }  // `&path=`: the spans, as MLflow's `if path:` reads it
        if let path, !Self.isCanonicalUUID(path) {
            throw TrackingError.invalid("Invalid attachment path: '\(path)'. Attachment path must be a valid UUID.")
        }
        guard let experimentID = try traceExperiment(id: traceID) else { throw TrackingError.notFound("Trace with ID '\(traceID)' not found.") }
        let uri = Self.traceArtifactsURI(traceID, in: try experiment(id: experimentID))
        guard let root = Self.proxiedRoot(of: uri) else {
            throw TrackingError.invalid("The artifacts of trace \(traceID) are not served by this server (artifact location \(uri))")
        }
        let name = path ?? Self.traceDataFile
        do {
            return (try proxiedStore().open(root + "/" + (path.map { "attachments/" + $0 } ?? name)), name)
        } catch let e as TrackingError where e.code == .resourceDoesNotExist {
            throw path == nil ? TrackingError(.notFound, "Trace data not found for path=\(Self.traceDataFile)")
                : TrackingError.notFound("Attachment '\(name)' not found for trace '\(traceID)'.")
        }
    }

    /// `8-4-4-4-12` lower-case hex digits: what Python's `str(uuid.UUID(s))` gives back unchanged.
    static func isCanonicalUUID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 36 else { return false }
        for (i, c) in u.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard c == UInt8(ascii: "-") else { return false }
            } else if !((c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))) {
                return false
            }
        }
        return true
    }
}
