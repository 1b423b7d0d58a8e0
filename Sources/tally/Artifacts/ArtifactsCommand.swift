import ArgumentParser
import Foundation
import TallyTracking

/// `tally artifacts`: the proxied artifact store's maintenance.
struct ArtifactsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifacts",
        abstract: "Maintain the proxied artifact store.",
        subcommands: [Migrate.self]
    )

    /// `tally artifacts migrate --from DIR --to s3://bucket/prefix`.
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a server's artifacts into another store, e.g. from its data directory into S3 (idempotent: rerun to finish or to catch up).",
            discussion: """
                Files go under the same paths, so runs' mlflow-artifacts: URIs stay valid: start the server with \
                --artifacts-destination set to the target afterwards. S3 endpoint and credentials come from \
                MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.
                """
        )

        @Option(help: "The store to copy: a directory (a data directory's artifacts/) or s3://bucket/prefix.") var from: String
        @Option(help: "Where to copy it: s3://bucket/prefix or a directory.") var to: String
        @Option(help: "Scratch space for uploads to S3 (default: the system's temporary directory).") var scratch: String?

        func run() throws {
            var isDir: ObjCBool = false
            if !from.contains("://"), !(FileManager.default.fileExists(atPath: from, isDirectory: &isDir) && isDir.boolValue) {
                throw ValidationError("No artifact directory at \(from)")
            }
            try Self.copy(from: from, to: to, scratch: scratch)
        }

        /// Copies the artifact store `from` into `to` (each a directory or s3://bucket/prefix), printing what it did.
        static func copy(from: String, to: String, scratch: String?) throws {
            let spool = scratch ?? NSTemporaryDirectory() + "/tally-artifacts-migrate-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: spool + "/tmp") }
            let source = try ArtifactStore.open(destination: from, dataDirectory: spool)
            let target = try ArtifactStore.open(destination: to, dataDirectory: spool)
            let terminal = isatty(STDERR_FILENO) != 0
            let started = Date()
            let s = try source.copyAll(to: target) { s in
                guard terminal else { return }
                FileHandle.standardError.write(Data("\r\u{1B}[K\(s.copied + s.present)/\(s.total) files".utf8))
            }
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            print("copied \(s.copied) files (\(s.bytes) bytes), \(s.present) already there, \(s.total) in \(source.root)")
            print(String(format: "into %@ in %.1f s", target.root, Date().timeIntervalSince(started)))
        }
    }
}
