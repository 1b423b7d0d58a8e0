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

    /// A client of the MLflow server at `url` for `workspace`: one without the header when the server has no
    /// workspaces and `workspace` is the default (MLflow refuses the header then); one whose requests name it when the
    /// server has it; otherwise an error naming the workspaces there are (no client is left open). Also the server's
    /// workspace names (`nil`: none).
    static func connect(url: String, workspace: String) throws -> (client: MLflowHTTPClient, names: [String]?) {
        try MLflowWorkspace.validate(workspace)
        let plain = try MLflowHTTPClient(url: url)
        do {
            guard let names = try plain.workspaceNames() else {
                guard workspace == MLflowWorkspace.defaultName else {
                    throw MLflowWorkspace.unknown(workspace, in: plain.base + " (an MLflow server without workspaces)", has: [MLflowWorkspace.defaultName])
                }
                return (plain, nil)
            }
            guard names.contains(workspace) else { throw MLflowWorkspace.unknown(workspace, in: plain.base, has: names) }
            plain.close()
            return (plain.inWorkspace(workspace), names)
        } catch {
            plain.close()
            throw error
        }
    }
}
