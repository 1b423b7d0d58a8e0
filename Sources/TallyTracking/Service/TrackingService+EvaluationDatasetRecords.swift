import Crypto

/// An evaluation dataset's records (`datasets/{id}/records`): added or merged by their inputs, read in pages,
/// deleted by id.
extension TrackingService {
    /// A records page's size when `max_results` is absent or 0, MLflow's.
    public static let defaultDatasetRecordPage: Int64 = 1000
    /// The most records one page holds: a larger `max_results` gets this many and the next page's token (MLflow's
    /// client follows tokens), so one request never builds an answer of every record.
    public static let maxDatasetRecordPage: Int64 = 10_000
    /// Where a record may come from (`source.source_type`), MLflow's.
    public static let datasetRecordSourceTypes = ["UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE"]

    /// One record of an upsert, as sent.
    struct RecordInput {
        var inputs: JSONValue
        var inputHash: String
        /// Whether `outputs` was sent (null included: it clears them).
        var hasOutputs: Bool
        var outputs: JSONValue?
        var expectations: JSONValue?
        var tags: JSONValue?
        var source: JSONValue?
        var sourceType: String?
        var sourceID: String?
        /// The `mlflow.user` tag.
        var user: String?
    }

    /// `datasets/{id}/records` (POST): adds records, given as the text of a JSON list, or merges each into the record
    /// with the same inputs (inputs compared as Python's `json.dumps(sort_keys=True)` writes them, earlier records of
    /// the same request included): outputs sent replace the record's (null clears them), expectations and tags are
    /// merged key by key. The dataset's schema gains the new fields' types, its profile counts its records, its digest
    /// and update time are renewed, and its `last_updated_by` is the last `mlflow.user` tag sent. All or nothing.
    /// Returns how many records were added and how many merged.
    public func upsertDatasetRecords(id: String, records: String?) throws -> (inserted: Int, updated: Int) {
        guard let records, !records.isEmpty else { throw Validation.missing("records") }
        let items = try Self.recordInputs(records)
        let now = clock()
        let result = try metadata.changeDataset(id: id) { edit -> (Int, Int) in
            var byHash: [String: DatasetRecord] = [:]
            for r in try edit.records(inputHashes: items.map(\.inputHash)) { byHash[r.inputHash] = r }
            var order: [String] = [], changed: [String: DatasetRecord] = [:]
            var inserted = 0, updated = 0
            var user: String?
            var schema = DatasetSchema(parsing: edit.dataset.schema)
            for item in items {
                if let u = item.user { user = u }
                var r: DatasetRecord
                if var old = byHash[item.inputHash] {
                    if item.hasOutputs { old.outputs = item.outputs }
                    if let e = item.expectations, !e.pythonMembers.isEmpty { old.expectations = Self.merged(old.expectations ?? .object([]), e) }
                    if let t = item.tags, !t.pythonMembers.isEmpty { old.tags = Self.merged(old.tags, t) }
                    old.lastUpdateTime = now
                    if let u = item.user { old.lastUpdatedBy = u }
                    r = old
                    updated += 1
                } else {
                    r = DatasetRecord(id: "dr-" + RunNames.runID(), datasetID: id, inputHash: item.inputHash, inputs: item.inputs,
                                      outputs: item.hasOutputs ? item.outputs : .object([]), expectations: item.expectations,
                                      tags: item.tags ?? .object([]), source: item.source, sourceID: item.sourceID, sourceType: item.sourceType,
                                      createdTime: now, lastUpdateTime: now, createdBy: item.user, lastUpdatedBy: item.user)
                    inserted += 1
                }
                byHash[item.inputHash] = r
                if changed.updateValue(r, forKey: r.id) == nil { order.append(r.id) }
                schema.add(item)
            }
            var d = edit.dataset
            if !items.isEmpty {  // none sent: only the digest and update time are renewed, as in MLflow
                try edit.save(order.compactMap { changed[$0] })
                d.schema = schema.text
                d.profile = Self.datasetProfile(try edit.recordCount())
            }
            d.digest = Self.datasetDigest(name: d.name, time: now)
            d.lastUpdateTime = now
            if let user { d.lastUpdatedBy = user }
            try edit.update(d)
            return (inserted, updated)
        }
        guard let result else { throw TrackingError.notFound("Evaluation dataset with id '\(id)' not found") }
        return result
    }

