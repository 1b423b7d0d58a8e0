import Testing
@testable import TallyTracking

/// NPMI of two trace filters, against the figures a real `mlflow server` 3.17.2 answered for the same counts
/// (`traces/calculate-filter-correlation`), and MLflow's rules for the undefined and the extreme cases.
@Suite struct TraceCorrelationTests {
    @Test func matchesMLflowsFigures() {
        for (joint, f1, f2, total, npmi, smoothed) in [(2, 3, 6, 12, 0.16055842170362494, 0.1295262815095186), (6, 6, 6, 12, 1.0, 0.806823135976049),
                                                       (0, 6, 6, 12, -1.0, -0.5839708046469811), (1, 3, 4, 12, 0.0, 0.021843810029259073),
                                                       (1, 2, 4, 8, 0.0, 2.340859900206977e-16)] {
            let c = TraceFilterCorrelation(joint: joint, filter1: f1, filter2: f2, total: total)
            #expect(c.npmi == npmi && c.npmiSmoothed == smoothed, "\(joint) \(f1) \(f2) \(total): \(c)")
            #expect(c.jointCount == joint && c.filter1Count == f1 && c.filter2Count == f2 && c.totalCount == total)
        }
    }

    @Test func undefinedWithoutSupport() {
        // No population, a filter that matches nothing, counts that do not add up: NaN, smoothed too.
        for (joint, f1, f2, total) in [(0, 0, 0, 0), (0, 0, 6, 12), (0, 6, 0, 12), (5, 3, 6, 12), (0, 8, 8, 12)] {
            let c = TraceFilterCorrelation(joint: joint, filter1: f1, filter2: f2, total: total)
            #expect(c.npmi.isNaN && c.npmiSmoothed.isNaN, "\(joint) \(f1) \(f2) \(total)")
        }
        // Every trace matching both: perfectly associated, however few.
        #expect(TraceFilterCorrelation(joint: 1, filter1: 1, filter2: 1, total: 1).npmi == 1)
    }

    /// The service's counts over stored traces, on both backends: filters the database decides and ones it does not
    /// (a tag pattern), the base filter as the universe, only experiments the caller may read, MLflow's errors.
    @Test(arguments: Backend.all) func countsOverStoredTraces(_ backend: Backend) throws {
        let f = try Fixture("corr", backend: backend)
        let s = f.service
        let other = try s.createExperiment(name: "other")
        for n in 1...12 {
            _ = try s.startTrace(TraceTests.trace(n, time: 1_700_000_000_000 + Int64(n % 4) * 1000, state: n % 3 == 0 ? .error : .ok,
                                                  tags: [KeyValue(key: "team", value: n % 2 == 0 ? "a" : "b")]))
        }
        _ = try s.startTrace(TraceTests.trace(99, experiment: other, state: .error, tags: [KeyValue(key: "team", value: "a")]))
        // Errors: 3, 6, 9, 12; team a: 2, 4, ..., 12; both: 6 and 12.
        let c = try s.traceFilterCorrelation(experimentIDs: ["0"], filter1: "trace.status = 'ERROR'", filter2: "tags.team = 'a'", base: nil)
        #expect(c == TraceFilterCorrelation(joint: 2, filter1: 4, filter2: 6, total: 12))
        let pattern = try s.traceFilterCorrelation(experimentIDs: ["0"], filter1: "trace.status = 'ERROR'", filter2: "tags.team LIKE 'a%'", base: nil)
        #expect(pattern == c)
        // The base filter is the universe: traces after the first second (n % 4 != 0: 9 of them; errors 3, 6, 9; team a
        // 2, 6, 10).
        let based = try s.traceFilterCorrelation(experimentIDs: ["0"], filter1: "trace.status = 'ERROR'", filter2: "tags.team = 'a'",
                                                 base: "trace.timestamp_ms > 1700000000000")
        #expect(based == TraceFilterCorrelation(joint: 1, filter1: 3, filter2: 3, total: 9))
        // Both experiments, then only those the caller may read.
        #expect(try s.traceFilterCorrelation(experimentIDs: ["0", other], filter1: "trace.status = 'ERROR'", filter2: "tags.team = 'a'",
                                             base: nil).totalCount == 13)
        let scoped = try s.traceFilterCorrelation(experimentIDs: ["0", other], filter1: "trace.status = 'ERROR'", filter2: "tags.team = 'a'",
                                                  base: nil, scope: Grants(defaultPermission: .noPermissions, grants: [Grant(resource: .experiment(other), permission: .read)]))
        #expect(scoped == TraceFilterCorrelation(joint: 1, filter1: 1, filter2: 1, total: 1))
        expectError(.invalidParameterValue, "filter_string2") { _ = try s.traceFilterCorrelation(experimentIDs: ["0"], filter1: "tags.a = 'b'", filter2: "", base: nil) }
        expectError(.invalidParameterValue, "Invalid experiment ID") {
            _ = try s.traceFilterCorrelation(experimentIDs: ["x"], filter1: "tags.a = 'b'", filter2: "tags.a = 'c'", base: nil)
        }
        expectError(.invalidParameterValue, "Invalid") { _ = try s.traceFilterCorrelation(experimentIDs: ["0"], filter1: "nope", filter2: "tags.a = 'c'", base: nil) }
    }
}
