import ArgumentParser

/// `mlflow server`'s options that deployments pass and Tally has no use for, taken so that `tally server` starts from
/// the command line `mlflow server` started from (a Dockerfile's `-h 0.0.0.0 -p 5000 -w 4 --serve-artifacts`):
/// accepted and named in a notice at start when they change nothing here, refused with the reason when Tally cannot do
/// what they ask.
struct MLflowServerOptions: ParsableArguments {
    @Option(name: [.customShort("w"), .customLong("workers")], help: "MLflow's worker processes: accepted, unused (one process serves every request).")
    var workers: String?
    @Flag(name: .customLong("serve-artifacts"), help: "MLflow's artifact proxy switch: accepted, the proxy is always on.")
    var serveArtifacts = false
    @Flag(name: .customLong("no-serve-artifacts"), help: "Refused: the artifact proxy is always on.")
    var noServeArtifacts = false
    @Option(name: .customLong("registry-store-uri"),
            help: "MLflow's Model Registry store (env MLFLOW_REGISTRY_STORE_URI): Tally keeps the registry in the backend store, so only that URI is taken.")
    var registryStoreURI: String?
    @Option(name: .customLong("gunicorn-opts"), parsing: .unconditional, help: "Accepted, unused (MLflow's gunicorn).") var gunicornOpts: String?
    @Option(name: .customLong("uvicorn-opts"), parsing: .unconditional, help: "Accepted, unused (MLflow's uvicorn).") var uvicornOpts: String?
    @Option(name: .customLong("waitress-opts"), parsing: .unconditional, help: "Accepted, unused (MLflow's waitress).") var waitressOpts: String?
    @Flag(name: .customLong("dev"), help: "Accepted, unused (MLflow's debug mode).") var dev = false
    @Option(name: .customLong("read-replica-backend-store-uri"),
            help: "MLflow's read replica (env MLFLOW_READ_REPLICA_BACKEND_STORE_URI): accepted, unused (reads go to the backend store, which never serves stale metadata).")
    var readReplica: String?
    @Option(name: .customLong("trace-archival-config"), help: "Accepted, unused (MLflow's trace archival; Tally stores no traces).") var traceArchival: String?
    @Option(name: .customLong("secrets-cache-ttl"), help: "Accepted, unused (MLflow's AI gateway secrets).") var secretsCacheTTL: String?
    @Option(name: .customLong("secrets-cache-max-size"), help: "Accepted, unused (MLflow's AI gateway secrets).") var secretsCacheMaxSize: String?
    @Option(name: .customLong("workspace-store-uri"), help: "Accepted, unused without workspaces (env MLFLOW_WORKSPACE_STORE_URI).") var workspaceStore: String?
    @Flag(name: .customLong("disable-workspaces"), help: "Accepted: Tally has no workspaces.") var disableWorkspaces = false
    @Flag(name: .customLong("enable-workspaces"), help: "Refused (env MLFLOW_ENABLE_WORKSPACES): Tally has no workspaces (tally import/export --workspace move one at a time).")
    var enableWorkspaces = false
    @Flag(name: .customLong("artifacts-only"), help: "Refused (env MLFLOW_ARTIFACTS_ONLY): Tally serves artifacts beside tracking, not alone.")
    var artifactsOnly = false
    @Option(name: .customLong("expose-prometheus"),
            help: "Serve Prometheus metrics at /metrics (env MLFLOW_EXPOSE_PROMETHEUS): MLflow's request metrics and Tally's own. The directory is created, as MLflow does (it holds its workers' counters; one Tally process keeps them in memory).")
    var exposePrometheus: String?

    /// `--expose-prometheus`'s directory (or its variable's), `nil` when not given.
    var prometheusDirectory: String? { ServerCommand.mlflow(exposePrometheus, "MLFLOW_EXPOSE_PROMETHEUS") }

    /// The options given that change nothing here, as given.
    var unused: [String] {
        [workers.map { "--workers \($0)" }, serveArtifacts ? "--serve-artifacts" : nil, gunicornOpts.map { _ in "--gunicorn-opts" },
         uvicornOpts.map { _ in "--uvicorn-opts" }, waitressOpts.map { _ in "--waitress-opts" }, dev ? "--dev" : nil,
         ServerCommand.mlflow(readReplica, "MLFLOW_READ_REPLICA_BACKEND_STORE_URI").map { _ in "--read-replica-backend-store-uri" },
         traceArchival.map { _ in "--trace-archival-config" }, secretsCacheTTL.map { _ in "--secrets-cache-ttl" },
         secretsCacheMaxSize.map { _ in "--secrets-cache-max-size" }, ServerCommand.mlflow(workspaceStore, "MLFLOW_WORKSPACE_STORE_URI").map { _ in "--workspace-store-uri" },
         disableWorkspaces ? "--disable-workspaces" : nil].compactMap { $0 }
    }

    /// Refuses what Tally cannot do: no artifact proxy, a registry apart from `backendStoreURI` (`nil`: the data
    /// directory's SQLite store), workspaces, an artifacts-only server.
    func check(backendStoreURI: String?) throws {
        if noServeArtifacts {
            throw ValidationError("--no-serve-artifacts: Tally always serves artifacts through its proxy (mlflow-artifacts:); leave it out "
                                  + "(with --default-artifact-root s3://… clients still write to the bucket directly)")
        }
        // As MLflow's command reads it: the variable counts unless --disable-workspaces is given.
        if enableWorkspaces || (!disableWorkspaces && ServerCommand.flag("MLFLOW_ENABLE_WORKSPACES")) {
            throw ValidationError("--enable-workspaces (or MLFLOW_ENABLE_WORKSPACES): Tally has no workspaces; every experiment and model is in "
                                  + "one space (use --auth basic and per-experiment permissions to keep teams apart; tally import mlflow "
                                  + "--workspace brings one MLflow workspace at a time)")
        }
        if let workspace = ServerCommand.mlflow(nil, "MLFLOW_WORKSPACE") {
            throw ValidationError("MLFLOW_WORKSPACE=\(workspace) is client-only. Unset it before starting the server.")
        }
        if artifactsOnly || ServerCommand.flag("MLFLOW_ARTIFACTS_ONLY") {
            throw ValidationError("--artifacts-only (or MLFLOW_ARTIFACTS_ONLY): Tally serves the artifact proxy beside tracking, not alone; "
                                  + "run tally server without it (clients reach both at one URL)")
        }
        if prometheusDirectory?.isEmpty == true { throw ValidationError("--expose-prometheus needs a directory") }
        if let registry = ServerCommand.mlflow(registryStoreURI, "MLFLOW_REGISTRY_STORE_URI"), registry != backendStoreURI {
            throw ValidationError("--registry-store-uri (or MLFLOW_REGISTRY_STORE_URI): Tally keeps the Model Registry in the backend store; "
                                  + "leave it out, or give the same URI as --backend-store-uri")
        }
    }
}
