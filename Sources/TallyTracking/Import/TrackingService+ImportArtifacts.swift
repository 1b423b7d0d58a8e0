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
            path = String(uri.dropFirst("file://".count))
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

    /// Calls `body` with each regular file under `root` (path relative to it, size), depth first, in name order.
    static func walkFiles(_ root: String, _ body: (String, Int) throws -> Void) rethrows {
        func walk(_ relative: String) throws {
            let dir = relative.isEmpty ? root : root + "/" + relative
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
                let rel = relative.isEmpty ? name : relative + "/" + name
                var st = stat()
                guard lstat(root + "/" + rel, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: try walk(rel)
                case S_IFREG: try body(rel, Int(st.st_size))
                default: continue  // symlinks, sockets: not artifacts MLflow wrote
                }
            }
        }
        try? walk("")
    }

    /// Copies every file under `dir` byte for byte into the run's proxied artifact root (an existing file is
    /// replaced, so a rerun converges).
    func copyArtifacts(from dir: String, toRunURI uri: String, summary: inout MLflowImport.Summary,
                       progress: (MLflowImport.Progress) -> Void) throws {
        guard let root = Self.proxiedRoot(of: uri) else { throw TrackingError.invalid("Artifacts import needs a proxied artifact root (mlflow-artifacts:), not \(uri)") }
        let store = try proxiedStore()
        try Self.walkFiles(dir) { rel, _ in
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
    }
}
