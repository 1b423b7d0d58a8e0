extension TrackingService {
    /// Imports an experiment's issues (MLflow 3) into `experiment`: ids, fields and times kept, so the issue-reference
    /// assessments its traces bring (named after the ids) still name them. Journaled per experiment: a rerun skips
    /// an experiment whose issues MLflow has not changed since, and otherwise replaces each issue it brings.
    func importIssues(of source: Experiment, into experiment: Experiment, from db: any MLflowSource, journal: inout ImportJournal,
                      summary: inout MLflowImport.Summary, dryRun: Bool) throws {
        let found = try db.issues(experimentID: source.experimentID)
        guard !found.isEmpty else { return }
        let key = "issues:" + source.experimentID, fingerprint = MLflowImport.issuesFingerprint(found)
        if journal.done[key] == fingerprint { return }
        let issues = found.map { i in
            var i = i
            i.experimentID = experiment.experimentID
            i.traceCount = nil
            return i
        }
        summary.issues += issues.count
        if dryRun { return }
        try journal.begin(key)
        try metadata.importIssues(issues)
        try metadata.checkpoint()
        try journal.finish(key, fingerprint: fingerprint)
    }
}

extension MLflowImport {
    /// What an experiment's issues are, for the journal: every field of each, in order.
    static func issuesFingerprint(_ issues: [TraceIssue]) -> String {
        digest(issues.map { i in
            [i.id, i.name, i.description, i.status.rawValue, i.severity?.rawValue ?? "\u{0}", i.rootCauses.joined(separator: "\u{3}"),
             i.sourceRunID ?? "\u{0}", i.categories.joined(separator: "\u{3}"), i.createdBy ?? "\u{0}", "\(i.creationTime)",
             "\(i.lastUpdateTime)"].joined(separator: "\u{1}")
        }.joined(separator: "\u{2}"))
    }
}
