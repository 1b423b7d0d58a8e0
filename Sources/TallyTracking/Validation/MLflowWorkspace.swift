import Foundation

/// MLflow's workspaces (`mlflow server --enable-workspaces`, MLflow 3.x): its rules for their names, which
/// `tally import` and `tally export` apply to `--workspace` before asking a source or destination. Tally keeps one
/// space, so a team's workspace comes in, or goes out, one at a time (docs/import.md, "Workspaces").
public enum MLflowWorkspace {
    /// The workspace every MLflow server has, which holds everything when workspaces are off.
    public static let defaultName = "default"
    /// Names MLflow keeps for itself (`WorkspaceNameValidator`: they would clash with its URL paths).
    public static let reservedNames: Set<String> = ["workspaces", "api", "ajax-api", "static-files"]
    /// The path MLflow serves its workspaces under (`GET` lists them).
    public static let listPath = "/api/3.0/mlflow/workspaces"
    /// The path of MLflow's server description, whose `workspaces_enabled` says whether it has workspaces.
    public static let serverInfoPath = "/api/3.0/mlflow/server-info"
    /// The variable in which MLflow's client takes its workspace (`mlflow.set_workspace` sets it too).
    public static let environmentVariable = "MLFLOW_WORKSPACE"

    /// The workspace a command reads or writes: `option` when given, else ``environmentVariable`` as MLflow's client
    /// takes it (blank is unset), else ``defaultName``.
    public static func chosen(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option { return option }
        let variable = environment[environmentVariable]?.trimmingCharacters(in: .whitespaces) ?? ""
        return variable.isEmpty ? defaultName : variable
    }

    /// `name` checked as MLflow checks a workspace name (2 to 63 characters; lowercase letters, digits and inner
    /// hyphens; not reserved), with its messages; `default` passes, as MLflow lets it through unchecked.
    public static func validate(_ name: String) throws {
        guard name != defaultName else { return }
        guard (2...63).contains(name.unicodeScalars.count) else {  // code points, as Python's len counts
            throw TrackingError.invalid("Workspace name '\(name)' must be between 2 and 63 characters.")
        }
        let inner = name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }
        guard inner, name.first != "-", name.last != "-" else {
            throw TrackingError.invalid("Workspace name '\(name)' must match the pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ "
                                        + "(lowercase alphanumeric with optional internal hyphens).")
        }
        guard !reservedNames.contains(name) else { throw TrackingError.invalid("Workspace name '\(name)' is reserved and cannot be used.") }
    }

    /// What a source's or destination's journal name gains for `workspace`: nothing for the default one (so the
    /// journals of imports made before workspaces were read stay theirs), `#workspace=<name>` for another (a model's
    /// name is only unique within its workspace: two workspaces' journals must not take each other's models).
    public static func journalSuffix(_ workspace: String) -> String {
        workspace == defaultName ? "" : "#workspace=" + workspace
    }

    /// `location` as messages name it with `workspace`: with `, workspace <name>` when that is not the default one.
    public static func described(_ location: String, _ workspace: String) -> String {
        workspace == defaultName ? location : location + ", workspace " + workspace
    }

    /// The error for a workspace `location` does not have, naming those it has.
    public static func unknown(_ name: String, in location: String, has: [String]) -> TrackingError {
        let list = has.isEmpty ? "none it shows to this caller" : has.joined(separator: ", ")
        return TrackingError(.resourceDoesNotExist, "No workspace '\(name)' in \(location) (its workspaces: \(list))")
    }

    /// What an import leaves behind of `others` (the source's workspaces other than the one it read, with what they
    /// hold), one warning each: Tally keeps one space, so each comes by its own `--workspace`.
    public static func leftBehind(_ others: [SourceWorkspace], command: String) -> [String] {
        others.filter { $0.experiments > 0 || $0.registeredModels > 0 }.map { w in
            func n(_ k: Int, _ what: String) -> String { "\(k) \(what)\(k == 1 ? "" : "s")" }
            return "MLflow workspace '\(w.name)' (\(n(w.experiments, "experiment")), \(n(w.registeredModels, "registered model"))) was not "
                + "\(command)ed: Tally keeps one space; \(command) it with --workspace \(w.name)"
        }
    }
}

/// A workspace of an MLflow source, with how much it holds (``MLflowSource/otherWorkspaces()``).
public struct SourceWorkspace: Sendable, Equatable {
    /// Its name.
    public var name: String
    /// Its experiments, deleted ones included.
    public var experiments: Int
    /// Its registered models, prompts included (MLflow keeps a prompt as a registered model).
    public var registeredModels: Int

    /// A workspace holding these counts.
    public init(name: String, experiments: Int, registeredModels: Int) {
        self.name = name
        self.experiments = experiments
        self.registeredModels = registeredModels
    }
}
