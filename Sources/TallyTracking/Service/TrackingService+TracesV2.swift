/// MLflow 2's trace API, which MLflow 2.14–2.22 clients trace with (`StartTrace`, `EndTrace`; MLflow 3's server still
/// serves it under 2.0): a trace begun with its start time, metadata and tags, then ended with its end time, status and
/// more metadata and tags. Such a trace is kept as any other (read, searched, assessed, exported through either API);
/// its id is MLflow 2's, 32 hex digits without `tr-`.
extension TrackingService {
    /// `traces` (POST, 2.0): starts a trace in an active experiment, in progress, under a new id; the info as stored,
    /// with the `mlflow.artifactLocation` the client writes the spans under when it ends the trace.
    public func startTraceV2(experimentID: String?, timestamp: Int64?, metadata: [KeyValue], tags: [KeyValue]) throws -> TraceInfo {
        guard let experimentID, !experimentID.isEmpty else { throw Validation.missing("experiment_id") }
        return try startTrace(TraceInfo(traceID: RunNames.runID(), experimentID: experimentID, requestTime: timestamp ?? 0, state: .inProgress,
                                        metadata: metadata, tags: tags))
    }

    /// `traces/{request_id}` (PATCH, 2.0): ends a trace. Its duration is `timestamp` less its start (as MLflow computes
    /// it, negative when the end is given before the start), its state `state`, and the metadata and tags given are set
    /// over its own; the server's tags stay the server's (MLflow lets a client move `mlflow.artifactLocation`, and so
    /// every reader's spans, elsewhere).
    public func endTraceV2(id: String, timestamp: Int64?, state: TraceState, metadata: [KeyValue], tags: [KeyValue]) throws -> TraceInfo {
        let stored = try traceInfo(id: id)
        let (duration, overflow) = (timestamp ?? 0).subtractingReportingOverflow(stored.requestTime)
        // Only the fields: tags and metadata given are upserted onto the stored ones, assessments and links kept.
        return try startTrace(TraceInfo(traceID: id, experimentID: stored.experimentID, requestTime: stored.requestTime,
                                        executionDuration: overflow ? (duration < 0 ? TraceInfo.maxDuration : -TraceInfo.maxDuration) : duration,
                                        state: state, metadata: metadata, tags: tags))
    }
}
