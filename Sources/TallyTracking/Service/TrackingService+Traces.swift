import Foundation

extension TrackingService {
    /// `traces/search`'s page size: MLflow's default, and its largest over HTTP.
    public static let defaultTraceSearchResults: Int64 = 100
    /// The most traces one search page may ask for.
    public static let maxTraceSearchResults: Int64 = 500

    /// `traces` (POST, MLflow 3's `StartTraceV3`): stores a finished trace's info, sent by the client once its root
    /// span ended. The experiment must exist and be active. The server adds the tag the client writes the spans
    /// under (`mlflow.artifactLocation`: the experiment's artifact location, `/traces/<id>/artifacts`) and marks
    /// the info final; a `mlflow.trace.spansLocation` tag is dropped, so that readers fetch the spans from there.
    /// Sending a trace again updates it (MLflow's upsert); an id another experiment's trace holds is refused.
    public func startTrace(_ t: TraceInfo) throws -> TraceInfo {
        guard !t.traceID.isEmpty else { throw Validation.missing("trace_id") }
        let e = try activeExperiment(t.experimentID)
        let t = storedTrace(t, in: e)
        guard try metadata.insertTrace(t) else {
            throw TrackingError(.resourceAlreadyExists, "Trace with ID '\(t.traceID)' already exists in another experiment.")
        }
        return try traceInfo(id: t.traceID)
    }

    /// `traces/{id}` (GET): a trace's info with its assessments; MLflow's 404 when there is none.
    public func traceInfo(id: String) throws -> TraceInfo {
        guard let t = try metadata.traces(ids: [id]).first else { throw TrackingError.notFound("Trace with ID '\(id)' not found.") }
        return t
    }

    /// The experiment a trace belongs to, `nil` when there is no such trace (access checks: the trace's row alone).
    public func traceExperiment(id: String) throws -> String? {
        try metadata.traceExperiment(id: id).map(String.init)
    }

    /// `traces/search`: the traces of some experiments (those `scope` may read; unknown ones hold none) that match
    /// `filter`, ordered by `orderBy` (then newest first, then by id), `maxResults` (1–500, default 100) per page.
    public func searchTraces(experimentIDs: [String], filter: String?, maxResults: Int64?, orderBy: [String], pageToken: String?,
                             scope: Grants = .unrestricted) throws -> SearchPage<TraceInfo> {
        let limit = maxResults ?? Self.defaultTraceSearchResults
        guard limit >= 1 else { throw TrackingError.invalid("Invalid value \(limit) for parameter 'max_results' supplied. It must be a positive integer") }
        guard limit <= Self.maxTraceSearchResults else {
            throw TrackingError.invalid("Invalid value \(limit) for parameter 'max_results' supplied: It must be at most \(Self.maxTraceSearchResults).")
        }
        let f = try SearchFilter(parsing: filter, kind: .traces)
        try f.checkSummedMetadata()
        let keys = try TraceOrder.list(orderBy)
        let offset = try PageToken.decode(pageToken)
        let readable = try Self.searchedExperimentIDs(experimentIDs).filter { scope.canRead(experiment: String($0)) }
        // Two steps: the page's ids (the database filters, orders and pages a search whose clauses it decides itself;
        // otherwise each candidate is read with only the parts the filter and order name), then those traces whole.
        var pageIDs = try matchingTraces(readable, f, orderedBy: keys, offset: offset, limit: Int(limit) + 1)
        let more = pageIDs.count > limit
        pageIDs = Array(pageIDs.prefix(Int(limit)))
        let whole = Dictionary(try metadata.traces(ids: pageIDs).map { ($0.traceID, $0) }) { a, _ in a }
        let page = pageIDs.compactMap { whole[$0] }  // one deleted in between is left out
        return SearchPage(items: page, nextPageToken: more ? PageToken.encode(offset: offset + pageIDs.count) : nil)
    }

