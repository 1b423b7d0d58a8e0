import ArgumentParser
import Foundation
import TallyServer
import TallyTracking

/// `tally token`: access tokens of a data directory's users, managed by whoever owns the directory. With a server
/// running on the directory the command goes through its admin socket (``AdminSocket``: the server holds the
/// embedded metadata file exclusively); otherwise, or with a PostgreSQL `--backend-store-uri`, it opens the metadata
/// store itself.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke access tokens (MLFLOW_TRACKING_TOKEN) of a user.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    /// Where the users live.
    struct Location: ParsableArguments {
        @Option(help: "Data directory of the server.") var dataDir = "./tally-data"
        @Option(name: .customLong("backend-store-uri"), help: "Metadata store URI, when the server was given one (env MLFLOW_BACKEND_STORE_URI, as the server reads it).")
        var backendStoreOption: String?
        @Option(help: "The user the tokens belong to.") var user: String

        /// `--backend-store-uri`, else the `MLFLOW_BACKEND_STORE_URI` a server beside it (same environment) took.
        var backendStoreURI: String? { ServerCommand.mlflow(backendStoreOption, "MLFLOW_BACKEND_STORE_URI") }

        /// The admin socket of the server running on the data directory, when one answers there and the metadata
        /// store is the embedded one it holds.
        func server() throws -> AdminSocket.Client? {
            try AdminSocket.client(dataDirectory: dataDir, backendStoreURI: backendStoreURI)
        }

        /// The metadata store itself (no server on it), as access control over it and the user acting.
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
            if let server = try location.server() {
                print(try server.createToken(user: location.user, name: name, expiresInDays: days).token)
                return
            }
            let (control, caller) = try location.open()
            print(try control.createToken(name: name, expiresInDays: days, for: caller).token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's tokens (id, name, created, expires).")
        @OptionGroup var location: Location

        func run() throws {
            let tokens: [TokenInfo]
            if let server = try location.server() {
                tokens = try server.tokens(of: location.user)
            } else {
                let (control, caller) = try location.open()
                tokens = try control.tokens(of: caller)
            }
            for t in tokens {
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
            if let server = try location.server() {
                try server.revokeToken(id: id, of: location.user)
                return
            }
            let (control, caller) = try location.open()
            try control.revokeToken(id: id, of: caller)
        }
    }
}
