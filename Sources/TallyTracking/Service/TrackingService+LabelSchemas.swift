import Foundation

/// MLflow 3's label schemas (`mlflow.genai.label_schemas`; `/api/3.0/mlflow/label-schemas/…`): the questions reviewers
/// answer about traces, with MLflow's rules and messages (`mlflow/genai/label_schemas/validation.py`). Review queues
/// are in TrackingService+ReviewQueues.
extension TrackingService {
    /// The default question's name, reserved in any case and with spaces around it.
    static let defaultLabelSchemaName = "Feedback"
    /// Pages of label schemas hold 100 unless asked otherwise.
    static let defaultLabelSchemaPage = 100

    /// `label-schemas/create`. `type` is the proto enum's name (`nil` when absent or unknown); `input` the request's
    /// `input` object (the one-of). The experiment must exist and be active; the name must be free in it.
    public func createLabelSchema(experimentID: String?, name: String?, type: String?, input: JSONValue?, instruction: String?,
                                  enableComment: Bool?) throws -> LabelSchema {
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        guard let type = LabelSchemaType(protoName: type) else {
            throw TrackingError.invalid("Label schema `type` must be one of FEEDBACK or EXPECTATION; got proto enum value 0.")
        }
        let input = try Self.labelInput(input)
        try Self.checkLabelSchemaName(name)
        try Self.checkInstruction(instruction)
        try Self.checkLabelInput(input)
        let e = try liveExperiment(experimentID)
        let now = clock()
        let schema = LabelSchema(id: "ls-" + RunNames.runID(), experimentID: e, name: name, type: type, input: input, instruction: instruction,
                                 enableComment: enableComment ?? false, createdBy: nil, creationTime: now, lastUpdateTime: now, isDefault: false)
        guard try metadata.insertLabelSchema(schema) else {
            throw TrackingError(.resourceAlreadyExists, "Label schema with name '\(name)' already exists for experiment '\(experimentID)'.")
        }
        return schema
    }

    /// `label-schemas/get`: `scope` must read its experiment.
    public func labelSchema(id: String?, scope: Grants = .unrestricted) throws -> LabelSchema {
        let id = try Self.required(id, "schema_id")
        guard let s = try metadata.labelSchema(id: id) else { throw Self.noLabelSchema(id) }
        try scope.require(.read, on: .experiment(s.experimentID))
        return s
    }

    /// `label-schemas/get-by-name`: the experiment (existing and active) and the exact name.
    public func labelSchema(experimentID: String?, name: String?) throws -> LabelSchema {
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        guard let s = try metadata.labelSchema(experimentID: try liveExperiment(experimentID), name: name) else {
            throw TrackingError.notFound("Label schema with name '\(name)' not found for experiment '\(experimentID)'.")
        }
        return s
    }

    /// `label-schemas/list`: a page of the experiment's questions, newest first, and the next page's token (`nil`
    /// on the last). The experiment's default question is made the first time they are listed.
    public func labelSchemas(experimentID: String?, maxResults: Int64?, pageToken: String?) throws -> ([LabelSchema], String?) {
        let experimentID = try Self.required(experimentID, "experiment_id")
        let limit = try Self.reviewPageSize(maxResults, default: Self.defaultLabelSchemaPage)
        let offset = try PageToken.decode(pageToken)
        let e = try liveExperiment(experimentID), now = clock()
        let seed = LabelSchema(id: "ls-" + RunNames.runID(), experimentID: e, name: Self.defaultLabelSchemaName, type: .feedback, input: .text(maxLength: nil),
                               instruction: "Share any feedback on this trace.", enableComment: false, createdBy: nil, creationTime: now,
                               lastUpdateTime: now, isDefault: true)
        let found = try metadata.labelSchemas(experimentID: e, seeding: seed, offset: offset, limit: limit + 1)
        return found.count > limit ? (Array(found.prefix(limit)), PageToken.encode(offset: offset + limit)) : (found, nil)
    }

