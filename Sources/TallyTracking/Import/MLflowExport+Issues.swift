/// Issues, exported with their experiment before its traces: MLflow gives each issue a new id, and a trace's issue
/// references (assessments named after the issue) are sent naming MLflow's.
extension MLflowExport {
    /// Exports the issues of Tally's experiment `e` into MLflow's experiment `target`, oldest first; a source run names
    /// MLflow's id of it (none when the run was not exported). Journaled per issue: unchanged since, skipped; changed,
    /// the one MLflow has is brought up to date (its name, description, status and severity: MLflow changes no more).
    /// An MLflow without issues (404), or whose auth app refuses the caller (403), leaves a warning.
    func exportIssues(of e: Experiment, into target: String, service: TrackingService, to destination: any MLflowDestination,
                      journal: inout ImportJournal, summary: inout Summary) throws {
        let all = IssueSearch(experimentID: e.experimentID, filter: IssueFilter(clauses: []), includeTraceCount: false)
        let issues = try service.metadata.issues(all, offset: 0, limit: Int(Int32.max)).sorted { ($0.creationTime, $0.id) < ($1.creationTime, $1.id) }
        do {
            for i in issues {
                let key = "issue:" + i.id, fingerprint = MLflowImport.issuesFingerprint([i])
                if journal.done[key] == fingerprint { continue }
                // Begun before and never mapped: the create may have landed before the journal could say so.
                let interrupted = journal.begun.contains(key) && journal.mapped[key] == nil
                try journal.begin(key)
                var made = journal.mapped[key]
                if made == nil, interrupted {
                    made = try destination.issueID(experimentID: target, name: i.name, description: i.description)
                    if let made { try journal.map(key, to: made) }
                }
                if let sent = made {
                    try destination.updateIssue(id: sent, i)
                } else {
                    try journal.map(key, to: try destination.createIssue(i, experimentID: target, sourceRunID: i.sourceRunID.flatMap { journal.mapped[$0] }))
                }
                summary.issues += 1
                try journal.finish(key, fingerprint: fingerprint)
            }
        } catch let err as TrackingError where [.resourceDoesNotExist, .permissionDenied].contains(err.code) {
            // An MLflow without issues (404), or whose auth app refuses the caller (403): the traces go without their
            // references (``exported(_:_:)``).
            summary.warnings.append("issues of experiment \(e.experimentID) not exported: \(err.message)")
        }
    }

    /// A trace's assessments as MLflow's experiment holds them: an issue reference names MLflow's id of its issue, and
    /// one whose issue was not exported (MLflow took none, or Tally never had it) is left out.
    static func exported(_ assessments: [Assessment], _ journal: ImportJournal) -> [Assessment] {
        assessments.compactMap { a in
            guard a.kind == .issue else { return a }
            guard let id = journal.mapped["issue:" + a.name] else { return nil }
            var sent = a
            sent.name = id
            return sent
        }
    }
}
