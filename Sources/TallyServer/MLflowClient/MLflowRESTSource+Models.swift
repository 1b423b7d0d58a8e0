import Foundation
import NIOHTTP1
import TallyTracking

/// Logged models, the registry and artifacts, read through the server.
extension MLflowRESTSource {
    public func loggedModels(experimentID: String) throws -> [LoggedModel] {
        // An MLflow 2.x server has no logged models: its 404 reads as none.
        try Self.pages("models") {
            try http.json(.POST, "/api/2.0/mlflow/logged-models/search",
                          body: Self.body([("experiment_ids", "[" + JSONText.quote(experimentID) + "]"), ("max_results", "100")], token: $0),
                          allowing: [404])
        }.map { m in
            let i = m["info"], d = m["data"]
            let id = i?["model_id"]?.text ?? ""
            let status = LoggedModelStatus(rawValue: i?["status"]?.text ?? "") ?? i?["status"]?.int64.flatMap(LoggedModelStatus.init(number:)) ?? .unspecified
            return LoggedModel(
                modelID: id, experimentID: i?["experiment_id"]?.text ?? experimentID, name: i?["name"]?.text ?? "",
                creationTime: i?["creation_timestamp_ms"]?.int64 ?? 0, lastUpdatedTime: i?["last_updated_timestamp_ms"]?.int64 ?? 0,
                artifactURI: i?["artifact_uri"]?.text ?? "", status: status, modelType: i?["model_type"]?.text ?? "",
                sourceRunID: i?["source_run_id"]?.text ?? "", lifecycleStage: LifecycleStage(rawValue: i?["lifecycle_stage"]?.text ?? "") ?? .active,
                tags: Self.keyValues(i?["tags"]), params: Self.keyValues(d?["params"]),
                metrics: (d?["metrics"]).items.map { x in
                    ModelMetric(metric: Metric(key: x["key"]?.text ?? "", value: x["value"]?.double ?? .nan, timestamp: x["timestamp"]?.int64 ?? 0,
                                               step: x["step"]?.int64 ?? 0),
                                modelID: id, runID: x["run_id"]?.text ?? "", datasetName: x["dataset_name"]?.text, datasetDigest: x["dataset_digest"]?.text)
                })
        }.sorted { ($0.creationTime, $0.modelID) < ($1.creationTime, $1.modelID) }
    }

    /// The filter that asks MLflow for prompts: MLflow 3 leaves them (registered models and versions tagged
    /// `mlflow.prompt.is_prompt`) out of every registry search that does not name the tag.
    static let promptFilter = "tags.`mlflow.prompt.is_prompt` = 'true'"

    public func registeredModels() throws -> [(model: RegisteredModel, versions: [ModelVersion])] {
        func search(_ filter: [(String, String)]) throws -> [JSONValue] {
            try Self.pages("registered_models") {
                try http.json(.GET, "/api/2.0/mlflow/registered-models/search", query: Self.query([("max_results", "1000")] + filter, token: $0),
                              allowing: [404])
            }
        }
        // Models, then prompts (a server that does not hide prompts lists them in both: kept once), in name order as
        // the database source reads them.
        var seen = Set<String>()
        let models = try (search([]) + search([("filter", Self.promptFilter)])).filter { seen.insert($0["name"]?.text ?? "").inserted }
            .sorted { ($0["name"]?.text ?? "") < ($1["name"]?.text ?? "") }
        return try models.map { m in
            let name = m["name"]?.text ?? ""
            let isPrompt = Self.keyValues(m["tags"]).contains { $0.key == "mlflow.prompt.is_prompt" && $0.value.lowercased() == "true" }
            let model = RegisteredModel(name: name, creationTime: m["creation_timestamp"]?.int64 ?? 0,
                                        lastUpdatedTime: m["last_updated_timestamp"]?.int64 ?? 0, description: m["description"]?.text,
                                        tags: Self.keyValues(m["tags"]),
                                        aliases: m["aliases"].items.map { ModelAlias(alias: $0["alias"]?.text ?? "", version: $0["version"]?.int64 ?? 0) })
            var versions = try Self.pages("model_versions") {
                try http.json(.GET, "/api/2.0/mlflow/model-versions/search",
                              query: Self.query([("filter", "name=" + Self.quoted(name) + (isPrompt ? " AND " + Self.promptFilter : "")),
                                                 ("max_results", "10000")], token: $0))
            }.map { v in
                ModelVersion(name: name, version: v["version"]?.int64 ?? 0, creationTime: v["creation_timestamp"]?.int64 ?? 0,
                             lastUpdatedTime: v["last_updated_timestamp"]?.int64 ?? 0, currentStage: v["current_stage"]?.text ?? "None",
                             description: v["description"]?.text, source: v["source"]?.text ?? "", runID: v["run_id"]?.text ?? "",
                             runLink: v["run_link"]?.text ?? "", modelID: v["model_id"]?.text, storageLocation: v["storage_location"]?.text ?? "",
                             tags: Self.keyValues(v["tags"]))
            }.sorted { $0.version < $1.version }
            // The numbers MLflow deleted: there as deleted versions, as MLflow keeps them.
            var numbered: [ModelVersion] = []
            for v in versions {
                while Int64(numbered.count + 1) < v.version {
                    numbered.append(ModelVersion(name: name, version: Int64(numbered.count + 1), creationTime: v.creationTime, lastUpdatedTime: v.creationTime,
                                                 currentStage: ModelVersion.deletedStage, description: nil, source: "REDACTED-SOURCE-PATH", runID: "",
                                                 runLink: "", modelID: nil, storageLocation: ""))
                }
                numbered.append(v)
            }
            versions = numbered
            return (model, versions)
        }
    }

