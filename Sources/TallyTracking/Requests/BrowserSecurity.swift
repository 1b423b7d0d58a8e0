#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MLflow 3's defences of a tracking server a browser can reach (its security middleware, `mlflow server
/// --allowed-hosts --cors-allowed-origins --x-frame-options --disable-security-middleware`), the one place their rules
/// live. Without them any web page its user opens could use a server on their machine or network: a cross-site POST
/// creates or deletes experiments (the API takes simple requests), and a page whose name re-resolves to the server's
/// address (DNS rebinding) reads everything as same-origin.
///
/// - **Host:** a request whose `Host` header is not allowed is refused (403), except `/health`, `/ready` and `/version`. By
///   default: `localhost`, loopback and private addresses (RFC 1918, `fc00::/7`), `0.0.0.0`, and the names the server
///   itself was given (`--host`, a cluster's `--advertise-url`); `--allowed-hosts` replaces the list, `*` allows every
///   host.
/// - **Origin:** a state-changing request (POST, PUT, DELETE, PATCH) from another origin is refused (403) unless the
///   origin is on localhost or allowed by `--cors-allowed-origins` (`*`: every origin, without credentials); allowed
///   origins get CORS headers and preflight answers.
/// - **Headers:** every answer carries `X-Content-Type-Options: nosniff` and `X-Frame-Options` (`SAMEORIGIN` unless
///   `--x-frame-options DENY|NONE`).
///
/// Where Tally parts from MLflow on purpose (docs/security.md): the default private-address rule parses the address
/// (MLflow's `10.*` also lets a rebinding name such as `10.attacker.example` through); host names compare without
/// case and an entry without a port takes any port; a pattern of digits and dots matches addresses only; a request
/// whose `Origin` is the very `Host` it was sent to, allowed by name and over the server's scheme (the UI served from
/// a private address), is same-origin, not refused; `https://localhost` gets CORS headers as `http://localhost` does.
public struct BrowserSecurity: Sendable, Equatable {
    /// `X-Frame-Options` values.
    public enum FrameOptions: String, Sendable, Equatable {
        /// Pages may be framed by pages of the same origin only (MLflow's default).
        case sameOrigin = "SAMEORIGIN"
        /// Pages may not be framed at all.
        case deny = "DENY"
    }

    /// The refusal of a `Host` that is not allowed: MLflow's message, then what to do about it.
    public static func invalidHost(_ host: String?) -> TrackingError {
        TrackingError(.permissionDenied, "Invalid Host header - possible DNS rebinding attack detected: "
                      + (host.map { "'\($0)' is not an allowed host" } ?? "the request has no Host header")
                      + " (list the names clients reach this server by in --allowed-hosts or MLFLOW_SERVER_ALLOWED_HOSTS)")
    }

    /// The refusal of a state-changing request from an origin that is not allowed.
    public static func crossOrigin(_ origin: String) -> TrackingError {
        TrackingError(.permissionDenied, "Cross-origin request blocked: origin '\(origin)' may not change this server's state "
                      + "(list it in --cors-allowed-origins or MLFLOW_SERVER_CORS_ALLOWED_ORIGINS)")
    }

    /// The refusal of a request with more than one `Host` header (RFC 9112: which one names the server is ambiguous).
    public static let duplicateHost = TrackingError(.badRequest, "Invalid Host header: the request has more than one")

    /// The refusal of a CORS preflight for a method browsers may not use here.
    public static func preflightMethod(_ method: String) -> TrackingError {
        TrackingError(.permissionDenied, "Cross-origin request blocked: method '\(method)' is not one of \(corsMethods)")
    }