    /// `label-schemas/update`: the fields given change (`input` within its kind: a categorical's `multi_select` stays);
    /// the type never does, and the default question not at all. `scope` must manage its experiment.
    public func updateLabelSchema(id: String?, name: String?, instruction: String?, enableComment: Bool?, input: JSONValue?,
                                  scope: Grants = .unrestricted) throws -> LabelSchema {
        let id = try Self.required(id, "schema_id")
        try requireLabelSchema(.manage, id, scope)
        let newInput = try input.map { try Self.labelInput($0) }
        let now = clock()
        do {
            let updated = try metadata.updateLabelSchema(id: id) { s in
                guard !s.isDefault else { throw TrackingError.invalid("The experiment's default question cannot be edited.") }
                if let name {
                    try Self.checkLabelSchemaName(name)
                    s.name = name
                }
                if let instruction {
                    try Self.checkInstruction(instruction)
                    s.instruction = instruction
                }
                if let enableComment { s.enableComment = enableComment }
                if let newInput {
                    try Self.checkLabelInput(newInput)
                    guard newInput.kind == s.input.kind else {
                        throw TrackingError.invalid("A label schema's input type cannot be changed after creation "
                                                    + "(existing: \(s.input.className), got: \(newInput.className)).")
                    }
                    if case .categorical(_, let was) = s.input, case .categorical(_, let now) = newInput, was != now {
                        throw TrackingError.invalid("`InputCategorical.multi_select` cannot be changed after creation.")
                    }
                    s.input = newInput
                }
                s.lastUpdateTime = now
            }
            guard let updated else { throw Self.noLabelSchema(id) }
            return updated
        } catch let taken as ReviewNameTaken {
            let experimentID = (try? metadata.labelSchema(id: id))?.experimentID ?? ""
            throw TrackingError(.resourceAlreadyExists, "Label schema with name '\(taken.name)' already exists for experiment '\(experimentID)'.")
        }
    }

    /// `label-schemas/delete`: nothing to delete is no error (MLflow's); the default question cannot go. Answers
    /// already given stay (they are assessments, named after the question). `scope` must manage its experiment (with
    /// access control on, an unknown id is a 404, as MLflow's auth app looks the schema up first).
    public func deleteLabelSchema(id: String?, scope: Grants = .unrestricted) throws {
        let id = try Self.required(id, "schema_id")
        try requireLabelSchema(.manage, id, scope)
        _ = try metadata.deleteLabelSchema(id: id) { s in
            guard !s.isDefault else { throw TrackingError.invalid("The experiment's default question cannot be deleted.") }
        }
    }

    /// Throws unless `scope` may do `need` to the schema's experiment (404 when there is no such schema); nothing to
    /// check with access control off.
    func requireLabelSchema(_ need: Permission.Need, _ id: String, _ scope: Grants) throws {
        guard !scope.isUnrestricted else { return }
        guard let s = try metadata.labelSchema(id: id) else { throw Self.noLabelSchema(id) }
        try scope.require(need, on: .experiment(s.experimentID))
    }

    // MARK: Rules

    /// The `input` one-of of a request: exactly one of `pass_fail`, `categorical`, `numeric`, `text`, each an object
    /// of its fields (absent ones are the proto's defaults).
    public static func labelInput(_ v: JSONValue?) throws -> LabelInput {
        let kinds = ["pass_fail", "categorical", "numeric", "text"]
        var given: [(String, JSONValue)] = []
        if let v {
            guard case .object = v else { throw Validation.invalidType("input", repr: v.pythonRepr, type: v.pythonType) }
            given = v.pythonMembers.filter { kinds.contains($0.0) && $0.1 != .null }
        }
        guard let (kind, fields) = given.first else {
            throw TrackingError.invalid("Label schema `input` must have exactly one of `pass_fail`, `categorical`, `numeric`, or `text` set; got an empty oneof.")
        }
        guard given.count == 1 else {
            throw TrackingError.invalid("Label schema `input` must have exactly one of `pass_fail`, `categorical`, `numeric`, or `text` set; got "
                                        + given.map { "`\($0.0)`" }.joined(separator: " and ") + ".")
        }
        guard case .object = fields else { throw Validation.invalidType(kind, repr: fields.pythonRepr, type: fields.pythonType) }
        func field(_ k: String) -> JSONValue? { if let f = fields[k], f != .null { f } else { nil } }
        func string(_ k: String) throws -> String {
            guard let f = field(k) else { return "" }
            guard case .string(let s) = f else { throw Validation.invalidType(k, repr: f.pythonRepr, type: f.pythonType) }
            return s
        }
        func double(_ k: String) throws -> Double? {
            guard let f = field(k) else { return nil }
            switch f {
            case .number(let n): if let d = PythonNumber.double(n) { return d }
            case .string(let s): if let d = PythonNumber.double(s) { return d }
            default: break
            }
            throw Validation.invalidType(k, repr: f.pythonRepr, type: f.pythonType)
        }
        switch kind {
        case "pass_fail": return .passFail(positive: try string("positive_label"), negative: try string("negative_label"))
        case "categorical":
            var options: [String] = []
            if let o = field("options") {
                guard case .array(let items) = o else { throw Validation.invalidType("options", repr: o.pythonRepr, type: o.pythonType) }
                options = try items.map { i in
                    guard case .string(let s) = i else { throw Validation.invalidType("options", repr: o.pythonRepr, type: o.pythonType) }
                    return s
                }
            }
            var multi = false
            if let m = field("multi_select") {
                guard case .bool(let b) = m else { throw Validation.invalidType("multi_select", repr: m.pythonRepr, type: m.pythonType) }
                multi = b
            }
            return .categorical(options: options, multiSelect: multi)
        case "numeric": return .numeric(min: try double("min_value"), max: try double("max_value"))
        default:
            guard let m = field("max_length") else { return .text(maxLength: nil) }
            let n: Int64? = switch m {  // the proto's int64: digits, or a whole number written with a fraction or exponent
            case .number(let t): Int64(t) ?? Double(t).flatMap { $0 == $0.rounded() && abs($0) < 9.2e18 ? Int64($0) : nil }
            case .string(let s): Int64(s)
            default: nil
            }
            guard let n else {
                throw Validation.invalidType("max_length", repr: m.pythonRepr, type: m.pythonType)
            }
            return .text(maxLength: n)
        }
    }

