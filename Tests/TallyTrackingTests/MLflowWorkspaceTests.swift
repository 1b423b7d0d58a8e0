import Foundation
import Testing
@testable import TallyTracking

/// MLflow's workspace rules as `tally import`/`export --workspace` apply them (MLflow 3.17's
/// `WorkspaceNameValidator`; the interop suite checks the same names against it).
@Suite struct MLflowWorkspaceTests {
    /// What `validate` says of `name`: `nil` when it passes.
    func refusal(_ name: String) -> String? {
        do {
            try MLflowWorkspace.validate(name)
            return nil
        } catch let e as TrackingError {
            #expect(e.code == .invalidParameterValue)
            return e.message
        } catch {
            Issue.record("unexpected \(error)")
            return "?"
        }
    }

    @Test func namesAreCheckedAsMLflowChecksThem() {
        for ok in ["default", "team-a", "a1", "0-9", String(repeating: "x", count: 63), "ab"] { #expect(refusal(ok) == nil, "\(ok)") }
        #expect(refusal("a") == "Workspace name 'a' must be between 2 and 63 characters.")
        #expect(refusal(String(repeating: "x", count: 64))?.hasSuffix("must be between 2 and 63 characters.") == true)
        for bad in ["Team", "team_a", "-ab", "ab-", "tëam", "a b", "a.b", "ab\u{0}"] {
            #expect(refusal(bad) == "Workspace name '\(bad)' must match the pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ "
                    + "(lowercase alphanumeric with optional internal hyphens).", "\(bad)")
        }
        for reserved in ["workspaces", "api", "ajax-api", "static-files"] {
            #expect(refusal(reserved) == "Workspace name '\(reserved)' is reserved and cannot be used.")
        }
        // Length is checked first, as MLflow does: a one-character bad name is a length error.
        #expect(refusal("A")?.contains("between 2 and 63") == true)
        // Lengths in code points, as Python counts: a decomposed "é" is two, so the pattern refuses it.
        #expect(refusal("e\u{301}")?.contains("must match the pattern") == true)
    }

    @Test func theOptionThenMLflowsVariableChooseTheWorkspace() {
        #expect(MLflowWorkspace.chosen("team-a", environment: ["MLFLOW_WORKSPACE": "team-b"]) == "team-a")
        #expect(MLflowWorkspace.chosen(nil, environment: ["MLFLOW_WORKSPACE": " team-b "]) == "team-b")
        #expect(MLflowWorkspace.chosen(nil, environment: ["MLFLOW_WORKSPACE": "  "]) == "default")
        #expect(MLflowWorkspace.chosen(nil, environment: [:]) == "default")
    }

    @Test func journalsOfTheDefaultWorkspaceKeepTheirNames() {
        #expect(MLflowWorkspace.journalSuffix("default") == "")
        #expect(MLflowWorkspace.journalSuffix("team-a") == "#workspace=team-a")
    }

    @Test func workspacesLeftBehindAreNamedWithWhatTheyHold() {
        let others = [SourceWorkspace(name: "team-a", experiments: 1, registeredModels: 2),
                      SourceWorkspace(name: "empty", experiments: 0, registeredModels: 0),
                      SourceWorkspace(name: "models", experiments: 0, registeredModels: 1)]
        #expect(MLflowWorkspace.leftBehind(others, command: "import") == [
            "MLflow workspace 'team-a' (1 experiment, 2 registered models) was not imported: Tally keeps one space; import it with --workspace team-a",
            "MLflow workspace 'models' (0 experiments, 1 registered model) was not imported: Tally keeps one space; import it with --workspace models",
        ])
    }

    @Test func anUnknownWorkspaceNamesThoseThereAre() {
        let e = MLflowWorkspace.unknown("nope", in: "http://h", has: ["default", "team-a"])
        #expect(e.code == .resourceDoesNotExist)
        #expect(e.message == "No workspace 'nope' in http://h (its workspaces: default, team-a)")
    }
}