    /// The methods a cross-origin caller may use (`Access-Control-Allow-Methods`).
    public static let corsMethodList = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
    /// ``corsMethodList`` as the header's value.
    public static var corsMethods: String { corsMethodList.joined(separator: ", ") }
    /// The answer headers a page of an allowed origin may read (`Access-Control-Expose-Headers`; with credentials a
    /// `*` would name a header called `*`).
    public static let exposedHeaders = "Content-Disposition, Content-Length, ETag, Location, Retry-After"
    /// Seconds a browser may cache a preflight's answer.
    public static let preflightMaxAge = 600
    /// Paths answered whatever the `Host` (probes address servers by whatever name reaches them).
    public static let hostExemptPaths: Set<String> = ["/health", "/ready", "/version"]

    /// `--allowed-hosts` as given (lowercased), `nil` for the defaults.
    public let allowedHosts: [String]?
    /// `--cors-allowed-origins` as given (lowercased).
    public let allowedOrigins: [String]
    /// Names the server was given itself (`--host`, a cluster's advertised host), allowed as hosts on any port
    /// (``knowing(_:)``).
    public private(set) var ownNames: [String] = []
    /// `X-Frame-Options`, `nil` for none (`--x-frame-options NONE`).
    public let frameOptions: FrameOptions?
    let hostGlobs: [Glob]
    let originGlobs: [Glob]

