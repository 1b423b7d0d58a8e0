/// Why an OTLP export was refused in a way MLflow answers outside its error JSON (its OTLP route's FastAPI
/// `{"detail": …}`): a span it cannot convert or log (422).
public struct OTLPRefusal: Error, Equatable, Sendable {
    /// The HTTP status.
    public var status: Int
    /// The `detail` text.
    public var detail: String

    /// A refusal.
    public init(status: Int, detail: String) {
        self.status = status
        self.detail = detail
    }
}

extension TrackingService {
    /// The longest session id a trace may carry (MLflow's `MAX_CHARS_IN_TRACE_INFO_METADATA`).
    static let maxSessionIDLength = 250
    /// The longest trace name (MLflow's `MAX_CHARS_IN_TRACE_INFO_TAGS_VALUE`).
    static let maxTraceNameLength = 4096
    /// The most JSON one export's spans may come to as stored (before compression): a small body of empty events or
    /// links would otherwise make gigabytes of it.
    public static let maxExportSpanBytes = 256 << 20
    /// The longest trace tag value; a longer one is cut (MLflow's `MAX_TRACE_TAG_VAL_LENGTH`).
    static let maxTraceTagValueLength = 8000

    /// `POST /v1/traces` (OTLP/HTTP): stores spans sent by an OpenTelemetry exporter — MLflow's own client or any
    /// other — in experiment `experimentID`, all or nothing. Each trace is made from its spans when it does not
    /// exist (times from the spans, state from its root span, previews from the root's inputs and outputs, tags from
    /// the resource and the root's `mlflow.traceTag.*`) and completed when it does; it is marked as keeping its spans
    /// here (`mlflow.trace.spansLocation` = `TRACKING_STORE`). With `runID`, traces whose root span came in this
    /// export are linked to that run (as MLflow, an unknown run fails nothing: no link is made). Returns how many
    /// spans were stored. MLflow's rules: `docs/otlp.md`.
    @discardableResult
    public func logSpans(experimentID: String, runID: String?, _ resources: [OTLPResourceSpans]) throws -> Int {
        var converted: [(span: ConvertedSpan, resource: [OTLPAttribute])] = []
        var bytes = 0
        for r in resources {
            for s in r.spans {
                do { converted.append((try ConvertedSpan(s, resource: r.resource, prices: modelPrices), r.resource)) } catch let e as SpanConversionError {
                    throw OTLPRefusal(status: 422, detail: e.failedToLog ? "Failed to log OpenTelemetry spans"
                                      : "Cannot convert OpenTelemetry span to MLflow span")
                }
                bytes += converted[converted.count - 1].span.stored.content.utf8.count
                guard bytes <= Self.maxExportSpanBytes else {
                    throw OTLPRefusal(status: 413, detail: "The export's spans take more than \(Self.maxExportSpanBytes >> 20) MiB as MLflow keeps them")
                }
            }
        }
        guard !converted.isEmpty else { return 0 }
        let failedToLog = OTLPRefusal(status: 422, detail: "Failed to log OpenTelemetry spans")
        let e = try experiment(id: experimentID)  // as MLflow, a deleted experiment still takes spans (it may be restored)
        var order: [String] = [], byTrace: [String: [(span: ConvertedSpan, resource: [OTLPAttribute])]] = [:]
        for c in converted {
            if byTrace[c.span.stored.traceID] == nil { order.append(c.span.stored.traceID) }
            byTrace[c.span.stored.traceID, default: []].append(c)
        }
        let writes: [SpanTraceWrite]
        do { writes = try order.map { try Self.spanWrite(byTrace[$0]!) } } catch is SpanConversionError { throw failedToLog }
        do { try metadata.logSpans(experimentID: Int64(e.experimentID) ?? 0, artifactLocation: { Self.traceArtifactsURI($0, in: e) }, writes) } catch is SpanConversionError { throw failedToLog }
        if let runID, !runID.isEmpty {  // a run of the export's experiment: one may link only what one may write
            let rooted = writes.filter { $0.rootState != nil }.map(\.traceID)
            if !rooted.isEmpty, (try? metadata.run(id: runID))?.info.experimentID == e.experimentID { try? metadata.linkTraces(rooted, toRun: runID) }
        }
        return converted.count
    }

