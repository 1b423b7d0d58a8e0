/// MLflow 3's traces, read from the same database (none where the schema predates them): each trace's info with
/// its tags, metadata and assessments, and the spans MLflow's tracking store keeps in its `spans` table.
extension MLflowSQLSource {
    /// The token counts MLflow 3.17 keeps in columns, each under its key in `mlflow.trace.tokenUsage`.
    static let tokenColumns = ["input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                               "cache_creation_input_tokens_above_1hr"]
    /// The costs MLflow 3.17 keeps in columns, each under its key in `mlflow.trace.cost`.
    static let costColumns = ["input_cost", "output_cost", "total_cost"]

    /// The traces of an experiment, oldest first. What MLflow 3.17 moved out of tags and metadata into columns
    /// (the trace name, session, token usage and cost) is given back as the tags and metadata its API shows.
    func traces(experimentID: String) throws -> [TraceInfo] {
        guard has("trace_info"), let exp = Int64(experimentID) else { return [] }
        let promoted = (["trace_name", "session_id"] + Self.tokenColumns + Self.costColumns).filter { has("trace_info", $0) }
        var out: [TraceInfo] = []
        // Columns MLflow 3.0 added (a 2.x database's traces have none of them).
        let optional = ["client_request_id", "request_preview", "response_preview"].map { has("trace_info", $0) ? $0 : "NULL" }
        try query("SELECT request_id, timestamp_ms, execution_time_ms, status, " + optional.joined(separator: ", ")
                  + promoted.map { ", " + $0 }.joined() + " FROM trace_info WHERE experiment_id = ? ORDER BY timestamp_ms, request_id", [.integer(exp)]) { r in
            var t = TraceInfo(traceID: r[0].string ?? "", experimentID: experimentID, clientRequestID: r[4].string, requestTime: r[1].int ?? 0,
                              executionDuration: r[2].int, state: TraceState(apiName: r[3].string), requestPreview: r[5].string, responsePreview: r[6].string)
            let column = Dictionary(uniqueKeysWithValues: promoted.enumerated().map { ($0.element, r[7 + $0.offset]) })
            if let name = column["trace_name"]?.string { t.tags.append(KeyValue(key: TraceKeys.traceName, value: name)) }
            if let session = column["session_id"]?.string { t.metadata.append(KeyValue(key: "mlflow.trace.session", value: session)) }
            let tokens = Self.tokenColumns.compactMap { k in column[k]?.int.map { JSONText.quote(k) + ": " + String($0) } }
            if !tokens.isEmpty { t.metadata.append(KeyValue(key: "mlflow.trace.tokenUsage", value: "{" + tokens.joined(separator: ", ") + "}")) }
            let costs = Self.costColumns.compactMap { k in column[k]?.double.map { JSONText.quote(k) + ": " + Validation.pythonFloat($0) } }
            if !costs.isEmpty { t.metadata.append(KeyValue(key: "mlflow.trace.cost", value: "{" + costs.joined(separator: ", ") + "}")) }
            out.append(t)
        }
        guard !out.isEmpty else { return [] }
        let index = Dictionary(uniqueKeysWithValues: out.enumerated().map { ($0.element.traceID, $0.offset) })
        let ofExperiment = "IN (SELECT request_id FROM trace_info WHERE experiment_id = ?)"
        for (table, isTag) in [("trace_tags", true), ("trace_request_metadata", false)] where has(table) {
            try query("SELECT request_id, key, value FROM \(table) WHERE request_id \(ofExperiment)", [.integer(exp)]) { r in
                guard let i = index[r[0].string ?? ""] else { return }
                let kv = KeyValue(key: r[1].string ?? "", value: r[2].string ?? "")
                if isTag { out[i].tags.append(kv) } else { out[i].metadata.append(kv) }
            }
        }
        if has("entity_associations") {  // traces linked to runs (traces/link-to-run)
            try query("SELECT source_id, destination_id FROM entity_associations WHERE source_type = 'trace' AND destination_type = 'run' "
                      + "AND source_id \(ofExperiment) ORDER BY destination_id", [.integer(exp)]) { r in
                if let i = index[r[0].string ?? ""], let run = r[1].string { out[i].linkedRuns.append(run) }
            }
            // and to prompt versions (traces/link-prompts), named `<name>/<version>` as Tally names them
            try query("SELECT source_id, destination_id FROM entity_associations WHERE source_type = 'trace' AND destination_type = 'prompt_version' "
                      + "AND source_id \(ofExperiment) ORDER BY destination_id", [.integer(exp)]) { r in
                if let i = index[r[0].string ?? ""], let prompt = r[1].string { out[i].linkedPrompts.append(prompt) }
            }
        }
        if has("assessments") {
            try query("SELECT trace_id, assessment_id, name, assessment_type, value, error, created_timestamp, last_updated_timestamp, source_type, "
                      + "source_id, span_id, rationale, overrides, valid, assessment_metadata FROM assessments WHERE trace_id \(ofExperiment) "
                      + "ORDER BY created_timestamp, assessment_id", [.integer(exp)]) { r in
                guard let i = index[r[0].string ?? ""], let a = Self.assessment(r) else { return }
                out[i].assessments.append(a)
            }
        }
        return out
    }

    /// An `assessments` row as the API shows it: the value (JSON in MLflow's column) under `feedback` or
    /// `expectation` (a structured expectation as `serialized_value`, as MLflow's API writes one), or an issue
    /// reference's under `issue`; `nil` for a kind Tally does not know.
    static func assessment(_ r: [SQLValue]) -> Assessment? {
        guard let kind = AssessmentKind(rawValue: r[3].string ?? "") else { return nil }
        let value = r[4].string ?? "null"
        var body: [String] = []
        body.append(#""source": {"source_type": "# + JSONText.quote(r[8].string ?? "SOURCE_TYPE_UNSPECIFIED")
                    + (r[9].string.map { #", "source_id": "# + JSONText.quote($0) } ?? "") + "}")
        if let span = r[10].string { body.append(#""span_id": "# + JSONText.quote(span)) }
        switch kind {
        case .feedback:
            body.append(#""feedback": {"value": "# + value + (r[5].string.map { #", "error": "# + $0 } ?? "") + "}")
        case .expectation:
            let structured = value.hasPrefix("{") || value.hasPrefix("[")
            body.append(structured ? #""expectation": {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": "# + JSONText.quote(value) + "}}"
                                   : #""expectation": {"value": "# + value + "}")
        case .issue:  // the value is the reference's one-of as MLflow's entity dumps it: `{"issue_name": …}`
            body.append(#""issue": "# + (value.hasPrefix("{") ? value : "{}"))
        }
        if let rationale = r[11].string { body.append(#""rationale": "# + JSONText.quote(rationale)) }
        if let metadata = r[14].string, metadata.hasPrefix("{") { body.append(#""metadata": "# + metadata) }
        let valid = r[13].int.map { $0 != 0 } ?? (r[13].string.map { $0 == "true" || $0 == "1" } ?? true)
        return Assessment(id: r[1].string ?? "", traceID: r[0].string ?? "", name: r[2].string ?? "", kind: kind, createTime: r[6].int ?? 0,
                          lastUpdateTime: r[7].int ?? r[6].int ?? 0, valid: valid, overrides: r[12].string, value: value,
                          body: "{" + body.joined(separator: ", ") + "}")
    }

    /// The spans of a trace MLflow keeps in its tracking store (tag `mlflow.trace.spansLocation` = `TRACKING_STORE`)
    /// as the `traces.json` its client reads: each span's stored JSON, parents first. `nil` for a trace whose spans
    /// are in its artifacts.
    func traceSpans(_ t: TraceInfo) throws -> [UInt8]? {
        guard t.keepsSpans, has("spans") else { return nil }
        let spans = try rows("SELECT content FROM spans WHERE trace_id = ? ORDER BY start_time_unix_nano, span_id", [.text(t.traceID)])
            .compactMap { $0[0].string }.filter { !$0.isEmpty }
        return Array(("{\"spans\": [" + spans.joined(separator: ", ") + "]}").utf8)
    }
}
