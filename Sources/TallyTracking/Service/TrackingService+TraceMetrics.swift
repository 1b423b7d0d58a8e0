extension TrackingService {
    /// `traces/metrics` (MLflow's `QueryTraceMetrics`): one metric of some experiments' traces, spans or assessments,
    /// aggregated per time bucket and dimension, with MLflow's checks in its order (the metric and what it takes, the
    /// time range a bucket needs, the experiment ids, then each filter). The caller checks that the experiments may
    /// be read. MLflow answers every group in one page; so does Tally (no page token).
    public func queryTraceMetrics(_ q: TraceMetricsQuery) throws -> [TraceMetricPoint] {
        try q.validate()
        let experiments = try Self.searchedExperimentIDs(q.experimentIDs)
        // Tally's own bound (MLflow has none): the ids are values of one statement, which has a limit of them.
        let distinct = Set(experiments).count
        guard distinct <= TraceMetricsQuery.maxExperiments else {
            throw TrackingError.invalid("At most \(TraceMetricsQuery.maxExperiments) experiments may be queried at once, got \(distinct)")
        }
        let filters = try q.filters.map { f -> TraceMetricsFilter in
            let parsed = try TraceMetricsFilter(parsing: f)
            try parsed.check(q.view)
            return parsed
        }
        let cost = q.view == .spans && TraceMetricsQuery.costMetrics.contains(q.metricName)
        var spanTime: (start: Int64?, end: Int64?, empty: Bool) = (nil, nil, false)
        if cost {  // a span's cost is placed by the span's start, in nanoseconds; the end's millisecond is whole
            if let s = q.startTimeMs {
                let (ns, o) = s.multipliedReportingOverflow(by: 1_000_000)
                if o { spanTime.empty = s > 0 } else { spanTime.start = ns }
            }
            if let e = q.endTimeMs {
                let (ns, o) = e.multipliedReportingOverflow(by: 1_000_000), (end, o2) = ns.addingReportingOverflow(1_000_000)
                if o || o2 { spanTime.empty = spanTime.empty || e < 0 } else { spanTime.end = end }
            }
        }
        let interval = q.timeIntervalSeconds ?? 0
        let selection = TraceMetricsSelection(query: q, experimentIDs: experiments, filters: filters,
                                              traceTime: cost ? (nil, nil) : (q.startTimeMs, q.endTimeMs), spanTime: spanTime,
                                              bucketMs: interval > 0 ? interval * 1000 : nil)
        return TraceMetricsRenderer(query: q).points(try metadata.traceMetricGroups(selection))
    }
}