    /// What one trace's spans in a batch do to it (MLflow's per-trace aggregate in `log_spans`).
    static func spanWrite(_ spans: [(span: ConvertedSpan, resource: [OTLPAttribute])]) throws -> SpanTraceWrite {
        let traceID = spans[0].span.stored.traceID
        let start = spans.map(\.span.stored.startTime).min()! / 1_000_000
        let ends = spans.map(\.span.stored.endTime).filter { $0 > 0 }  // an end of 0 is none (MLflow would make the duration negative)
        let rootSpan = spans.first { $0.span.isRoot }?.span
        let rootState: TraceState? = rootSpan.map { $0.stored.status == "ERROR" ? .error : .ok }
        let lastRoot = spans.last { $0.span.isRoot }?.span
        var tags = [KeyValue(key: TraceKeys.spansLocation, value: TraceKeys.trackingStore)]
        var metadata: [KeyValue] = []
        if let resource = spans.first(where: { !$0.resource.isEmpty })?.resource {
            for a in pythonDict(resource.map { ($0.key, $0.value) })
            where !a.0.startsWithBytes("telemetry.sdk.") && !a.0.startsWithBytes("mlflow.") {
                let value: String
                if case .string(let s) = a.1 { value = s } else { value = ConvertedSpan.raw(a.1, bytesAsBase64: false).pythonDumps() }
                if let tag = traceTag(a.0, value) { tags.append(tag) }
            }
        }
        // Span by span, in MLflow's order, so that the first of its refusals is the one given: the translation's, a
        // session id too long, a cost that is not an object, a root span's trace name too long.
        var rootTags: [(String, String)] = [], session: String?, user: String?
        for (span, _) in spans {
            if span.translationFailed { throw SpanConversionError(failedToLog: true) }
            if session == nil, let raw = span.attribute("session.id") ?? span.attribute("gen_ai.conversation.id") {
                session = jsonString(raw)
                guard session!.unicodeScalars.count <= maxSessionIDLength else {
                    throw TrackingError.invalid("'Session ID' exceeds the maximum length of \(maxSessionIDLength) characters")
                }
            }
            if user == nil, let raw = span.attribute("user.id") { user = jsonString(raw) }
            // MLflow reads a span's cost into its columns: JSON that is not an object fails the export.
            if case .string(let text)? = span.attributes[SpanTranslation.costKey], !text.isEmpty,
               let cost = try? JSONParser.parse(Array(text.utf8)) {
                guard case .object = cost else { throw SpanConversionError(failedToLog: true) }
            }
            guard span.isRoot else { continue }
            for case (let key, .string(let stored)) in span.attributes.pairs where key.startsWithBytes(ConvertedSpan.traceTagPrefix) {
                guard let tag = traceTag(key.droppingBytes(ConvertedSpan.traceTagPrefix), jsonString(stored)) else { continue }
                if tag.key == TraceKeys.traceName, tag.value.unicodeScalars.count > maxTraceNameLength {
                    throw TrackingError.invalid("'Trace name' exceeds the maximum length of \(maxTraceNameLength) characters")
                }
                rootTags.append((tag.key, tag.value))
            }
        }
        tags += pythonDict(rootTags).map { KeyValue(key: $0.0, value: $0.1) }  // every root span's, the last value of a key winning
        if let session, !session.isEmpty { metadata.append(KeyValue(key: TraceKeys.session, value: session)) }
        if let user, !user.isEmpty { metadata.append(KeyValue(key: TraceKeys.user, value: user)) }
        var previews: (String?, String?) = (nil, nil)
        if let root = lastRoot {
            previews = try TracePreview.previews(inputs: root.attributes[ConvertedSpan.inputsKey], outputs: root.attributes[ConvertedSpan.outputsKey])
        }
        var write = SpanTraceWrite(traceID: traceID, spans: spans.map(\.span.stored), start: start, end: ends.max().map { $0 / 1_000_000 },
                                   rootState: rootState, requestPreview: previews.0, responsePreview: previews.1, tags: tags, metadataIfAbsent: metadata)
        for (s, _) in spans {
            write.usageNodes.append(SpanUsage.Node(spanID: s.stored.spanID, parentID: s.stored.parentSpanID, value: s.attributes[SpanTranslation.usageKey]))
            write.costNodes.append(SpanUsage.Node(spanID: s.stored.spanID, parentID: s.stored.parentSpanID, value: s.attributes[SpanTranslation.costKey]))
            write.analytics.append(SpanAnalytics(attributes: s.attributes))
        }
        write.batchTokens = try SpanUsage.tokens(write.usageNodes)
        write.batchCost = try SpanUsage.cost(write.costNodes)
        return write
    }