    /// The ids of the traces of `experiments` that `f` matches, in the order of `keys` (none: any order), `limit` of them from
    /// `offset`: the database filters, orders and pages a search whose clauses it decides itself; otherwise each
    /// candidate is read with only the parts the filter and order name.
    func matchingTraces(_ experiments: [Int64], _ f: SearchFilter, orderedBy keys: [TraceOrder], offset: Int = 0, limit: Int = .max) throws -> [String] {
        if TraceSQL.decidesAll(f) {
            return try metadata.traceIDs(experimentIDs: experiments, matching: f, orderedBy: keys, offset: offset, limit: limit)
        }
        var matched = try withSpansMatching(f, try metadata.traces(experimentIDs: experiments, parts: TraceOrder.parts(f, keys), matching: f)
            .filter(f.matches))
        if !keys.isEmpty { matched.sort { TraceOrder.less($0, $1, keys) } }
        return matched.dropFirst(offset).prefix(limit).map(\.traceID)
    }

    /// `traces/{id}/tags` (PATCH): sets a tag; MLflow's 404 when the trace does not exist.
    public func setTraceTag(id: String, key: String?, value: String?) throws {
        guard let key, !key.isEmpty else { throw Validation.missing("key") }
        try Validation.key(key, entity: "Tag")
        try Self.refuseServerTraceTag(key)
        guard try metadata.setTraceTag(traceID: id, KeyValue(key: key, value: value ?? "")) else {
            throw TrackingError.notFound("Trace with ID '\(id)' not found.")
        }
    }

    /// The tags the server gives a trace: where its spans are. MLflow's client refuses to set them; the server does
    /// too, since every reader's client fetches spans from the location they name.
    static func refuseServerTraceTag(_ key: String) throws {
        guard key != TraceKeys.artifactLocation && key != TraceKeys.spansLocation else {
            throw TrackingError.invalid("Tag '\(key)' is immutable and cannot be set on a trace.")
        }
    }

    /// `traces/{id}/tags` (DELETE): deletes a tag; MLflow's 404 when the trace has none of that key.
    public func deleteTraceTag(id: String, key: String?) throws {
        guard let key, !key.isEmpty else { throw Validation.missing("key") }
        try Self.refuseServerTraceTag(key)
        guard try metadata.deleteTraceTag(traceID: id, key: key) else {
            throw TrackingError.notFound("No trace tag with key '\(key)' for trace with ID '\(id)'")
        }
    }

    /// `traces/delete-traces`: an experiment's traces by id, or its oldest (at most `maxTraces`) that started at or
    /// before `maxTimestamp`. The spans stay in the artifact store, as MLflow leaves them. Returns how many went.
    public func deleteTraces(experimentID: String?, maxTimestamp: Int64?, maxTraces: Int64?, ids: [String]?) throws -> Int {
        guard let experimentID, !experimentID.isEmpty else { throw Validation.missing("experiment_id") }
        let ids = ids.flatMap { $0.isEmpty ? nil : $0 }
        guard maxTimestamp == nil || ids == nil else {
            throw TrackingError.invalid("Only one of `max_timestamp_millis` and `trace_ids` can be specified.")
        }
        guard maxTimestamp != nil || ids != nil else { throw TrackingError.invalid("Either `max_timestamp_millis` or `trace_ids` must be specified.") }
        if let maxTraces, maxTraces <= 0 {
            throw TrackingError.invalid("Invalid value \(maxTraces) for parameter 'max_traces' supplied. It must be a positive integer")
        }
        guard let n = Int64(experimentID) else { return 0 }  // no such experiment holds no traces
        return try metadata.deleteTraces(experimentID: n, ids: ids, maxTime: maxTimestamp, limit: ids == nil ? maxTraces : nil)
    }

