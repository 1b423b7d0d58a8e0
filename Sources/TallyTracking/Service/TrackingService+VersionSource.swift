import TallyStore

/// A model version's source as `model-versions/create` checked and resolved it.
struct VersionSource {
    /// The source as stored (another version's `models:/<name>@<alias>`, `…/latest` or `…/<stage>` becomes
    /// `models:/<name>/<version>`).
    var source: String
    /// The run it came from, if any.
    var runID: String?
    /// The logged model it came from, if any.
    var modelID: String?
    /// Where its files are.
    var storage: String
}

extension TrackingService {
    /// The placeholder sources of prompt versions (MLflow's client and store spellings).
    static let promptSources: Set<String> = ["dummy-source", "prompt-template"]

    /// MLflow's checks of a new version's source (its server's `_create_model_version`): a prompt's source is a
    /// placeholder; another version's `models:/` URI is resolved and must agree with the run and model ids given; a
    /// path on the server's disk must lie inside the artifact directory of the run (or logged model) named; `..` is
    /// refused in any other URI; `runs:/`, `models:/<id>` and this server's `mlflow-artifacts` URIs must belong to the
    /// run or model named. Other URIs (`s3://…`, `gs://…`) are stored as given. `hasRunID` / `hasModelID`: whether
    /// the request had the field at all (an empty one still counts for the agreement check).
    func checkedVersionSource(_ source: String, tags: [KeyValue], runID: String?, modelID: String?,
                              hasRunID: Bool, hasModelID: Bool) throws -> VersionSource {
        if Self.isPrompt(tags) {
            guard Self.promptSources.contains(source) else {
                throw TrackingError.invalid("Invalid prompt source: '\(source)'. Prompt sources must use an MLflow placeholder.")
            }
            return VersionSource(source: source, runID: runID, modelID: modelID, storage: source)
        }
        try Validation.refuseHostAddressed(source, field: "source")
        var resolved = VersionSource(source: source, runID: runID, modelID: modelID, storage: source)
        let uri = SplitURI(source)
        if uri.scheme == "models" {
            guard uri.netloc.isEmpty else {
                throw TrackingError.invalid("Invalid model version source: '\(source)'. Registered model sources must use the active model registry.")
            }
            switch try Self.modelsURI(source, SplitURI(source, fragments: false)) {
            case .model(let id):
                // A logged model's own URI: its files, its run unless one is given.
                guard modelID == id else { throw Self.sourceNotContained(source, "model_id") }
                let lm = try loggedModel(id: id)
                resolved.storage = lm.artifactURI
                if resolved.runID == nil, !lm.sourceRunID.isEmpty { resolved.runID = lm.sourceRunID }
                return resolved
            case .version(let name, let reference):
                let m = try registeredModel(named: name)
                if Self.isPrompt(m.tags) {
                    throw TrackingError.invalid("Invalid model version source: '\(source)'. Prompt versions cannot be used as model version sources.")
                }
                let other = try version(of: m.name, reference)
                if (hasRunID && (runID ?? "") != other.runID) || (hasModelID && (modelID ?? "") != (other.modelID ?? "")) {
                    throw TrackingError.invalid("Invalid model version source: '\(source)'. The run_id and model_id request parameters must match the "
                        + "referenced model version.")
                }
                return VersionSource(source: "models:/\(m.name)/\(other.version)", runID: hasRunID ? runID : (other.runID.isEmpty ? nil : other.runID),
                                     modelID: hasModelID ? modelID : other.modelID, storage: other.storageLocation)
            }
        }
        if let modelID = resolved.modelID {
            try checkSource(source, uri, belongsTo: .model(modelID))
            let lm = try loggedModel(id: modelID)
            if resolved.runID == nil, !lm.sourceRunID.isEmpty { resolved.runID = lm.sourceRunID }
        } else {
            try checkSource(source, uri, belongsTo: .run(resolved.runID))
            if uri.scheme == "runs" {
                // `runs:/<run>/path`: the run's files at that path.
                let path = Self.runsParts(source).path
                let base = try run(id: resolved.runID ?? "").info.artifactURI
                resolved.storage = path.isEmpty ? base : base + "/" + path
            }
        }
        return resolved
    }

