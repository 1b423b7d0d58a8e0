/// Token usage and cost: a span's, as MLflow's translation reads it from another convention, and a trace's, as
/// MLflow's `log_spans` sums its spans' (`aggregate_usage_from_span_nodes`): a span whose ancestor has a value is
/// not counted again (a framework that puts its children's total on the parent is not counted twice).
enum SpanUsage {
    /// The token counts a trace's info holds, in the order MLflow writes them (its columns' order).
    static let tokenKeys = ["input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                            "cache_creation_input_tokens_above_1hr"]
    /// The counts every span total has (the others only when a span has them).
    static let summedTokenKeys = Array(tokenKeys.prefix(3))
    /// The costs, in MLflow's order.
    static let costKeys = ["input_cost", "output_cost", "total_cost"]

    /// A span in the sum: its id, its parent's, and its usage or cost object (`nil`: none).
    struct Node: Sendable, Equatable {
        var spanID: String
        var parentID: String?
        var data: JSONValue?

        /// The node of a span whose attributes hold `value` (stored JSON text, or the object itself).
        init(spanID: String, parentID: String?, value: JSONValue?) {
            self.spanID = spanID
            self.parentID = parentID
            let loaded = value?.jsonLoaded
            if case .object? = loaded { data = loaded } else { data = nil }
        }
    }

    /// The usage the first convention that counts tokens gives the span (`_get_token_usage`).
    static func translated(_ a: SpanAttributes) throws -> JSONValue? {
        for c in SpanConvention.allCases {
            let input = try c.tokens(a, .input), output = try c.tokens(a, .output)
            var total = try c.tokens(a, .total)
            if total == nil, let input, let output { total = input + output }
            guard input != nil || output != nil || total != nil else { continue }
            var usage: [(String, JSONValue)] = []
            if let input { usage.append(("input_tokens", input.json)) }
            if let output { usage.append(("output_tokens", output.json)) }
            if let total { usage.append(("total_tokens", total.json)) }
            if let read = try c.tokens(a, .cacheRead) { usage.append(("cache_read_input_tokens", read.json)) }
            if let write = try c.tokens(a, .cacheWrite) { usage.append(("cache_creation_input_tokens", write.json)) }
            return .object(usage)
        }
        return nil
    }

    /// The sum over a trace's spans (`nil`: no span has a value): `keys` always, `optional` where a counted span
    /// has them. Throws where Python's sum raises (a value that is not a number).
    static func sum(_ nodes: [Node], keys: [String], optional: [String], float: Bool) throws -> [String: PyNumber]? {
        guard nodes.contains(where: { $0.data != nil }) else { return nil }  // the usual batch: nothing to sum
        let zero: PyNumber = float ? .float(0) : .int(0)
        var totals = Dictionary(uniqueKeysWithValues: keys.map { ($0, zero) })
        var hasData = false
        let ids = Set(nodes.map(\.spanID))
        var children: [String: [Int]] = [:], stack: [(Int, Bool)] = []
        for (i, n) in nodes.enumerated() {
            if let p = n.parentID, !p.isEmpty, ids.contains(p) { children[p, default: []].append(i) } else { stack.append((i, false)) }
        }
        while let (i, ancestorHasData) = stack.popLast() {
            let data = nodes[i].data
            if let data, !ancestorHasData {
                for k in keys {
                    guard let v = data.pythonMember(k).map({ PyNumber($0) }) ?? zero else { throw SpanConversionError(failedToLog: true) }
                    totals[k] = totals[k]! + v
                }
                for k in optional {
                    guard let raw = data.pythonMember(k) else { continue }
                    guard let v = PyNumber(raw) else { throw SpanConversionError(failedToLog: true) }
                    totals[k] = (totals[k] ?? zero) + v
                }
                hasData = true
            }
            for c in children[nodes[i].spanID] ?? [] { stack.append((c, ancestorHasData || data != nil)) }
        }
        return hasData ? totals : nil
    }

    /// A trace's token usage from its spans' nodes.
    static func tokens(_ nodes: [Node]) throws -> [String: PyNumber]? {
        try sum(nodes, keys: summedTokenKeys, optional: Array(tokenKeys.dropFirst(3)), float: false)
    }

    /// A trace's cost from its spans' nodes.
    static func cost(_ nodes: [Node]) throws -> [String: PyNumber]? { try sum(nodes, keys: costKeys, optional: [], float: true) }

    /// The counts a trace's `mlflow.trace.tokenUsage` text holds as MLflow's columns would (each a 64-bit integer).
    static func tokenColumns(_ text: String?) -> [String: JSONValue] { givenTokenColumns(text).compactMapValues { $0 } }

    /// The costs a trace's `mlflow.trace.cost` text holds as MLflow's columns would (each a finite float).
    static func costColumns(_ text: String?) -> [String: JSONValue] { givenCostColumns(text).compactMapValues { $0 } }

    /// The columns `mlflow.trace.tokenUsage` text names (`analytics_columns_from_metadata`), each its count or `nil`
    /// when the value is not one (MLflow then clears the column).
    static func givenTokenColumns(_ text: String?) -> [String: JSONValue?] {
        columns(text, keys: tokenKeys) { v in
            if case .string(let s) = v { return decimalCount(s) }
            return PyNumber(v)?.tokenCount.map { .number(String($0)) }
        }
    }

    /// The columns `mlflow.trace.cost` text names, each its finite float or `nil`.
    static func givenCostColumns(_ text: String?) -> [String: JSONValue?] {
        columns(text, keys: costKeys) { v in PyNumber.finiteFloat(v).map { PyNumber.float($0).json } }
    }

    private static func columns(_ text: String?, keys: [String], _ convert: (JSONValue) -> JSONValue?) -> [String: JSONValue?] {
        guard let text, let obj = try? JSONParser.parse(Array(text.utf8)), case .object = obj else { return [:] }
        var out: [String: JSONValue?] = [:]
        for k in keys { if let v = obj.pythonMember(k) { out[k] = .some(convert(v)) } }
        return out
    }

    /// What a client's `mlflow.trace.tokenUsage` or `mlflow.trace.cost` (`key`) in a trace's info makes of the
    /// trace's (`existing`, `nil` for a new trace), as MLflow's columns take it: each count it names set (or cleared,
    /// when not a count), the others kept; `nil` when no count is left.
    static func startTraceText(_ key: String, given: String, existing: String?) -> String? {
        let tokens = key == TraceKeys.tokenUsage
        var columns = tokens ? tokenColumns(existing) : costColumns(existing)
        for (k, v) in tokens ? givenTokenColumns(given) : givenCostColumns(given) { columns[k] = v }
        return render(columns, keys: tokens ? tokenKeys : costKeys)
    }

    /// `token_count_or_none` of a string: `Decimal(text)` when integral and in range.
    private static func decimalCount(_ s: String) -> JSONValue? {
        PyNumber.decimalInteger(s).flatMap { Int64(exactly: $0) }.map { .number(String($0)) }
    }

    /// The text MLflow renders its columns as (`json.dumps` of the present ones, in their order); `nil` when none is.
    static func render(_ columns: [String: JSONValue], keys: [String]) -> String? {
        let present = keys.compactMap { k in columns[k].map { (k, $0) } }
        return present.isEmpty ? nil : JSONValue.object(present).pythonDumps()
    }

    /// A trace's new `mlflow.trace.tokenUsage`: `existing` (its text) with the counts of `sum` written over it.
    static func tokenText(_ sum: [String: PyNumber], over existing: String?) -> String? {
        var columns = tokenColumns(existing)
        for k in tokenKeys { if let c = sum[k]?.tokenCount { columns[k] = .number(String(c)) } }
        return render(columns, keys: tokenKeys)
    }

    /// A trace's new `mlflow.trace.cost`: `existing` with the costs of `sum` written over it.
    static func costText(_ sum: [String: PyNumber], over existing: String?) -> String? {
        var columns = costColumns(existing)
        for k in costKeys { if let c = sum[k]?.finiteFloat { columns[k] = PyNumber.float(c).json } }
        return render(columns, keys: costKeys)
    }
}

extension SpanConvention {
    /// A token count a convention reads.
    enum TokenCount { case input, output, total, cacheRead, cacheWrite }

