import Foundation

/// MLflow 2's record of a run's logged models (`runs/log-model`, which MLflow 2 clients call after every
/// `mlflow.<flavor>.log_model` and MLflow 3's Spark flavour still calls): a summary of each model's `MLmodel`
/// appended to the run tag `mlflow.log-model.history`, a JSON list, as MLflow's `record_logged_model` keeps it.
extension TrackingService {
    /// The run tag that lists the run's models (MLflow's `MLFLOW_LOGGED_MODELS`).
    public static let modelHistoryTag = "mlflow.log-model.history"
    /// The `MLmodel` fields MLflow's server requires.
    static let modelHistoryFields = ["artifact_path", "flavors", "run_id", "utc_time_created"]

    /// `runs/log-model`: appends the summary of `modelJSON` (an `MLmodel` as JSON) to the active run's history. The
    /// tag is read and written under the run's lock, so concurrent calls each add theirs; it is kept whole, however
    /// long it grows (MLflow's server checks the 8,000-character limit and then stores the whole value anyway).
    public func recordLoggedModel(runID: String, modelJSON: String) throws {
        guard let parsed = try? JSONParser.parse(Array(modelJSON.utf8)) else {
            throw TrackingError.invalid("Malformed model info. \n \(modelJSON) \n is not a valid JSON.")
        }
        guard case .object = parsed else { throw TrackingError.invalid("Malformed model info. \n \(modelJSON) \n is not a JSON object.") }
        let missing = Self.modelHistoryFields.filter { parsed[$0] == nil }
        guard missing.isEmpty else {
            throw TrackingError.invalid("Model json is missing mandatory fields: {" + missing.map { "'\($0)'" }.joined(separator: ", ") + "}")
        }
        let entry = try Self.modelHistoryEntry(parsed, now: Date(timeIntervalSince1970: Double(clock()) / 1000))
        try Validation.runID(runID)
        let append = { (current: String?) throws -> String in
            var history: [JSONValue] = []
            if let current {
                guard case .array(let stored)? = try? JSONParser.parse(Array(current.utf8)) else {
                    throw TrackingError.invalid("The tag \(Self.modelHistoryTag) of run \(runID) is not a JSON list, so no model can be added to it")
                }
                history = stored
            }
            history.append(entry)
            return JSONValue.array(history).pythonDumps()
        }
        // Nothing written (the run missing or not active): MLflow's error for the run as it is now.
        _ = try whileActive(runID) { try metadata.updateRunTag(activeRunID: runID, key: Self.modelHistoryTag, append) ? true : nil }
    }

    /// What MLflow's `Model.get_tags_dict` keeps of an `MLmodel`: `run_id` and `artifact_path` (unless null),
    /// `utc_time_created` (its text; the time now when it is empty), `model_uuid` (null when absent) and each
    /// flavor's configuration without its `config` member.
    static func modelHistoryEntry(_ model: JSONValue, now: Date) throws -> JSONValue {
        var out: [(String, JSONValue)] = []
        for key in ["run_id", "artifact_path"] {
            if let v = model[key], v != .null { out.append((key, v)) }
        }
        out.append(("utc_time_created", .string(Self.createdText(model["utc_time_created"], now: now))))
        out.append(("model_uuid", model["model_uuid"] ?? .null))
        var flavors: [(String, JSONValue)] = []
        switch model["flavors"] {
        case nil, .null?: break
        case .object(let members)?:
            // A repeated flavor stands where it first appears with its last value, as `json.loads` builds a dict.
            var seen = Set<String>()
            for (name, _) in members where seen.insert(name).inserted {
                let config = members.last { $0.0 == name }!.1
                if case .object(let fields) = config {
                    flavors.append((name, .object(fields.filter { $0.0 != "config" })))
                } else {
                    flavors.append((name, config))
                }
            }
        case let other?:
            throw TrackingError.invalid("Invalid value \(other.pythonRepr) for the model's 'flavors': it must be an object of flavor configurations")
        }
        out.append(("flavors", .object(flavors)))
        return .object(out)
    }

    /// Python's `str(utc_time_created or now)`: a string as it is, a number as Python prints it; an empty value (null,
    /// "", 0, false, [], {}) the
    /// time now as `datetime.utcnow()` prints it (`2026-12-06 07:01:02.345678`, no fraction on a whole second); anything else as JSON text.
    static func createdText(_ v: JSONValue?, now: Date) -> String {
        switch v {
        case .string(let s)? where !s.isEmpty: return s
        case .bool(true)?: return "True"
        case .number(let n)? where Double(n) != 0: return JSONValue.pythonNumber(n)
        case .array(let a)? where !a.isEmpty: return JSONValue.array(a).pythonDumps()
        case .object(let m)? where !m.isEmpty: return JSONValue.object(m).pythonDumps()
        default:
            var t = time_t(now.timeIntervalSince1970.rounded(.down))
            var tm = tm()
            gmtime_r(&t, &tm)
            let micros = Int((now.timeIntervalSince1970 - Double(t)) * 1_000_000)
            let seconds = String(format: "%04d-%02d-%02d %02d:%02d:%02d", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                                 Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
            return micros == 0 ? seconds : seconds + String(format: ".%06d", micros)  // Python prints no fraction of 0
        }
    }
}
