import Foundation
import TallyStore

extension TrackingService {
    /// Resolves a source run's artifact URI: `mlflow-artifacts:/<path>` under `artifactsFrom` (the MLflow server's
    /// `--artifacts-destination`), `file://` and absolute paths as they are.
    static func sourceArtifacts(_ uri: String, artifactsFrom: String?) -> SourceArtifacts {
        let path: String
        if uri.hasPrefix(proxiedScheme) {
            guard let root = artifactsFrom else {
                return .unreachable("\(uri) is on the MLflow server's artifact store: give --artifacts-from (its --artifacts-destination)")
            }
            let relative = String(uri.dropFirst(proxiedScheme.count).drop { $0 == "/" })
            if let location = S3Location(uri: root) { return s3Artifacts(location.appending(relative), uri: uri) }
            path = root + "/" + relative
        } else if let location = S3Location(uri: uri) {
            return s3Artifacts(location, uri: uri)
        } else if uri.hasPrefix("file://") {
            // MLflow writes `Path.as_uri()`: percent-encoded (`/home/a%20b/mlruns`).
            let raw = String(uri.dropFirst("file://".count))
            path = raw.removingPercentEncoding ?? raw
        } else if uri.hasPrefix("/") {
            path = uri
        } else if uri.isEmpty {
            return .none
        } else {
            return .unreachable("\(uri): only local and S3 artifact stores are read (mlflow-artifacts:, file:, absolute paths, s3:)")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return .none }
        return isDir.boolValue ? .tree(LocalArtifactTree(root: path)) : .unreachable("\(path) is not a directory")
    }

    /// The artifacts under an S3 location (endpoint and credentials from the environment, as MLflow takes them).
    static func s3Artifacts(_ location: S3Location, uri: String) -> SourceArtifacts {
        do {
            let tree = S3ArtifactTree(client: try S3Client(), location: location)
            return try tree.client.hasKeys(bucket: location.bucket, prefix: ArtifactStore.under(location.prefix)) ? .tree(tree) : .none
        } catch {
            return .unreachable("\(uri): \(error)")
        }
    }

    /// The tree holding a source run's or model's artifacts, or `nil`: it has none, or they are where the import
    /// cannot read them (a warning naming `owner` says why).
    static func sourceArtifactTree(_ source: any MLflowSource, _ uri: String, owner: ArtifactOwner, artifactsFrom: String?,
                                   summary: inout MLflowImport.Summary) -> (any ArtifactTree)? {
        switch source.artifacts(uri, owner: owner, artifactsFrom: artifactsFrom) {
        case .tree(let tree): return tree
        case .none: return nil
        case .unreachable(let why):
            summary.warnings.append("\(owner): artifacts not copied: \(why)")
            return nil
        }
    }

    /// Calls `body` with each regular file under `root` (path relative to it, size), depth first, in name order;
    /// returns what it could not take (unreadable directories, symbolic links and other non-files), one line each.
    @discardableResult
    static func walkFiles(_ root: String, _ body: (String, Int) throws -> Void) rethrows -> [String] {
        var skipped: [String] = []
        func walk(_ relative: String) throws {
            let dir = relative.isEmpty ? root : root + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
                skipped.append("\(dir): cannot be listed")
                return
            }
            for name in names.sorted() {
                let rel = relative.isEmpty ? name : relative + "/" + name
                var st = stat()
                guard lstat(root + "/" + rel, &st) == 0 else {
                    skipped.append("\(root)/\(rel): cannot be read")
                    continue
                }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: try walk(rel)
                case S_IFREG: try body(rel, Int(st.st_size))
                default: skipped.append("\(root)/\(rel): not a regular file (a symbolic link?)")
                }
            }
        }
        try walk("")
        return skipped
    }

    /// Copies every file of `tree` byte for byte into the proxied artifact root `uri` (an existing file is
    /// replaced, so a rerun converges). What cannot be copied — a file name Tally's artifact store refuses, a
    /// symbolic link, a root that is not proxied — is a warning naming `owner`, not the end of the import.
    func copyArtifacts(from tree: any ArtifactTree, toRunURI uri: String, owner: ArtifactOwner, summary: inout MLflowImport.Summary,
                       progress: (MLflowImport.Progress) -> Void) throws {
        guard let root = Self.proxiedRoot(of: uri) else {
            summary.warnings.append("\(owner): artifacts not copied: its artifact root \(uri) is not served by Tally (mlflow-artifacts:)")
            return
        }
        let store = try proxiedStore()
        let skipped = try tree.walk { rel, _ in
            do {
                try ArtifactStore.checkPath(rel)
            } catch {
                summary.warnings.append("\(owner): artifact \(rel) not copied: Tally's artifact store refuses this path")
                return
            }
            let upload = try store.upload(root + "/" + rel)
            do {
                try tree.read(rel) { chunk in
                    try upload.write(chunk)
                    summary.artifactBytes += chunk.count
                }
                try upload.finish()
            } catch {
                upload.abort()
                throw error
            }
            summary.artifactFiles += 1
            progress(MLflowImport.Progress(phase: "artifacts", done: summary.artifactBytes, total: nil))
        }
        summary.warnings += skipped.map { "\(owner): artifact not copied: \($0)" }
    }
}