    /// The count, as MLflow's `_parse_int_attribute` makes it of what this convention reads.
    func tokens(_ a: SpanAttributes, _ which: TokenCount) throws -> PyNumber? {
        switch self {
        case .claudeCode:
            guard claudeKind(a) == "claude_code.llm_request" else { return nil }
            switch which {
            case .input:
                guard let input = try claudeInt(a, tokenKeys.input!) else { return nil }
                return input + (try claudeInt(a, tokenKeys.cacheRead!) ?? .int(0)) + (try claudeInt(a, tokenKeys.cacheWrite!) ?? .int(0))
            case .output: return try claudeInt(a, tokenKeys.output!)
            case .total: return nil
            case .cacheRead: return try claudeInt(a, tokenKeys.cacheRead!)
            case .cacheWrite: return try claudeInt(a, tokenKeys.cacheWrite!)
            }
        case .voltAgent:
            let keys: [String]
            switch which {
            case .input: keys = ["usage.prompt_tokens", "llm.usage.prompt_tokens"]
            case .output: keys = ["usage.completion_tokens", "llm.usage.completion_tokens"]
            case .total: keys = ["usage.total_tokens", "llm.usage.total_tokens"]
            case .cacheRead, .cacheWrite: return nil
            }
            let first = a[keys[0]]
            return Self.parsedInt(first.map { $0.pythonTruthy } == true ? first : a[keys[1]])
        default:
            let k = tokenKeys
            switch which {
            case .input: return k.input.flatMap { Self.parsedInt(a[$0]) }
            case .output: return k.output.flatMap { Self.parsedInt(a[$0]) }
            case .total: return k.total.flatMap { Self.parsedInt(a[$0]) }
            case .cacheRead: return k.cacheRead.flatMap { Self.parsedInt(a[$0]) }
            case .cacheWrite:
                guard let key = k.cacheWrite else { return nil }
                if [.genAI, .geminiCLI, .liveKit].contains(self), a[key] == nil { return Self.parsedInt(a[Self.legacyCacheWriteKey]) }
                return Self.parsedInt(a[key])
            }
        }
    }

