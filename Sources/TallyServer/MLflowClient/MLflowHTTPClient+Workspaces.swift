import Foundation
import NIOHTTP1
import TallyTracking

/// MLflow's workspaces seen through its API, for `tally import` and `tally export` with `--workspace`.
extension MLflowHTTPClient {
    /// The names of the server's workspaces that this caller may see, or `nil` when it has none: its server-info
    /// says `workspaces_enabled` is false, or it predates server-info (404).
    func workspaceNames() throws -> [String]? {
        guard let info = try json(.GET, MLflowWorkspace.serverInfoPath, allowing: [404]), info["workspaces_enabled"] == .bool(true) else { return nil }
        return (try json(.GET, MLflowWorkspace.listPath)?["workspaces"]).items.compactMap { $0["name"]?.text }.sorted()
    }

    /// A client for `workspace` on this server: this one, when the server has no workspaces and `workspace` is the
    /// default (MLflow refuses the header then); another whose requests name it, when the server has it; otherwise
    /// an error naming the workspaces there are. Also the server's workspace names (`nil`: none).
    func scoped(to workspace: String) throws -> (client: MLflowHTTPClient, names: [String]?) {
        try MLflowWorkspace.validate(workspace)
        guard let names = try workspaceNames() else {
            guard workspace == MLflowWorkspace.defaultName else {
                throw MLflowWorkspace.unknown(workspace, in: base + " (an MLflow server without workspaces)", has: [MLflowWorkspace.defaultName])
            }
            return (self, nil)
        }
        guard names.contains(workspace) else { throw MLflowWorkspace.unknown(workspace, in: base, has: names) }
        return (inWorkspace(workspace), names)
    }
}
