import Hummingbird
import TallyTracking

extension MLflowAPI {
    static let statusNumbers: [Int64: String] = [1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"]

    static func metric(_ o: JSONValue, _ i: Int?, defaultTimestamp: Int64? = nil) throws -> MetricInput {
        let prefix = i.map { "metrics[\($0)]." } ?? ""
        guard case .string(let key)? = o["key"] else {
            if let v = o["key"], v != .null { throw MLflowRequest.invalid(prefix + "key", v) }
            throw MLflowRequest.missing(prefix + "key")
        }
        guard let rawValue = o["value"], rawValue != .null else { throw MLflowRequest.missing(prefix + "value") }
        let value = try MLflowRequest.double(rawValue, prefix + "value")
        guard let rawTs = o["timestamp"], rawTs != .null else { throw MLflowRequest.missing(prefix + "timestamp") }
        let ts = try MLflowRequest.int64(rawTs, prefix + "timestamp")
        let step = try o["step"].flatMap { $0 == .null ? nil : try MLflowRequest.int64($0, prefix + "step") } ?? 0
        return MetricInput(key: key, value: value, timestamp: ts, step: step)
    }

    /// Routes whose bodies have a hand-written parser (`runs/log-batch`: the hot one).
    var fastPaths: [String: FastPath] {
        let s = service
        return ["/runs/log-batch": { bytes in
            guard let b = LogBatchParser.parse(bytes) else { return nil }
            return { try s.logBatch(runID: b.runID, metrics: b.metrics, params: b.params, tags: b.tags); return Self.empty }
        }]
    }

    func runRoutes() -> [(String, [HTTPRequest.Method], Handler)] {
        let s = service
        return [
            ("/runs/create", [.post], { r in
                let run = try s.createRun(experimentID: try r.string("experiment_id"), userID: try r.string("user_id"),
                                          runName: try r.string("run_name"), startTime: try r.int64("start_time"), tags: try r.keyValues("tags"))
                var o = Obj()
                o.add("run", raw: Render.run(run))
                return o.json
            }),
            ("/runs/get", [.get], { r in
                var o = Obj()
                o.add("run", raw: Render.run(try s.run(id: try r.runID())))
                return o.json
            }),
            ("/runs/update", [.post], { r in
                let status = try r.enumName("status", numbers: Self.statusNumbers).flatMap(RunStatus.init(rawValue:))
                let info = try s.updateRun(id: try r.runID(), status: status, endTime: try r.int64("end_time"), runName: try r.string("run_name"))
                var o = Obj()
                o.add("run_info", raw: Render.runInfo(info))
                return o.json
            }),
            ("/runs/delete", [.post], { r in
                try s.deleteRun(id: try r.runID())
                return Self.empty
            }),
            ("/runs/restore", [.post], { r in
                try s.restoreRun(id: try r.runID())
                return Self.empty
            }),
            ("/runs/set-tag", [.post], { r in
                try s.setTag(runID: try r.runID(), key: try r.string("key", required: true)!, value: try r.string("value") ?? "")
                return Self.empty
            }),
            ("/runs/delete-tag", [.post], { r in
                try s.deleteTag(runID: try r.runID(), key: try r.string("key", required: true)!)
                return Self.empty
            }),
            ("/runs/log-metric", [.post], { r in
                let id = try r.runID()
                guard let body = r.body else { throw MLflowRequest.missing("key") }
                try s.logMetric(runID: id, try Self.metric(body, nil))
                return Self.empty
            }),
            ("/runs/log-parameter", [.post], { r in
                try s.logParam(runID: try r.runID(), key: try r.string("key", required: true)!, value: try r.string("value") ?? "")
                return Self.empty
            }),
            ("/runs/log-batch", [.post], { r in
                let id = try r.runID()
                let metrics = try r.objects("metrics").enumerated().map { try Self.metric($1, $0) }
                try s.logBatch(runID: id, metrics: metrics, params: try r.keyValues("params"), tags: try r.keyValues("tags"))
                return Self.empty
            }),
            ("/runs/log-inputs", [.post], { r in
                let id = try r.runID()
                let inputs = try r.objects("datasets").enumerated().map { i, o -> DatasetInput in
                    guard let d = o["dataset"] else { throw MLflowRequest.missing("datasets[\(i)].dataset") }
                    func field(_ k: String) throws -> String? {
                        switch d[k] {
                        case .string(let s)?: return s
                        case nil, .null?: return nil
                        case let v?: throw MLflowRequest.invalid("datasets[\(i)].dataset.\(k)", v)
                        }
                    }
                    let tags = try MLflowRequest(body: o, query: [:]).keyValues("tags")
                    return DatasetInput(dataset: Dataset(name: try field("name") ?? "", digest: try field("digest") ?? "",
                                                         sourceType: try field("source_type") ?? "", source: try field("source") ?? "",
                                                         schema: try field("schema"), profile: try field("profile")), tags: tags)
                }
                try s.logInputs(runID: id, inputs)
                return Self.empty
            }),
            ("/runs/search", [.post, .get], { r in
                let page = try s.searchRuns(experimentIDs: try r.strings("experiment_ids"), filter: try r.string("filter"),
                                            view: try Self.viewType(r, "run_view_type"), maxResults: Int(try r.int64("max_results") ?? 1000),
                                            orderBy: try r.strings("order_by"), pageToken: try r.string("page_token"))
                var o = Obj()
                o.add("runs", array: page.items.map(Render.run))
                o.add("next_page_token", page.nextPageToken)
                return o.json
            }),
        ]
    }
}