    /// MLflow's `_parse_int_attribute` of a stored value: an integer (or bool) its JSON holds, or that its JSON
    /// string or its text reads as with Python's `int`; `nil` otherwise.
    static func parsedInt(_ v: JSONValue?) -> PyNumber? {
        guard let v else { return nil }
        switch v {
        case .bool(let b): return .bool(b)
        case .number: return PyNumber(v).flatMap { $0.asInt == nil ? nil : $0 }
        case .string(let s):
            if let parsed = try? JSONParser.parse(Array(s.utf8)) {
                switch parsed {
                case .bool(let b): return .bool(b)
                case .number: if let n = PyNumber(parsed), n.asInt != nil { return n }
                case .string(let inner): if let i = PyNumber.pythonInt(inner) { return .int(i) }
                default: break
                }
            }
            return PyNumber.pythonInt(s).map { .int($0) }
        default: return nil
        }
    }

    /// Claude Code's `_get_int`: Python's `int` of the attribute's decoded value (a float truncated).
    private func claudeInt(_ a: SpanAttributes, _ key: String) throws -> PyNumber? {
        guard let v = a[key]?.jsonLoaded else { return nil }
        switch v {
        case .null, .array, .object: return nil
        case .bool(let b): return .int(b ? 1 : 0)
        case .string(let s): return PyNumber.pythonInt(s).map { .int($0) }
        case .number:
            switch PyNumber(v) {
            case .float(let d)?: return try PyNumber.truncated(d).map { .int($0) }
            case let n?: return n
            case nil: return nil
            }
        }
    }
}
