import Foundation
import NIOHTTP1
import Synchronization
import TallyStore
import TallyTracking

/// `tally import mlflow --from http(s)://…`: a running MLflow server read through its REST API, for when its
/// database is out of reach. Slower than the database (MLflow serves a history at tens of thousands of points a
/// second), but it sees what MLflow shows, so a field-by-field comparison against the same server is exact:
///
/// - experiments (`experiments/search`, deleted ones included) and runs (`runs/search`, every view, with params,
///   tags, latest values, dataset inputs and model outputs in the same answer);
/// - each metric's history (`metrics/get-history` in pages; MLflow pages it by timestamp, so the points are put back
///   in step order, keeping MLflow's order within a step: timestamp, then value);
/// - artifacts through the server (`artifacts/list` and `get-artifact` for runs, the logged-model artifact endpoints
///   for models), so any artifact store the server reads is reachable;
/// - logged models (`logged-models/search`) and the registry (`registered-models/search`, `model-versions/search`).
///   MLflow hides deleted versions; their numbers come back as deleted versions so numbering continues the same.
public final class MLflowRESTSource: MLflowSource {
    let http: MLflowHTTPClient
    /// The server's URL (without credentials).
    public var location: String { http.base }
    /// `rest:` and the URL (and the workspace, when it is not the default one).
    public var journalName: String { "rest:" + http.base + MLflowWorkspace.journalSuffix(workspace) }
    /// The MLflow workspace read: every request names it when the server has workspaces.
    public let workspace: String
    /// The server's workspaces this caller may see (`nil`: it has none).
    let workspaceNames: [String]?
    /// `MLflow server <version>`.
    public let provenance: String
    /// Each run as `runs/search` answered it: its params, tags, inputs and outputs are read from there.
    private var runs: [String: JSONValue] = [:]
    /// Rows per `get-history` page.
    static let historyPage = 100_000

