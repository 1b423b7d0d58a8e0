import Foundation
import TallyStore

/// `tally import mlflow`: copies a team's MLflow history (experiments, runs, params, tags, inputs, every metric point
/// bit-exact, artifacts byte for byte) into a Tally data directory no server is using. Ids are kept (experiments
/// where the id is free), MLflow's Default experiment merges into Tally's, nothing is added that MLflow did not hold.
///
/// Idempotent and resumable: a journal in the data directory (`imports/<source>.journal`) records the experiments'
/// ids and each run begun and finished (with a fingerprint of the source run: counts of points, params and tags,
/// status, end time, stage). A rerun skips finished runs that have not changed, redoes a run it began or one MLflow
/// has logged more to (its points are dropped and written again; params, tags, inputs and latest values are
/// upserts), and imports runs that appeared since.
public struct MLflowImport: Sendable {
    /// What to import and how.
    public struct Options: Sendable {
        /// The MLflow server's artifact root (its `--artifacts-destination`), where `mlflow-artifacts:` URIs point.
        public var artifactsFrom: String?
        /// Experiments to import, by name or id (`nil`: all).
        public var experiments: [String]?
        /// Only runs started at or after this time (ms since the epoch).
        public var since: Int64?
        /// Count what would be imported; write nothing.
        public var dryRun = false

        /// The defaults: everything, written.
        public init() {}
    }

    /// Counts of one import (or of what a dry run would import).
    public struct Summary: Sendable, Equatable {
        /// Experiments created (merged ones are not counted).
        public var experiments = 0
        /// Runs imported.
        public var runs = 0
        /// Runs already imported by an earlier run of the same import, unchanged since.
        public var runsAlreadyImported = 0
        /// Runs imported before that MLflow has logged more to since (points, params, tags, status): imported again.
        public var runsUpdated = 0
        /// Runs skipped because a run with the same id, not imported from this source, exists in the target.
        public var runsSkipped = 0
        /// Params written.
        public var params = 0
        /// Run tags written.
        public var tags = 0
        /// Dataset inputs written.
        public var inputs = 0
        /// Metric points written.
        public var points = 0
        /// Logged models (MLflow 3) imported.
        public var loggedModels = 0
        /// Logged models imported before that MLflow changed since (status, tags, params, metrics): brought up to date.
        public var loggedModelsUpdated = 0
        /// Registered models imported.
        public var registeredModels = 0
        /// Registered models imported before that MLflow changed since (versions, aliases, tags): imported again.
        public var registeredModelsUpdated = 0
        /// Their versions.
        public var modelVersions = 0
        /// Registry webhooks imported or brought up to date.
        public var webhooks = 0
        /// Evaluation datasets (MLflow 3) imported or brought up to date.
        public var datasets = 0
        /// Their records.
        public var datasetRecords = 0
        /// Registered scorers (MLflow 3) imported or brought up to date.
        public var scorers = 0
        /// Their versions.
        public var scorerVersions = 0
        /// Label schemas (MLflow 3) imported or brought up to date.
        public var labelSchemas = 0
        /// Review queues (MLflow 3) imported or brought up to date.
        public var reviewQueues = 0
        /// Their items.
        public var reviewItems = 0
        /// Issues (MLflow 3) imported or brought up to date.
        public var issues = 0
        /// Traces (MLflow 3) imported.
        public var traces = 0
        /// Traces imported before that MLflow changed since (state, tags, metadata, assessments): brought up to date.
        public var tracesUpdated = 0
        /// Artifact files copied.
        public var artifactFiles = 0
        /// Artifact bytes copied.
        public var artifactBytes = 0
        /// Warnings (artifacts not found, experiments merged by name): one line each.
        public var warnings: [String] = []
        /// Where the data came from (the database's path, or its URI without the password) and MLflow's schema
        /// revision there: the provenance the import records instead of tags of its own.
        public var source = ""
    }

    /// A phase's progress: what is being counted, done so far, and the total when known.
    public struct Progress: Sendable {
        /// `runs`, `points` or `artifacts` (bytes).
        public var phase: String
        /// Done so far.
        public var done: Int
        /// The total, when known.
        public var total: Int?
    }

    let options: Options

    /// An import with `options`.
    public init(_ options: Options) { self.options = options }

    /// Opens the source a backend-store URI names: `sqlite:///path` (or a plain path), or PostgreSQL
    /// (`postgresql://`, `postgres://`, `postgresql+psycopg2://`). (A server's URL is TallyServer's REST source.)
    /// `workspace` is the MLflow workspace read (an error names those the database has when it lacks it).
    public static func openSQLSource(_ uri: String, workspace: String = MLflowWorkspace.defaultName) throws -> any MLflowSource {
        try MLflowWorkspace.validate(workspace)
        if PostgresURI.schemes.contains(where: { uri.hasPrefix($0 + "://") }) {
            return try MLflowSQLSource(postgres: try PostgresURI(parsing: uri), workspace: workspace)
        }
        if uri.hasPrefix("sqlite:///") { return try MLflowSQLSource(sqlitePath: String(uri.dropFirst("sqlite:///".count)), workspace: workspace) }
        if uri.contains("://") {
            throw TrackingError.invalid("Unsupported import source '\(Self.withoutCredentials(uri))': use sqlite:///path/to/mlflow.db, "
                                        + "postgresql://user:password@host:port/database or http(s)://mlflow-server")
        }
        return try MLflowSQLSource(sqlitePath: uri, workspace: workspace)
    }

