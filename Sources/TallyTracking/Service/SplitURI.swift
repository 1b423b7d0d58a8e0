/// A URI divided as Python's `urllib.parse.urlsplit` divides it (the parts MLflow's server reads a model version's
/// source by): a scheme (lowercased; empty for a plain path), the authority after `//`, and the path before any
/// `?` or `#`.
struct SplitURI: Equatable {
    /// The scheme, lowercased (`""`: none, a plain path).
    var scheme: String
    /// What follows `//` up to the path (`""`: none).
    var netloc: String
    /// The path.
    var path: String

    /// The parts given.
    init(scheme: String, netloc: String, path: String) {
        self.scheme = scheme
        self.netloc = netloc
        self.path = path
    }

    /// `s` divided; with `fragments` false a `#` is part of the path (`urlparse(…, allow_fragments=False)`).
    init(_ s: String, fragments: Bool = true) {
        var rest = Substring(s)
        scheme = TrackingService.uriScheme(s) ?? ""
        if !scheme.isEmpty { rest = rest.dropFirst(scheme.count + 1) }
        netloc = ""
        if rest.hasPrefix("//") {
            let authority = rest.dropFirst(2)
            let end = authority.firstIndex { $0 == "/" || $0 == "?" || ($0 == "#" && fragments) } ?? authority.endIndex
            netloc = String(authority[..<end])
            rest = authority[end...]
        }
        path = String(rest[..<(rest.firstIndex { $0 == "?" || ($0 == "#" && fragments) } ?? rest.endIndex)])
    }

    /// The host named by the authority, lowercased (no user, port or brackets); `nil` without one.
    var hostname: String? {
        var host = Substring(netloc)
        if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.firstIndex(of: ":") {
            host = host[..<colon]
        }
        return host.isEmpty ? nil : host.lowercased()
    }

    /// Whether MLflow takes it for a path on the server's own disk (`is_local_uri`): no scheme, or `file:`.
    var isLocal: Bool { scheme.isEmpty || scheme == "file" }

    /// The path's non-empty segments, each percent-decoded until it no longer changes (`_normalized_uri_parts`).
    var segments: [String] {
        path.split(separator: "/").map { SplitURI.unquotedFully(String($0)) }
    }

    /// `s` percent-decoded again and again until it no longer changes, as MLflow's checks decode a source (Python's
    /// `unquote`, or `unquote_plus` with `plus`: `+` is a space).
    static func unquotedFully(_ s: String, plus: Bool = false) -> String {
        var s = s
        while true {
            let next = PercentDecoding.decode(Substring(s), plusIsSpace: plus)
            if next == s { return s }
            s = next
        }
    }
}
