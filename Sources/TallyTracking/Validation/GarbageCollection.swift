/// What `tally gc` purges, in the terms of MLflow's `mlflow gc` (its options, their parsing and its messages live
/// here once): the runs, logged models and experiments in the `deleted` stage, optionally only those named, and only
/// those older than `--older-than`.
public struct GarbageCollection: Sendable, Equatable {
    /// `--older-than` as given (`#d#h#m#s`), for the messages; `nil` without it.
    public let olderThan: String?
    /// Its span in milliseconds (0 without it).
    public let ageMillis: Int64
    /// `--run-ids`: these runs (each must be deleted and, with an age, old enough); `nil`: every deleted run old enough.
    public let runIDs: [String]?
    /// `--experiment-ids`: these experiments, checked all before anything is deleted; `nil`: every deleted one old
    /// enough. Each list restricts only its own kind, as in MLflow.
    public let experimentIDs: [String]?
    /// `--logged-model-ids`: these logged models; `nil`: every deleted one old enough.
    public let loggedModelIDs: [String]?

    /// A request from the command's options: id lists comma-separated as MLflow splits them (untrimmed; an empty list
    /// is no list), `olderThan` parsed by ``milliseconds(_:)``.
    public init(olderThan: String? = nil, runIDs: String? = nil, experimentIDs: String? = nil, loggedModelIDs: String? = nil) throws {
        self.olderThan = olderThan
        ageMillis = try olderThan.map(Self.milliseconds) ?? 0
        func list(_ s: String?) -> [String]? {
            guard let s, !s.isEmpty else { return nil }
            return s.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        self.runIDs = list(runIDs)
        self.experimentIDs = list(experimentIDs)
        self.loggedModelIDs = list(loggedModelIDs)
    }

    /// Whether ages are checked (MLflow: only for a non-empty `--older-than`; `""` parses as no time at all).
    public var checksAge: Bool { olderThan?.isEmpty == false }

    /// Longest span Python's `timedelta` holds, in days (longer is an error in MLflow too).
    static let maxDays = 999_999_999.0

    /// `#d#h#m#s` in milliseconds, as MLflow reads `--older-than`: days, hours, minutes and seconds, each optional but
    /// in that order, each a run of digits and dots read as a decimal (`1.5d`, `.5h`); the sum rounded to whole
    /// microseconds, then truncated to milliseconds. `""` is 0.
    public static func milliseconds(_ s: String) throws -> Int64 {
        let bytes = Array(s.utf8)
        var i = 0, seconds = 0.0
        for (unit, scale) in [(UInt8(ascii: "d"), 86_400.0), (UInt8(ascii: "h"), 3_600.0), (UInt8(ascii: "m"), 60.0), (UInt8(ascii: "s"), 1.0)] {
            var j = i
            while j < bytes.count, bytes[j] == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[j]) { j += 1 }
            guard j > i, j < bytes.count, bytes[j] == unit else { continue }  // this unit left out
            // MLflow's `float()` of "1.2.3" fails with a traceback; here it is the message of a string that does not parse.
            guard let n = Double(String(decoding: bytes[i..<j], as: UTF8.self)) else { throw unparsable(s) }
            seconds += n * scale
            i = j + 1
        }
        guard i == bytes.count else { throw unparsable(s) }
        guard seconds < (maxDays + 1) * 86_400 else {
            throw TrackingError.invalid("'\(s)' is longer than the longest span, \(Int(maxDays)) days")
        }
        let micros = (seconds * 1e6).rounded(.toNearestOrEven)
        return Int64((micros / 1e6 * 1000).rounded(.towardZero))
    }

    static func unparsable(_ s: String) -> TrackingError {
        TrackingError.invalid("Could not parse any time information from '\(s)'. Examples of valid strings: '8h', '2d8h5m20s', '2m4s'")
    }

    // MLflow's messages for what cannot be purged.

    static func runNotDeleted(_ id: String) -> TrackingError {
        TrackingError.invalid("Run \(id) is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.")
    }

    func runTooYoung(_ id: String) -> TrackingError {
        TrackingError.invalid("Run \(id) is not older than the required age. Only runs older than \(olderThan ?? "") can be deleted.")
    }

    static func loggedModelNotDeleted(_ id: String) -> TrackingError {
        TrackingError.invalid("Logged model \(id) is not in `deleted` lifecycle stage. Only logged models in `deleted` lifecycle stage can be deleted.")
    }

    func loggedModelTooYoung(_ id: String) -> TrackingError {
        TrackingError.invalid("Logged model \(id) is not older than the required age. Only logged models older than \(olderThan ?? "") can be deleted.")
    }

    static func experimentsNotDeleted(_ ids: [String]) -> TrackingError {
        TrackingError.invalid("Experiments \(pythonList(ids)) are not in the deleted lifecycle stage. Only experiments in the deleted lifecycle stage can be hard-deleted.")
    }

    func experimentsTooYoung(_ ids: [String]) -> TrackingError {
        TrackingError.invalid("Experiments \(Self.pythonList(ids)) are not older than the required age. Only experiments older than \(olderThan ?? "") can be deleted.")
    }

    /// `['1', '2']`: a Python list of strings as MLflow's messages print it (`repr`: single quotes unless the string
    /// holds one and no double quote).
    static func pythonList(_ ids: [String]) -> String {
        "[" + ids.map { id in
            let quote: Character = id.contains("'") && !id.contains("\"") ? "\"" : "'"
            var out = String(quote)
            for c in id {
                if c == "\\" || c == quote { out.append("\\") }
                out.append(c)
            }
            return out + String(quote)
        }.joined(separator: ", ") + "]"
    }

    /// MLflow's line for each thing purged.
    static func purged(run id: String) -> String { "Run with ID \(id) has been permanently deleted." }
    static func purged(loggedModel id: String) -> String { "Logged model with ID \(id) has been permanently deleted." }
    static func purged(experiment id: String) -> String { "Experiment with ID \(id) has been permanently deleted." }
}
