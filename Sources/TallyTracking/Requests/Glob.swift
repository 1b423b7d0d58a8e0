/// A shell pattern as Python's `fnmatch.fnmatchcase` reads it, which MLflow matches `--allowed-hosts` and
/// `--cors-allowed-origins` entries with: `*` any run of characters (`/` and `.` included), `?` any one, `[seq]` one
/// of a set and `[!seq]` one outside it (`a-z` ranges; a `]` first in the set is itself; a range whose ends are
/// reversed holds nothing), and a `[` without its `]` is itself. There are no escapes. It matches the whole text, case
/// as given; differential-tested against Python's `fnmatch`.
public struct Glob: Sendable, Equatable {
    enum Token: Equatable {
        case star
        case any
        case scalar(Unicode.Scalar)
        /// One scalar in (or, `negated`, outside) the ranges.
        case set([ClosedRange<Unicode.Scalar>], negated: Bool)
    }

    let tokens: [Token]

    /// The pattern `pattern`.
    public init(_ pattern: String) {
        let p = Array(pattern.unicodeScalars)
        var tokens: [Token] = []
        var i = 0
        while i < p.count {
            let c = p[i]
            i += 1
            switch c {
            case "*":
                if tokens.last != .star { tokens.append(.star) }
            case "?":
                tokens.append(.any)
            case "[":
                // The set runs to the first `]` after an optional `!` and an optional leading `]`.
                var j = i
                if j < p.count && p[j] == "!" { j += 1 }
                if j < p.count && p[j] == "]" { j += 1 }
                while j < p.count && p[j] != "]" { j += 1 }
                guard j < p.count else {
                    tokens.append(.scalar("["))
                    continue
                }
                var body = p[i..<j]
                let negated = body.first == "!"
                if negated { body = body.dropFirst() }
                tokens.append(.set(Self.ranges(Array(body)), negated: negated))
                i = j + 1
            default:
                tokens.append(.scalar(c))
            }
        }
        self.tokens = tokens
    }

    /// A set's items: `a-z` ranges (left to right, a `-` first or last is itself), the reversed ones dropped.
    static func ranges(_ s: [Unicode.Scalar]) -> [ClosedRange<Unicode.Scalar>] {
        var out: [ClosedRange<Unicode.Scalar>] = []
        var k = 0
        while k < s.count {
            if k + 2 < s.count && s[k + 1] == "-" {
                if s[k] <= s[k + 2] { out.append(s[k]...s[k + 2]) }
                k += 3
            } else {
                out.append(s[k]...s[k])
                k += 1
            }
        }
        return out
    }

    /// Whether the whole of `text` matches.
    public func matches(_ text: String) -> Bool {
        let s = Array(text.unicodeScalars)
        var p = 0, i = 0
        var star: (token: Int, text: Int)?  // the last `*` and where its run ends now
        while i < s.count {
            if p < tokens.count, tokens[p] != .star, Self.one(tokens[p], s[i]) {
                p += 1
                i += 1
            } else if p < tokens.count, tokens[p] == .star {
                star = (p, i)
                p += 1
            } else if let st = star {
                star = (st.token, st.text + 1)  // the `*` takes one more character
                p = st.token + 1
                i = st.text + 1
            } else {
                return false
            }
        }
        while p < tokens.count && tokens[p] == .star { p += 1 }
        return p == tokens.count
    }

    static func one(_ t: Token, _ c: Unicode.Scalar) -> Bool {
        switch t {
        case .star: return false
        case .any: return true
        case .scalar(let x): return x == c
        case let .set(ranges, negated): return ranges.contains { $0.contains(c) } != negated
        }
    }
}
