import Foundation
import TallyStore

/// Where `tally import mlflow` reads a team's MLflow history: MLflow's SQL database (``MLflowSQLSource``, in this
/// module) or a running MLflow server's REST API (in TallyServer, which speaks MLflow's JSON). The importer asks
/// for the same entities either way, in the same vocabulary, so what it writes cannot depend on the source kind.
public protocol MLflowSource: AnyObject {
    /// Where the data comes from, for messages: a database path, a URI or URL without its password.
    var location: String { get }
    /// What names this source in the import journal's file name (stable across runs of the same import).
    var journalName: String { get }
    /// What the summary and the journal record of the source's generation: MLflow's alembic revision for a
    /// database, the server's version for a URL.
    var provenance: String { get }
    /// Ends the connection.
    func close()
    /// How many times a text read so far held NUL characters, which Tally's stores refuse (PostgreSQL cannot hold
    /// them, and no request may carry one), each read counted (a text read twice counts twice): each such text is
    /// read with its NULs as U+FFFD (``ImportText/storable(_:)``).
    var textsWithNUL: Int { get }

    /// The MLflow workspace this source reads (``MLflowWorkspace/defaultName`` for an MLflow without workspaces):
    /// experiments, the registry, evaluation datasets and webhooks are that workspace's, and what belongs to them
    /// (runs, models, traces, …) follows.
    var workspace: String { get }
    /// The source's other workspaces (those this caller may see), each with what it holds: none for an MLflow
    /// without workspaces.
    func otherWorkspaces() throws -> [SourceWorkspace]
    /// Every experiment with its tags (deleted ones included), by id.
    func experiments() throws -> [Experiment]
    /// The runs of an experiment started at or after `since` (ms), by start time then id, deleted ones included,
    /// with the source's own artifact URIs.
    func runs(experimentID: String, since: Int64?) throws -> [RunInfo]
    /// When a deleted run was deleted (MLflow's `deleted_time`, which `gc --older-than` counts from); `nil` where the
    /// source does not say (MLflow's REST API shows no such field).
    func deletedTime(runID: String) throws -> Int64?
    /// A run's tags.
    func tags(runID: String) throws -> [KeyValue]
    /// A run's params.
    func params(runID: String) throws -> [KeyValue]
    /// A run's dataset inputs with their tags.
    func inputs(runID: String) throws -> [DatasetInput]
    /// The models a run logged (MLflow 3), in the order recorded.
    func runOutputs(runID: String) throws -> [ModelOutput]
    /// The models a run used (`log_inputs(models=…)`, MLflow 3), in the order recorded.
    func runModelInputs(runID: String) throws -> [ModelInput]
    /// Every metric point of a run: a series per key, its points by step and, within a step, in the order MLflow's
    /// `get-history` lists them (timestamp, then the stored value), values exactly as MLflow holds them.
    func metrics(runID: String) throws -> [SeriesBatch]
    /// Metric points of a run, counted (dry runs).
    func metricCount(runID: String) throws -> Int
    /// What changes when MLflow logs more to a run (status, end time, stage, name, counts or latest values): a run
    /// imported with one fingerprint and found with another is imported again.
    func fingerprint(_ run: RunInfo) throws -> String
    /// The logged models of an experiment (MLflow 3) with tags, params and metrics.
    func loggedModels(experimentID: String) throws -> [LoggedModel]
    /// Every registered model with tags and aliases, and its versions numbered as MLflow numbers them: a number
    /// MLflow has deleted is there as a deleted version (stage `Deleted_Internal`), so numbering continues the same.
    func registeredModels() throws -> [(model: RegisteredModel, versions: [ModelVersion])]
    /// Where the artifacts at `uri` (a run's or logged model's artifact root, `owner` naming it) can be read;
    /// `artifactsFrom` is the MLflow server's artifact root on this machine, when given.
    func artifacts(_ uri: String, owner: ArtifactOwner, artifactsFrom: String?) -> SourceArtifacts
    /// The registry webhooks (MLflow 3.3+; none from an older MLflow), each with its secret when the source can
    /// give it, and why there are none when the source would not list them (`nil` otherwise).
    func webhooks() throws -> (hooks: [SourceWebhook], note: String?)
    /// The traces of an experiment (MLflow 3; none from an older MLflow), oldest first, each with its tags, metadata
    /// and assessments as MLflow's API shows them (ids and times kept).
    func traces(experimentID: String) throws -> [TraceInfo]
    /// A trace's spans as `traces.json`, when the source gives them apart from the trace's artifacts (a database:
    /// those MLflow's tracking store keeps, tag `mlflow.trace.spansLocation` = `TRACKING_STORE`; a server: any);
    /// `nil` otherwise (they are then a file among the trace's artifacts, or there are none).
    func traceSpans(_ t: TraceInfo) throws -> [UInt8]?
    /// The evaluation datasets (MLflow 3; none from an older MLflow), oldest first, each with its experiments and its
    /// records (ids, times and hashes kept).
    func evaluationDatasets() throws -> [SourceDataset]
    /// An experiment's registered scorers (MLflow 3; none from an older MLflow): every version each has left, and
    /// their online-scoring settings (ids and times kept).
    func scorers(experimentID: String) throws -> (versions: [ScorerVersion], configs: [OnlineScoringConfig])
    /// An experiment's label schemas and review queues with their items (MLflow 3.14 and later; none from an older
    /// MLflow), ids and times kept.
    func review(experimentID: String) throws -> SourceReview
    /// An experiment's issues (recent MLflow 3 releases; none from an MLflow without them), oldest first, ids and times kept.
    /// The traces they touch come with the traces, as issue-reference assessments.
    func issues(experimentID: String) throws -> [TraceIssue]
}

