extension SearchFilter {
    /// The tag that marks a registered model as a prompt (MLflow keeps prompts in the registry).
    static let promptTag = "mlflow.prompt.is_prompt"

    /// Whether a registered model satisfies every clause (a tag clause needs the tag).
    public func matches(_ m: RegisteredModel) -> Bool {
        clauses.allSatisfy { c in
            switch c.entity {
            case .attribute: return c.key == "name" && c.test(m.name)
            case .tag: return m.tags.first { $0.key == c.key }.map { c.test($0.value) } ?? false
            default: return false
            }
        }
    }

    /// Whether a model version satisfies every clause.
    public func matches(_ v: ModelVersion) -> Bool {
        clauses.allSatisfy { c in
            switch (c.entity, c.key) {
            case (.attribute, "name"): return c.test(v.name)
            case (.attribute, "version_number"): return c.test(Double(v.version))
            case (.attribute, "run_id"): return c.test(v.runID)
            case (.attribute, "source_path"): return c.test(v.source)
            case (.tag, _): return v.tags.first { $0.key == c.key }.map { c.test($0.value) } ?? false
            default: return false
            }
        }
    }

    /// MLflow's client appends `` tag.`mlflow.prompt.is_prompt` != 'true' `` to every registered-model search: that
    /// clause is dropped (prompts are left out anyway) rather than read as a tag comparison, which would drop every
    /// model without the tag. Returns whether the remaining filter asks for prompts.
    mutating func takePromptClause() -> Bool {
        clauses.removeAll { $0.entity == .tag && $0.key == Self.promptTag && $0.comparator == "!=" && $0.value == .string("true") }
        return clauses.contains { c in
            c.entity == .tag && c.key == Self.promptTag && ((c.comparator == "=" && c.value == .string("true")) || (c.comparator == "!=" && c.value == .string("false")))
        }
    }
}

/// A registry search's `order_by` entry: `key [ASC|DESC]`.
struct RegistryOrder {
    var key: String
    var ascending: Bool

    /// Parses the entries against the keys a search allows (`aliases` map other spellings to them), in MLflow's steps
    /// (``OrderKey/nameAndDirection(_:)``). With `attributeNames` (model versions), a name may say `attribute.` and
    /// lose its quotes and backquotes, as MLflow reads an experiment's; otherwise (registered models) it is taken as
    /// written.
    static func parse(_ items: [String], allowed: [String], aliases: [String: String] = [:], attributeNames: Bool = false,
                      invalidKey: (String) -> String) throws -> [RegistryOrder] {
        let keys = try items.map { item -> RegistryOrder in
            let (name, ascending) = try OrderKey.nameAndDirection(item)
            var key = name
            if attributeNames {
                if let dot = key.firstIndex(of: "."), key[..<dot] == "attribute" { key = String(key[key.index(after: dot)...]) }
                key = OrderKey.inside(OrderKey.inside(key, "'", "\""), "`")
            }
            key = aliases[key] ?? key
            guard allowed.contains(key) else { throw TrackingError.invalid(invalidKey(name)) }
            return RegistryOrder(key: key, ascending: ascending)
        }
        var seen = Set<String>()
        let dups = keys.map(\.key).filter { !seen.insert($0).inserted }
        guard dups.isEmpty else {
            throw TrackingError.invalid("`order_by` contains duplicate fields: [\(dups.map { "'\($0)'" }.joined(separator: ", "))]")
        }
        return keys
    }
}