    /// Connects to the MLflow server at `url` and checks that it answers MLflow's API and has `workspace` (an error
    /// names those it has).
    public init(url: String, workspace: String = MLflowWorkspace.defaultName) throws {
        (http, workspaceNames) = try MLflowHTTPClient.connect(url: url, workspace: workspace)
        self.workspace = workspace
        let version = try? http.send(.GET, http.url("/version"))
        _ = try http.json(.POST, "/api/2.0/mlflow/experiments/search", body: #"{"max_results":1}"#)
        let text = version.flatMap { $0.0 == 200 ? String(decoding: $0.1.prefix(40), as: UTF8.self) : nil } ?? "unknown"
        provenance = "MLflow server " + text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func close() { http.close() }

    public var textsWithNUL: Int { http.textsWithNUL.load(ordering: .relaxed) }

    /// Every page of a paged endpoint: `request(token)` answers one, `field` holds its items.
    static func pages(_ field: String, _ request: (String?) throws -> JSONValue?) throws -> [JSONValue] {
        var out: [JSONValue] = []
        var token: String?
        repeat {
            guard let page = try request(token) else { return out }
            out += page[field].items
            token = page["next_page_token"]?.text
        } while token?.isEmpty == false
        return out
    }

    /// A GET query with a page token when there is one.
    static func query(_ q: [(String, String)], token: String?) -> [(String, String)] {
        q + (token.map { [("page_token", $0)] } ?? [])
    }

    /// A JSON body: `fields` (already JSON) with a page token when there is one.
    static func body(_ fields: [(String, String)], token: String?) -> String {
        "{" + (fields + (token.map { [("page_token", JSONText.quote($0))] } ?? [])).map { JSONText.quote($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    public func experiments() throws -> [Experiment] {
        try Self.pages("experiments") {
            try http.json(.POST, "/api/2.0/mlflow/experiments/search", body: Self.body([("max_results", "1000"), ("view_type", "\"ALL\"")], token: $0))
        }.map { e in
            Experiment(experimentID: e["experiment_id"]?.text ?? "", name: e["name"]?.text ?? "", artifactLocation: e["artifact_location"]?.text ?? "",
                       lifecycleStage: LifecycleStage(rawValue: e["lifecycle_stage"]?.text ?? "") ?? .active,
                       creationTime: e["creation_time"]?.int64 ?? 0, lastUpdateTime: e["last_update_time"]?.int64 ?? 0, tags: Self.keyValues(e["tags"]))
        }.sorted { (Int64($0.experimentID) ?? 0, $0.experimentID) < (Int64($1.experimentID) ?? 0, $1.experimentID) }
    }

    public func runs(experimentID: String, since: Int64?) throws -> [RunInfo] {
        var fields = [("experiment_ids", "[" + JSONText.quote(experimentID) + "]"), ("run_view_type", "\"ALL\""), ("max_results", "1000")]
        if let since { fields.append(("filter", JSONText.quote("attributes.start_time >= \(since)"))) }
        let found = try Self.pages("runs") { try http.json(.POST, "/api/2.0/mlflow/runs/search", body: Self.body(fields, token: $0)) }
        var out: [RunInfo] = []
        for r in found {
            let i = r["info"]
            let id = i?["run_id"]?.text ?? i?["run_uuid"]?.text ?? ""
            runs[id] = r
            let name = i?["run_name"]?.text ?? ""
            let tagged = Self.keyValues(r["data"]?["tags"]).last { $0.key == "mlflow.runName" }?.value ?? ""
            out.append(RunInfo(runID: id, runName: name.isEmpty ? tagged : name, experimentID: i?["experiment_id"]?.text ?? experimentID,
                               userID: i?["user_id"]?.text ?? "", status: RunStatus(rawValue: i?["status"]?.text ?? "") ?? .running,
                               startTime: i?["start_time"]?.int64 ?? 0, endTime: i?["end_time"]?.int64, artifactURI: i?["artifact_uri"]?.text ?? "",
                               lifecycleStage: LifecycleStage(rawValue: i?["lifecycle_stage"]?.text ?? "") ?? .active))
        }
        return out.sorted { ($0.startTime, $0.runID) < ($1.startTime, $1.runID) }
    }

    /// The run as `runs/search` answered it (an error for a run not listed first).
    func run(_ id: String) throws -> JSONValue {
        guard let r = runs[id] else { throw TrackingError(.internalError, "run \(id) was not listed by \(location)") }
        return r
    }

    public func tags(runID: String) throws -> [KeyValue] { Self.keyValues(try run(runID)["data"]?["tags"]) }

    public func params(runID: String) throws -> [KeyValue] { Self.keyValues(try run(runID)["data"]?["params"]) }

    public func inputs(runID: String) throws -> [DatasetInput] {
        (try run(runID)["inputs"]?["dataset_inputs"]).items.map { i in
            let d = i["dataset"]
            return DatasetInput(dataset: Dataset(name: d?["name"]?.text ?? "", digest: d?["digest"]?.text ?? "", sourceType: d?["source_type"]?.text ?? "",
                                                 source: d?["source"]?.text ?? "", schema: d?["schema"]?.text, profile: d?["profile"]?.text),
                                tags: Self.keyValues(i["tags"]))
        }
    }

    public func runOutputs(runID: String) throws -> [ModelOutput] {
        (try run(runID)["outputs"]?["model_outputs"]).items.map { ModelOutput(modelID: $0["model_id"]?.text ?? "", step: $0["step"]?.int64 ?? 0) }
    }

    /// From `runs/get`: `runs/search` does not list a run's model inputs.
    public func runModelInputs(runID: String) throws -> [ModelInput] {
        (try http.json(.GET, "/api/2.0/mlflow/runs/get", query: [("run_id", runID)])?["run"]?["inputs"]?["model_inputs"]).items.map {
            ModelInput(modelID: $0["model_id"]?.text ?? "")
        }
    }

    public func metrics(runID: String) throws -> [SeriesBatch] {
        // Keys as MLflow lists the run's latest values (every key with a point has one), each once by its bytes
        // (`K` and the Kelvin sign are two keys to MLflow), in bytewise order.
        var seen = Set<[UInt8]>()
        let keys = (try run(runID)["data"]?["metrics"]).items.compactMap { $0["key"]?.text }.filter { seen.insert(Array($0.utf8)).inserted }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        // Several histories at once: an MLflow server answers each on one worker, and has several.
        let http = self.http
        return try http.concurrently(keys, limit: Self.parallelHistories) { key in try Self.history(http, runID: runID, key: key) }.compactMap { $0 }
    }

    /// Histories fetched at once.
    static let parallelHistories = 4

    /// One metric's whole history in step order (`nil`: no points).
    static func history(_ http: MLflowHTTPClient, runID: String, key: String) throws -> SeriesBatch? {
        let points = try pages("metrics") {
            try http.json(.GET, "/api/2.0/mlflow/metrics/get-history",
                          query: query([("run_id", runID), ("metric_key", key), ("max_results", String(historyPage))], token: $0))
        }
        var steps = [Int64](), stamps = [Int64](), values = [Double]()
        steps.reserveCapacity(points.count)
        stamps.reserveCapacity(points.count)
        values.reserveCapacity(points.count)
        for p in points {
            steps.append(p["step"]?.int64 ?? 0)
            stamps.append(p["timestamp"]?.int64 ?? 0)
            values.append(p["value"]?.double ?? 0)  // protobuf's JSON may leave a 0 out
        }
        stepOrder(&steps, &stamps, &values)
        return steps.isEmpty ? nil : SeriesBatch(key: key, steps: steps, timestamps: stamps, values: values)
    }

    /// Puts points MLflow listed by (timestamp, step, value) in step order, stably: within a step they stay by
    /// timestamp then value, the order MLflow's unpaged history and its database give.
    static func stepOrder(_ steps: inout [Int64], _ stamps: inout [Int64], _ values: inout [Double]) {
        guard zip(steps, steps.dropFirst()).contains(where: { $0 > $1 }) else { return }
        let order = steps.indices.sorted { (steps[$0], $0) < (steps[$1], $1) }
        steps = order.map { steps[$0] }
        stamps = order.map { stamps[$0] }
        values = order.map { values[$0] }
    }

    public func metricCount(runID: String) throws -> Int { try metrics(runID: runID).reduce(0) { $0 + $1.steps.count } }

    /// Counts of params and tags, status, end time, stage, name, and a digest of every latest value (a point
    /// logged since moves one); MLflow's API has no count of points without reading them.
    public func fingerprint(_ r: RunInfo) throws -> String {
        let data = try run(r.runID)["data"]
        let latest = (data?["metrics"]).items.map { m in
            "\(m["key"]?.text ?? "")\u{1}\(m["step"]?.int64 ?? 0)\u{1}\(m["timestamp"]?.int64 ?? 0)\u{1}\(m["value"]?.double?.bitPattern ?? 0)"
        }.sorted().joined(separator: "\u{2}")
        return "rest:\(MLflowImport.digest(latest)),\((data?["params"]).items.count),\((data?["tags"]).items.count),\(r.status.rawValue),"
            + "\(r.endTime ?? -1),\(r.lifecycleStage.rawValue),\(r.runName.utf8.count)"
    }

    /// `[{"key": …, "value": …}]` as key-values.
    static func keyValues(_ list: JSONValue?) -> [KeyValue] {
        list.items.map { KeyValue(key: $0["key"]?.text ?? "", value: $0["value"]?.text ?? "") }
    }
}
