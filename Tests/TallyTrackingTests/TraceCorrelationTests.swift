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
}