/// An experiment's human review as a source gives it (``MLflowSource/review(experimentID:)``).
public struct SourceReview: Sendable, Equatable {
    /// Its label schemas, the default question among them when the source made it.
    public var schemas: [LabelSchema]
    /// Its review queues, with their reviewers and questions.
    public var queues: [ReviewQueue]
    /// The queues' items.
    public var items: [ReviewQueueItem]

    /// An experiment's review.
    public init(schemas: [LabelSchema] = [], queues: [ReviewQueue] = [], items: [ReviewQueueItem] = []) {
        self.schemas = schemas
        self.queues = queues
        self.items = items
    }
}

/// An evaluation dataset as a source gives it: the dataset, the experiments it is linked to, its records.
public struct SourceDataset: Sendable {
    /// The dataset, with its tags.
    public var dataset: EvaluationDataset
    /// The experiments it is linked to (the source's ids).
    public var experimentIDs: [String]
    /// Its records, oldest first.
    public var records: [DatasetRecord]

    /// A dataset of the source.
    public init(dataset: EvaluationDataset, experimentIDs: [String], records: [DatasetRecord]) {
        self.dataset = dataset
        self.experimentIDs = experimentIDs
        self.records = records
    }
}

/// A webhook as a source gives it: its fields (no sealed secret) and, apart, its secret in the clear, or why not.
public struct SourceWebhook: Sendable {
    /// The webhook, ids and times as the source has them.
    public var hook: Webhook
    /// Its signing secret; `nil` when it has none or it cannot be read (``secretNote`` says which).
    public var secret: String?
    /// Why a secret the webhook has could not be read, for the import's warnings.
    public var secretNote: String?

    /// A webhook of the source.
    public init(hook: Webhook, secret: String?, secretNote: String?) {
        self.hook = hook
        self.secret = secret
        self.secretNote = secretNote
    }
}

/// Whose artifacts an artifact root holds.
public enum ArtifactOwner: Sendable, Equatable, CustomStringConvertible {
    /// A run's, by id.
    case run(String)
    /// A logged model's, by id.
    case model(String)
    /// A trace's (its spans, `traces.json`, and attachments), by id.
    case trace(String)

    /// `run <id>`, `logged model <id>` or `trace <id>`, for warnings.
    public var description: String {
        switch self {
        case .run(let id): "run \(id)"
        case .model(let id): "logged model \(id)"
        case .trace(let id): "trace \(id)"
        }
    }
}

/// Where a source's artifacts can be read.
public enum SourceArtifacts {
    /// In this tree.
    case tree(any ArtifactTree)
    /// There are none (MLflow creates a run's directory with its first artifact).
    case none
    /// Somewhere the import cannot read, and why.
    case unreachable(String)
}

