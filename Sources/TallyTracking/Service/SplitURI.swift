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

    /// `s` divided.
    init(_ s: String) {
        var rest = Substring(s)
        scheme = ""
        if let colon = s.firstIndex(of: ":"), colon != s.startIndex {
            let name = s[..<colon]
            let schemeCharacter = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "+" || c == "-" || c == ".") }
            if let first = name.first, first.isASCII, first.isLetter, name.allSatisfy(schemeCharacter) {
                scheme = name.lowercased()
                rest = s[s.index(after: colon)...]
            }
        }
        netloc = ""
        if rest.hasPrefix("//") {
            let authority = rest.dropFirst(2)
            let end = authority.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? authority.endIndex
            netloc = String(authority[..<end])
            rest = authority[end...]
        }
        path = String(rest[..<(rest.firstIndex { $0 == "?" || $0 == "#" } ?? rest.endIndex)])
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

    /// `s` percent-decoded again and again until it no longer changes, as Python's `unquote` (or `unquote_plus`, with
    /// `plus`: `+` is a space) decodes: each valid `%XX`, the rest kept as written, bytes that are no UTF-8 replaced.
    static func unquotedFully(_ s: String, plus: Bool = false) -> String {
        var s = s
        while true {
            let next = unquoted(s, plus: plus)
            if next == s { return s }
            s = next
        }
    }

    /// One round of ``unquotedFully(_:plus:)``.
    static func unquoted(_ s: String, plus: Bool) -> String {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(plus && b[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