    /// A trace tag MLflow writes from spans: a valid key of at most 250 characters (others are skipped), the value cut
    /// to 8,000 characters.
    static func traceTag(_ key: String, _ value: String) -> KeyValue? {
        guard (try? Validation.key(key, entity: "Tag")) != nil, (try? refuseServerTraceTag(key)) != nil else { return nil }  // not the server's
        return KeyValue(key: key, value: value.prefix(codePoints: maxTraceTagValueLength))
    }

    /// MLflow's `_try_parse_json_string`: the text a stored attribute holds when it is a JSON string, else the stored
    /// text itself.
    static func jsonString(_ stored: String) -> String {
        if case .string(let s)? = try? JSONParser.parse(Array(stored.utf8)) { return s }
        return stored
    }

    /// The traces with a span satisfying every `span.*` clause of `f` (all of them when it has none), read in
    /// chunks: the spans of traces the other clauses left.
    func withSpansMatching(_ f: SearchFilter, _ traces: [TraceInfo]) throws -> [TraceInfo] {
        let clauses = f.spanClauses.map { ($0, $0.spanRegex) }
        guard !clauses.isEmpty else { return traces }
        var keep = Set<String>()
        for chunk in traces.map(\.traceID).chunks(of: TraceSQL.idsPerStatement) {
            for (id, spans) in try metadata.spans(traceIDs: chunk) where spans.contains(where: { s in clauses.allSatisfy { $0.0.matches(s, regex: $0.1) } }) {
                keep.insert(id)
            }
        }
        return traces.filter { keep.contains($0.traceID) }
    }

    /// `traces/get`: a trace's info and its spans (MLflow's span dicts): those kept here, or — for a trace whose client
    /// wrote them to the artifact store this server proxies — its `traces.json` (MLflow answers `INTERNAL_ERROR` there;
    /// its client never asks). MLflow's 404 for an unknown trace; `NOT_FOUND` when no spans can be read. Unless
    /// `allowPartial`, `nil` while fewer spans are kept than the client said the trace has (its
    /// `mlflow.trace.sizeStats`): the rest are still on their way (the caller asks again, then gives up with
    /// ``notFullyExported(_:)``).
    public func traceWithSpans(id: String?, allowPartial: Bool = true) throws -> (info: TraceInfo, spans: [JSONValue])? {
        guard let id, !id.isEmpty else { throw Validation.missing("trace_id") }
        guard let info = try metadata.traces(ids: [id]).first else { throw TrackingError.notFound("Trace with ID \(id) is not found.") }
        guard let spans = try spanDicts(of: [info])[0] else {
            throw TrackingError(.notFound, "Trace data not found for path=\(Self.traceDataFile)")
        }
        return allowPartial || Self.complete(info, spans: spans.count) ? (info, spans) : nil
    }

    /// How long `traces/get` waits for a trace's last spans before each of its second and third reads (MLflow's).
    public static let spanWaits: [Double] = [1, 2]

    /// MLflow's answer for a trace whose spans have not all come.
    public static func notFullyExported(_ id: String) -> TrackingError {
        TrackingError.notFound("Trace with ID \(id) is not fully exported yet, please try again later.")
    }

    /// Whether a trace kept here has every span its client counted (`mlflow.trace.sizeStats`' `num_spans`; a trace
    /// without the count is complete, as is one whose spans are in the artifact store).
    static func complete(_ info: TraceInfo, spans: Int) -> Bool {
        guard info.keepsSpans, let stats = info.metadata(TraceKeys.sizeStats),
              case .number(let n)? = (try? JSONParser.parse(Array(stats.utf8)))?["num_spans"], let expected = Int(n) else { return true }
        return spans >= expected
    }

    /// `traces/batchGetInfos` (and the first step of `traces/batchGet`): the infos of the traces `ids` names (none for
    /// an empty list, as MLflow answers it), each once, in the order of each id's last mention (MLflow's store orders
    /// them so); unknown ids, traces outside `experimentIDs` (when given: an empty list is none) and traces of
    /// experiments `scope` may not read are left out, as MLflow's store leaves them out.
    public func traceInfos(ids: [String], experimentIDs: [String]?, scope: Grants = .unrestricted) throws -> [TraceInfo] {
        let within = try experimentIDs.map { Set(try Self.searchedExperimentIDs($0)) }  // integers, as MLflow reads them
        if ids.isEmpty || within?.isEmpty == true { return [] }
        var last: [String: Int] = [:]
        for (i, id) in ids.enumerated() { last[id] = i }
        let unique = last.sorted { $0.value < $1.value }.map(\.key)
        let found = Dictionary(try metadata.traces(ids: unique).map { ($0.traceID, $0) }) { a, _ in a }
        return unique.compactMap { id -> TraceInfo? in
            guard let t = found[id], scope.canRead(experiment: t.experimentID) else { return nil }
            return within.map { set in Int64(t.experimentID).map(set.contains) ?? false } ?? true ? t : nil
        }
    }

