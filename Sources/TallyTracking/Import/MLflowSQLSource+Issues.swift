/// MLflow 3's issues, read from the same database (none where the schema predates them).
extension MLflowSQLSource {
    func issues(experimentID: String) throws -> [TraceIssue] {
        guard has("issues"), let e = Int64(experimentID) else { return [] }
        var out: [TraceIssue] = []
        // The columns in IssueSQL's order; MLflow writes the lists as `json.dumps` does, as Tally keeps them.
        try query("""
            SELECT issue_id, name, description, status, severity, root_causes, source_run_id, categories, created_by, created_timestamp, \
            last_updated_timestamp FROM issues WHERE experiment_id = ? ORDER BY created_timestamp, issue_id
            """, [.integer(e)]) { r in
            out.append(try IssueSQL.issue([r[0], .text(experimentID), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]]))
        }
        return out
    }
}
