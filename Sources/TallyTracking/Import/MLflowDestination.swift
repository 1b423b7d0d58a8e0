import TallyStore

/// Where `tally export mlflow` writes: a running MLflow server, through its REST API (TallyServer's client). The
/// exporter decides what to send and in which order; a destination only speaks MLflow's API.
public protocol MLflowDestination: AnyObject {
    /// The server's URL (without credentials), for messages and the journal's name.
    var location: String { get }
    /// The MLflow workspace written (``MLflowWorkspace/defaultName`` for a server without workspaces); the journal's
    /// name includes it when it is another.
    var workspace: String { get }
    /// The experiment named `name` (its id and stage), or `nil`.
    func experiment(named name: String) throws -> (id: String, stage: LifecycleStage)?
    /// The stage of experiment `id`, or `nil` when there is none.
    func experimentStage(id: String) throws -> LifecycleStage?
    /// Creates an experiment (the server chooses its id and artifact location).
    func createExperiment(name: String, tags: [KeyValue]) throws -> String
    /// Sets an experiment tag.
    func setExperimentTag(id: String, _ tag: KeyValue) throws
    /// Deletes (`deleted: true`) or restores an experiment.
    func setExperimentDeleted(id: String, _ deleted: Bool) throws
    /// Creates a run (the server chooses its id) with the tag `marker`: its id and artifact URI.
    func createRun(experimentID: String, userID: String, startTime: Int64, runName: String, marker: KeyValue) throws -> (id: String, artifactURI: String)
    /// Deletes a run tag (one that is not there is no error).
    func deleteRunTag(id: String, key: String) throws
    /// The runs of an experiment (any stage) tagged `marker`: their ids and artifact URIs (a run an interrupted
    /// export created without journaling it is found this way).
    func findRuns(experimentID: String, marker: KeyValue) throws -> [(id: String, artifactURI: String)]
    /// The logged models of an experiment with this name: ids, source runs and artifact locations.
    func findLoggedModels(experimentID: String, name: String) throws -> [(id: String, sourceRunID: String, artifactURI: String)]
    /// The artifact URI of an existing run (a resumed export's).
    func runArtifactURI(id: String) throws -> String
    /// Logs up to MLflow's limits per request: 1,000 metrics, 100 params, 100 tags. Logging a point, param or tag
    /// again is harmless (MLflow skips a metric row it holds; a param must have the same value).
    func logBatch(runID: String, metrics: [Metric], params: [KeyValue], tags: [KeyValue]) throws
    /// Logs dataset inputs (MLflow skips those the run has).
    func logInputs(runID: String, _ inputs: [DatasetInput]) throws
    /// Sets a run's status and end time.
    func updateRun(id: String, status: RunStatus, endTime: Int64?) throws
    /// Deletes (`deleted: true`) or restores a run.
    func setRunDeleted(id: String, _ deleted: Bool) throws
    /// Uploads the local file `file` (`size` bytes) as `path` under a run's artifact root `artifactURI`; `false`
    /// when the server does not take artifacts at that root (not `mlflow-artifacts:`).
    func uploadArtifact(artifactURI: String, path: String, file: String, size: Int) throws -> Bool
    /// Ends the connection.
    func close()

