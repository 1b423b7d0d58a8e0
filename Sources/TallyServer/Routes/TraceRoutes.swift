import Hummingbird
import NIOCore
import TallyTracking

/// MLflow 3's trace endpoints under `/api/3.0/mlflow`: a finished trace's info (`traces`, POST), one trace
/// (`traces/{trace_id}`), `traces/search`, tags, `traces/delete-traces` and assessments. The tag and delete routes
/// are under `/api/2.0/mlflow` too, where MLflow 3's client calls them (``addV2(to:)``). The spans are not
/// sent here: the client writes them to the artifact store, under the `mlflow.artifactLocation` tag the server gives
/// (``TrackingService/startTrace(_:)``), and reads them from there.
struct TraceRoutes {
    let endpoints: Endpoints

    func add(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        addV2(to: t)
        t.on("traces", .post, access: .needs(.update, .traceLocation), use: e.json { r in
            guard let trace = r.raw("trace") else { throw MLflowRequest.missing("trace") }
            guard trace.isObject, let info = TraceJSON.member(trace, "trace_info"), info.isObject else {
                throw MLflowRequest.missing("trace.trace_info")
            }
            return Self.wrap(try s.startTrace(try TraceJSON.info(info)))
        })
        t.on("traces/search", .post, access: .user, use: e.json { r in
            guard let locations = r.raw("locations") else { throw MLflowRequest.missing("locations") }
            guard case .array(let items) = locations else { throw MLflowRequest.invalid("locations", locations) }
            let ids = try items.compactMap { l -> String? in
                guard l.isObject else { throw MLflowRequest.invalid("locations", locations) }
                return try TraceJSON.member(l, "mlflow_experiment").flatMap { try TraceJSON.string($0, "experiment_id", in: "locations.mlflow_experiment.") }
            }
            let page = try s.searchTraces(experimentIDs: ids, filter: try r.string("filter"), maxResults: try r.int64("max_results"),
                                          orderBy: try r.strings("order_by"), pageToken: try r.string("page_token"), scope: r.grants)
            return ByteBuffer(string: Render.page("traces", page, TraceJSON.info))
        })
        t.on("traces/metrics", .post, access: .needs(.read, .experimentListField("experiment_ids")), use: e.json { r in
            Self.render(try s.queryTraceMetrics(try Self.metricsQuery(r)))
        })
        t.on("traces/get", .get, access: .needs(.read, .traceQuery("trace_id"))) { request, _ in
            // A trace whose last spans are still on their way is read again after 1 s and 2 s, as MLflow waits.
            let q = PercentDecoding.query(request.uri.query ?? "")
            let id = q["trace_id"]?.first, partial = ["true", "True", "1"].contains(q["allow_partial"]?.first ?? "")
            for wait in [0] + TrackingService.spanWaits {
                if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
                if let body = try await e.pool.run({ () throws -> ByteBuffer? in
                    try s.traceWithSpans(id: id, allowPartial: partial).map { ByteBuffer(string: Render.wrap("trace", TraceJSON.trace($0.info, spans: $0.spans))) }
                }) {
                    return Endpoints.ok(body)
                }
            }
            throw MLflowError(TrackingService.notFullyExported(id ?? ""))
        }
        t.on("traces/batchGet", .get, access: .needs(.read, .traceQueryAll("trace_ids")), use: e.json { r in
            let ids = try r.strings("experiment_ids")
            let traces = try s.tracesWithSpans(ids: try r.strings("trace_ids"), experimentIDs: ids.isEmpty ? nil : ids, scope: r.grants)
            var o = Obj()
            o.add("traces", array: traces.map { TraceJSON.trace($0.info, spans: $0.spans) })
            return ByteBuffer(string: o.json)
        })
        // MLflow's client reads a batch's infos first (`TracingClient.batch_get_traces`), then each trace's spans.
        t.on("traces/batchGetInfos", .post, access: .needs(.read, .traceFieldAll("trace_ids")), use: e.json { r in
            guard r.has("trace_ids") else { throw MLflowRequest.missing("trace_ids") }
            let infos = try s.traceInfos(ids: try r.strings("trace_ids"), experimentIDs: r.has("experiment_ids") ? try r.strings("experiment_ids") : nil,
                                         scope: r.grants)
            var o = Obj()
            o.add("trace_infos", array: infos.map { TraceJSON.info($0) })
            return ByteBuffer(string: o.json)
        })
        t.on("traces/calculate-filter-correlation", .post, access: .needs(.read, .experimentListField("experiment_ids")), use: e.json { r in
            let c = try s.traceFilterCorrelation(experimentIDs: try r.strings("experiment_ids"), filter1: try r.string("filter_string1", required: true)!,
                                                 filter2: try r.string("filter_string2", required: true)!, base: try r.string("base_filter"), scope: r.grants)
            var o = Obj()  // an undefined NPMI is left out, as MLflow leaves it out
            if !c.npmi.isNaN { o.add("npmi", double: c.npmi) }
            if !c.npmiSmoothed.isNaN { o.add("npmi_smoothed", double: c.npmiSmoothed) }
            o.add("filter1_count", Int64(c.filter1Count))
            o.add("filter2_count", Int64(c.filter2Count))
            o.add("joint_count", Int64(c.jointCount))
            o.add("total_count", Int64(c.totalCount))
            return o.json
        })
        let trace = { (need: Permission.Need) in Access.needs(need, .tracePath("trace_id")) }
        t.on("traces/{trace_id}", .get, access: trace(.read), use: e.json(path: ["trace_id"]) { _, p, _ in
            Self.wrap(try s.traceInfo(id: p[0]))
        })
        t.on("traces/{trace_id}/assessments", .post, access: trace(.update), use: e.json(path: ["trace_id"]) { r, p, _ in
            guard let body = r.raw("assessment"), case .object = body else { throw MLflowRequest.missing("assessment") }
            var a = try TraceJSON.assessment(body)
            a.traceID = p[0]
            return ByteBuffer(string: Render.wrap("assessment", TraceJSON.assessment(try s.createAssessment(a, kind: TraceJSON.kind(body)))))
        })
        let assessment = ["trace_id", "assessment_id"]
        t.on("traces/{trace_id}/assessments/{assessment_id}", .get, access: trace(.read), use: e.json(path: assessment) { _, p, _ in
            ByteBuffer(string: Render.wrap("assessment", TraceJSON.assessment(try s.assessment(traceID: p[0], id: p[1]))))
        })
        t.on("traces/{trace_id}/assessments/{assessment_id}", .patch, access: trace(.update), use: e.json(path: assessment) { r, p, _ in
            guard let body = r.raw("assessment"), case .object = body else { throw MLflowRequest.missing("assessment") }
            let mask = try TrackingService.assessmentMask(try r.string("update_mask"))
            let a = try s.updateAssessment(traceID: p[0], id: p[1], mask: mask) { try TraceJSON.merge(&$0, body, mask) }
            return ByteBuffer(string: Render.wrap("assessment", TraceJSON.assessment(a)))
        })
        t.on("traces/{trace_id}/assessments/{assessment_id}", .delete, access: trace(.update), use: e.json(path: assessment) { _, p, _ in
            try s.deleteAssessment(traceID: p[0], id: p[1])
            return ByteBuffer(string: Endpoints.empty)
        })
    }

