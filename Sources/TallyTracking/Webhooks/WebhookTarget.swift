import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where webhooks may deliver (MLflow's `MLFLOW_WEBHOOK_ALLOWED_SCHEMES` and `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS`, as
/// `tally server` flags): by default `https` only, and only to hosts whose every address is public, so a registry
/// writer cannot make the server post to its own network (cloud metadata at 169.254.169.254, a database on 10/8).
public struct WebhookPolicy: Sendable {
    /// URL schemes a webhook may use.
    public var schemes: [String] = ["https"]
    /// Whether loopback, private, link-local and other non-public addresses are allowed.
    public var allowPrivateAddresses = false
    /// Seconds a delivery's request may take (MLflow's `MLFLOW_WEBHOOK_REQUEST_TIMEOUT`).
    public var timeoutSeconds: Int64 = 30
    /// Retries of a delivery answered 429 or 5xx, or not answered (MLflow's `MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES`).
    public var retries = 3

    /// MLflow's defaults.
    public init() {}
}

/// A webhook URL taken apart and checked, with the address a delivery connects to.
struct WebhookTarget {
    let url: URL
    let host: String
    /// The address the host resolved to when checked: deliveries connect to it, so a DNS answer that changes after
    /// the check (rebinding) cannot send them elsewhere.
    var address: String?

    /// The URL without its credentials: what is requested.
    var plainURL: String {
        guard url.user != nil || url.password != nil, var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url.absoluteString }
        c.user = nil
        c.password = nil
        return c.string ?? url.absoluteString
    }

    /// A URL as messages show it: scheme, host and port (`https://hooks.example.com:443`), never credentials, a path
    /// or a query, where receivers put their tokens; `<a URL>` for what does not parse.
    static func origin(of text: String) -> String {
        guard let c = URLComponents(string: text), let scheme = c.scheme, let host = c.host, !host.isEmpty else { return "<a URL>" }
        return "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)" + (c.port.map { ":\($0)" } ?? "")
    }

    /// `Basic …` from the URL's credentials, when it has them.
    var basicAuthorization: String? {
        guard let user = url.user(percentEncoded: false) else { return nil }
        return "Basic " + Data((user + ":" + (url.password(percentEncoded: false) ?? "")).utf8).base64EncodedString()
    }

    /// Python's `repr` of a string, as MLflow's messages quote URLs.
    static func repr(_ s: String) -> String { PythonRepr.string(s) }

    /// Checks `text` as MLflow does when a webhook is saved: not blank, a scheme `policy` allows, a host.
    static func parse(_ text: String, policy: WebhookPolicy) throws -> (URL, String) {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw TrackingError.invalid("Webhook URL cannot be empty or just whitespace: \(repr(text))")
        }
        guard text.utf8.count <= 500 else { throw TrackingError.invalid("Webhook URL must be at most 500 characters, got \(text.utf8.count).") }
        let scheme = text.firstIndex(of: ":").map { String(text[..<$0]).lowercased() } ?? ""
        guard policy.schemes.contains(scheme) else {
            throw TrackingError.invalid("Invalid webhook URL scheme: \(repr(scheme)). Allowed schemes are: \(policy.schemes.joined(separator: ", ")).")
        }
        guard let url = URL(string: text), let host = url.host, !host.isEmpty else {
            throw TrackingError.invalid("Webhook URL must include a hostname: \(repr(text))")
        }
        return (url, host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host)
    }

    /// A URL checked for saving and, unless `policy` allows private addresses, resolved: every address must be
    /// public (MLflow's rule), and the first is kept to connect to.
    static func check(_ text: String, policy: WebhookPolicy) throws -> WebhookTarget {
        let (url, host) = try parse(text, policy: policy)
        guard !policy.allowPrivateAddresses else { return WebhookTarget(url: url, host: host, address: nil) }
        if looksNumeric(host), IPAddress(host) == nil {
            throw TrackingError.invalid("Webhook URL host \(repr(host)) is not a canonical IP address literal.")
        }
        let addresses = try resolve(host)
        for a in addresses where !a.isGlobal {
            throw TrackingError.invalid("Webhook URL must not resolve to a non-public IP address. \(repr(host)) resolves to \(a.text).")
        }
        return WebhookTarget(url: url, host: host, address: addresses.first?.text)
    }

    /// Hosts dialled as address literals without a lookup (MLflow's heuristic: digits and dots, or anything with
    /// `:`): they must be canonical (`127.1` is refused). Other spellings a resolver reads as numbers (`0x7f.1`) are
    /// resolved like names, their address checked and pinned.
    static func looksNumeric(_ host: String) -> Bool {
        host.contains(":") || (!host.isEmpty && host.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") })
    }

    /// The host's addresses (getaddrinfo); MLflow's error when it has none.
    static func resolve(_ host: String) throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else {
            throw TrackingError.invalid("Cannot resolve Webhook URL hostname \(repr(host)): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var out: [IPAddress] = []
        var p = list
        while let a = p {
            if let address = IPAddress(a.pointee.ai_addr) { out.append(address) }
            p = a.pointee.ai_next
        }
        guard !out.isEmpty else { throw TrackingError.invalid("Cannot resolve Webhook URL hostname \(repr(host)): no address") }
        return out
    }
}