    /// `traces/batchGet`: traces with their spans, in ``traceInfos(ids:experimentIDs:scope:)``'s order; unknown ids, traces `scope` may not read or
    /// outside `experimentIDs` (when given), traces whose spans cannot be read, and traces whose spans have not all
    /// come (as MLflow leaves them out) are left out.
    public func tracesWithSpans(ids: [String], experimentIDs: [String]?, scope: Grants = .unrestricted) throws -> [(info: TraceInfo, spans: [JSONValue])] {
        guard !ids.isEmpty else { throw Validation.missing("trace_ids") }
        let infos = try traceInfos(ids: ids, experimentIDs: experimentIDs, scope: scope)
        let spans = try spanDicts(of: infos)
        return zip(infos, spans).compactMap { i, s in s.flatMap { Self.complete(i, spans: $0.count) ? (info: i, spans: $0) : nil } }
    }

    /// `get-trace-artifact` (the web UI's read of a trace's spans) for a trace that keeps its spans here: its
    /// `traces.json` as MLflow makes it from its span table (`{"spans":[` + each span's stored JSON + `]}`); `nil`
    /// for any other trace (its spans are in the artifact store).
    public func keptTraceData(traceID: String) throws -> String? {
        guard let info = try metadata.traces(ids: [traceID]).first, info.keepsSpans else { return nil }
        let spans = (try metadata.spans(traceIDs: [traceID])[traceID] ?? []).map { s -> String in
            // a span the conventions type on reading is written again, as MLflow's `json_for_export` writes it
            guard SpanTranslation.mayTypeOnLoad(s.content), var dict = try? JSONParser.parse(Array(s.content.utf8)),
                  SpanTranslation.translateLoaded(&dict) else { return s.content }
            return dict.pythonDumps(compact: true)
        }
        return #"{"spans":["# + spans.joined(separator: ",") + "]}"
    }

    /// Each trace's spans as MLflow's span dicts (`nil`: none can be read): from the span table for a trace that keeps
    /// them here, else from its `traces.json` in the artifact store this server proxies.
    func spanDicts(of infos: [TraceInfo]) throws -> [[JSONValue]?] {
        let kept = infos.filter(\.keepsSpans).map(\.traceID)
        let stored = kept.isEmpty ? [:] : try metadata.spans(traceIDs: kept)
        return try infos.map { info in
            if info.keepsSpans {
                return try (stored[info.traceID] ?? []).map { s in
                    do {
                        var dict = try JSONParser.parse(Array(s.content.utf8))
                        if SpanConvention.typesAny(dict.pythonMember("attributes")?.pythonMembers.map(\.0) ?? []) {
                            _ = SpanTranslation.translateLoaded(&dict)  // `translate_loaded_span`: spans stored untyped
                        }
                        return dict
                    } catch {
                        throw TrackingError(.internalError, "spans (\(s.traceID), \(s.spanID)): the stored span is not JSON (\(error))")
                    }
                }
            }
            guard let reader = try? openTraceArtifact(traceID: info.traceID, path: nil).reader,
                  reader.size <= Self.maxTraceDataBytes else { return nil }
            let body = try reader.read(at: 0, count: reader.size)
            guard let spans = try? JSONParser.parse(body)["spans"], case .array(let items) = spans else { return nil }
            return items
        }
    }

    /// The largest `traces.json` read into a `traces/get` answer (a larger one is left to the client to download).
    static let maxTraceDataBytes = 256 << 20
}

extension ConvertedSpan {
    /// The prefix of a root span's attributes that become its trace's tags (`mlflow.traceTag.<key>`).
    static let traceTagPrefix = "mlflow.traceTag."
    /// A span's inputs (`mlflow.spanInputs`).
    static let inputsKey = "mlflow.spanInputs"
    /// A span's outputs (`mlflow.spanOutputs`).
    static let outputsKey = "mlflow.spanOutputs"
}
