/// A token of MLflow's search filter language.
enum FilterToken: Equatable {
    /// A bare word: identifier (possibly dotted), keyword or unquoted value.
    case word(String)
    /// A backticked name (always an identifier part).
    case backticked(String)
    /// A `"…"` string: an identifier part after `entity.`, otherwise a string value.
    case doubleQuoted(String)
    /// A `'…'` string value.
    case singleQuoted(String)
    /// A number.
    case number(String)
    /// `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`.
    case comparator(String)
    case leftParen
    case rightParen
    case comma
    case dot

    /// How the token looked in the filter, for messages.
    var text: String {
        switch self {
        case .word(let s), .number(let s), .comparator(let s): s
        case .backticked(let s): "`\(s)`"
        case .doubleQuoted(let s): "\"\(s)\""
        case .singleQuoted(let s): "'\(s)'"
        case .leftParen: "("
        case .rightParen: ")"
        case .comma: ","
        case .dot: "."
        }
    }

    /// Where each quoted token ends, as MLflow's tokenizer (sqlparse) reads quotes: `'(''|\\'|[^'])*'` (and the same
    /// for `"`), a regular expression that prefers the longest text and backtracks when no quote closes it. For a quote
    /// at `i`, the token ends just after `ends[i + 1]` (`nil`: unterminated). Computed once from the end, so a filter
    /// of any length costs one pass: a position's answer depends only on what follows it.
    static func closingQuotes(_ c: [Unicode.Scalar], _ q: Unicode.Scalar) -> [Int?] {
        var ends = [Int?](repeating: nil, count: c.count + 2)
        for j in stride(from: c.count - 1, through: 0, by: -1) {
            let pair = j + 1 < c.count && c[j + 1] == q
            if c[j] == q, pair, let e = ends[j + 2] {  // '' inside the text
                ends[j] = e
            } else if c[j] == "\\", pair, let e = ends[j + 2] {  // \' inside the text
                ends[j] = e
            } else if c[j] != q {
                ends[j] = ends[j + 1]
            } else {
                ends[j] = j  // this quote closes the text
            }
        }
        return ends
    }

    /// Splits a filter into tokens. A quoted value is the text between its quotes as written, as MLflow takes it:
    /// `'a\b'` is `a\b`, `'it''s'` is `it''s` (neither backslashes nor doubled quotes are escapes).
    static func tokenize(_ s: String) throws -> [FilterToken] {
        let c = Array(s.unicodeScalars)
        var out: [FilterToken] = []
        var i = 0
        var ends: [Unicode.Scalar: [Int?]] = [:]
        func quoted(_ q: Unicode.Scalar) throws -> String {
            if q == "`" {
                // A backquoted name: to the next backquote.
                guard let close = c[(i + 1)...].firstIndex(of: q) else {
                    throw TrackingError.invalid("Invalid filter string: unterminated backtick in '\(s)'")
                }
                defer { i = close + 1 }
                return String(String.UnicodeScalarView(c[(i + 1)..<close]))
            }
            if ends[q] == nil { ends[q] = closingQuotes(c, q) }
            guard let close = ends[q]![i + 1] else { throw TrackingError.invalid("Invalid filter string: unterminated quote in '\(s)'") }
            defer { i = close + 1 }
            return String(String.UnicodeScalarView(c[(i + 1)..<close]))
        }
        while i < c.count {
            let ch = c[i]
            if ch.properties.isWhitespace {
                i += 1
            } else if ch == "`" {
                out.append(.backticked(try quoted("`")))
            } else if ch == "\"" {
                out.append(.doubleQuoted(try quoted("\"")))
            } else if ch == "'" {
                out.append(.singleQuoted(try quoted("'")))
            } else if ch == "(" {
                out.append(.leftParen); i += 1
            } else if ch == ")" {
                out.append(.rightParen); i += 1
            } else if ch == "," {
                out.append(.comma); i += 1
            } else if "=!<>".unicodeScalars.contains(ch) {
                var op = String(ch)
                if i + 1 < c.count && "=>".unicodeScalars.contains(c[i + 1]) && !(ch == "=" ) {
                    op.unicodeScalars.append(c[i + 1])
                    i += 1
                }
                i += 1
                guard ["=", "!=", "<>", "<", "<=", ">", ">="].contains(op) else {
                    throw TrackingError.invalid("Invalid comparator '\(op)' in filter string")
                }
                out.append(.comparator(op == "<>" ? "!=" : op))
            } else if ch.properties.numericType != nil || ((ch == "-" || ch == "+" || ch == ".") && i + 1 < c.count && c[i + 1].properties.numericType != nil
                                                           && (out.last.map { if case .comparator = $0 { true } else { false } } ?? false)) {
                var v = String(ch)
                i += 1
                while i < c.count, c[i].properties.numericType != nil || ".eE".unicodeScalars.contains(c[i])
                    || ((c[i] == "-" || c[i] == "+") && "eE".unicodeScalars.contains(c[i - 1])) {
                    v.unicodeScalars.append(c[i])
                    i += 1
                }
                // A number glued to letters is a word (e.g. a key like 1abc).
                if i < c.count, c[i].properties.isAlphabetic || c[i] == "_" {
                    while i < c.count, !c[i].properties.isWhitespace, !"=!<>(),'\"`".unicodeScalars.contains(c[i]) {
                        v.unicodeScalars.append(c[i]); i += 1
                    }
                    out.append(.word(v))
                } else {
                    out.append(.number(v))
                }
            } else if ch == "." {
                out.append(.dot); i += 1
            } else {
                var v = ""
                while i < c.count, !c[i].properties.isWhitespace, !"=!<>(),'\"`".unicodeScalars.contains(c[i]) {
                    if c[i] == "." && i + 1 < c.count && (c[i + 1] == "\"" || c[i + 1] == "`") {
                        // `entity.` followed by a quoted key (tags."x", metrics.`y`): the word keeps the dot.
                        v.unicodeScalars.append(c[i])
                        i += 1
                        break
                    }
                    v.unicodeScalars.append(c[i])
                    i += 1
                }
                out.append(.word(v))
            }
        }
        return out
    }
}
