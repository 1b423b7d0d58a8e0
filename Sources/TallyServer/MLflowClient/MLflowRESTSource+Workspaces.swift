import Foundation
import NIOHTTP1
import TallyTracking

extension MLflowRESTSource {
    /// The other workspaces this caller may see, each with its experiments (deleted ones included) and registered
    /// models (prompts included) counted through a client of its own; none when the server has no workspaces.
    public func otherWorkspaces() throws -> [SourceWorkspace] {
        try (workspaceNames ?? []).filter { $0 != workspace }.map { name in
            let client = http.inWorkspace(name)
            defer { client.close() }
            return try Self.counted(client, name)
        }
    }

    /// `client`'s workspace, `name`, with what it holds.
    static func counted(_ client: MLflowHTTPClient, _ name: String) throws -> SourceWorkspace {
        let experiments = try pages("experiments") {
            try client.json(.POST, "/api/2.0/mlflow/experiments/search", body: body([("max_results", "1000"), ("view_type", "\"ALL\"")], token: $0))
        }.count
        func models(_ filter: [(String, String)]) throws -> Set<String> {
            Set(try pages("registered_models") {
                try client.json(.GET, "/api/2.0/mlflow/registered-models/search", query: query([("max_results", "1000")] + filter, token: $0), allowing: [404])
            }.compactMap { $0["name"]?.text })
        }
        let registered = try models([]).union(try models([("filter", promptFilter)])).count
        return SourceWorkspace(name: name, experiments: experiments, registeredModels: registered)
    }
}