    /// What a source must belong to: a run (maybe none given) or a logged model.
    enum SourceOwner {
        case run(String?)
        case model(String)

        var idName: String {
            switch self {
            case .run: "run_id"
            case .model: "model_id"
            }
        }
    }

    /// `_validate_source_run` and `_validate_source_model` of MLflow's server, for any source but another version's
    /// `models:/` URI.
    func checkSource(_ source: String, _ uri: SplitURI, belongsTo owner: SourceOwner) throws {
        if uri.isLocal {
            if let root = try artifactRoot(of: owner), let path = Self.localPath(source), let dir = Self.localPath(root),
               path == dir || path.hasPrefix(dir == "/" ? "/" : dir + "/") {
                return
            }
            let what = switch owner {
            case .run: "the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of "
                + "the run specified by the run_id."
            case .model: "the model_id request parameter has to be specified and the local path has to be contained within the artifact directory "
                + "of the run specified by the model_id."
            }
            throw TrackingError.invalid("Invalid model version source: '\(source)'. To use a local path as a model version source, " + what)
        }
        // However many times percent-encoded: `..` anywhere, NUL in the path, or a path that is not absolute and
        // already normal (`s3://bucket`, `s3:rel/x`, `/a/./b`; its repeated and trailing slashes aside).
        let plain = SplitURI.unquotedFully(source, plus: true)
        var path = SplitURI(plain).path
        while path.hasSuffix("/") { path.removeLast() }
        path = (path.hasPrefix("/") ? "/" : "") + path.split(separator: "/").joined(separator: "/")  // rstrip("/"), then /+ → /
        if plain.split(separator: "/", omittingEmptySubsequences: false).contains("..") || path.utf8.contains(0)
            || !path.hasPrefix("/") || Validation.normalizePath(path) != path {
            throw TrackingError.invalid("Invalid model version source: '\(source)'. If supplying a source as an http, https, local file path, ftp, "
                + "objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. "
                + "Please provide an absolute path.")
        }
        switch (uri.scheme, owner) {
        case ("runs", .run(let runID)):
            let named = Self.runsParts(source).runID
            guard uri.netloc.isEmpty, let runID, !named.isEmpty, named == runID else { throw Self.sourceNotContained(source, "run_id") }
            return
        case ("runs", .model):
            throw Self.sourceNotContained(source, "model_id")
        default:
            break
        }
        if Self.isArtifactProxyURI(uri) {
            guard let root = try artifactRoot(of: owner), Self.uri(uri, isWithin: SplitURI(root)) else { throw Self.sourceNotContained(source, owner.idName) }
        }
    }

    /// A `runs:/<run>/<path>` source's run id and the path within the run's artifacts (slashes around the run id
    /// skipped).
    static func runsParts(_ source: String) -> (runID: Substring, path: Substring) {
        let rest = source.dropFirst("runs:/".count).drop { $0 == "/" }
        let runID = rest.prefix { $0 != "/" }
        return (runID, rest.dropFirst(runID.count).drop { $0 == "/" })
    }

    /// The absolute path on the server's disk a local source or artifact location names (a plain path as written, a
    /// `file:` URI's path percent-decoded; `.`, `..` and repeated slashes resolved, links not followed); `nil` for a
    /// relative path, NUL, or a `file:` URI naming another host (MLflow's `is_local_uri` refuses those).
    static func localPath(_ location: String) -> String? {
        let uri = SplitURI(location)
        let path: String
        switch uri.scheme {
        case "":
            path = location
        case "file":
            if let host = uri.hostname, host != ".", !host.hasPrefix("localhost"), !host.hasPrefix("127.0.0.1") { return nil }
            path = SplitURI.unquotedFully(uri.path)
        default:
            return nil
        }
        // NUL in the location however many times percent-encoded (the path's own is among them).
        guard path.hasPrefix("/"), !SplitURI.unquotedFully(location).utf8.contains(0) else { return nil }
        return Validation.normalizePath(path)
    }