    /// 1–250 characters, and not the default question's name (in any case, spaces around it ignored).
    static func checkLabelSchemaName(_ name: String) throws {
        guard !name.isEmpty else { throw TrackingError.invalid("Label schema `name` must be a non-empty string; got ''.") }
        let n = name.unicodeScalars.count
        guard n <= 250 else { throw TrackingError.invalid("Label schema `name` must be at most 250 characters; got \(n).") }
        guard pythonStrip(name).lowercased() != defaultLabelSchemaName.lowercased() else {
            throw TrackingError.invalid("`\(name)` is reserved for the experiment's default question and cannot be used for another label schema.")
        }
    }

    /// At most 1,000 characters.
    static func checkInstruction(_ instruction: String?) throws {
        guard let n = instruction?.unicodeScalars.count, n > 1000 else { return }
        throw TrackingError.invalid("Label schema `instruction` must be at most 1000 characters; got \(n).")
    }

    /// MLflow's limits on each kind of input.
    static func checkLabelInput(_ input: LabelInput) throws {
        switch input {
        case .passFail(let positive, let negative):
            for (field, label) in [("positive_label", positive), ("negative_label", negative)] {
                guard !label.isEmpty else { throw TrackingError.invalid("`InputPassFail.\(field)` must be a non-empty string; got ''.") }
                let n = label.unicodeScalars.count
                guard n <= 64 else { throw TrackingError.invalid("`InputPassFail.\(field)` must be at most 64 characters; got \(n).") }
            }
            guard positive != negative else {
                throw TrackingError.invalid("`InputPassFail.positive_label` and `negative_label` must be distinct; got \(PythonRepr.string(positive)) for both.")
            }
        case .categorical(let options, _):
            guard !options.isEmpty else { throw TrackingError.invalid("`InputCategorical.options` must be a non-empty list; got [].") }
            guard options.count <= 10 else {
                throw TrackingError.invalid("`InputCategorical.options` must have at most 10 entries; got \(options.count).")
            }
            var seen = Set<String>()
            for o in options {
                guard !o.isEmpty else { throw TrackingError.invalid("`InputCategorical.options` entries must be non-empty strings; got ''.") }
                let n = o.unicodeScalars.count
                guard n <= 64 else {
                    throw TrackingError.invalid("`InputCategorical.options` entries must be at most 64 characters; got \(n) for \(PythonRepr.string(o)).")
                }
                guard seen.insert(o).inserted else {
                    throw TrackingError.invalid("`InputCategorical.options` must be deduplicated; \(PythonRepr.string(o)) appears twice.")
                }
            }
        case .numeric(let lo, let hi):
            if let lo, let hi, lo >= hi {  // NaN compares false, as in Python
                throw TrackingError.invalid("`InputNumeric.min_value` must be strictly less than `max_value`; got min=\(Validation.pythonFloat(lo)), "
                                            + "max=\(Validation.pythonFloat(hi)).")
            }
        case .text(let maxLength):
            if let maxLength, maxLength < 1 { throw TrackingError.invalid("`InputText.max_length` must be at least 1; got \(maxLength).") }
        }
    }

    /// The experiment's canonical id when it exists and is active; MLflow's 404 otherwise (a deleted one included, as
    /// its review stores look experiments up among the active ones).
    func liveExperiment(_ id: String) throws -> String {
        let e = try experiment(id: id)
        guard e.lifecycleStage == .active else { throw TrackingError.notFound("No Experiment with id=\(id) exists") }
        return e.experimentID
    }

    /// A page size of the review lists: 1–50,000 (`default` when not given).
    static func reviewPageSize(_ maxResults: Int64?, default: Int) throws -> Int {
        guard let maxResults else { return `default` }
        guard (1...Int64(Validation.maxSearchResults)).contains(maxResults) else {
            throw TrackingError.invalid("max_results must be between 1 and \(Validation.maxSearchResults). "
                                        + "See the API docs for more information about request parameters.")
        }
        return Int(maxResults)
    }

    /// Python's `str.strip()`: whitespace off both ends.
    static func pythonStrip(_ s: String) -> String { PythonNumber.strip(s) }

    static func noLabelSchema(_ id: String) -> TrackingError { TrackingError.notFound("Label schema with id '\(id)' not found.") }
}
