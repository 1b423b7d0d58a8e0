import Foundation

/// A place in S3: a bucket and a key prefix, from MLflow's URI form `s3://bucket/prefix`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// The bucket.
    public var bucket: String
    /// The key prefix, without leading or trailing `/` (empty for the bucket's root).
    public var prefix: String

    /// A location.
    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// Parses `s3://bucket[/prefix]`; `nil` for any other URI.
    public init?(uri: String) {
        guard uri.lowercased().hasPrefix("s3://") else { return nil }
        let rest = uri.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else { return nil }
        self.init(bucket: String(bucket), prefix: String(rest.dropFirst(bucket.count)))
    }

    /// `s3://bucket/prefix`.
    public var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }

    /// The key of `relative` (a `/`-separated path) under the prefix.
    public func key(_ relative: String) -> String {
        let r = relative.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        if prefix.isEmpty { return r }
        return r.isEmpty ? prefix : prefix + "/" + r
    }

    /// The location of `relative` under this one.
    public func appending(_ relative: String) -> S3Location { S3Location(bucket: bucket, prefix: key(relative)) }
}

/// Where S3 is and how to sign for it, the way MLflow and the AWS tools take it from the environment.
public struct S3Endpoint: Sendable {
    /// `scheme://host[:port]`, no trailing slash.
    public var url: String
    /// The signer (credentials and region).
    public var signer: S3Signer

    /// An endpoint.
    public init(url: String, signer: S3Signer) {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        self.url = u
        self.signer = signer
    }

    /// From the environment: the endpoint from `MLFLOW_S3_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`
    /// (else AWS's `https://s3.REGION.amazonaws.com`); the region from `AWS_REGION` or `AWS_DEFAULT_REGION` (else
    /// `us-east-1`); credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else the
    /// profile `AWS_PROFILE` (else `default`) of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
    /// `~/.aws/credentials`). Requests use path-style addressing (`URL/bucket/key`), which S3-compatible stores and
    /// AWS both accept.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Endpoint {
        func value(_ names: String...) -> String? { names.lazy.compactMap { env[$0] }.first { !$0.isEmpty } }
        let region = value("AWS_REGION", "AWS_DEFAULT_REGION") ?? "us-east-1"
        let url = value("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") ?? "https://s3.\(region).amazonaws.com"
        guard let parts = URLComponents(string: url), ["http", "https"].contains(parts.scheme?.lowercased() ?? ""), parts.host?.isEmpty == false else {
            throw TrackingError(.invalidParameterValue, "S3 endpoint '\(url)' is not an http:// or https:// URL (MLFLOW_S3_ENDPOINT_URL)")
        }
        var key = value("AWS_ACCESS_KEY_ID"), secret = value("AWS_SECRET_ACCESS_KEY"), token = value("AWS_SESSION_TOKEN")
        if key == nil || secret == nil {
            let file = value("AWS_SHARED_CREDENTIALS_FILE") ?? (env["HOME"] ?? NSHomeDirectory()) + "/.aws/credentials"
            let profile = profileValues(file: file, profile: value("AWS_PROFILE") ?? "default")
            key = profile["aws_access_key_id"]
            secret = profile["aws_secret_access_key"]
            token = profile["aws_session_token"]
        }
        guard let key, let secret else {
            throw TrackingError(.invalidParameterValue, "No S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile in ~/.aws/credentials)")
        }
        return S3Endpoint(url: url, signer: S3Signer(accessKey: key, secretKey: secret, sessionToken: token, region: region))
    }

    /// The `key = value` lines of `[profile]` in an AWS credentials file (empty when the file or profile is missing).
    static func profileValues(file: String, profile: String) -> [String: String] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [:] }
        var out: [String: String] = [:]
        var inside = false
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                inside = line == "[\(profile)]"
            } else if inside, let eq = line.firstIndex(of: "="), !line.hasPrefix("#"), !line.hasPrefix(";") {
                out[line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return out
    }
}
