import ArgumentParser
import Foundation
import TallyTracking

/// `tally metadata`: the metadata store's maintenance.
struct MetadataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Maintain the metadata store.",
        subcommands: [Migrate.self]
    )

    /// `tally metadata migrate --from sqlite:///… --to postgresql://…`.
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy an embedded deployment's SQLite metadata into PostgreSQL (idempotent: rerun to finish or to catch up).",
            discussion: "Stop the server using the SQLite file first. Metric points stay in the data directory's metric store."
        )

        @Option(help: "The SQLite metadata: sqlite:///path/to/metadata.sqlite (or the data directory's path).") var from: String
        @Option(help: "The PostgreSQL database: postgresql://user:password@host:port/database.") var to: String

        func run() throws {
            let path: String
            if from.hasPrefix("sqlite:///") {
                path = String(from.dropFirst("sqlite:///".count))
            } else if from.contains("://") {
                throw ValidationError("--from must be a SQLite URI (sqlite:///path) or a path")
            } else {
                var isDir: ObjCBool = false
                path = FileManager.default.fileExists(atPath: from, isDirectory: &isDir) && isDir.boolValue ? from + "/metadata.sqlite" : from
            }
            let target = try PostgresMetadataStore(uri: try PostgresURI(parsing: to), poolSize: 1, now: TrackingService.nowMillis())
            defer { target.close() }
            try Self.copy(from: path, to: target)
        }

        /// Copies the SQLite metadata at `path` into `target`, printing the counts; throws when they differ.
        static func copy(from path: String, to target: PostgresMetadataStore) throws {
            let terminal = isatty(STDERR_FILENO) != 0
            let started = Date()
            let counts: [MetadataMigration.TableCount], refused: MetadataMigration.Mismatch?
            do {
                counts = try MetadataMigration.run(source: path, target: target) { table, done, total in
                    let line = "\(table): \(done)/\(total) rows"
                    if terminal {
                        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (done == total ? "\n" : "")).utf8))
                    } else if done == total {
                        FileHandle.standardError.write(Data((line + "\n").utf8))
                    }
                }
                refused = nil
            } catch let m as MetadataMigration.Mismatch {
                (counts, refused) = (m.counts, m)
            }
            print("table\tsource\ttarget")
            for c in counts { print("\(c.table)\t\(c.source)\t\(c.target)\(c.source == c.target ? "" : "\tMISMATCH")") }
            let bad = counts.filter { $0.source != $0.target }
            print(String(format: "%@ in %.1f s", bad.isEmpty ? "counts match" : "\(bad.count) table(s) differ", Date().timeIntervalSince(started)))
            if let refused { throw ValidationError(refused.description) }
            if !bad.isEmpty {  // latest rows, copied after the tables' commit: a rerun writes them again
                throw ValidationError("the latest values differ (" + bad.map(\.table).joined(separator: ", ") + "): run the migration again")
            }
        }
    }
}
