/// How MLflow's server reads one `order_by` item of `runs/search` and `experiments/search`, step by step (the
/// registry's searches take steps 1 and 2, ``nameAndDirection(_:)``, and read the name their own way):
///
/// 1. The item must read as one SQL name (sqlparse's single identifier): no whitespace around it, no operators or
///    punctuation outside quotes, a `'…'` only as the whole key after a dot. Otherwise "Could not be parsed".
/// 2. Backquotes become double quotes and the text is split as a POSIX shell splits words (quotes removed). More than
///    two words: "Could not be parsed". Two: the second is the direction, and the first is the name. One: the name is
///    the item as written (quotes kept).
/// 3. The name is split at its first dot into an entity and a key; the key loses its quotes, then its backquotes.
extension OrderKey {
    /// Parses one item.
    public init(parsing text: String, kind: SearchFilter.Kind) throws {
        guard kind == .runs || kind == .experiments else {  // logged models order by objects; the registry's keys are RegistryOrder's
            throw TrackingError.invalid("Invalid ordering key in order_by clause '\(text)'.")
        }
        let name: String
        (name, ascending) = try Self.nameAndDirection(text)
        let (entityText, unquoted) = Self.entityAndKey(name)
        var key = unquoted
        switch kind {
        case .runs:
            let entity = try SearchFilter.Parser.entity(entityText.map { Self.inside($0, "`") }, kind: .runs)
            switch entity {
            case .attribute:
                guard let canonical = Self.runOrderAttributes[key] else {
                    throw TrackingError.invalid("Invalid attribute key '\(key)' "
                        + "specified. Valid keys are '{'artifact_uri', 'run_id', 'start_time', 'end_time', 'status', 'user_id', 'created', 'run_name', 'Created'}'")
                }
                key = canonical
            case .dataset:
                guard ["name", "digest", "context"].contains(key) else {
                    throw TrackingError.invalid("Invalid dataset key '\(key)' specified. Valid keys are '{'name', 'digest', 'context'}'")
                }
                throw TrackingError.invalid("Invalid ordering key in order_by clause '\(text)'.")  // a valid dataset key orders nothing in MLflow either
            default: break
            }
            self.entity = entity
        default:
            let entity = try SearchFilter.Parser.entity(entityText, kind: .experiments)
            guard entity == .attribute else { throw TrackingError.invalid("Invalid order_by entity: \(entity.rawValue)") }
            key = try SearchFilter.Parser.attribute(key, kind: .experiments)
            self.entity = entity
        }
        self.key = key
    }

    /// The run attributes an `order_by` names, with their canonical names (the filter's other spellings, such as
    /// `Run name`, are none).
    static let runOrderAttributes = ["run_id": "run_id", "run_name": "run_name", "status": "status", "user_id": "user_id",
                                     "artifact_uri": "artifact_uri", "start_time": "start_time", "end_time": "end_time",
                                     "created": "start_time", "Created": "start_time"]

    /// Steps 1 and 2 for any search's `order_by` item: the name (whitespace around it removed, as Python's `strip`)
    /// and whether it is ascending.
    static func nameAndDirection(_ text: String) throws -> (name: String, ascending: Bool) {
        guard readsAsOneName(text), let words = shellWords(String(text.map { $0 == "`" ? "\"" : $0 })), words.count <= 2 else {
            throw TrackingError.invalid("Invalid order_by clause '\(text)'. Could not be parsed.")
        }
        var name = text, ascending = true
        if words.count == 2 {
            switch words[1].lowercased() {
            case "asc": ascending = true
            case "desc": ascending = false
            default: throw TrackingError.invalid("Invalid ordering key in order_by clause '\(text)'.")
            }
            name = words[0]
        }
        let stripped = name.unicodeScalars.drop { $0.properties.isWhitespace }.reversed().drop { $0.properties.isWhitespace }.reversed()
        return (String(String.UnicodeScalarView(stripped)), ascending)
    }

    /// Step 3: a name split at its first dot into an entity (`nil`: none) and a key, the key without its quotes, then
    /// its backquotes.
    static func entityAndKey(_ name: String) -> (String?, String) {
        let dot = name.firstIndex(of: ".")
        let key = dot.map { String(name[name.index(after: $0)...]) } ?? name
        return (dot.map { String(name[..<$0]) }, inside(inside(key, "'", "\""), "`"))
    }

    /// `s` without one pair of the `quotes` around it (the same quote at both ends), else `s`.
    static func inside(_ s: String, _ quotes: Character...) -> String {
        guard s.count >= 2, let q = s.first, quotes.contains(q), s.last == q else { return s }
        return String(s.dropFirst().dropLast())
    }

    /// Whether `text` reads as one SQL name with an optional direction (see the type's steps).
    static func readsAsOneName(_ text: String) -> Bool {
        let c = Array(text.unicodeScalars)
        guard let first = c.first, let last = c.last, !first.properties.isWhitespace, !last.properties.isWhitespace,
              first.properties.numericType == nil else { return false }
        var i = 0
        while i < c.count {
            let u = c[i]
            if u == "`" || u == "\"" || (u == "'" && i > 0 && c[i - 1] == ".") {
                guard let close = c[(i + 1)...].firstIndex(of: u) else { return false }
                i = close + 1
                continue
            }
            let fine = u.properties.isWhitespace || u == "_" || u == "." || u == "[" || u == "]"
                || u.properties.isAlphabetic || u.properties.numericType != nil || (!u.isASCII && [.nonspacingMark, .spacingMark, .enclosingMark, .connectorPunctuation].contains(u.properties.generalCategory))
            guard fine else { return false }
            i += 1
        }
        return true
    }

    /// `text` split into words as a POSIX shell splits them (Python's `shlex.split`): spaces, tabs and line breaks
    /// separate words, `'…'` and `"…"` quote (inside `"…"`, a backslash escapes only `"` and itself), a backslash
    /// outside quotes escapes the next character. `nil` when a quote is not closed or the text ends in a backslash.
    static func shellWords(_ text: String) -> [String]? {
        var words: [String] = [], word = String.UnicodeScalarView(), inWord = false
        var quote: Unicode.Scalar?
        var it = text.unicodeScalars.makeIterator()
        while let u = it.next() {
            if let q = quote {
                if u == q {
                    quote = nil
                } else if q == "\"", u == "\\" {
                    guard let next = it.next() else { return nil }
                    if next != "\"" && next != "\\" { word.append(u) }
                    word.append(next)
                } else {
                    word.append(u)
                }
            } else if u == " " || u == "\t" || u == "\r" || u == "\n" {
                if inWord { words.append(String(word)); word = String.UnicodeScalarView(); inWord = false }
            } else if u == "'" || u == "\"" {
                quote = u
                inWord = true
            } else if u == "\\" {
                guard let next = it.next() else { return nil }
                word.append(next)
                inWord = true
            } else {
                word.append(u)
                inWord = true
            }
        }
        guard quote == nil else { return nil }
        if inWord { words.append(String(word)) }
        return words
    }
}