/// A tree of artifact files the import copies.
public protocol ArtifactTree {
    /// Calls `body` with each regular file (path relative to the root, size), depth first, in name order; returns
    /// what it could not take (unlistable directories, links), one line each.
    func walk(_ body: (String, Int) throws -> Void) throws -> [String]
    /// Calls `body` with the bytes of the file at `path`, in chunks.
    func read(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// Artifacts in a directory on this machine.
public struct LocalArtifactTree: ArtifactTree {
    /// The root directory.
    public let root: String

    /// The tree under `root`.
    public init(root: String) { self.root = root }

    public func walk(_ body: (String, Int) throws -> Void) throws -> [String] {
        try TrackingService.walkFiles(root, body)
    }

    public func read(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try Self.readFile(root + "/" + path, body)
    }

    /// Calls `body` with a file's bytes in chunks of 1 MiB.
    public static func readFile(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot read artifact \(path): errno \(errno)") }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw TrackingError(.internalError, "Cannot read artifact \(path): errno \(errno)") }
            if n == 0 { return }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }
}

extension MLflowSource {
    /// None: the source does not say.
    public func deletedTime(runID: String) throws -> Int64? { nil }

    /// Artifacts on this machine: `mlflow-artifacts:/<path>` under `artifactsFrom` (the MLflow server's
    /// `--artifacts-destination`), `file://` URIs and absolute paths as they are.
    public func localArtifacts(_ uri: String, artifactsFrom: String?) -> SourceArtifacts {
        TrackingService.sourceArtifacts(uri, artifactsFrom: artifactsFrom)
    }
}

extension MLflowImport {
    /// `url` with anything between `//` and an `@` replaced by `***`: what messages may quote of a URL that could
    /// hold a password, parsable or not.
    public static func withoutCredentials(_ url: String) -> String {
        guard let scheme = url.range(of: "//"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + "***" + String(url[at...])
    }

    /// A trace's tags, metadata, assessments (id, update time, validity) and run and prompt links as lines, the part of its journal
    /// fingerprint the import and the export share: a trace whose lines changed is sent again.
    static func traceLines(_ t: TraceInfo) -> [String] {
        t.tags.map { "t\u{1}" + $0.key + "\u{1}" + $0.value } + t.metadata.map { "m\u{1}" + $0.key + "\u{1}" + $0.value }
            + t.assessments.map { "a\u{1}" + $0.id + "\u{1}\($0.lastUpdateTime)\u{1}\($0.valid)" }
            + t.linkedRuns.map { "r\u{1}" + $0 } + t.linkedPrompts.map { "p\u{1}" + $0 }  // none: the digest links had before
    }

    /// An evaluation dataset's journal fingerprint, which the import and the export share: its update time and record
    /// count, then a digest of its fields, tags, experiments and records (each record's id, update time and contents).
    static func datasetFingerprint(_ d: EvaluationDataset, experiments: [String], records: [DatasetRecord]) -> String {
        let lines = d.tags.map { "t\u{1}\($0.key)\u{1}\($0.value ?? "\u{0}")" } + experiments.map { "e\u{1}" + $0 }
            + records.map { "r\u{1}\($0.id)\u{1}\($0.lastUpdateTime)\u{1}\($0.inputs.pythonDumps())\u{1}\($0.outputs?.pythonDumps() ?? "")"
                + "\u{1}\($0.expectations?.pythonDumps() ?? "")\u{1}\($0.tags.pythonDumps())" }
        return "\(d.lastUpdateTime),\(records.count)," + digest(([d.name, d.schema ?? "", d.profile ?? "", d.digest] + lines).joined(separator: "\u{2}"))
    }

    /// A stable 64-bit digest of `text` (FNV-1a), hex: journal names and fingerprints that must read the same in
    /// every process (Swift's `Hasher` is seeded per process).
    public static func digest(_ text: String) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return String(h, radix: 16)
    }
}

/// Text from an MLflow source made storable: MLflow on SQLite keeps NUL characters, which Tally refuses everywhere.
public enum ImportText {
    /// `s` with each NUL as U+FFFD, and whether it had any.
    public static func storable(_ s: String) -> (text: String, hadNUL: Bool) {
        guard s.utf8.contains(0) else { return (s, false) }
        return (String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : $0 })), true)
    }

    /// The import's warning when `reads` (``MLflowSource/textsWithNUL``) is not 0.
    public static func warning(_ reads: Int) -> String? {
        reads == 0 ? nil : "texts of the source held NUL characters, which Tally cannot store: imported with each NUL as U+FFFD"
    }
}