    /// A string literal of MLflow's search filters: single-quoted, or double-quoted when it holds a single quote.
    static func quoted(_ s: String) -> String { s.contains("'") ? "\"" + s + "\"" : "'" + s + "'" }

    /// Through the server (what any artifact store it reads holds), unless `artifactsFrom` names where they are on
    /// this machine.
    public func artifacts(_ uri: String, owner: ArtifactOwner, artifactsFrom: String?) -> SourceArtifacts {
        if artifactsFrom != nil { return localArtifacts(uri, artifactsFrom: artifactsFrom) }
        if case .trace = owner { return .none }  // no listing: traceSpans reads traces.json through get-trace-artifact
        return .tree(ServerArtifactTree(http: http, owner: owner))
    }
}

/// A run's or logged model's artifacts as the MLflow server lists and serves them.
struct ServerArtifactTree: ArtifactTree {
    let http: MLflowHTTPClient
    let owner: ArtifactOwner

    /// The listing endpoint and its query for a directory (`""`: the root).
    func listing(_ dir: String) -> (String, [(String, String)]) {
        switch owner {
        case .run(let id): ("/api/2.0/mlflow/artifacts/list", [("run_id", id)] + (dir.isEmpty ? [] : [("path", dir)]))
        case .model(let id): ("/api/2.0/mlflow/logged-models/\(id)/artifacts/directories", dir.isEmpty ? [] : [("artifact_directory_path", dir)])
        case .trace: preconditionFailure("a trace's artifacts are not listed (MLflowRESTSource.artifacts answers .none)")
        }
    }

    /// The download URL of a file.
    func file(_ path: String) -> String {
        switch owner {
        case .run(let id): http.url("/get-artifact", [("run_id", id), ("path", path)])
        case .model(let id): http.url("/ajax-api/2.0/mlflow/logged-models/\(id)/artifacts/files", [("artifact_file_path", path)])
        case .trace(let id): http.url("/ajax-api/3.0/mlflow/get-trace-artifact", [("request_id", id), ("path", path)])
        }
    }

    func walk(_ body: (String, Int) throws -> Void) throws -> [String] {
        var unlisted: [String] = []
        func walk(_ dir: String) throws {
            let (path, query) = listing(dir)
            let files: [JSONValue]
            do {
                files = try http.json(.GET, path, query: query, allowing: [404])?["files"].items ?? []
            } catch let e as TrackingError {
                // A directory the server cannot list: a warning, the rest goes on. (A file that cannot be fetched
                // or stored is an error: the run must not be journaled done without it.)
                unlisted.append(e.message)
                return
            }
            for f in files.sorted(by: { ($0["path"]?.text ?? "") < ($1["path"]?.text ?? "") }) {
                guard let p = f["path"]?.text, !p.isEmpty, p != dir else { continue }
                // Paths are relative to the root (a proxied store's listing may give basenames: joined to `dir`).
                let full = p.hasPrefix(dir.isEmpty ? "" : dir + "/") ? p : (dir.isEmpty ? p : dir + "/" + p)
                if case .bool(true) = f["is_dir"] ?? .null { try walk(full) } else { try body(full, Int(f["file_size"]?.int64 ?? 0)) }
            }
        }
        try walk("")
        return unlisted
    }

    func read(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var template = Array((NSTemporaryDirectory() + "/tally-artifact-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot make a temporary file: errno \(errno)") }
        Glibc.close(fd)
        let temp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(temp) }
        guard try http.download(file(path), to: temp) != nil else {
            throw TrackingError(.resourceDoesNotExist, "\(owner): artifact \(path) is listed by \(http.base) but cannot be downloaded (404)")
        }
        try LocalArtifactTree.readFile(temp, body)
    }
}