    /// A trace as Tally stores it in experiment `e`: the tag its spans go under (the experiment's artifact location,
    /// `/traces/<id>/artifacts`), no `mlflow.trace.spansLocation`, the info marked final, and its assessments given
    /// the trace, an id and times where they have none.
    func storedTrace(_ t: TraceInfo, in e: Experiment) -> TraceInfo {
        var t = t
        t.experimentID = e.experimentID
        // Within what RFC 3339 and protobuf can write back (an imported database may hold anything).
        t.requestTime = min(max(t.requestTime, TraceInfo.minTime), TraceInfo.maxTime)
        t.executionDuration = t.executionDuration.map { min(max($0, -TraceInfo.maxDuration), TraceInfo.maxDuration) }
        t.tags = Self.upserting(t.tags.filter { $0.key != TraceKeys.spansLocation },
                                KeyValue(key: TraceKeys.artifactLocation, value: Self.traceArtifactsURI(t.traceID, in: e)))
        t.metadata = Self.upserting(t.metadata, KeyValue(key: TraceKeys.infoFinalized, value: "true"))
        let now = clock()
        t.assessments = t.assessments.map { a in
            var a = Self.stamped(a, now: now)
            a.traceID = t.traceID
            if a.id.isEmpty { a.id = Self.newAssessmentID() }
            return a
        }
        return t
    }

    /// An assessment with the times the client did not give: created now, last updated when created.
    static func stamped(_ a: Assessment, now: Int64) -> Assessment {
        var a = a
        if a.createTime == 0 { a.createTime = now }
        if a.lastUpdateTime == 0 { a.lastUpdateTime = a.createTime }
        return a
    }

    /// The experiment ids a search names, as integers (MLflow's message for one that is not).
    static func searchedExperimentIDs(_ ids: [String]) throws -> [Int64] {
        try ids.map { id in
            guard let n = Int64(id) else { throw TrackingError.invalid("Invalid experiment ID '\(id)'. Experiment ID must be a valid integer.") }
            return n
        }
    }

    /// The most traces one `traces/link-to-run` request may link (MLflow's limit).
    public static let maxTraceLinksPerRequest = 100

    /// `traces/link-to-run`: links traces to a run, which then finds them by `run_id` (traces that do not exist are
    /// skipped, as MLflow skips them). The run must exist and be active; every trace must be one `scope` may read.
    public func linkTracesToRun(traceIDs: [String], runID: String, scope: Grants = .unrestricted) throws {
        guard !traceIDs.isEmpty else { return }
        guard traceIDs.count <= Self.maxTraceLinksPerRequest else {
            throw TrackingError.invalid("Cannot link more than \(Self.maxTraceLinksPerRequest) traces to a run in a single request. "
                + "Provided \(traceIDs.count) traces.")
        }
        _ = try activeRun(runID)
        for t in try metadata.traces(ids: traceIDs) where !scope.canRead(experiment: t.experimentID) {
            throw TrackingError(.permissionDenied, "Permission denied: trace \(t.traceID) is not readable")
        }
        try metadata.linkTraces(traceIDs, toRun: runID)
    }

    /// `traces/link-prompts`: links prompt versions to a trace, each given as its name and version (``PromptLink``),
    /// which a trace search then finds by `prompt = 'name/version'`. Links already there are kept; none given links
    /// nothing (the trace must still exist). The prompt versions are not looked up, as MLflow does not: a trace may
    /// use a prompt of another registry.
    public func linkPromptsToTrace(traceID: String, prompts: [(name: String?, version: String?)]) throws {
        let links = try prompts.enumerated().map { i, p in try PromptLink.id(name: p.name, version: p.version, field: "prompt_versions[\(i)]") }
        guard try metadata.linkPrompts(links, toTrace: traceID) else { throw TrackingError.notFound("Trace with ID '\(traceID)' not found.") }
    }

    static func upserting(_ kvs: [KeyValue], _ kv: KeyValue) -> [KeyValue] {
        kvs.filter { $0.key != kv.key } + [kv]
    }

    static func newAssessmentID() -> String {
        "a-" + RunNames.runID()
    }
}
