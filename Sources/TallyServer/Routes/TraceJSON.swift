import TallyTracking

/// MLflow 3's trace messages in protobuf's JSON (`TraceInfoV3`, `Assessment`): read from a request (snake_case or
/// protobuf's lowerCamelCase names, as MLflow's parser takes either) and written as MLflow writes them.
enum TraceJSON {
    /// A member by its snake_case name or its lowerCamelCase one.
    static func member(_ o: JSONValue, _ name: String) -> JSONValue? {
        if let v = o[name], v != .null { return v }
        var camel = "", upper = false
        for c in name {
            if c == "_" { upper = true } else { camel += upper ? c.uppercased() : String(c); upper = false }
        }
        if let v = o[camel], v != .null { return v }
        return nil
    }

    static func string(_ o: JSONValue, _ name: String, in path: String) throws -> String? {
        guard let v = member(o, name) else { return nil }
        guard case .string(let s) = v else { throw MLflowRequest.invalid(path + name, v) }
        return s
    }

    /// A `map<string, string>` member: an object of strings (absent: empty).
    static func map(_ o: JSONValue, _ name: String, in path: String) throws -> [KeyValue] {
        guard let v = member(o, name) else { return [] }
        guard case .object(let members) = v else { throw MLflowRequest.invalid(path + name, v) }
        var out: [String: String] = [:]
        for (k, x) in members {
            guard case .string(let s) = x else { throw MLflowRequest.invalid(path + name + "." + k, x) }
            out[k] = s  // the last of a repeated key, as the JSON parser keeps it
        }
        return out.map { KeyValue(key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }
    }

    static func time(_ o: JSONValue, _ name: String, in path: String) throws -> Int64? {
        guard let v = member(o, name) else { return nil }
        guard case .string(let s) = v, let ms = ProtoTime.timestamp(s) else {
            throw TrackingError(.invalidParameterValue, "Invalid value \(v.pythonRepr) for parameter '\(path + name)' supplied: expected an RFC 3339 timestamp string")
        }
        return ms
    }

    /// The experiment of a request's `trace_info` (`trace_location.mlflow_experiment.experiment_id`), required.
    static func experimentID(_ info: JSONValue) throws -> String {
        let p = "trace.trace_info."
        guard let location = member(info, "trace_location"), let exp = member(location, "mlflow_experiment"),
              let id = try string(exp, "experiment_id", in: p + "trace_location.mlflow_experiment."), !id.isEmpty else {
            throw MLflowRequest.missing(p + "trace_location.mlflow_experiment.experiment_id")
        }
        return id
    }

    /// A request's `trace_info`; `importing` one an MLflow server answered, whose assessments of kinds Tally does not
    /// keep (issue references) are left out instead of refused.
    static func info(_ o: JSONValue, importing: Bool = false) throws -> TraceInfo {
        let p = "trace.trace_info."
        guard let id = try string(o, "trace_id", in: p), !id.isEmpty else { throw MLflowRequest.missing(p + "trace_id") }
        let experimentID = try experimentID(o)
        var duration: Int64?
        if let d = member(o, "execution_duration") {
            guard case .string(let s) = d, let ms = ProtoTime.duration(s) else {
                throw TrackingError(.invalidParameterValue, "Invalid value \(d.pythonRepr) for parameter '\(p)execution_duration' supplied: expected a duration such as \"1.5s\"")
            }
            duration = ms
        }
        let assessments = try (member(o, "assessments")?.items ?? []).compactMap { a -> Assessment? in
            guard case .object = a else { throw MLflowRequest.invalid(p + "assessments", a) }
            var x = try assessment(a)
            guard let k = kind(a) else {
                if importing { return nil }
                throw TrackingError(.invalidParameterValue, "Unknown assessment type: None")
            }
            x.kind = k
            return x
        }
        return TraceInfo(traceID: id, experimentID: experimentID, clientRequestID: try string(o, "client_request_id", in: p),
                         requestTime: try time(o, "request_time", in: p) ?? 0, executionDuration: duration,
                         state: TraceState(apiName: try string(o, "state", in: p)), requestPreview: try string(o, "request_preview", in: p),
                         responsePreview: try string(o, "response_preview", in: p), metadata: try map(o, "trace_metadata", in: p),
                         tags: try map(o, "tags", in: p), assessments: assessments)
    }

    /// A trace info as MLflow writes it.
    static func info(_ t: TraceInfo) -> String {
        var o = Obj()
        o.add("trace_id", t.traceID)
        o.add("client_request_id", t.clientRequestID)
        o.add("trace_location", raw: #"{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "# + JSONText.quote(t.experimentID) + "}}")
        o.add("request_time", ProtoTime.timestamp(t.requestTime))
        o.add("execution_duration", t.executionDuration.map(ProtoTime.duration))
        o.add("state", t.state.rawValue)
        if !t.metadata.isEmpty { o.add("trace_metadata", raw: object(t.metadata)) }  // an empty map is left out, as protobuf's JSON
        o.add("assessments", array: t.assessments.map(assessment))
        o.add("tags", raw: object(t.tags))
        o.add("request_preview", t.requestPreview)
        o.add("response_preview", t.responsePreview)
        return o.json
    }

    /// A trace's info as MLflow 2's `TraceInfo` (the trace API under 2.0): `request_id`, times in milliseconds (no
    /// duration yet: 0, as MLflow writes it), `status` (``TraceState/v2Name``), metadata and tags as key-value lists;
    /// no assessments (MLflow 2's message has none).
    static func infoV2(_ t: TraceInfo) -> String {
        var o = Obj()
        o.add("request_id", t.traceID)
        o.add("experiment_id", t.experimentID)
        o.add("timestamp_ms", t.requestTime)
        o.add("execution_time_ms", t.executionDuration ?? 0)
        o.add("status", t.state.v2Name)
        o.add("request_metadata", array: Render.keyValues(t.metadata))
        o.add("tags", array: Render.keyValues(t.tags))
        return o.json
    }

    static func object(_ kvs: [KeyValue]) -> String {
        "{" + kvs.map { JSONText.quote($0.key) + ": " + JSONText.quote($0.value) }.joined(separator: ", ") + "}"
    }

    /// The fields Tally reads itself; every other member of an assessment is kept as sent, in ``Assessment/body``.
    static let ownFields: Set<String> = ["assessment_id", "assessmentId", "assessment_name", "assessmentName", "trace_id", "traceId",
                                         "create_time", "createTime", "last_update_time", "lastUpdateTime", "valid", "overrides"]

    /// Which kind an assessment message is, by the one-of member it carries (`nil`: none).
    static func kind(_ o: JSONValue) -> AssessmentKind? {
        AssessmentKind.allCases.first { member(o, $0.rawValue) != nil }
    }

    /// A request's assessment (its kind is read by ``kind(_:)``; the id and times are the service's to give).
    static func assessment(_ sent: JSONValue) throws -> Assessment { try read(Assessment.protobufValues(sent)) }

    /// ``assessment(_:)`` of a message whose values are already protobuf's.
    private static func read(_ o: JSONValue) throws -> Assessment {
        let p = "assessment."
        guard case .object(let members) = o else { throw MLflowRequest.invalid("assessment", o) }
        var valid = true
        if let v = member(o, "valid") {
            guard case .bool(let b) = v else { throw MLflowRequest.invalid(p + "valid", v) }
            valid = b
        }
        // The fields every reader's client parses: of the types MLflow's protobuf has, so one bad write cannot break them.
        if AssessmentKind.allCases.filter({ member(o, $0.rawValue) != nil }).count > 1 {
            throw TrackingError(.invalidParameterValue, "An assessment is one of a feedback, an expectation or an issue reference, not several.")
        }
        for name in AssessmentKind.allCases.map(\.rawValue) + ["source", "error"] {
            if let v = member(o, name), !v.isObject { throw MLflowRequest.invalid(p + name, v) }
        }
        var given = members
        if let issue = member(o, "issue") {
            let named = try issueReference(issue)
            given = given.map { $0.0 == "issue" ? ($0.0, named) : $0 }
        }
        for name in ["span_id", "rationale"] { _ = try string(o, name, in: p) }
        _ = try map(o, "metadata", in: p)
        if let source = member(o, "source") {
            _ = try string(source, "source_type", in: p + "source.")
            _ = try string(source, "source_id", in: p + "source.")
        }
        let kept = given.filter { !ownFields.contains($0.0) && $0.1 != .null }
        return Assessment(id: try string(o, "assessment_id", in: p) ?? "", traceID: try string(o, "trace_id", in: p) ?? "",
                          name: try string(o, "assessment_name", in: p) ?? "", kind: kind(o) ?? .feedback,
                          createTime: try time(o, "create_time", in: p) ?? 0, lastUpdateTime: try time(o, "last_update_time", in: p) ?? 0,
                          valid: valid, overrides: try string(o, "overrides", in: p), value: value(.object(given)), body: JSONValue.object(kept).compact)
    }

    /// An issue reference's one-of (`{"issue_name": …}`) with its name as protobuf reads it: `""` when not sent.
    static func issueReference(_ issue: JSONValue) throws -> JSONValue {
        guard case .object(var fields) = issue, try string(issue, "issue_name", in: "assessment.issue.") == nil else { return issue }
        fields.removeAll { $0.0 == "issue_name" }
        fields.insert(("issue_name", .string("")), at: 0)
        return .object(fields)
    }

    /// The value a `feedback.<name>` or `expectation.<name>` clause compares, as JSON text: the feedback's or
    /// expectation's `value`, or an expectation's `serialized_value.value` (already JSON); an issue reference's one-of,
    /// named (``issueReference(_:)``), as MLflow's store keeps it: what trace metrics group its references by.
    static func value(_ o: JSONValue) -> String? {
        if let f = member(o, "feedback") { return member(f, "value")?.compact }
        if let i = member(o, "issue") { return i.compact }
        guard let x = member(o, "expectation") else { return nil }
        if let v = member(x, "value") { return v.compact }
        return member(x, "serialized_value").flatMap { member($0, "value")?.text }
    }

    /// An assessment as MLflow writes it: its fields in the order of their proto numbers (as protobuf's JSON writes
    /// them), members Tally does not know after `metadata`.
    static func assessment(_ a: Assessment) -> String {
        var kept: [(String, JSONValue)] = []
        if case .object(let members)? = try? JSONParser.parse(Array(a.body.utf8)) { kept = members }
        var o = Obj()
        func body(_ names: [String]) {
            for name in names { if let v = kept.first(where: { $0.0 == name })?.1 { o.add(name, raw: v.compact) } }
        }
        o.add("assessment_id", a.id)
        o.add("assessment_name", a.name)
        o.add("trace_id", a.traceID)
        body(["span_id", "source"])
        o.add("create_time", ProtoTime.timestamp(a.createTime))
        o.add("last_update_time", ProtoTime.timestamp(a.lastUpdateTime))
        body(["feedback", "expectation", "rationale", "error", "metadata"])
        for (k, v) in kept where !bodyOrder.contains(k) { o.add(k, raw: v.compact) }
        o.add("overrides", a.overrides)
        o.add("valid", bool: a.valid)
        body(["issue"])
        return o.json
    }

    /// The kept members an assessment is written with in their proto place.
    static let bodyOrder: Set<String> = ["span_id", "source", "feedback", "expectation", "rationale", "error", "metadata", "issue"]

    /// Applies a PATCH's fields that `mask` names: the name, the feedback or expectation (and so the value) or the
    /// issue reference, the rationale, metadata merged (the request's keys win), validity.
    static func merge(_ a: inout Assessment, _ sent: JSONValue, _ mask: Set<String>) throws {
        let o = Assessment.protobufValues(sent)
        let update = try read(o)
        var members: [(String, JSONValue)] = []
        if case .object(let m)? = try? JSONParser.parse(Array(a.body.utf8)) { members = m }
        func set(_ name: String, _ v: JSONValue?) {
            members.removeAll { $0.0 == name }
            if let v { members.append((name, v)) }
        }
        if mask.contains("assessment_name"), !update.name.isEmpty { a.name = update.name }
        for field in ["feedback", "expectation", "rationale"] where mask.contains(field) { set(field, member(o, field)) }
        if mask.contains("issue") { set("issue", try member(o, "issue").map(issueReference)) }
        if mask.contains("feedback") || mask.contains("expectation") || mask.contains("issue") { a.value = value(.object(members)) }
        if mask.contains("metadata"), let new = member(o, "metadata") {
            guard case .object(let added) = new else { throw MLflowRequest.invalid("assessment.metadata", new) }
            var merged: [(String, JSONValue)] = []
            if case .object(let old)? = members.first(where: { $0.0 == "metadata" })?.1 { merged = old }
            for (k, v) in added {
                merged.removeAll { $0.0 == k }
                merged.append((k, v))
            }
            set("metadata", .object(merged))
        }
        if mask.contains("valid") { a.valid = update.valid }
        a.body = JSONValue.object(members).compact
    }
}
