import ArgumentParser
import Foundation
import TallyServer
import TallyTracking

/// `tally token`: access tokens of a data directory's users, managed by whoever owns the directory (works while a
/// server runs on it: only the metadata database is opened).
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke access tokens (MLFLOW_TRACKING_TOKEN) of a user.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    /// Where the users live.
    struct Location: ParsableArguments {
        @Option(help: "Data directory of the server.") var dataDir = "./tally-data"
        @Option(help: "Metadata store URI, when the server was given one.") var backendStoreURI: String?
        @Option(help: "The user the tokens belong to.") var user: String

        func open() throws -> (AccessControl, Caller) {
            var config = ServerConfiguration()
            config.dataDirectory = dataDir
            config.backendStoreURI = backendStoreURI
            guard backendStoreURI != nil || FileManager.default.fileExists(atPath: dataDir + "/metadata.sqlite") else {
                throw ValidationError("no data directory at \(dataDir) (metadata.sqlite is missing)")
            }
            var settings = AccessConfiguration()
            settings.audit = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
            let control = AccessControl(store: try TallyApplication.openMetadata(config), configuration: settings)
            return (control, try control.localCaller(user))
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; prints it alone on stdout (it is shown once).")
        @OptionGroup var location: Location
        @Option(help: "A label for the token.") var name: String
        @Option(help: "Lifetime, e.g. 30d (days; default: no expiry).") var expires: String?

        func run() throws {
            var days: Int64?
            if let expires {
                let digits = expires.hasSuffix("d") ? String(expires.dropLast()) : expires
                guard let d = Int64(digits) else { throw ValidationError("--expires takes days, e.g. 30d (got '\(expires)')") }
                days = d
            }
            let (control, caller) = try location.open()
            print(try control.createToken(name: name, expiresInDays: days, for: caller).token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's tokens (id, name, created, expires).")
        @OptionGroup var location: Location

        func run() throws {
            let (control, caller) = try location.open()
            for t in try control.tokens(of: caller) {
                let expiry = t.expiryTime.map { Self.date($0) } ?? "never"
                print("\(t.id)\t\(t.name)\tcreated \(Self.date(t.creationTime))\texpires \(expiry)")
            }
        }

        static func date(_ ms: Int64) -> String {
            Date(timeIntervalSince1970: Double(ms) / 1000).ISO8601Format()
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke one of a user's tokens.")
        @OptionGroup var location: Location
        @Option(help: "The token's id (from list).") var id: String

        func run() throws {
            let (control, caller) = try location.open()
            try control.revokeToken(id: id, of: caller)
        }
    }
}
