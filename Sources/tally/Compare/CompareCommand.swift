import ArgumentParser
import Foundation

/// `tally compare`: summaries and sparklines of a metric across runs, from a server's compare API.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a metric across runs: a table of summaries with sparklines, or CSV/JSON."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json
    }

    @Option(help: "Server URL (plain HTTP).") var server = ProcessInfo.processInfo.environment["MLFLOW_TRACKING_URI"] ?? "http://127.0.0.1:5000"
    @Argument(help: "Run ids.") var runIDs: [String]
    @Option(name: .customLong("metric"), help: "Metric key (repeat for several).") var metrics: [String] = ["loss"]
    @Option(help: "Sparkline width (buckets).") var buckets = 60
    @Option(help: "First step of the window (with --end-step).") var startStep: Int64?
    @Option(help: "Last step of the window (with --start-step).") var endStep: Int64?
    @Option(help: "Output: table, csv or json.") var format: Format = .table

    func validate() throws {
        guard !runIDs.isEmpty else { throw ValidationError("give at least one run id") }
        guard (startStep == nil) == (endStep == nil) else { throw ValidationError("--start-step and --end-step go together") }
        guard (1...1000).contains(buckets) else { throw ValidationError("--buckets must be between 1 and 1000") }
    }

    func run() throws {
        guard let url = URLComponents(string: server), url.scheme == "http", let host = url.host else {
            throw ValidationError("--server must be an http:// URL (got '\(server)')")
        }
        var query: [String: Any] = ["run_ids": runIDs, "metric_keys": metrics, "buckets": buckets, "mode": "mean", "align": false]
        if let a = startStep, let b = endStep {
            query["start_step"] = a
            query["end_step"] = b
        }
        let body = try JSONSerialization.data(withJSONObject: query)
        let conn = try BlockingHTTP(host: host, port: url.port ?? 80)
        let path = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        let (status, answer) = try conn.request("POST", path + "/api/tally/v1/compare", body: Array(body))
        let parsed = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]
        guard status == 200, let result = parsed else {
            let message = (parsed?["message"] as? String) ?? String(decoding: answer.prefix(300), as: UTF8.self)
            throw ValidationError("server answered \(status): \(message)")
        }
        switch format {
        case .json: print(String(decoding: answer, as: UTF8.self))
        case .csv: print(CompareTable.csv(result))
        case .table: print(CompareTable.text(result, width: buckets))
        }
    }
}

/// Renders a compare answer for the terminal or as CSV.
enum CompareTable {
    static let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// One block character per bucket, scaled to the series' own finite range; gaps are spaces.
    static func sparkline(steps: [Int64], values: [Double], start: Int64, end: Int64, width: Int) -> String {
        var cells = [Double?](repeating: nil, count: width)
        let span = Double(end - start) + 1
        for (s, v) in zip(steps, values) where v.isFinite {
            let i = min(width - 1, max(0, Int(Double(s - start) / span * Double(width))))
            cells[i] = v
        }
        let finite = cells.compactMap { $0 }
        guard let lo = finite.min(), let hi = finite.max() else { return String(repeating: " ", count: width) }
        return String(cells.map { c -> Character in
            guard let c else { return " " }
            return hi > lo ? bars[min(7, Int((c - lo) / (hi - lo) * 8))] : bars[3]
        })
    }

    static func number(_ v: Any?) -> String {
        switch v {
        case let d as Double: return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(format: "%.6g", d)
        case let i as Int: return String(i)
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        default: return "–"
        }
    }

    static func point(_ v: Any?) -> String {
        guard let p = v as? [String: Any] else { return "–" }
        return number(p["value"]) + "@" + number(p["step"])
    }

    static func names(_ r: [String: Any]) -> [String: String] {
        var out: [String: String] = [:]
        for run in r["runs"] as? [[String: Any]] ?? [] {
            if let id = run["run_id"] as? String { out[id] = (run["run_name"] as? String).map { $0.isEmpty ? id : $0 } ?? id }
        }
        return out
    }

    static func text(_ r: [String: Any], width: Int) -> String {
        let names = names(r)
        let start = (r["start_step"] as? NSNumber)?.int64Value ?? 0, end = (r["end_step"] as? NSNumber)?.int64Value ?? 0
        var rows: [[String]] = [["run", "metric", "points", "first", "last", "min", "max", "NaN/Inf", "steps \(start)…\(end)"]]
        for s in r["series"] as? [[String: Any]] ?? [] {
            let summary = s["summary"] as? [String: Any] ?? [:]
            let bad = (summary["nan_count"] as? Int ?? 0) + (summary["pos_inf_count"] as? Int ?? 0) + (summary["neg_inf_count"] as? Int ?? 0)
            let steps = (s["steps"] as? [NSNumber] ?? []).map(\.int64Value)
            let values = (s["values"] as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan }
            rows.append([names[s["run_id"] as? String ?? ""] ?? "?", s["key"] as? String ?? "?", number(summary["count"]),
                         point(summary["first"]), point(summary["last"]), point(summary["min"]), point(summary["max"]), String(bad),
                         sparkline(steps: steps, values: values, start: start, end: end, width: width)])
        }
        if rows.count == 1 { return "no points for these runs and metrics" }
        var lines = [render(rows)]
        let diffs = (r["params"] as? [[String: Any]] ?? []) + (r["tags"] as? [[String: Any]] ?? []).filter { ($0["key"] as? String) != "mlflow.runName" }
        if !diffs.isEmpty, let runs = r["runs"] as? [[String: Any]] {
            var table: [[String]] = [["differs"] + runs.map { names[$0["run_id"] as? String ?? ""] ?? "?" }]
            for d in diffs { table.append([d["key"] as? String ?? "?"] + (d["values"] as? [Any] ?? []).map { ($0 as? String) ?? "–" }) }
            lines.append("")
            lines.append(render(table))
        }
        return lines.joined(separator: "\n")
    }

    static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { c in rows.map { $0.indices.contains(c) ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in cell + String(repeating: " ", count: widths[c] - cell.count) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n")
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func csv(_ r: [String: Any]) -> String {
        let names = names(r)
        var lines = ["run_id,run_name,metric,count,nan_count,pos_inf_count,neg_inf_count,mean,first_step,first,last_step,last,min_step,min,max_step,max"]
        for s in r["series"] as? [[String: Any]] ?? [] {
            let m = s["summary"] as? [String: Any] ?? [:]
            let id = s["run_id"] as? String ?? ""
            func p(_ k: String) -> [String] {
                let x = m[k] as? [String: Any]
                return [number(x?["step"]), number(x?["value"])]
            }
            let fields = [id, names[id] ?? "", s["key"] as? String ?? "", number(m["count"]), number(m["nan_count"]), number(m["pos_inf_count"]),
                          number(m["neg_inf_count"]), number(m["mean"])] + p("first") + p("last") + p("min") + p("max")
            lines.append(fields.map { csvField($0 == "–" ? "" : $0) }.joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }
}