    /// The routes MLflow serves under both API versions: tags, `traces/delete-traces`, `traces/link-to-run` and
    /// `traces/link-prompts` (which MLflow serves under 2.0 alone).
    func addV2(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("traces/link-to-run", .post, access: .needs(.update, .runField), use: e.json { r in
            guard r.raw("trace_ids") != nil else { throw MLflowRequest.missing("trace_ids") }
            try s.linkTracesToRun(traceIDs: try r.strings("trace_ids"), runID: try r.runID(), scope: r.grants)
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("traces/link-prompts", .post, access: .needs(.update, .traceField("trace_id")), use: e.json { r in
            guard r.raw("prompt_versions") != nil else { throw MLflowRequest.missing("prompt_versions") }
            let prompts = try r.objects("prompt_versions").enumerated().map { i, o in
                (name: try MLflowRequest.optionalString(o["name"], "prompt_versions[\(i)].name"),
                 version: try MLflowRequest.optionalString(o["version"], "prompt_versions[\(i)].version"))
            }
            try s.linkPromptsToTrace(traceID: try r.string("trace_id", required: true)!, prompts: prompts)
            return ByteBuffer(string: Endpoints.empty)
        })
        let trace = { (need: Permission.Need) in Access.needs(need, .tracePath("trace_id")) }
        t.on("traces/{trace_id}/tags", .patch, access: trace(.update), use: e.json(path: ["trace_id"]) { r, p, _ in
            try s.setTraceTag(id: p[0], key: try r.string("key"), value: try r.string("value"))
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("traces/{trace_id}/tags", .delete, access: trace(.update), use: e.json(path: ["trace_id"]) { r, p, _ in
            try s.deleteTraceTag(id: p[0], key: try r.string("key"))
            return ByteBuffer(string: Endpoints.empty)
        })
        t.on("traces/delete-traces", .post, access: .needs(.delete, .experimentField("experiment_id")), use: e.json { r in
            let ids = r.raw("request_ids") != nil ? try r.strings("request_ids") : r.raw("trace_ids") != nil ? try r.strings("trace_ids") : nil
            let n = try s.deleteTraces(experimentID: try r.string("experiment_id"), maxTimestamp: try r.int64("max_timestamp_millis"),
                                       maxTraces: try r.int64("max_traces"), ids: ids)
            var o = Obj()
            o.add("traces_deleted", Int64(n))
            return ByteBuffer(string: o.json)
        })
    }

    /// MLflow 2's trace API, which MLflow serves under 2.0 alone and MLflow 2.14–2.22 clients trace with
    /// (``TrackingService/startTraceV2(experimentID:timestamp:metadata:tags:)``): start, end, one trace's info and a
    /// search, each answering MLflow 2's `TraceInfo` (``TraceJSON/infoV2(_:)``).
    func addV2Only(to t: RouteTable) {
        let s = endpoints.service, e = endpoints
        t.on("traces", .post, access: .needs(.update, .experimentField("experiment_id")), use: e.json { r in
            Self.wrapV2(try s.startTraceV2(experimentID: try r.string("experiment_id"), timestamp: try r.int64("timestamp_ms"),
                                           metadata: try r.keyValues("request_metadata"), tags: try r.keyValues("tags")))
        })
        t.on("traces/{trace_id}", .patch, access: .needs(.update, .tracePath("trace_id")), use: e.json(path: ["trace_id"]) { r, p, _ in
            Self.wrapV2(try s.endTraceV2(id: p[0], timestamp: try r.int64("timestamp_ms"),
                                         state: TraceState(v2Name: try r.enumName("status", numbers: TraceState.v2Numbers)),
                                         metadata: try r.keyValues("request_metadata"), tags: try r.keyValues("tags")))
        })
        t.on("traces/{trace_id}/info", .get, access: .needs(.read, .tracePath("trace_id")), use: e.json(path: ["trace_id"]) { _, p, _ in
            Self.wrapV2(try s.traceInfo(id: p[0]))
        })
        t.on("traces", .get, access: .user, use: e.json { r in
            guard r.has("experiment_ids") else { throw MLflowRequest.missing("experiment_ids") }
            let page = try s.searchTraces(experimentIDs: try r.strings("experiment_ids"), filter: try r.string("filter"),
                                          maxResults: try r.int64("max_results"), orderBy: try r.strings("order_by"),
                                          pageToken: try r.string("page_token"), scope: r.grants)
            return ByteBuffer(string: Render.page("traces", page, TraceJSON.infoV2))
        })
    }

    /// The web UI's `get-trace-artifact?request_id=…` (under both `ajax-api` versions, where MLflow serves it): the
    /// trace's spans (`traces.json`), or with `&path=<uuid>` one of its attachments, streamed from the artifact store.
    func addUIArtifact(to t: RouteTable) {
        let s = endpoints.service, pool = endpoints.pool
        t.on("get-trace-artifact", .get, access: .needs(.read, .traceQuery("request_id"))) { request, _ in
            let q = PercentDecoding.query(request.uri.query ?? "")
            if q["path"]?.first?.isEmpty ?? true, let id = q["request_id"]?.first,
               let kept = try await pool.run({ try s.keptTraceData(traceID: id) }) {  // spans sent over OTLP
                return Response(status: .ok, headers: [.contentType: "text/plain", .contentDisposition: "attachment; filename=traces.json",
                                                       .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(string: kept)))
            }
            let (reader, name) = try await pool.run { try s.openTraceArtifact(traceID: q["request_id"]?.first, path: q["path"]?.first) }
            return try await ArtifactRoutes.download(reader, name: name, pool: pool)
        }
    }

    /// A `traces/metrics` request's fields, read in the order MLflow's handler checks them.
    static func metricsQuery(_ r: MLflowRequest) throws -> TraceMetricsQuery {
        guard r.has("experiment_ids") else { throw MLflowRequest.missing("experiment_ids") }
        let ids = try r.strings("experiment_ids")
        // A name the protocol lacks is ignored by its parser, leaving the enum's default, its first value (TRACES).
        guard let viewName = try r.enumName("view_type", numbers: TraceMetricsQuery.View.protocolNumbers) else { throw MLflowRequest.missing("view_type") }
        let view = TraceMetricsQuery.View(rawValue: viewName) ?? .traces
        guard let metric = try r.string("metric_name", required: true) else { throw MLflowRequest.missing("metric_name") }
        let aggregations = try r.objects("aggregations")
        if aggregations.isEmpty { throw MLflowRequest.missing("aggregations") }  // MLflow: its SQL's error, 400
        let dimensions = try r.strings("dimensions"), filters = try r.strings("filters")
        let interval = try r.int64("time_interval_seconds"), start = try r.int64("start_time_ms"), end = try r.int64("end_time_ms")
        let maxResults = try r.int64("max_results") ?? TraceMetricsQuery.defaultMaxResults
        _ = try r.string("page_token")
        let parsed = try aggregations.map { a in
            let one = MLflowRequest(body: a, query: [:])
            return try TraceMetricAggregation(kind: try one.enumName("aggregation_type", numbers: TraceMetricAggregation.Kind.protocolNumbers),
                                              percentile: try one.raw("percentile_value").map { try MLflowRequest.double($0, "percentile_value") })
        }
        return TraceMetricsQuery(experimentIDs: ids, view: view, metricName: metric, aggregations: parsed, dimensions: dimensions, filters: filters,
                                 timeIntervalSeconds: interval, startTimeMs: start, endTimeMs: end, maxResults: maxResults)
    }

    /// `{"data_points": [{"metric_name", "dimensions": {…}, "values": {…}}, …]}` (protobuf's JSON: empty parts left out).
    static func render(_ points: [TraceMetricPoint]) -> ByteBuffer {
        var o = Obj()
        o.add("data_points", array: points.map { p in
            var point = Obj(), dims = Obj(), values = Obj()
            point.add("metric_name", p.metricName)
            for d in p.dimensions { dims.add(d.key, d.value) }
            for v in p.values { values.add(v.label, double: v.value) }
            if !p.dimensions.isEmpty { point.add("dimensions", raw: dims.json) }
            if !p.values.isEmpty { point.add("values", raw: values.json) }
            return point.json
        })
        return ByteBuffer(string: o.json)
    }

    /// `{"trace": {"trace_info": …}}`.
    /// `{"trace_info": …}` in MLflow 2's message.
    static func wrapV2(_ t: TraceInfo) -> ByteBuffer { ByteBuffer(string: Render.wrap("trace_info", TraceJSON.infoV2(t))) }

    static func wrap(_ t: TraceInfo) -> ByteBuffer {
        ByteBuffer(string: Render.wrap("trace", Render.wrap("trace_info", TraceJSON.info(t))))
    }
}
