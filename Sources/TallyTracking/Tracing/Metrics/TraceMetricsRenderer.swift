import Foundation
import TallyStore

/// Orders and renders the groups the store aggregated (``TraceMetricsStore``), as MLflow's `query_metrics` answers
/// them: groups ordered by time bucket, then by each dimension (bytes); `max_results` counts groups; without buckets or
/// dimensions there is one group even when nothing was selected (a count of 0), as an SQL aggregate without
/// `GROUP BY` answers; an aggregation whose group had no values is left out, and a group with none left is too.
struct TraceMetricsRenderer {
    let query: TraceMetricsQuery

    func points(_ stored: [TraceMetricsGroup]) -> [TraceMetricPoint] {
        var groups = stored
        if let i = query.dimensions.firstIndex(of: "assessment_value") { groups = Self.assessmentValues(groups, at: i) }
        if query.timeIntervalSeconds ?? 0 == 0 && query.dimensions.isEmpty && groups.isEmpty {
            groups = [TraceMetricsGroup(bucket: nil, dimensions: [], values: query.aggregations.map { $0.kind == .count ? 0 : nil })]
        }
        let ordered = groups.sorted { a, b in
            if a.bucket != b.bucket { return (a.bucket ?? 0) < (b.bucket ?? 0) }
            for (x, y) in zip(a.dimensions, b.dimensions) {
                let c = KeyOrder.compare(x ?? "", y ?? "")  // bytes, as SQL grouped them
                if c != 0 { return c < 0 }
            }
            return false
        }
        var out: [TraceMetricPoint] = []
        for g in ordered.prefix(Int(clamping: query.maxResults)) {
            let results = zip(query.aggregations, g.values).compactMap { a, v in v.map { (label: a.label, value: $0) } }
            guard !results.isEmpty else { continue }
            var dims = g.bucket.map { [KeyValue(key: "time_bucket", value: Self.isoTime($0))] } ?? []
            dims += zip(query.dimensions, g.dimensions).map { KeyValue(key: $0, value: $1 ?? "") }
            out.append(TraceMetricPoint(metricName: query.metricName, dimensions: dims, values: results))
        }
        return out
    }

    /// Groups by an assessment's stored value made groups by its dimension text (``AssessmentAggregate/dimension(_:)``):
    /// values written alike there (`7` and `7.0`) are one group, their counts added (a count is the one aggregation
    /// this dimension takes).
    static func assessmentValues(_ groups: [TraceMetricsGroup], at i: Int) -> [TraceMetricsGroup] {
        struct Key: Hashable {
            let bucket: Int64?
            let dimensions: [ExactKey?]  // by bytes, as SQL grouped them
        }
        var merged: [TraceMetricsGroup] = [], index: [Key: Int] = [:]
        for var g in groups {
            g.dimensions[i] = AssessmentAggregate.dimension(g.dimensions[i])
            let key = Key(bucket: g.bucket, dimensions: g.dimensions.map { $0.map(ExactKey.init) })
            if let at = index[key] {
                merged[at].values = zip(merged[at].values, g.values).map { a, b in a.flatMap { x in b.map { x + $0 } } ?? a ?? b }
            } else {
                index[key] = merged.count
                merged.append(g)
            }
        }
        return merged
    }

    /// Linear interpolation between the closest ranks (numpy's default, PostgreSQL's `percentile_cont`, MLflow's
    /// SQLite aggregate).
    static func percentile(_ sorted: [Double], fraction: Double) -> Double {
        let index = fraction * Double(sorted.count - 1)
        let lower = Int(index), upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (index - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    /// A bucket's start as Python's `datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()` writes it.
    static func isoTime(_ ms: Int64) -> String {
        let f = CivilDate.fields(ms: ms), pad = CivilDate.pad
        var s = pad(f.year, 4) + "-" + pad(f.month, 2) + "-" + pad(f.day, 2) + "T" + pad(f.hour, 2) + ":" + pad(f.minute, 2) + ":" + pad(f.second, 2)
        if f.milli != 0 { s += "." + pad(f.milli * 1000, 6) }
        return s + "+00:00"
    }
}
