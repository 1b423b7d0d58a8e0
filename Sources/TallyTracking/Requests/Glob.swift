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
                tokens.append(Self.set(p, from: i, to: j))
                i = j + 1
            default:
                tokens.append(.scalar(c))
            }
        }
        self.tokens = tokens
    }

    /// The set `p[i..<j]` (between `[` and `]`) as Python's `fnmatch.translate` reads it, quirks included: the text is
    /// cut at the hyphens that make ranges (after a leading `!`, and not within two of the last cut), a range whose
    /// ends are reversed is dropped with both its ends, and what is left is a regular-expression set, negated when it
    /// starts with `!` (a lone `!` is any character, nothing at all no character).
    static func set(_ p: [Unicode.Scalar], from i0: Int, to j: Int) -> Token {
        // The set's text as (scalar, isRangeHyphen) pairs: hyphens between chunks make ranges, any other is literal.
        var text: [(Unicode.Scalar, Bool)]
        if !p[i0..<j].contains("-") {
            text = p[i0..<j].map { ($0, false) }
        } else {
            var chunks: [[Unicode.Scalar]] = []
            var i = i0
            var k = p[i0] == "!" ? i0 + 2 : i0 + 1
            while k < j, let cut = p[k..<j].firstIndex(of: "-") {
                chunks.append(Array(p[i..<cut]))
                i = cut + 1
                k = cut + 3
            }
            if i < j { chunks.append(Array(p[i..<j])) } else { chunks[chunks.count - 1].append("-") }
            var c = chunks.count - 1
            while c > 0 {
                if let last = chunks[c - 1].last, let first = chunks[c].first, last > first {
                    chunks[c - 1] = Array(chunks[c - 1].dropLast()) + chunks[c].dropFirst()
                    chunks.remove(at: c)
                }
                c -= 1
            }
            text = []
            for (n, chunk) in chunks.enumerated() {
                if n > 0 { text.append(("-", true)) }
                text += chunk.map { ($0, false) }
            }
        }
        if text.isEmpty { return .set([], negated: false) }
        if text.count == 1 && text[0].0 == "!" { return .set([], negated: true) }
        let negated = text[0] == ("!", false)
        if negated { text.removeFirst() }
        // A regular-expression set: `a-z` where an unescaped hyphen stands between two items, else each item itself.
        var ranges: [ClosedRange<Unicode.Scalar>] = []
        var k = 0
        while k < text.count {
            if k + 2 < text.count && text[k + 1] == ("-", true) {
                if text[k].0 <= text[k + 2].0 { ranges.append(text[k].0...text[k + 2].0) }
                k += 3
            } else {
                ranges.append(text[k].0...text[k].0)
                k += 1
            }
        }
        return .set(ranges, negated: negated)
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
