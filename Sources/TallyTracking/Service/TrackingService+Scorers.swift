import Foundation
import TallyStore

/// MLflow 3's registered scorers (`mlflow.genai.scorers`: `Scorer.register`, `list_scorers`, `get_scorer`,
/// `delete_scorer`, `start`/`stop`; `/api/3.0/mlflow/scorers/…`). Tally keeps each experiment's scorers, versioned, for
/// clients to load; it runs none of them, so online scoring may be configured only off (a sample rate of 0). The
/// checks of a definition are in TrackingService+ScorerDefinitions.
extension TrackingService {
    /// `scorers/register`: a new version of the experiment's scorer `name` (the first makes the scorer), holding the
    /// definition as sent. The experiment must exist and be active; the definition must pass ``checkScorerPayload(_:)``
    /// and ``checkScorerModel(_:)``.
    public func registerScorer(experimentID: String?, name: String?, serialized: String?) throws -> ScorerVersion {
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        let serialized = try Self.required(serialized, "serialized_scorer")
        let definition = try checkScorerPayload(serialized)
        guard !name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw TrackingError.invalid("Scorer name cannot be empty or contain only whitespace.")
        }
        let e = try activeExperiment(experimentID)
        try Self.checkScorerModel(definition)
        return try metadata.registerScorer(experimentID: e.experimentID, name: name, serialized: serialized, time: clock(),
                                           newID: UUID().uuidString.lowercased())
    }

    /// `scorers/list`: the highest version of each scorer, by experiment (as a number) and then name (by bytes) — of
    /// `experimentID` (which must exist and be active), of the active ones of `experimentIDs` (each must be an
    /// experiment id; unknown ones hold none), or, with neither, of every active experiment. `scope` must read the one
    /// experiment named (403 otherwise), and leaves out the scorers it may not read (``Grants/canRead(scorer:experimentID:)``).
    public func scorers(experimentID: String?, experimentIDs: [String]?, scope: Grants = .unrestricted) throws -> [ScorerVersion] {
        let ids: [String]
        if let experimentID, !experimentID.isEmpty {
            try scope.require(.read, on: .experiment(experimentID))  // MLflow's auth app: READ on the one experiment asked for
            guard experimentIDs == nil else {
                throw TrackingError.invalid("Cannot specify both 'experiment_id' and 'experiment_ids'. Use 'experiment_ids' to scope the query to "
                                            + "multiple experiments, or 'experiment_id' to scope it to a single experiment.")
            }
            ids = [try activeExperiment(experimentID).experimentID]
        } else if let experimentIDs {
            let wanted = Set(try experimentIDs.map { String(try Validation.experimentID($0)) })
            ids = try metadata.experiments().filter { $0.lifecycleStage == .active && wanted.contains($0.experimentID) }.map(\.experimentID)
        } else {
            ids = try metadata.experiments().filter { $0.lifecycleStage == .active }.map(\.experimentID)
        }
        var found = try metadata.latestScorers(experimentIDs: ids)
        if !scope.isUnrestricted {
            found = found.filter { scope.canRead(scorer: $0.name, experimentID: $0.experimentID) }
        }
        return found.sorted(by: Self.scorerOrder)
    }

    /// `scorers/versions`: every version of the experiment's scorer `name`, lowest first; MLflow's 404 when there is
    /// no such scorer or it has no versions left.
    public func scorerVersions(experimentID: String?, name: String?) throws -> [ScorerVersion] {
        let (e, name) = try scorerAddress(experimentID, name)
        guard let versions = try metadata.scorerVersions(experimentID: e, name: name), !versions.isEmpty else {
            throw Self.noScorer(experimentID ?? e, name, version: nil)
        }
        return versions
    }

    /// `scorers/get`: one version of the experiment's scorer `name`, the highest when `version` is `nil`; MLflow's 404
    /// when there is none.
    public func scorer(experimentID: String?, name: String?, version: Int64?) throws -> ScorerVersion {
        let (e, name) = try scorerAddress(experimentID, name)
        guard let versions = try metadata.scorerVersions(experimentID: e, name: name) else { throw Self.noScorer(experimentID ?? e, name, version: nil) }
        guard let v = version.map({ n in versions.first { $0.version == n } }) ?? versions.last else {
            throw Self.noScorer(experimentID ?? e, name, version: version)  // MLflow names the version asked for, once the scorer is there
        }
        return v
    }

    /// `scorers/delete`: one version, or (`version` `nil`) the scorer with every version and its online-scoring
    /// settings and the grants on it; MLflow's 404 when there is nothing to delete. The experiment must be active.
    public func deleteScorer(experimentID: String?, name: String?, version: Int64?) throws {
        let (e, name) = try scorerAddress(experimentID, name)
        guard let n = try metadata.deleteScorer(experimentID: e, name: name, version: version) else { throw Self.noScorer(experimentID ?? e, name, version: nil) }
        guard n > 0 else { throw Self.noScorer(experimentID ?? e, name, version: version) }
        if version == nil { try metadata.deleteGrants(on: Self.scorerResource(experimentID: e, name: name)) }  // a new one starts without them
    }

    /// `scorers/online-configs`: the online-scoring settings of these scorers (`scorer_ids` is required); 403, as
    /// MLflow's auth app answers, when `scope` may not read the experiment of one of them.
    public func onlineScoringConfigs(scorerIDs: [String]?, scope: Grants = .unrestricted) throws -> [OnlineScoringConfig] {
        guard let scorerIDs else { throw Validation.missing("scorer_ids") }
        let configs = try metadata.onlineScoringConfigs(scorerIDs: scorerIDs)
        guard configs.allSatisfy({ scope.canRead(experiment: $0.experimentID) }) else { throw AccessRules.deniedUnnamed }
        return configs
    }

    /// `scorers/online-config` (PUT): replaces the scorer's online-scoring settings. `sampleRate` is a number or a
    /// numeric string between 0 and 1, `filterString` a trace search filter. Tally runs no scorers, so only 0 is taken
    /// (`stop()`): a higher rate is refused, with MLflow's message for a scorer that does not use a gateway model.
    public func setOnlineScoringConfig(experimentID: String?, name: String?, sampleRate: JSONValue?, filterString: JSONValue?) throws -> OnlineScoringConfig {
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        guard let sampleRate else { throw Validation.missing("sample_rate") }
        var filter: String?
        switch filterString {
        case nil, .null?: filter = nil
        case .string(let s)?: filter = s
        case let v?:
            throw TrackingError.invalid("Invalid value \(v.pythonRepr) for parameter 'filter_string' supplied: Value was of type '\(v.pythonType)'. "
                                        + "Expected type 'str' or None.")
        }
        let rate = try Self.sampleRate(sampleRate)
        if let f = filter, !f.isEmpty { _ = try SearchFilter(parsing: f, kind: .traces) }
        let e = try activeExperiment(experimentID)
        let config = try metadata.setOnlineScoringConfig(experimentID: e.experimentID, name: name) { scorerID, latest in
            if latest != nil, rate > 0 {
                throw TrackingError.invalid(Self.usesGatewayModel(latest!.serialized)
                    ? "Scorer '\(name)' uses a gateway model, but Tally runs no scorers: automatic evaluation is not available."
                    : "Scorer '\(name)' does not use a gateway model. Automatic evaluation is only supported for scorers that use gateway models.")
            }
            return OnlineScoringConfig(id: RunNames.runID(), scorerID: scorerID, experimentID: e.experimentID, sampleRate: rate, filterString: filter)
        }
        guard let config else { throw Self.noScorer(experimentID, name, version: nil) }
        return config
    }

    /// The resource a grant on one scorer names (MLflow's `<experiment id>/<quote(name, safe='')>`: RFC 3986's
    /// encoding, which keeps only `A–Z a–z 0–9 - . _ ~`, as Python's `quote` with no safe characters).
    public static func scorerResource(experimentID: String, name: String) -> Resource {
        Resource(.scorer, "\(canonicalExperimentID(experimentID))/\(name.uriEncoded())")
    }

    /// The experiment (active, canonical id) and name a scorer route names.
    func scorerAddress(_ experimentID: String?, _ name: String?) throws -> (String, String) {
        let experimentID = try Self.required(experimentID, "experiment_id"), name = try Self.required(name, "name")
        return (try activeExperiment(experimentID).experimentID, name)
    }

    static func noScorer(_ experimentID: String, _ name: String, version: Int64?) -> TrackingError {
        TrackingError.notFound(version.map { "Scorer with name '\(name)' and version \($0) not found for experiment \(experimentID)." }
                               ?? "Scorer with name '\(name)' not found for experiment \(experimentID).")
    }

    /// By experiment as a number, then name by bytes (MLflow's `ORDER BY experiment_id, scorer_name`).
    static func scorerOrder(_ a: ScorerVersion, _ b: ScorerVersion) -> Bool {
        let x = Int64(a.experimentID) ?? 0, y = Int64(b.experimentID) ?? 0
        return x != y ? x < y : binaryLess(a.name, b.name)
    }

    /// MLflow's `float(sample_rate)` and its range check.
    static func sampleRate(_ v: JSONValue) throws -> Double {
        let rate: Double?
        switch v {
        case .number(let n): rate = Double(n)
        case .string(let s): rate = PythonNumber.double(s)
        case .bool(let b): rate = b ? 1 : 0
        default: rate = nil
        }
        guard let rate, !rate.isNaN else {
            throw TrackingError.invalid("sample_rate must be a number, got \(v.pythonType)")
        }
        guard rate >= 0, rate <= 1 else {
            throw TrackingError.invalid("sample_rate must be between 0.0 and 1.0, got \(Validation.pythonFloat(rate))")
        }
        return rate
    }
}
