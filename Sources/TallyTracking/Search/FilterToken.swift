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

    /// Splits a filter into tokens.
    static func tokenize(_ s: String) throws -> [FilterToken] {
        let c = Array(s.unicodeScalars)
        var out: [FilterToken] = []
        var i = 0
        func quoted(_ q: Unicode.Scalar) throws -> String {
            var v = ""
            i += 1
            while i < c.count {
                if c[i] == q {
                    if i + 1 < c.count && c[i + 1] == q && q != "`" {  // doubled quote escapes itself
                        v.unicodeScalars.append(q)
                        i += 2
                        continue
                    }
                    i += 1
                    return v
                }
                if c[i] == "\\" && i + 1 < c.count && q != "`" {
                    v.unicodeScalars.append(c[i + 1])
                    i += 2
                    continue
                }
                v.unicodeScalars.append(c[i])
                i += 1
            }
            throw TrackingError.invalid("Invalid filter string: unterminated \(q == "`" ? "backtick" : "quote") in '\(s)'")
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
