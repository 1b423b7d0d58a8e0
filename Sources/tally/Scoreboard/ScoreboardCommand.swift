import ArgumentParser
import Foundation

/// `tally scoreboard`: benchmark-suite results of several runs side by side, from a server's scoreboard API.
struct ScoreboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scoreboard",
        abstract: "Keys × runs: latest (or best) values, ranks, group means and deltas to a baseline; a table, CSV or JSON."
    )

    @Option(help: "Server URL (plain HTTP).") var server = ProcessInfo.processInfo.environment["MLFLOW_TRACKING_URI"] ?? "http://127.0.0.1:5000"
    @Argument(help: "Run ids (or --experiment).") var runIDs: [String] = []
    @Option(help: "Experiment id whose runs to show (with --filter).") var experiment: String?
    @Option(help: "MLflow run filter, with --experiment.") var filter: String?
    @Option(name: .customLong("keys"), help: "Key prefix (repeat for several).") var keyPrefixes: [String] = []
    @Option(help: "Regular expression the keys must match.") var regex: String?
    @Option(help: "Value shown: latest, best or step:N.") var value = "latest"
    @Option(help: "Baseline run: deltas are value − baseline.") var baseline: String?
    @Option(help: "Group keys by their first N parts (default: up to the last '/').") var groupDepth: Int?
    @Option(help: "Output: table, csv or json.") var format: CompareCommand.Format = .table

    func validate() throws {
        guard runIDs.isEmpty != (experiment == nil) else { throw ValidationError("give run ids or --experiment") }
        guard keyPrefixes.isEmpty || regex == nil else { throw ValidationError("--keys and --regex do not go together") }
    }

    func run() throws {
        guard let url = URLComponents(string: server), url.scheme == "http", let host = url.host else {
            throw ValidationError("--server must be an http:// URL (got '\(server)')")
        }
        var query: [String: Any] = [:]
        if !runIDs.isEmpty { query["run_ids"] = runIDs }
        if let experiment { query["experiment_id"] = experiment }
        if let filter { query["filter"] = filter }
        if !keyPrefixes.isEmpty { query["key_prefixes"] = keyPrefixes }
        if let regex { query["key_regex"] = regex }
        if value.hasPrefix("step:") {
            query["value"] = "step"
            query["step"] = Int64(value.dropFirst(5)) ?? 0
        } else {
            query["value"] = value
        }
        if let baseline { query["baseline_run_id"] = baseline }
        if let groupDepth { query["group_depth"] = groupDepth }
        let conn = try BlockingHTTP(host: host, port: url.port ?? 80)
        let path = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        let (status, answer) = try conn.request("POST", path + "/api/tally/v1/scoreboard", body: Array(try JSONSerialization.data(withJSONObject: query)))
        let parsed = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]
        guard status == 200, let board = parsed else {
            let message = (parsed?["message"] as? String) ?? String(decoding: answer.prefix(300), as: UTF8.self)
            throw ValidationError("server answered \(status): \(message)")
        }
        switch format {
        case .json: print(String(decoding: answer, as: UTF8.self))
        case .csv: print(ScoreboardTable.csv(board))
        case .table: print(ScoreboardTable.text(board))
        }
    }
}

/// Renders a scoreboard answer: one line per key (grouped, group means first), one column per run, the best value
/// of each row marked with `*`, deltas to the baseline in brackets.
enum ScoreboardTable {
    static func runNames(_ b: [String: Any]) -> [String] {
        ((b["runs"] as? [[String: Any]]) ?? []).map { ($0["run_name"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? ($0["run_id"] as? String ?? "?") }
    }

    static func cell(_ row: [String: Any], _ i: Int, marks: Bool) -> String {
        let values = row["values"] as? [Any] ?? []
        guard i < values.count, !(values[i] is NSNull) else { return "" }
        var text = CompareTable.number(values[i])
        if marks, (row["ranks"] as? [Any])?[i] as? Int == 1 { text += "*" }
        if marks, let d = (row["baseline_deltas"] as? [Any])?[i], !(d is NSNull), let x = d as? Double, x != 0 {
            text += " (" + (x > 0 ? "+" : "") + CompareTable.number(x) + ")"
        }
        return text
    }

    static func text(_ b: [String: Any]) -> String {
        let names = runNames(b)
        let rows = b["rows"] as? [[String: Any]] ?? []
        let groups = b["groups"] as? [[String: Any]] ?? []
        var lines: [[String]] = [["key"] + names]
        for g in groups {
            let name = g["group"] as? String ?? ""
            let members = rows.filter { $0["group"] as? String == name }
            // A group of one key has no means: its row's values are them.
            let means = (g["means"] as? [Any] ?? members.first?["values"] as? [Any] ?? []).map { $0 is NSNull ? "" : CompareTable.number($0) }
            lines.append(["[\(name.isEmpty ? "(top level)" : name)] mean"] + means)
            for row in members {
                lines.append(["  " + (row["key"] as? String ?? "")] + names.indices.map { cell(row, $0, marks: true) })
            }
        }
        let widths = (0..<(names.count + 1)).map { c in lines.map { $0.count > c ? $0[c].count : 0 }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { c, s in c == 0 ? s.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - s.count) + s }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func csv(_ b: [String: Any]) -> String {
        func quote(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        var lines = [(["key", "group"] + runNames(b)).map(quote).joined(separator: ",")]
        for row in b["rows"] as? [[String: Any]] ?? [] {
            let cells = [row["key"] as? String ?? "", row["group"] as? String ?? ""] + runNames(b).indices.map { cell(row, $0, marks: false) }
            lines.append(cells.map(quote).joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }
}
