/// Traces, exported after an experiment's runs and models: a trace's `mlflow.sourceRun` then names its run by the id
/// MLflow gave it.
extension MLflowExport {
    /// Exports an experiment's traces: each info with its tags, metadata and assessments (ids and times kept), then
    /// its artifacts (`traces.json`, attachments) to the location MLflow gives it. Journaled per trace; one finished
    /// before is skipped, one begun is sent again (MLflow updates a trace it has).
    func exportTraces(of experiment: Experiment, into target: String, service: TrackingService, to destination: any MLflowDestination,
                      journal: inout ImportJournal, summary: inout Summary, progress: (MLflowImport.Progress) -> Void) throws {
        let traces = try service.metadata.traces(experimentIDs: [Int64(experiment.experimentID) ?? -1], parts: .whole,
                                                     matching: SearchFilter(parsing: nil, kind: .traces))
            .sorted { ($0.requestTime, $0.traceID) < ($1.requestTime, $1.traceID) }
        for t in traces {
            let key = "trace:" + t.traceID
            let lines = MLflowImport.traceLines(t) + t.linkedRuns.map { "r\u{1}" + $0 }
            let fingerprint = MLflowImport.digest(lines.sorted().joined(separator: "\u{2}") + "\u{2}\(t.state.rawValue)")
            if journal.done[key] == fingerprint { continue }
            try journal.begin(key)
            var sent = t
            sent.tags = t.tags.filter { $0.key != TraceKeys.artifactLocation && $0.key != TraceKeys.spansLocation }
            sent.metadata = t.metadata.filter { $0.key != TraceKeys.infoFinalized }.map {
                $0.key == TraceKeys.sourceRun ? KeyValue(key: $0.key, value: journal.mapped[$0.value] ?? $0.value) : $0
            }
            let location = try destination.startTrace(sent, experimentID: target)
            summary.traces += 1
            try exportArtifacts(from: TrackingService.traceArtifactsURI(t.traceID, in: experiment), to: location, owner: "trace \(t.traceID)",
                                service: service, destination: destination, summary: &summary, progress: progress)
            for run in t.linkedRuns {
                guard let mapped = journal.mapped[run] else { continue }  // a run not exported: nothing to link to
                try destination.linkTraces([t.traceID], toRun: mapped)
            }
            try journal.finish(key, fingerprint: fingerprint)
        }
    }
}