    /// `datasets/{id}/records` (GET): a page of records, oldest first (then by id), `maxResults` of them (absent or 0:
    /// 1,000), and the token of the next page (MLflow's: base64 of `time:id`; a bare number, its older form, skips that
    /// many). An unknown dataset has none.
    public func datasetRecords(id: String, maxResults: Int64?, pageToken: String?) throws -> SearchPage<DatasetRecord> {
        let asked = maxResults.flatMap { $0 == 0 ? nil : $0 } ?? Self.defaultDatasetRecordPage
        guard asked >= 1 else { throw TrackingError.invalid("Invalid value \(asked) for parameter 'max_results' supplied. It must be a positive integer") }
        let limit = min(asked, Self.maxDatasetRecordPage)
        let cursor = try Self.recordCursor(pageToken)
        var page = try metadata.datasetRecords(id: id, after: cursor, limit: Int(limit) + 1)
        var next: String?
        if page.count > limit {
            page.removeLast()
            if let last = page.last { next = PageToken.base64(Array("\(last.createdTime):\(last.id)".utf8)) }
        }
        return SearchPage(items: page, nextPageToken: next)
    }

    /// `datasets/{id}/records` (DELETE): deletes the dataset's records of these ids (others, and an unknown dataset, are
    /// ignored) and recounts its profile. Returns how many were deleted.
    public func deleteDatasetRecords(id: String, recordIDs: [String]) throws -> Int {
        try metadata.changeDataset(id: id) { edit -> Int in
            let n = try edit.deleteRecords(ids: recordIDs)
            if n > 0 {
                var d = edit.dataset
                d.profile = Self.datasetProfile(try edit.recordCount())
                try edit.update(d)
            }
            return n
        } ?? 0
    }

    /// What identifies a record in its dataset, as MLflow computes it: the SHA-256 (hex) of its inputs as Python's
    /// `json.dumps(inputs, sort_keys=True)` writes them.
    public static func datasetInputHash(_ inputs: JSONValue) -> String {
        Secrets.hex(SHA256.hash(data: Array(inputs.pythonDumps(sortKeys: true).utf8)))
    }

    /// `{"num_records": n}`, as MLflow writes a dataset's profile.
    static func datasetProfile(_ count: Int) -> String {
        JSONValue.object([("num_records", .number(String(count)))]).pythonDumps()
    }

    /// A records page token: `base64("time:id")`, or a number of records to skip (MLflow's older tokens).
    static func recordCursor(_ token: String?) throws -> DatasetRecordCursor? {
        guard let token, !token.isEmpty else { return nil }
        if let bytes = PageToken.unbase64(token), let text = String(validating: bytes, as: UTF8.self), let colon = text.firstIndex(of: ":"),
           let time = Int64(text[..<colon]) {
            return .after(time: time, id: String(text[text.index(after: colon)...]))
        }
        if let n = Int(token), n >= 0 { return .offset(n) }
        throw TrackingError.invalid("Invalid page token '\(token)'")
    }

    /// An object with `update`'s members set over `base`'s (Python's `dict.update`: a key already there keeps its place).
    static func merged(_ base: JSONValue, _ update: JSONValue) -> JSONValue {
        .object(JSONValue.object(base.pythonMembers + update.pythonMembers).pythonMembers)  // each key once: its first place, its last value
    }