    /// The artifact location of a source's run or model; `nil` when none is named or it does not exist.
    func artifactRoot(of owner: SourceOwner) throws -> String? {
        switch owner {
        case .run(let id?): try metadata.run(id: id)?.info.artifactURI
        case .run(nil): nil
        case .model(let id): try metadata.loggedModel(id: id)?.artifactURI
        }
    }

    /// MLflow's refusal of a source the run or model named does not hold.
    static func sourceNotContained(_ source: String, _ idName: String) -> TrackingError {
        TrackingError.invalid("Invalid model version source: '\(source)'. The \(idName) request parameter must identify the resource that contains the source.")
    }

    /// A `models:/` URI: a logged model's id, or a registered model's version (a number, `latest`, a stage or an alias).
    enum ModelsURI {
        case model(String)
        case version(name: String, VersionReference)
    }

    /// What names a version of a registered model in a `models:/` URI.
    enum VersionReference {
        case number(String)
        case latest
        case stage(String)
        case alias(String)
    }

    /// MLflow's `_parse_model_uri`; a URI it refuses is a source the model id cannot identify.
    static func modelsURI(_ source: String, _ uri: SplitURI) throws -> ModelsURI {
        let path = uri.path
        let parts = path.drop { $0 == "/" }.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard path.hasPrefix("/"), path.count > 1, parts.count <= 2, !parts[0].allSatisfy(\.isWhitespace) else {
            throw sourceNotContained(source, "model_id")
        }
        if parts.count == 2 {
            let suffix = parts[1]
            guard !suffix.allSatisfy(\.isWhitespace) else { throw sourceNotContained(source, "model_id") }
            if !suffix.isEmpty, suffix.allSatisfy({ $0.isASCII && $0.isNumber }) { return .version(name: parts[0], .number(suffix)) }
            return .version(name: parts[0], suffix.lowercased() == "latest" ? .latest : .stage(suffix))
        }
        if path.contains("@") {
            guard let at = parts[0].lastIndex(of: "@"), !parts[0][parts[0].index(after: at)...].allSatisfy(\.isWhitespace) else {
                throw sourceNotContained(source, "model_id")
            }
            return .version(name: String(parts[0][..<at]), .alias(String(parts[0][parts[0].index(after: at)...])))
        }
        return .model(parts[0])
    }

    /// The version a reference names (`latest`: the highest; a stage: the highest in it).
    func version(of name: String, _ reference: VersionReference) throws -> ModelVersion {
        switch reference {
        case .number(let n): return try modelVersion(name, n)
        case .alias(let a): return try modelVersion(byAlias: a, of: name)
        case .latest, .stage:
            let stages: [String]? = if case .stage(let s) = reference { [try Self.stage(s)] } else { nil }
            guard let v = try latestVersions(of: name, stages: stages).max(by: { $0.version < $1.version }) else {
                throw TrackingError.notFound("No versions of model with name '\(name)' and stage '\(stages?.first ?? "")' found")
            }
            return v
        }
    }

    /// Whether a URI reaches files through an MLflow tracking server's artifact proxy (`_is_mlflow_artifact_source`).
    static func isArtifactProxyURI(_ uri: SplitURI) -> Bool {
        if uri.scheme == "mlflow-artifacts" { return true }
        guard uri.scheme == "http" || uri.scheme == "https" else { return false }
        let parts = uri.segments, route = ["api", "2.0", "mlflow-artifacts", "artifacts"]
        return parts.count >= route.count && (0...(parts.count - route.count)).contains { Array(parts[$0..<($0 + route.count)]) == route }
    }

    /// Whether `uri` lies under `root`: same scheme and authority (any case), and the root's path segments first
    /// (`_is_uri_within_root`).
    static func uri(_ uri: SplitURI, isWithin root: SplitURI) -> Bool {
        let parts = uri.segments, rootParts = root.segments
        return uri.scheme == root.scheme && uri.netloc.lowercased() == root.netloc.lowercased() && !rootParts.isEmpty
            && parts.starts(with: rootParts)
    }
}
