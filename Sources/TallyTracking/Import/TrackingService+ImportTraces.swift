import TallyStore

extension TrackingService {
    /// Imports an experiment's traces (MLflow 3): each trace's info with its tags, metadata and assessments (ids and
    /// times kept) in one statement set, then its artifacts (`traces.json`, attachments) copied under the target
    /// experiment's `traces/<id>/artifacts`, and the spans the source gives (MLflow's tracking store's, or any its API
    /// serves) stored in the span table, as spans sent over OTLP are. Journaled per trace: a rerun skips a trace MLflow
    /// has not changed since (nor its run and prompt links), and brings a changed one up to date (tags, metadata and
    /// state replaced, new assessments added). A trace id Tally already holds (not from this import) is left alone.
    func importTraces(of source: Experiment, into experiment: Experiment, from db: any MLflowSource, artifactsFrom: String?,
                      journal: inout ImportJournal, summary: inout MLflowImport.Summary, dryRun: Bool,
                      progress: (MLflowImport.Progress) -> Void) throws {
        for t in try db.traces(experimentID: source.experimentID) {
            let key = "trace:" + t.traceID
            let values = MLflowImport.traceLines(t)  // links too: one made in MLflow since is brought
            let fingerprint = "\(t.state.rawValue),\(t.executionDuration ?? -1),\(t.tags.count),\(t.metadata.count),\(t.assessments.count),"
                + MLflowImport.digest(values.sorted().joined(separator: "\u{2}"))
            let before = journal.done[key]
            if before == fingerprint { continue }
            if before == nil, !journal.begun.contains(key), try !metadata.traces(ids: [t.traceID]).isEmpty {
                summary.warnings.append("trace \(t.traceID) skipped: a trace with this id already exists in the target")
                continue
            }
            if before == nil { summary.traces += 1 } else { summary.tracesUpdated += 1 }
            if dryRun { continue }
            try journal.begin(key)
            let stored = storedTrace(t, in: experiment)
            // One MLflow changed since: replaced whole (tags, metadata, assessments as MLflow has them now).
            if before != nil { _ = try metadata.deleteTraces(experimentID: Int64(experiment.experimentID) ?? -1, ids: [t.traceID], maxTime: nil, limit: nil) }
            guard try metadata.insertTrace(stored) else {
                summary.warnings.append("trace \(t.traceID) skipped: a trace with this id exists in another experiment of the target")
                continue
            }
            let target = Self.traceArtifactsURI(t.traceID, in: experiment)
            if let from = t.tag(TraceKeys.artifactLocation),
               let tree = Self.sourceArtifactTree(db, from, owner: .trace(t.traceID), artifactsFrom: artifactsFrom, summary: &summary) {
                try copyArtifacts(from: tree, toRunURI: target, owner: .trace(t.traceID), summary: &summary, progress: progress)
            }
            if let spans = try db.traceSpans(t), try !importSpans(spans, of: t.traceID) {
                try writeTraceSpans(spans, to: target, trace: t.traceID, summary: &summary)  // not MLflow's span dicts: kept as they are
            }
            try metadata.checkpoint()
            try journal.finish(key, fingerprint: fingerprint)
        }
    }

    /// Stores the spans of a source's `traces.json` in the span table, as OTLP's are kept (searchable, read with
    /// `traces/get`); `false` when the file is not a list of MLflow's span dicts.
    func importSpans(_ data: [UInt8], of traceID: String) throws -> Bool {
        guard case .array(let items)? = (try? JSONParser.parse(data))?["spans"] else { return false }
        let spans = items.compactMap { StoredSpan(traceID: traceID, dict: $0) }
        guard spans.count == items.count else { return false }
        return try metadata.insertSpans(traceID: traceID, spans)
    }

    /// Writes a trace's `traces.json` under its artifact root in Tally's store.
    func writeTraceSpans(_ bytes: [UInt8], to uri: String, trace: String, summary: inout MLflowImport.Summary) throws {
        guard let root = Self.proxiedRoot(of: uri) else {
            summary.warnings.append("trace \(trace): spans not copied: its artifact root \(uri) is not served by Tally (mlflow-artifacts:)")
            return
        }
        let upload = try proxiedStore().upload(root + "/traces.json")
        do {
            try bytes.withUnsafeBytes { try upload.write($0) }
            try upload.finish()
        } catch {
            upload.abort()
            throw error
        }
        summary.artifactFiles += 1
        summary.artifactBytes += bytes.count
    }
}