    /// The records of an upsert, from the text of a JSON list of objects. A field given as `NaN` (a missing cell of a
    /// pandas DataFrame, as MLflow's client sends one) counts as absent.
    static func recordInputs(_ text: String) throws -> [RecordInput] {
        func invalid(_ why: String) -> TrackingError { TrackingError.invalid("Invalid value for parameter 'records': \(why)") }
        let list: JSONValue
        do { list = try JSONParser.parse(Array(text.utf8), refusingNUL: true) } catch let e as JSONSyntaxError {
            throw invalid("not JSON (\(e.message) at byte \(e.offset))")
        }
        guard case .array(let items) = list else { throw invalid("expected the text of a JSON list of records, got \(list.pythonRepr.prefix(codePoints: 200))") }
        return try items.enumerated().map { i, item in
            guard case .object = item else { throw invalid("record \(i) is not a JSON object") }
            func field(_ name: String) -> JSONValue? {
                guard let v = item[name] else { return nil }
                if case .number("NaN") = v { return nil }
                return v
            }
            func object(_ name: String) throws -> JSONValue? {
                guard let v = field(name) else { return nil }
                switch v {
                case .null: return nil
                case .object: return v
                default: throw invalid("record \(i)'s '\(name)' must be a JSON object, got \(v.pythonRepr.prefix(codePoints: 200))")
                }
            }
            let inputs = try object("inputs") ?? .object([])
            let tags = try object("tags")
            var r = RecordInput(inputs: inputs, inputHash: datasetInputHash(inputs),
                                hasOutputs: field("outputs") != nil, outputs: field("outputs").flatMap { if case .null = $0 { nil } else { $0 } },
                                expectations: try object("expectations"), tags: tags)
            if let u = tags?["mlflow.user"], u != .null { r.user = u.pythonScalarText ?? u.pythonDumps() }
            if let source = try object("source") {
                var data = JSONValue.object([])
                if case .object? = source["source_data"] { data = source["source_data"]! }
                guard case .string(let given)? = source["source_type"] else { throw invalid("record \(i)'s 'source' needs a 'source_type' string") }
                let type = given.uppercased()
                guard datasetRecordSourceTypes.contains(type) else {
                    throw TrackingError.invalid("Invalid dataset record source type: \(type). Valid source types: "
                        + "[" + datasetRecordSourceTypes.map { "'\($0)'" }.joined(separator: ", ") + "]")
                }
                let members: [(String, JSONValue)] = [("source_type", .string(type)), ("source_data", data)]
                r.source = .object(members)
                r.sourceType = type
                if let v = data[type == "TRACE" ? "trace_id" : "source_id"], v != .null { r.sourceID = v.pythonScalarText ?? v.pythonDumps() }
            }
            return r
        }
    }
}

/// The types of a dataset's record fields, as MLflow keeps them (`{"inputs": {…}, "outputs": {…}, "expectations":
/// {…}, "version": "1.0"}`): a field's first type stays, fields are never removed. Outputs that are not an object
/// are one type (`"outputs": "string"`); object outputs arriving after that add nothing (MLflow fails there).
struct DatasetSchema {
    /// A part's fields in the order first seen, and which keys it has (by code points, as Python tells keys apart).
    struct Fields {
        var list: [(String, String)] = []
        var keys = Set<[UInt32]>()

        init(_ list: [(String, String)] = []) {
            for (k, t) in list { add(k, t) }
        }

        mutating func add(_ key: String, _ type: String) {
            guard keys.insert(key.unicodeScalars.map(\.value)).inserted else { return }
            list.append((key, type))
        }
    }

    var inputs = Fields()
    /// The outputs' field types, or the outputs' own type.
    var outputs = Fields()
    var outputsType: String?
    var expectations = Fields()

    /// The schema stored (`nil` or unreadable: an empty one).
    init(parsing text: String?) {
        guard let text, let v = try? JSONParser.parse(Array(text.utf8)) else { return }
        func fields(_ o: JSONValue?) -> Fields { Fields(o?.pythonMembers.compactMap { k, v in v.pythonScalarText.map { (k, $0) } } ?? []) }
        inputs = fields(v["inputs"])
        if case .string(let s)? = v["outputs"] { outputsType = s } else { outputs = fields(v["outputs"]) }
        expectations = fields(v["expectations"])
    }

    mutating func add(_ r: TrackingService.RecordInput) {
        Self.add(r.inputs, to: &inputs)
        if let o = r.outputs {
            if case .object = o {
                if outputsType == nil { Self.add(o, to: &outputs) }
            } else if outputs.list.isEmpty, outputsType == nil {
                outputsType = o.schemaType
            }
        }
        if let e = r.expectations { Self.add(e, to: &expectations) }
    }

    static func add(_ o: JSONValue, to fields: inout Fields) {
        for (k, v) in o.pythonMembers { fields.add(k, v.schemaType) }
    }

    /// The schema's text, as MLflow writes it.
    var text: String {
        func object(_ f: Fields) -> JSONValue { .object(f.list.map { ($0.0, .string($0.1)) }) }
        return JSONValue.object([("inputs", object(inputs)), ("outputs", outputsType.map(JSONValue.string) ?? object(outputs)),
                                 ("expectations", object(expectations)), ("version", .string("1.0"))]).pythonDumps()
    }
}