    /// Creates a logged model (MLflow gives its id and artifact location), pending.
    func createLoggedModel(experimentID: String, name: String, modelType: String, sourceRunID: String, params: [KeyValue],
                           tags: [KeyValue]) throws -> (id: String, artifactURI: String)
    /// The artifact location of an existing logged model (a resumed export's).
    func loggedModelArtifactURI(id: String) throws -> String
    /// Sets a logged model's status (`PATCH`, MLflow's finalize).
    func finalizeLoggedModel(id: String, _ status: LoggedModelStatus) throws
    /// Logs metrics of model `modelID` through run `runID` (MLflow records them for both; points the run holds are
    /// skipped there).
    func logModelMetrics(runID: String, modelID: String, _ metrics: [ModelMetric]) throws
    /// The models a run has logged, as MLflow holds them.
    func runOutputs(runID: String) throws -> [ModelOutput]
    /// Records models a run logged.
    func logRunOutputs(runID: String, _ outputs: [ModelOutput]) throws
    /// Records models a run used (MLflow keeps each once, so sending one again is harmless).
    func logRunModelInputs(runID: String, _ inputs: [ModelInput]) throws
    /// Whether MLflow has a registered model of this name.
    func hasRegisteredModel(_ name: String) throws -> Bool
    /// Whether MLflow shows version `version` of a model (a deleted one it does not).
    func versionExists(name: String, version: Int64) throws -> Bool
    /// Creates a registered model; `false` when MLflow has one of that name.
    func createRegisteredModel(_ model: RegisteredModel) throws -> Bool
    /// Creates the model's next version; its number.
    func createModelVersion(_ version: ModelVersion) throws -> Int64
    /// Deletes a version (its number stays taken; one already deleted is no error).
    func deleteModelVersion(name: String, version: Int64) throws
    /// Moves a version to one of MLflow's deprecated stages.
    func transitionStage(name: String, version: Int64, stage: String) throws
    /// Points an alias at a version.
    func setAlias(name: String, alias: String, version: Int64) throws
    /// Whether MLflow has a webhook with this name and URL (one an interrupted export made).
    func webhookExists(name: String, url: String) throws -> Bool
    /// Creates a webhook (MLflow gives its id) with its secret in the clear, as MLflow's API takes it.
    func createWebhook(_ hook: Webhook, secret: String?) throws
    /// Stores a trace's info with its assessments (ids and times kept; MLflow updates one it has) in experiment
    /// `experimentID`: the artifact location MLflow gives it, where its spans go.
    func startTrace(_ trace: TraceInfo, experimentID: String) throws -> String
    /// Links traces to a run (`traces/link-to-run`).
    func linkTraces(_ ids: [String], toRun runID: String) throws
    /// Links prompt versions (``PromptLink``) to a trace (`traces/link-prompts`).
    func linkPrompts(_ prompts: [String], toTrace traceID: String) throws
    /// Creates an evaluation dataset (MLflow gives its id, times and digest) linked to experiments; its id.
    func createDataset(name: String, tags: [DatasetTag], experimentIDs: [String]) throws -> String
    /// Adds records to a dataset (MLflow gives their ids and times).
    func upsertDatasetRecords(id: String, _ records: [DatasetRecord]) throws
    /// Deletes a dataset (none there is no error).
    func deleteDataset(id: String) throws
    /// The datasets whose tag `marker` has this value (MLflow's search: `tags.<marker> = '…'`).
    func datasets(marked marker: KeyValue) throws -> [String]
    /// Deletes a dataset's tag.
    func deleteDatasetTag(id: String, key: String) throws
    /// Whether the experiment has a registered scorer of this name.
    func scorerExists(experimentID: String, name: String) throws -> Bool
    /// Registers a version of the experiment's scorer `name` (MLflow numbers it: one more than the highest it has).
    func registerScorer(experimentID: String, name: String, serialized: String) throws
    /// Deletes the experiment's scorer `name` with every version (none there is no error).
    func deleteScorer(experimentID: String, name: String) throws
    /// Sets the scorer's online-scoring settings.
    func setOnlineScoringConfig(experimentID: String, name: String, _ config: OnlineScoringConfig) throws
    /// The id of the experiment's label schema of this name, or `nil`.
    func labelSchemaID(experimentID: String, name: String) throws -> String?
    /// The id of the experiment's default question (MLflow makes it when the experiment's questions are first listed).
    func defaultLabelSchemaID(experimentID: String) throws -> String?
    /// Creates a label schema (MLflow gives its id and times); its id.
    func createLabelSchema(_ schema: LabelSchema, experimentID: String) throws -> String
    /// Deletes a label schema (none there is no error).
    func deleteLabelSchema(id: String) throws
    /// The id of the experiment's review queue of this name (in any case), or `nil`.
    func reviewQueueID(experimentID: String, name: String) throws -> String?
    /// Creates a custom review queue with its reviewers and questions (MLflow gives its id and times); its id.
    func createReviewQueue(_ queue: ReviewQueue, experimentID: String, schemaIDs: [String]) throws -> String
    /// The user's own queue, made when missing; its id.
    func userReviewQueue(experimentID: String, user: String) throws -> String
    /// Gives a custom queue an owner.
    func setReviewQueueOwner(id: String, owner: String) throws
    /// Deletes a review queue with its items (none there is no error).
    func deleteReviewQueue(id: String) throws
    /// Adds traces to a queue (pending).
    func addReviewItems(queueID: String, itemIDs: [String]) throws
    /// Sets an item's status, by `completedBy` (MLflow's auth app puts its caller there instead).
    func setReviewItemStatus(queueID: String, itemID: String, status: ReviewStatus, completedBy: String?) throws
    /// Creates an issue (MLflow gives its id and times; `sourceRunID` is MLflow's id of the run); its id.
    func createIssue(_ issue: TraceIssue, experimentID: String, sourceRunID: String?) throws -> String
    /// Brings an issue MLflow has up to date: its name, description, status and severity.
    func updateIssue(id: String, _ issue: TraceIssue) throws
    /// The id of the experiment's issue of this name and description, or `nil`.
    func issueID(experimentID: String, name: String, description: String) throws -> String?
}
