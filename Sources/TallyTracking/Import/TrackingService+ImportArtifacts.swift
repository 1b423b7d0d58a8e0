import Foundation
import TallyStore

extension TrackingService {
    /// Where a source run's artifacts are on this machine.
    enum SourceArtifacts: Equatable {
        /// In this directory.
        case directory(String)
        /// The run has none (its directory does not exist: MLflow creates it with the first artifact).
        case none
        /// Somewhere the import cannot read, and why.
        case unreachable(String)
    }

    /// Resolves a source run's artifact URI: `mlflow-artifacts:/<path>` under `artifactsFrom` (the MLflow server's
    /// `--artifacts-destination`), `file://` and absolute paths as they are.
    static func sourceArtifacts(_ uri: String, artifactsFrom: String?) -> SourceArtifacts {
        let path: String
        if uri.hasPrefix(proxiedScheme) {
            guard let root = artifactsFrom else {
                return .unreachable("\(uri) is on the MLflow server's artifact store: give --artifacts-from (its --artifacts-destination)")
            }
            path = root + "/" + String(uri.dropFirst(proxiedScheme.count).drop { $0 == "/" })
        } else if uri.hasPrefix("file://") {
            // MLflow writes `Path.as_uri()`: percent-encoded (`/home/a%20b/mlruns`).
            let raw = String(uri.dropFirst("file://".count))
            path = raw.removingPercentEncoding ?? raw
        } else if uri.hasPrefix("/") {
            path = uri
        } else if uri.isEmpty {
            return .none
        } else {
            return .unreachable("\(uri): only local artifact stores are read for now (mlflow-artifacts:, file:, absolute paths)")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return .none }
        return isDir.boolValue ? .directory(path) : .unreachable("\(path) is not a directory")
    }

    /// The local directory holding a source run's or model's artifacts, or `nil`: it has none, or they are where the
    /// import cannot read them (a warning naming `owner` says why).
    static func sourceArtifactDirectory(_ uri: String, artifactsFrom: String?, owner: String, summary: inout MLflowImport.Summary) -> String? {
        switch sourceArtifacts(uri, artifactsFrom: artifactsFrom) {
        case .directory(let dir): return dir
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

    /// Copies every file under `dir` byte for byte into the proxied artifact root `uri` (an existing file is
    /// replaced, so a rerun converges). What cannot be copied — a file name Tally's artifact store refuses, a
    /// symbolic link, a root that is not proxied — is a warning naming `owner`, not the end of the import.
    func copyArtifacts(from dir: String, toRunURI uri: String, owner: String, summary: inout MLflowImport.Summary,
                       progress: (MLflowImport.Progress) -> Void) throws {
        guard let root = Self.proxiedRoot(of: uri) else {
            summary.warnings.append("\(owner): artifacts not copied: its artifact root \(uri) is not served by Tally (mlflow-artifacts:)")
            return
        }
        let store = try proxiedStore()
        let skipped = try Self.walkFiles(dir) { rel, _ in
            do {
                try ArtifactStore.checkPath(rel)
            } catch {
                summary.warnings.append("\(owner): artifact \(rel) not copied: Tally's artifact store refuses this path")
                return
            }
            let fd = open(dir + "/" + rel, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TrackingError(.internalError, "Cannot read artifact \(dir)/\(rel): errno \(errno)") }
            defer { Glibc.close(fd) }
            let upload = try store.upload(root + "/" + rel)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            do {
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw TrackingError(.internalError, "Cannot read artifact \(dir)/\(rel): errno \(errno)") }
                    if n == 0 { break }
                    try buffer.withUnsafeBytes { try upload.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    summary.artifactBytes += n
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
