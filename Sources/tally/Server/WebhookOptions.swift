import ArgumentParser
import Foundation
import TallyTracking

/// Where registry webhooks may deliver: MLflow's `MLFLOW_WEBHOOK_*` variables, each also a flag (``WebhookPolicy``).
struct WebhookOptions: ParsableArguments {
    @Option(name: .customLong("webhook-allowed-schemes"),
            help: "URL schemes webhooks may use, comma-separated (env MLFLOW_WEBHOOK_ALLOWED_SCHEMES; default https).")
    var allowedSchemes: String?
    @Flag(name: .customLong("webhook-allow-private-ips"),
          help: "Let webhooks deliver to loopback, private and link-local addresses (env MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS).")
    var allowPrivateIPs = false
    @Option(name: .customLong("webhook-timeout"), help: "Seconds a webhook delivery may take (env MLFLOW_WEBHOOK_REQUEST_TIMEOUT; default 30).")
    var timeout: String?
    @Option(name: .customLong("webhook-retries"),
            help: "Retries of a delivery answered 429 or 5xx or not answered (env MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES; default 3).")
    var retries: String?

    /// The policy these options and the environment ask for.
    func policy() throws -> WebhookPolicy {
        var p = WebhookPolicy()
        if let s = ServerCommand.mlflow(allowedSchemes, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES") {
            p.schemes = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
            guard !p.schemes.isEmpty, p.schemes.allSatisfy({ $0 == "http" || $0 == "https" }) else {
                throw ValidationError("webhook schemes are '\(s)': http and/or https")
            }
        }
        guard let allow = ServerCommand.flagValue("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS") else {
            throw ValidationError("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS is '\(ServerCommand.environment["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] ?? "")': true or false")
        }
        p.allowPrivateAddresses = allowPrivateIPs || allow
        if let t = ServerCommand.mlflow(timeout, "MLFLOW_WEBHOOK_REQUEST_TIMEOUT") {
            guard let n = Int64(t), (1...3600).contains(n) else { throw ValidationError("the webhook timeout is '\(t)': seconds, 1 to 3600") }
            p.timeoutSeconds = n
        }
        if let r = ServerCommand.mlflow(retries, "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES") {
            guard let n = Int(r), (0...10).contains(n) else { throw ValidationError("the webhook retries are '\(r)': 0 to 10") }
            p.retries = n
        }
        return p
    }
}
