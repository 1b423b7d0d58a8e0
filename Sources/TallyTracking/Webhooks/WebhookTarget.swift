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
    static func repr(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

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

/// An IPv4 or IPv6 address, and whether it is globally reachable (Python's `ipaddress.is_global`, after unwrapping
/// IPv4 carried in IPv6 transition forms, as MLflow checks).
struct IPAddress: Equatable {
    /// 4 or 16 bytes.
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    init?(_ sa: UnsafeMutablePointer<sockaddr>?) {
        guard let sa else { return nil }
        switch Int32(sa.pointee.sa_family) {
        case AF_INET: bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in withUnsafeBytes(of: p.pointee.sin_addr) { Array($0) } }
        case AF_INET6: bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) } }
        default: return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The address as text (`10.0.0.1`, `fe80::1`).
    var text: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var b = bytes
        _ = inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, &b, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// IPv4 inside an IPv6 transition address (mapped `::ffff:a.b.c.d`, 6to4 `2002:AABB:CCDD::`, NAT64 `64:ff9b::/96`).
    var embeddedV4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return IPAddress(bytes: Array(bytes[12..<16])) }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        if bytes[0..<12] == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] { return IPAddress(bytes: Array(bytes[12..<16])) }
        return nil
    }

    /// Whether `bytes` starts with the `bits` leading bits of `prefix`.
    func within(_ prefix: [UInt8], _ bits: Int) -> Bool {
        for i in 0..<bits / 8 where bytes[i] != prefix[i] { return false }
        let rest = bits % 8
        guard rest > 0 else { return true }
        let mask = UInt8(0xFF) << (8 - rest)
        return bytes[bits / 8] & mask == prefix[bits / 8] & mask
    }

    /// IANA's special-purpose ranges that are not globally reachable (those Python's `is_global` rejects).
    static let nonGlobalV4: [([UInt8], Int)] = [
        ([0, 0, 0, 0], 8), ([10, 0, 0, 0], 8), ([100, 64, 0, 0], 10), ([127, 0, 0, 0], 8), ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12), ([192, 0, 0, 0], 24), ([192, 0, 2, 0], 24), ([192, 88, 99, 0], 24), ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15), ([198, 51, 100, 0], 24), ([203, 0, 113, 0], 24), ([224, 0, 0, 0], 4), ([240, 0, 0, 0], 4),
    ]
    static let nonGlobalV6: [([UInt8], Int)] = [
        ([UInt8](repeating: 0, count: 16), 96),  // ::/96: unspecified, loopback, IPv4-compatible
        ([0, 0x64, 0xFF, 0x9B, 0, 1] + [UInt8](repeating: 0, count: 10), 48), ([1, 0] + [UInt8](repeating: 0, count: 14), 64),
        ([0x20, 0x01] + [UInt8](repeating: 0, count: 14), 23), ([0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 12), 32),
        ([0xFC] + [UInt8](repeating: 0, count: 15), 7), ([0xFE, 0x80] + [UInt8](repeating: 0, count: 14), 10),
        ([0xFE, 0xC0] + [UInt8](repeating: 0, count: 14), 10), ([0xFF] + [UInt8](repeating: 0, count: 15), 8),
    ]

    /// Whether the address is globally reachable.
    var isGlobal: Bool {
        if let v4 = embeddedV4 { return v4.isGlobal }
        let ranges = bytes.count == 4 ? Self.nonGlobalV4 : Self.nonGlobalV6
        return !ranges.contains { within($0.0, $0.1) }
    }
}
