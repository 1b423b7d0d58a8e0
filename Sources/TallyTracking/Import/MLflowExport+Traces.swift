import Foundation

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
            let kept = try service.keptTraceData(traceID: t.traceID)  // spans sent over OTLP, kept in the metadata store
            let sentAssessments = Self.exported(t.assessments, journal)
            // The issue references as sent (by MLflow's ids of their issues): one whose issue is exported later is sent then.
            let references = sentAssessments.filter { $0.kind == .issue }.map { "i\u{1}" + $0.name }
            let lines = MLflowImport.traceLines(t) + (kept.map { ["s\u{1}" + MLflowImport.digest($0)] } ?? []) + references
            let fingerprint = MLflowImport.digest(lines.sorted().joined(separator: "\u{2}") + "\u{2}\(t.state.rawValue)")
            if journal.done[key] == fingerprint { continue }
            try journal.begin(key)
            var sent = t
            sent.assessments = sentAssessments
            sent.tags = t.tags.filter { $0.key != TraceKeys.artifactLocation && $0.key != TraceKeys.spansLocation }
            sent.metadata = t.metadata.filter { $0.key != TraceKeys.infoFinalized }.map {
                $0.key == TraceKeys.sourceRun ? KeyValue(key: $0.key, value: journal.mapped[$0.value] ?? $0.value) : $0
            }
            let location = try destination.startTrace(sent, experimentID: target)
            summary.traces += 1
            try exportArtifacts(from: TrackingService.traceArtifactsURI(t.traceID, in: experiment), to: location, owner: "trace \(t.traceID)",
                                service: service, destination: destination, summary: &summary, progress: progress)
            if let kept { try exportKeptSpans(kept, of: t.traceID, to: location, destination: destination, summary: &summary) }
            for run in t.linkedRuns {
                guard let mapped = journal.mapped[run] else { continue }  // a run not exported: nothing to link to
                try destination.linkTraces([t.traceID], toRun: mapped)
            }
            if !t.linkedPrompts.isEmpty { try destination.linkPrompts(t.linkedPrompts, toTrace: t.traceID) }
            try journal.finish(key, fingerprint: fingerprint)
        }
    }

    /// Writes spans Tally keeps in its metadata store as the trace's `traces.json` at the location MLflow gave it
    /// (replacing one the client also wrote there), where MLflow's client reads a trace without
    /// `mlflow.trace.spansLocation`.
    func exportKeptSpans(_ data: String, of traceID: String, to location: String, destination: any MLflowDestination,
                         summary: inout Summary) throws {
        let file = NSTemporaryDirectory() + "/tally-export-\(traceID)-\(UUID().uuidString).json"
        let bytes = Array(data.utf8)
        guard FileManager.default.createFile(atPath: file, contents: Data(bytes)) else {
            throw TrackingError(.internalError, "cannot write \(file) for trace \(traceID)'s spans")
        }
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard try destination.uploadArtifact(artifactURI: location, path: TrackingService.traceDataFile, file: file, size: bytes.count) else {
            summary.warnings.append("trace \(traceID): spans not exported: MLflow's artifact root \(location) is not served by its proxy (mlflow-artifacts:)")
            return
        }
        summary.artifactFiles += 1
        summary.artifactBytes += bytes.count
    }
}
