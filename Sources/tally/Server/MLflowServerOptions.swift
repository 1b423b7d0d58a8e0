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

    /// The options given that change nothing here, as given.
    var unused: [String] {
        [workers.map { "--workers \($0)" }, serveArtifacts ? "--serve-artifacts" : nil, gunicornOpts.map { _ in "--gunicorn-opts" },
         uvicornOpts.map { _ in "--uvicorn-opts" }, waitressOpts.map { _ in "--waitress-opts" }, dev ? "--dev" : nil].compactMap { $0 }
    }

    /// Refuses what Tally cannot do: no artifact proxy, or a registry apart from `backendStoreURI` (`nil`: the data
    /// directory's SQLite store).
    func check(backendStoreURI: String?) throws {
        if noServeArtifacts {
            throw ValidationError("--no-serve-artifacts: Tally always serves artifacts through its proxy (mlflow-artifacts:); leave it out "
                                  + "(with --default-artifact-root s3://… clients still write to the bucket directly)")
        }
        if let registry = ServerCommand.mlflow(registryStoreURI, "MLFLOW_REGISTRY_STORE_URI"), registry != backendStoreURI {
            throw ValidationError("--registry-store-uri (or MLFLOW_REGISTRY_STORE_URI): Tally keeps the Model Registry in the backend store; "
                                  + "leave it out, or give the same URI as --backend-store-uri")
        }
    }
}
