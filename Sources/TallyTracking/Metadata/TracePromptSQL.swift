/// Prompt versions linked to traces (`traces/link-prompts`), in the SQL both dialects read alike: `trace_prompts`,
/// one row per link, named as MLflow names the link (``PromptLink``), and found by prompt for a search's
/// `prompt = 'name/version'` (``TraceSQL/narrowing(_:)``). A link goes with its trace.
enum TracePromptSQL {
    /// SQLite's version 17 and PostgreSQL's version 16 (`text` is the dialect's type).
    static func schema(text: String) -> String {
        """
        CREATE TABLE trace_prompts (
            trace_id \(text) NOT NULL REFERENCES traces(trace_id) ON DELETE CASCADE, prompt \(text) NOT NULL, PRIMARY KEY (trace_id, prompt));
        CREATE INDEX trace_prompts_by_prompt ON trace_prompts (prompt, trace_id);
        """
    }

    /// The tables `tally metadata migrate` copies.
    static let tables = ["trace_prompts"]

    /// Links prompts to a trace the caller knows is stored (links already there are kept), a statement per 300.
    static func insert(_ db: some SQLConnection, _ traceID: String, _ prompts: [String]) throws {
        for chunk in Array(Set(prompts)).sorted(by: binaryLess).chunks(of: 300) {
            try db.run("INSERT INTO trace_prompts (trace_id, prompt) VALUES " + Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", ")
                       + " ON CONFLICT (trace_id, prompt) DO NOTHING", chunk.flatMap { [SQLValue.text(traceID), .text($0)] })
        }
    }

    /// Links prompts to a trace, kept until the transaction ends (``TraceSQL/keep(_:_:)``); `false` when there is no
    /// such trace.
    static func link(_ db: some SQLConnection, _ traceID: String, _ prompts: [String]) throws -> Bool {
        guard try TraceSQL.keep(db, traceID) else { return false }
        try insert(db, traceID, prompts)
        return true
    }
}

extension SQLiteMetadataStore {
    /// Version 17: prompt versions linked to traces (``TracePromptSQL``).
    static let schemaVersion17 = TracePromptSQL.schema(text: "TEXT")

    public func linkPrompts(_ prompts: [String], toTrace traceID: String) throws -> Bool {
        try transaction { try with { try TracePromptSQL.link($0, traceID, prompts) } }
    }
}

extension PostgresMetadataStore {
    /// Version 16: prompt versions linked to traces (``TracePromptSQL``).
    static let schemaVersion16 = TracePromptSQL.schema(text: "TEXT COLLATE \"C\"")

    public func linkPrompts(_ prompts: [String], toTrace traceID: String) throws -> Bool {
        try write { try TracePromptSQL.link($0, traceID, prompts) }
    }
}
