import NIOCore
import TallyStore
import TallyTracking

/// The body of `POST /api/tally/v1/compare`:
/// `{"run_ids": […], "models": ["name@alias", "name/3"], "metric_keys": […], "start_step": a, "end_step": b, "buckets": 1000, "mode": "m4",
///   "max_points": 100000, "format": "json"}`. `mode` is `m4` (default), `mean`, `lttb` or `raw` (with `max_points`,
/// default 100,000); `format` is `json` (default) or `binary`.
struct CompareRequest {
    var query: CompareQuery
    var binary: Bool

    init(_ r: MLflowRequest) throws {
        let runIDs = try r.strings("run_ids")
        let keys = try r.strings("metric_keys")
        let steps = try StepWindow.range(start: try r.int64("start_step"), end: try r.int64("end_step"))
        let buckets = Int(clamping: try r.int64("buckets") ?? Int64(CompareQuery.defaultBuckets))
        let mode: CompareMode
        switch try r.string("mode") ?? "m4" {
        case "m4": mode = .m4
        case "mean": mode = .mean
        case "lttb": mode = .lttb
        case "raw": mode = .raw(cap: Int(clamping: try r.int64("max_points") ?? Int64(CompareQuery.defaultRawCap)))
        case let m: throw TrackingError(.invalidParameterValue, "mode must be m4, mean, lttb or raw (got '\(m)')")
        }
        switch try r.string("format") ?? "json" {
        case "json": binary = false
        case "binary": binary = true
        case let f: throw TrackingError(.invalidParameterValue, "format must be json or binary (got '\(f)')")
        }
        let align: Bool
        switch r.raw("align") {
        case nil: align = true
        case .bool(let b)?: align = b
        case let v?: throw MLflowRequest.invalid("align", v)
        }
        query = CompareQuery(runIDs: runIDs, keys: keys, steps: steps, buckets: buckets, mode: mode, align: align)
        query.models = try r.strings("models")
    }
}

/// Writes a compare answer as JSON, or as the compact binary form for the UI (layout in `docs/api.md`):
/// `"TLYR"` · version u8 = 1 · 3 reserved bytes · JSON length u32 · the JSON without the curves · zero padding to 8 ·
/// then per series, in the JSON's order: steps as float64 × points, values as float32 × points, padding to 8.
enum CompareRendering {
    static func render(_ r: CompareResult, binary: Bool) -> (body: ByteBuffer, contentType: String) {
        var out = JSONBytes(capacity: 4096 + r.series.reduce(0) { $0 + $1.steps.count * (binary ? 12 : 40) })
        if binary {
            out.raw("TLYR\u{01}\u{00}\u{00}\u{00}")  // magic, version 1, reserved
            out.raw("\u{00}\u{00}\u{00}\u{00}")  // JSON length, patched below
        }
        let jsonStart = out.length
        json(&out, r, curves: !binary)
        guard binary else { return (out.buffer, "application/json") }
        out.patch(UInt32(out.length - jsonStart), at: 8)
        out.pad(to: 8)
        for s in r.series {
            s.steps.map(Double.init).withUnsafeBytes { out.bytes($0) }
            s.values.map { Float($0) }.withUnsafeBytes { out.bytes($0) }
            out.pad(to: 8)
        }
        return (out.buffer, "application/x-tally-compare")
    }

    static func mode(_ m: CompareMode) -> StaticString {
        switch m {
        case .m4: "m4"
        case .mean: "mean"
        case .lttb: "lttb"
        case .raw: "raw"
        }
    }

    static func json(_ out: inout JSONBytes, _ r: CompareResult, curves: Bool) {
        out.raw("{\"mode\": \"")
        out.raw(mode(r.mode))
        out.raw("\", \"buckets\": ")
        out.int(Int64(r.buckets))
        if let w = r.steps {
            out.raw(", \"start_step\": ")
            out.int(w.lowerBound)
            out.raw(", \"end_step\": ")
            out.int(w.upperBound)
        }
        out.raw(", \"runs\": ")
        Render.runSummaries(&out, r.runs)
        out.raw(", \"series\": [")
        for (i, s) in r.series.enumerated() {
            if i > 0 { out.raw(", ") }
            out.raw("{\"run_id\": ")
            out.string(s.runID)
            out.raw(", \"key\": ")
            out.string(s.key)
            out.raw(", \"summary\": ")
            summary(&out, s.summary)
            out.raw(", \"points\": ")
            out.int(Int64(s.steps.count))
            out.raw(s.truncated ? ", \"truncated\": true" : ", \"truncated\": false")
            if curves {
                out.raw(", \"steps\": [")
                for (k, v) in s.steps.enumerated() {
                    if k > 0 { out.raw(", ") }
                    out.int(v)
                }
                out.raw("], \"values\": [")
                for (k, v) in s.values.enumerated() {
                    if k > 0 { out.raw(", ") }
                    out.exactDouble(v)
                }
                out.raw("]")
            }
            out.raw("}")
        }
        out.raw("], \"params\": ")
        differences(&out, r.params)
        out.raw(", \"tags\": ")
        differences(&out, r.tags)
        out.raw("}")
    }

    static func summary(_ out: inout JSONBytes, _ s: SeriesSummary) {
        out.raw("{\"count\": ")
        out.int(Int64(s.count))
        out.raw(", \"nan_count\": ")
        out.int(Int64(s.nanCount))
        out.raw(", \"pos_inf_count\": ")
        out.int(Int64(s.posInfCount))
        out.raw(", \"neg_inf_count\": ")
        out.int(Int64(s.negInfCount))
        out.raw(", \"sum\": ")
        out.exactDouble(s.sum)
        if let m = s.mean {
            out.raw(", \"mean\": ")
            out.exactDouble(m)
        }
        for (name, p) in [("first", s.first), ("last", s.last), ("min", s.min), ("max", s.max)] {
            guard let p else { continue }
            out.raw(", ")
            out.string(name)
            out.raw(": {\"step\": ")
            out.int(p.step)
            out.raw(", \"value\": ")
            out.exactDouble(p.value)
            out.raw("}")
        }
        out.raw("}")
    }

    static func differences(_ out: inout JSONBytes, _ ds: [CompareDifference]) {
        out.raw("[")
        for (i, d) in ds.enumerated() {
            if i > 0 { out.raw(", ") }
            out.raw("{\"key\": ")
            out.string(d.key)
            out.raw(", \"values\": [")
            for (k, v) in d.values.enumerated() {
                if k > 0 { out.raw(", ") }
                if let v { out.string(v) } else { out.raw("null") }
            }
            out.raw("]}")
        }
        out.raw("]")
    }
}
