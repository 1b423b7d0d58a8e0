import NIOCore
import TallyStore
import TallyTracking

/// The body of `POST /api/tally/v1/scoreboard` (docs/api.md): `{"run_ids": […]}` or `{"experiment_id": "1",
/// "filter": "…"}`, with `key_prefixes` or `key_regex`, `value` (`latest`, `best`, `step` with `step`), `group_depth`,
/// `lower_is_better` and `baseline_run_id`.
extension ScoreboardQuery {
    init(_ r: MLflowRequest) throws {
        let value: ScoreboardValue
        switch try r.string("value") ?? "latest" {
        case "latest": value = .latest
        case "best": value = .best
        case "step":
            guard let s = try r.int64("step") else { throw MLflowRequest.missing("step") }
            value = .step(s)
        case let v: throw TrackingError(.invalidParameterValue, "value must be latest, best or step (got '\(v)')")
        }
        self.init(runIDs: try r.strings("run_ids"), experimentID: try r.string("experiment_id"), filter: try r.string("filter"),
                  keyPrefixes: try r.strings("key_prefixes"), keyRegex: try r.string("key_regex"), value: value,
                  groupDepth: try r.int64("group_depth").map { Int(clamping: $0) },
                  lowerIsBetter: r.raw("lower_is_better") == nil ? nil : try r.strings("lower_is_better"),
                  baselineRunID: try r.string("baseline_run_id"))
    }
}

/// Writes a scoreboard as JSON: runs, rows (key × run values, steps, ranks, baseline deltas) and groups.
enum ScoreboardRendering {
    static func render(_ b: Scoreboard) -> ByteBuffer {
        var out = JSONBytes(capacity: 1024 + b.rows.count * (64 + b.runs.count * 40))
        out.raw("{\"runs\": ")
        Render.runSummaries(&out, b.runs)
        if let i = b.baselineIndex {
            out.raw(", \"baseline_run_id\": ")
            out.string(b.runs[i].runID)
        }
        out.raw(", \"rows\": [")
        for (k, row) in b.rows.enumerated() {
            out.raw(k == 0 ? "{\"key\": " : ", {\"key\": ")
            out.string(row.key)
            out.raw(", \"group\": ")
            out.string(row.group)
            out.raw(row.lowerIsBetter ? ", \"lower_is_better\": true, \"values\": " : ", \"lower_is_better\": false, \"values\": ")
            list(&out, row.values) { $0.exactDouble($1) }
            out.raw(", \"steps\": ")
            list(&out, row.steps) { $0.int($1) }
            out.raw(", \"ranks\": ")
            list(&out, row.ranks) { $0.int(Int64($1)) }
            if b.baselineIndex != nil {
                out.raw(", \"baseline_deltas\": ")
                list(&out, row.baselineDeltas) { $0.exactDouble($1) }
            }
            out.raw("}")
        }
        out.raw("], \"groups\": [")
        for (k, g) in b.groups.enumerated() {
            out.raw(k == 0 ? "{\"group\": " : ", {\"group\": ")
            out.string(g.group)
            out.raw(", \"keys\": ")
            out.int(Int64(g.keys))
            out.raw(", \"means\": ")
            list(&out, g.means) { $0.exactDouble($1) }
            out.raw(", \"counts\": ")
            list(&out, g.counts.map(Optional.some)) { $0.int(Int64($1)) }
            out.raw("}")
        }
        out.raw("]}")
        return out.buffer
    }

    /// `[a, null, c]`.
    static func list<T>(_ out: inout JSONBytes, _ xs: [T?], _ write: (inout JSONBytes, T) -> Void) {
        out.raw("[")
        for (i, x) in xs.enumerated() {
            if i > 0 { out.raw(", ") }
            if let x { write(&out, x) } else { out.raw("null") }
        }
        out.raw("]")
    }
}