    /// The defences from `mlflow server`'s options: comma-separated lists (`nil` or empty: the defaults) and the
    /// `X-Frame-Options` value (`SAMEORIGIN`, `DENY` or `NONE`, any case). Throws, naming the option, on an entry
    /// that can never match (a URL given as a host, an origin with a path).
    public init(allowedHosts: String? = nil, allowedOrigins: String? = nil, frameOptions: String = "SAMEORIGIN") throws(TrackingError) {
        func list(_ s: String?) -> [String] {
            (s ?? "").split(separator: ",").map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty }
        }
        let hosts = list(allowedHosts)
        for h in hosts where h != "*" && (h.contains("/") || h.contains(" ")) {
            throw TrackingError(.invalidParameterValue, "--allowed-hosts: '\(h)' is not a host; give a name or address with an optional "
                                + "port, such as mlflow.example.com or 10.0.0.5:5000 (patterns may use *)")
        }
        let origins = list(allowedOrigins)
        for o in origins where o != "*" && !o.contains("*") && Self.authority(ofOrigin: o) == nil {
            throw TrackingError(.invalidParameterValue, "--cors-allowed-origins: '\(o)' is not an origin; give scheme://host[:port] "
                                + "without a path, such as https://app.example.com (patterns may use *)")
        }
        guard let frame = ["SAMEORIGIN": FrameOptions.sameOrigin, "DENY": .deny, "NONE": nil][frameOptions.uppercased()] else {
            throw TrackingError(.invalidParameterValue, "--x-frame-options: '\(frameOptions)' is not SAMEORIGIN, DENY or NONE")
        }
        self.allowedHosts = hosts.isEmpty ? nil : hosts
        self.allowedOrigins = origins
        self.frameOptions = frame
        hostGlobs = hosts.map(Glob.init)
        originGlobs = origins.map(Glob.init)
    }

    /// These defences with `names` allowed as hosts too: the address the server listens on and the URL a cluster
    /// advertises it at (each a host, `host:port` or a URL; the wildcard addresses are not names).
    public func knowing(_ names: [String]) -> BrowserSecurity {
        var s = self
        for n in names.map({ $0.lowercased() }) {
            // A URL's authority: after `scheme://`, before the path, query or fragment, without user information.
            var a = Substring(n)
            if let colon = a.firstIndex(of: ":"), a[colon...].hasPrefix("://") { a = a[a.index(colon, offsetBy: 3)...] }
            a = a.prefix { !"/?#".contains($0) }
            if let at = a.lastIndex(of: "@") { a = a[a.index(after: at)...] }
            var text = String(a)
            if !text.hasPrefix("["), text.filter({ $0 == ":" }).count > 1 { text = "[\(text)]" }  // `--host ::1`
            guard let (name, _) = Self.splitHost(text), !["0.0.0.0", "[::]"].contains(name), !s.ownNames.contains(name) else { continue }
            s.ownNames.append(name)
        }
        return s
    }

    /// Whether every host is allowed (`--allowed-hosts '*'`).
    public var anyHost: Bool { allowedHosts?.contains("*") == true }
    /// Whether every origin is allowed (`--cors-allowed-origins '*'`): CORS without credentials, nothing refused.
    public var anyOrigin: Bool { allowedOrigins.contains("*") }

    /// How a `Host` header was allowed: by name (a listed name, the server's own, the defaults' addresses), or only by
    /// a pattern, which a rebinding attacker's name may match too.
    public enum HostMatch: Sendable, Equatable {
        /// Named, or every host allowed.
        case named
        /// Only through a `*` pattern of `--allowed-hosts`.
        case pattern
    }

    /// Whether a request with this `Host` header is answered.
    public func allowsHost(_ header: String?) -> Bool { hostMatch(header) != nil }

    /// How this `Host` header is allowed, `nil` when it is not. A pattern of digits, dots and `*` (`10.*`,
    /// `192.168.1.*`) matches IPv4 addresses only: MLflow's reading also lets the name `10.attacker.example` through.
    public func hostMatch(_ header: String?) -> HostMatch? {
        if anyHost { return .named }
        guard let full = header?.lowercased(), let (name, port) = Self.splitHost(full) else { return nil }
        if ownNames.contains(name) { return .named }
        guard let allowedHosts else { return Self.isLocalOrPrivate(name) ? .named : nil }
        var matched = false
        for (entry, glob) in zip(allowedHosts, hostGlobs) {
            if entry.contains("*") {
                let namePart = entry.split(separator: ":", maxSplits: 1).first ?? ""
                let addressPattern = namePart.contains { $0.isASCII && $0.isNumber }
                    && namePart.allSatisfy { $0 == "." || $0 == "*" || $0.isASCII && $0.isNumber }
                if addressPattern && Self.ipv4(name) == nil { continue }
                // A pattern without a port takes any port, as a name does.
                if glob.matches(full) || (!entry.contains(":") && glob.matches(name)) { matched = true }
            } else if let (n, p) = Self.splitHost(entry), n == name, p == nil || p == port {
                return .named
            }
        }
        return matched ? .pattern : nil
    }

    /// Whether a request must be refused as a cross-site write: a state-changing method, an `Origin` that is neither
    /// the request's own origin nor localhost nor allowed. Its own origin is `scheme` (the server's, or the one a proxy
    /// names in `X-Forwarded-Proto`; `nil`: not known, any) and a `Host` allowed by name: a `Host` allowed only by a
    /// pattern, or with every host allowed, may be a rebinding attacker's name, which is same-origin with its page.
    public func refusesStateChange(method: String, origin: String?, host: String?, scheme: String? = nil) -> Bool {
        guard let origin, !origin.isEmpty, ["POST", "PUT", "DELETE", "PATCH"].contains(method), !anyOrigin else { return false }
        let o = origin.lowercased()
        if !anyHost, let host, hostMatch(host) == .named, Self.authority(ofOrigin: o) == host.lowercased(),
           scheme.map({ o.hasPrefix($0.lowercased() + "://") }) ?? true {
            return false  // same origin
        }
        if Self.isLocalhostOrigin(o) { return false }
        return !allowsOrigin(o)
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin` and whether credentials are allowed with
    /// it, or `nil` when that origin gets no CORS headers.
    public func cors(_ origin: String?) -> (allowOrigin: String, credentials: Bool)? {
        guard let origin, !origin.isEmpty else { return nil }
        if anyOrigin { return ("*", false) }
        let o = origin.lowercased()
        return Self.isLocalhostOrigin(o) || allowsOrigin(o) ? (origin, true) : nil
    }

    func allowsOrigin(_ o: String) -> Bool {
        zip(allowedOrigins, originGlobs).contains { entry, glob in entry.contains("*") ? glob.matches(o) : entry == o }
    }

    /// Whether a CORS preflight may go on to ask for `method` (methods are case-sensitive).
    public static func corsAllows(method: String) -> Bool { corsMethodList.contains(method) }

    /// What a server log says at start.
    public var summary: String {
        let hosts = anyHost ? "any host" : (allowedHosts?.joined(separator: ", ") ?? "localhost, loopback and private addresses")
            + (ownNames.isEmpty ? "" : ", " + ownNames.joined(separator: ", "))
        let origins = anyOrigin ? "any origin (without credentials)" : (["localhost"] + allowedOrigins).joined(separator: ", ")
        return "allowed hosts: \(hosts); cross-origin writes from: \(origins); X-Frame-Options: \(frameOptions?.rawValue ?? "none")"
    }

    // MARK: - Hosts and origins

    /// `name` and `port` of a `Host` header (`[v6]:port` keeps its brackets); `nil` when it is not one.
    static func splitHost(_ h: String) -> (name: String, port: String?)? {
        var name = Substring(h), port: Substring?
        if h.hasPrefix("[") {
            guard let close = h.firstIndex(of: "]") else { return nil }
            name = h[...close]
            let rest = h[h.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { return nil }
                port = rest.dropFirst()
            }
        } else if let colon = h.lastIndex(of: ":") {
            guard h.firstIndex(of: ":") == colon else { return (h, nil) }  // a bare IPv6 address, as MLflow's defaults spell one
            name = h[..<colon]
            port = h[h.index(after: colon)...]
        }
        if let port, port.isEmpty || !port.allSatisfy({ $0.isASCII && $0.isNumber }) { return nil }
        guard !name.isEmpty else { return nil }
        return (String(name), port.map(String.init))
    }

    /// `host[:port]` of an origin (`scheme://host[:port]`, nothing after), lowercased; `nil` when it is not one.
    static func authority(ofOrigin o: String) -> String? {
        guard let colon = o.firstIndex(of: ":"), colon != o.startIndex, o[colon...].hasPrefix("://") else { return nil }
        let a = o[o.index(colon, offsetBy: 3)...]
        guard !a.isEmpty, !a.contains("/"), !a.contains("?"), !a.contains("#"), !a.contains("@"), splitHost(String(a)) != nil else { return nil }
        return String(a)
    }

    /// MLflow's `is_localhost_origin`: an origin on `localhost`, `127.0.0.1` or `[::1]`, any scheme and port.
    static func isLocalhostOrigin(_ o: String) -> Bool {
        guard let a = authority(ofOrigin: o), let (name, _) = splitHost(a) else { return false }
        return ["localhost", "127.0.0.1", "[::1]"].contains(name)
    }

    /// The default hosts: `localhost`, `0.0.0.0`, and loopback and private IP addresses.
    static func isLocalOrPrivate(_ name: String) -> Bool {
        if name == "localhost" || name == "0.0.0.0" { return true }
        if let v4 = ipv4(name) {
            let (a, b) = (v4 >> 24, (v4 >> 16) & 0xFF)
            return a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
        }
        var text = name
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        guard !text.contains("%"), text.contains(":"), let a = IPAddress(text) else { return false }
        if let v4 = a.mappedV4 { return isLocalOrPrivate(v4.text) }
        return a.within(IPAddress.loopbackV6, 128) || a.within([0xFC] + [UInt8](repeating: 0, count: 15), 7)
    }

    /// A dotted-quad IPv4 address in its canonical form (four decimal numbers 0–255, no leading zeros: `010` is 8 to
    /// inet_aton and to browsers, 10 to a naive reading), as a number.
    static func ipv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.count == 1 || p.first != "0", p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt32(p),
                  n <= 255 else { return nil }
            v = v << 8 | n
        }
        return v
    }
}
