import ArgumentParser
import TallyServer
import TallyTracking

/// `mlflow server`'s security options (MLflow 3.5's security middleware), each falling back on MLflow's environment
/// variable for it: which `Host` headers are answered, which origins may write across sites, `X-Frame-Options`, or
/// none of it. The rules are ``BrowserSecurity``'s.
struct BrowserSecurityOptions: ParsableArguments {
    @Option(name: .customLong("allowed-hosts"),
            help: "Host headers answered, comma-separated, patterns with * (env MLFLOW_SERVER_ALLOWED_HOSTS; default: localhost, loopback and private addresses and --host; * allows any).")
    var allowedHosts: String?
    @Option(name: .customLong("cors-allowed-origins"),
            help: "Origins allowed to call the API across sites, comma-separated, patterns with * (env MLFLOW_SERVER_CORS_ALLOWED_ORIGINS; default: localhost only; * allows any, without credentials).")
    var corsAllowedOrigins: String?
    @Option(name: .customLong("x-frame-options"), help: "X-Frame-Options of every answer: SAMEORIGIN, DENY or NONE (env MLFLOW_SERVER_X_FRAME_OPTIONS; default SAMEORIGIN).")
    var xFrameOptions: String?
    @Flag(name: .customLong("disable-security-middleware"),
          help: "Turn off the Host, cross-origin and header defences (env MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE): any web page its users open can then write here.")
    var disableSecurityMiddleware = false

    /// The defences these options and the environment ask for; `nil` when turned off.
    func security() throws -> BrowserSecurity? {
        if disabled() { return nil }
        do {
            return try BrowserSecurity(allowedHosts: ServerCommand.mlflow(allowedHosts, "MLFLOW_SERVER_ALLOWED_HOSTS"),
                                       allowedOrigins: ServerCommand.mlflow(corsAllowedOrigins, "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"),
                                       frameOptions: ServerCommand.mlflow(xFrameOptions, "MLFLOW_SERVER_X_FRAME_OPTIONS") ?? "SAMEORIGIN")
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// `--disable-security-middleware`, else its variable read as click reads a flag's (``ServerCommand/flag(_:)``;
    /// a value it would refuse is refused by ``ServerCommand/validate()``).
    func disabled() -> Bool {
        disableSecurityMiddleware || ServerCommand.flag("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE")
    }
}
