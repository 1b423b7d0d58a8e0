import TallyStore

/// Where `tally export mlflow` writes: a running MLflow server, through its REST API (TallyServer's client). The
/// exporter decides what to send and in which order; a destination only speaks MLflow's API.
public protocol MLflowDestination: AnyObject {
    /// The server's URL (without credentials), for messages and the journal's name.
    var location: String { get }
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
    /// Creates a run (the server chooses its id): its id and artifact URI.
    func createRun(experimentID: String, userID: String, startTime: Int64, runName: String) throws -> (id: String, artifactURI: String)
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
}
