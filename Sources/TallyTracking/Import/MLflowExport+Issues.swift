/// Issues, exported with their experiment before its traces: MLflow gives each issue a new id, and a trace's issue
/// references (assessments named after the issue) are sent naming MLflow's.
extension MLflowExport {
    /// Exports the issues of Tally's experiment `e` into MLflow's experiment `target`, oldest first; a source run names
    /// MLflow's id of it (none when the run was not exported). Journaled per issue: unchanged since, skipped; changed,
    /// the one MLflow has is brought up to date (its name, description, status and severity: MLflow changes no more).
    func exportIssues(of e: Experiment, into target: String, service: TrackingService, to destination: any MLflowDestination,
                      journal: inout ImportJournal, summary: inout Summary) throws {
        let all = IssueSearch(experimentID: e.experimentID, filter: IssueFilter(clauses: []), includeTraceCount: false)
        let issues = try service.metadata.issues(all, offset: 0, limit: Int(Int32.max)).sorted { ($0.creationTime, $0.id) < ($1.creationTime, $1.id) }
        for i in issues {
            let key = "issue:" + i.id, fingerprint = MLflowImport.issuesFingerprint([i])
            if journal.done[key] == fingerprint { continue }
            try journal.begin(key)
            if let sent = journal.mapped[key] {
                try destination.updateIssue(id: sent, i)
            } else {
                try journal.map(key, to: try destination.createIssue(i, experimentID: target, sourceRunID: i.sourceRunID.flatMap { journal.mapped[$0] }))
            }
            summary.issues += 1
            try journal.finish(key, fingerprint: fingerprint)
        }
    }

    /// A trace's assessments as MLflow's experiment holds them: issue references name MLflow's id of their issue.
    static func exported(_ assessments: [Assessment], _ journal: ImportJournal) -> [Assessment] {
        assessments.map { a in
            guard a.kind == .issue, let id = journal.mapped["issue:" + a.name] else { return a }
            var sent = a
            sent.name = id
            return sent
        }
    }
}