    /// Runs the import from `source` into `service` (whose stores the caller opened on the data directory, taking
    /// its lock); `journalDirectory` holds the journal; `progress` is called as runs, points and artifacts are copied.
    public func run(from source: any MLflowSource, into service: TrackingService, journalDirectory: String,
                    progress: (Progress) -> Void = { _ in }) throws -> Summary {
        var journal = try ImportJournal(directory: journalDirectory, source: source.journalName, dryRun: options.dryRun)
        var summary = Summary()
        let experiments = try selectedExperiments(source)
        var plan: [(Experiment, [RunInfo])] = []
        for e in experiments { plan.append((e, try source.runs(experimentID: e.experimentID, since: options.since))) }
        let totalRuns = plan.reduce(0) { $0 + $1.1.count }
        var runsDone = 0
        var mapped: [String: String] = [:]
        for (e, runs) in plan {
            let target = try service.importExperiment(e, journal: &journal, summary: &summary, dryRun: options.dryRun)
            mapped[e.experimentID] = target.experimentID
            for r in runs {
                try service.importRun(r, into: target, from: source, artifactsFrom: options.artifactsFrom, journal: &journal,
                                      summary: &summary, dryRun: options.dryRun, progress: progress)
                runsDone += 1
                progress(Progress(phase: "runs", done: runsDone, total: totalRuns))
            }
            try service.importLoggedModels(of: e, into: target, from: source, artifactsFrom: options.artifactsFrom, journal: &journal,
                                           summary: &summary, dryRun: options.dryRun, progress: progress)
            try service.importTraces(of: e, into: target, from: source, artifactsFrom: options.artifactsFrom, journal: &journal,
                                     summary: &summary, dryRun: options.dryRun, progress: progress)
            try service.importScorers(of: e, into: target, from: source, journal: &journal, summary: &summary, dryRun: options.dryRun)
            try service.importReview(of: e, into: target, from: source, journal: &journal, summary: &summary, dryRun: options.dryRun)
            try service.importIssues(of: e, into: target, from: source, journal: &journal, summary: &summary, dryRun: options.dryRun)
        }
        // The registry is global: imported whole when every experiment is, with sources following renumbered ones.
        if options.experiments == nil && options.since == nil {
            try service.importRegistry(from: source, experiments: mapped, journal: &journal, summary: &summary, dryRun: options.dryRun)
            try service.importWebhooks(from: source, journal: &journal, summary: &summary, dryRun: options.dryRun)
            try service.importEvaluationDatasets(from: source, experiments: mapped, journal: &journal, summary: &summary, dryRun: options.dryRun)
        }
        if let w = ImportText.warning(source.textsWithNUL) { summary.warnings.append(w) }
        // Counting the other workspaces is a courtesy: an import already written is not failed by it.
        do {
            summary.warnings += MLflowWorkspace.leftBehind(try source.otherWorkspaces(), command: "import")
        } catch {
            summary.warnings.append("could not count \(source.location)'s other MLflow workspaces: \(error)")
        }
        summary.source = MLflowWorkspace.described(source.location, source.workspace) + " (" + source.provenance + ")"
        if !options.dryRun {
            try journal.record("imported \(TrackingService.nowMillis()) runs=\(summary.runs) updated=\(summary.runsUpdated) "
                               + "points=\(summary.points) artifact_bytes=\(summary.artifactBytes) warnings=\(summary.warnings.count) "
                               + "from=\(source.provenance.replacingOccurrences(of: " ", with: "_"))")
        }
        return summary
    }

    /// The source's experiments `--experiments` names (by name or id; all without it); an unknown one is an error.
    func selectedExperiments(_ source: any MLflowSource) throws -> [Experiment] {
        try Self.select(options.experiments, from: try source.experiments(), in: MLflowWorkspace.described(source.location, source.workspace))
    }

    /// The experiments of `all` that `wanted` names, by id or else by name, in its order (`nil`: all); an unknown
    /// one is an error naming `location`. What `--experiments` means to import and export alike.
    static func select(_ wanted: [String]?, from all: [Experiment], in location: String) throws -> [Experiment] {
        guard let wanted else { return all }
        return try wanted.map { w in
            guard let e = all.first(where: { $0.experimentID == w }) ?? all.first(where: { $0.name == w }) else {
                throw TrackingError.invalid("No experiment '\(w)' (by id or name) in \(location)")
            }
            return e
        }
    }
}
