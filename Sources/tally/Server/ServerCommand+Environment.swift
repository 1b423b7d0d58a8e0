import ArgumentParser
import Foundation
import TallyTracking

/// `mlflow server`'s environment variables: an option not given on the command line falls back on MLflow's variable
/// for it (click's `envvar`), then on the default.
extension ServerCommand {
    /// The environment MLflow's server options fall back on (`mlflow server` reads them through click's `envvar`).
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// An option given on the command line, else MLflow's environment variable for it when set and not empty (as
    /// click takes one), else `nil`.
    static func mlflow(_ option: String?, _ variable: String) -> String? {
        option ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A flag's environment variable read as click reads one: `true`/`1`/`yes`/`on` (any case) is set, `false`/`0`/
    /// `no`/`off` and unset or empty are not; anything else is refused (``validate()``).
    static func flag(_ variable: String) -> Bool { flagValue(variable) == true }

    /// ``flag(_:)``'s reading, `nil` for a value click would refuse.
    static func flagValue(_ variable: String) -> Bool? {
        guard let text = mlflow(nil, variable) else { return false }
        switch text.lowercased() {
        case "1", "true", "t", "yes", "y", "on": return true
        case "0", "false", "f", "no", "n", "off": return false
        default: return nil
        }
    }

    /// `--cluster-secret`, else `TALLY_CLUSTER_SECRET` (what a cluster's server, and an offline command on its
    /// database, take), else `nil`.
    static func clusterSecret(_ option: String?) -> String? { option ?? environment["TALLY_CLUSTER_SECRET"] }

    /// Where to listen: `--host`, `MLFLOW_HOST`, 127.0.0.1.
    var host: String { Self.mlflow(hostOption, "MLFLOW_HOST") ?? "127.0.0.1" }
    /// `--port`, `MLFLOW_PORT` (checked by ``validate()``), 5000.
    var port: Int { portOption ?? Self.mlflow(nil, "MLFLOW_PORT").flatMap { Int($0) } ?? 5000 }
    /// `--backend-store-uri`, `MLFLOW_BACKEND_STORE_URI`, or the embedded SQLite store (`nil`).
    var backendStoreURI: String? { Self.mlflow(backendStoreOption, "MLFLOW_BACKEND_STORE_URI") }
    /// `--default-artifact-root`, `MLFLOW_DEFAULT_ARTIFACT_ROOT`, `mlflow-artifacts:`.
    var defaultArtifactRoot: String { Self.mlflow(defaultArtifactRootOption, "MLFLOW_DEFAULT_ARTIFACT_ROOT") ?? "mlflow-artifacts:" }
    /// `--artifacts-destination`, `MLFLOW_ARTIFACTS_DESTINATION`, or the data directory's `artifacts` (`nil`).
    var artifactsDestination: String? { Self.mlflow(artifactsDestinationOption, "MLFLOW_ARTIFACTS_DESTINATION") }

    /// `MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS` (checked by ``validate()``), else MLflow's 300.
    var presignedDownloadSeconds: Int {
        Self.environment["MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"].flatMap { Int($0) } ?? ArtifactStore.defaultDownloadURLSeconds
    }

    /// `--static-prefix`, `MLFLOW_STATIC_PREFIX`, or none (`nil`).
    var staticPrefix: String? { Self.mlflow(staticPrefixOption, "MLFLOW_STATIC_PREFIX") }

    /// Refuses an `MLFLOW_PORT` that is not a port when it is what sets the port.
    func validate() throws {
        for variable in ["MLFLOW_ARTIFACTS_ONLY", "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", "MLFLOW_ENABLE_WORKSPACES"] where Self.flagValue(variable) == nil {
            throw ValidationError("\(variable) is '\(Self.environment[variable] ?? "")': true or false")
        }
        if let text = Self.environment["MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"],
           Int(text).map(ArtifactStore.presignedLifetimes.contains) != true {
            let lifetimes = ArtifactStore.presignedLifetimes
            throw ValidationError("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS is '\(text)': seconds from \(lifetimes.lowerBound) to \(lifetimes.upperBound) (S3's 7 days)")
        }
        if portOption == nil, let text = Self.mlflow(nil, "MLFLOW_PORT"), Int(text).map({ (0...65535).contains($0) }) != true {
            throw ValidationError("MLFLOW_PORT is '\(text)': a port number (0-65535), or unset for the default 5000")
        }
    }
}
