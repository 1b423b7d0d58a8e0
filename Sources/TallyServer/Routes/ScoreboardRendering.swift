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
    /// The answer in parts: a head (runs, baseline), the rows and the groups rendered in parallel chunks (most of the
    /// answer: a value, step and rank per run and key, a mean and count per run and group), and the closing bytes.
    static func render(_ b: Scoreboard) -> [ByteBuffer] {
        var head = JSONBytes(capacity: 256 + b.runs.count * 160)
        head.raw("{\"runs\": ")
        Render.runSummaries(&head, b.runs)
        if let i = b.baselineIndex {
            head.raw(", \"baseline_run_id\": ")
            head.string(b.runs[i].runID)
        }
        head.raw(", \"rows\": [")
        let rows = b.rows, groups = b.groups, withDeltas = b.baselineIndex != nil
        // One job list for all cores: row chunks, then group chunks.
        let jobs: [(rows: Bool, range: Range<Int>)] = Parallel.chunks(rows.count, minimum: 256).map { (true, $0) }
            + Parallel.chunks(groups.count, minimum: 256).map { (false, $0) }
        let parts = Parallel.map(jobs) { job in
            job.rows ? Self.rows(rows, job.range, deltas: withDeltas) : Self.groups(groups, job.range)
        }
        let rowParts = jobs.filter(\.rows).count
        return [head.buffer] + parts[..<rowParts] + [ByteBuffer(string: "], \"groups\": [")] + parts[rowParts...] + [ByteBuffer(string: "]}")]
    }

    /// Groups `range` of a scoreboard, each after `, ` but the very first.
    static func groups(_ groups: [ScoreboardGroup], _ range: Range<Int>) -> ByteBuffer {
        var out = JSONBytes(capacity: range.count * (64 + (groups.first?.means.count ?? 0) * 24))
        out.rememberDoubles()
        for k in range {
            let g = groups[k]
            out.raw(k == 0 ? "{\"group\": " : ", {\"group\": ")
            out.string(g.group)
            out.raw(", \"keys\": ")
            out.int(Int64(g.keys))
            guard !g.means.isEmpty else {  // one key: its row's values are the means
                out.raw("}")
                continue
            }
            out.raw(", \"means\": ")
            list(&out, g.means) { $0.exactDouble($1) }
            out.raw(", \"counts\": ")
            list(&out, g.counts.map(Optional.some)) { $0.int(Int64($1)) }
            out.raw("}")
        }
        return out.buffer
    }

    /// Rows `range` of a scoreboard, each after `, ` but the very first.
    static func rows(_ rows: [ScoreboardRow], _ range: Range<Int>, deltas: Bool) -> ByteBuffer {
        var out = JSONBytes(capacity: range.count * (64 + (rows.first?.values.count ?? 0) * (deltas ? 60 : 40)))
        out.rememberDoubles()
        for k in range {
            let row = rows[k]
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
            if deltas {
                out.raw(", \"baseline_deltas\": ")
                list(&out, row.baselineDeltas) { $0.exactDouble($1) }
            }
            out.raw("}")
        }
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
