import Testing
@testable import TallyStore
@testable import TallyTracking

@Suite struct SearchTests {
    /// Five runs with metrics (one NaN, one missing), params, tags, datasets.
    func seeded(_ backend: Backend) throws -> (Fixture, [String: String]) {
        let f = try Fixture("search", backend: backend)
        let s = f.service
        var ids: [String: String] = [:]
        let specs: [(String, Double?, String?, String?, Int64)] = [
            ("a", 0.5, "adam", "ml", 1), ("b", 0.9, "sgd", "ML", 2), ("c", .nan, "adam", "data", 3), ("d", nil, nil, nil, 4), ("e", 0.1, "Adam", "ml", 5),
        ]
        for (name, acc, opt, team, t) in specs {
            let r = try s.createRun(experimentID: "0", runName: name, startTime: t)
            ids[name] = r.info.runID
            if let acc { try s.logMetric(runID: r.info.runID, Metric(key: "acc", value: acc, timestamp: 1)) }
            if let opt { try s.logParam(runID: r.info.runID, key: "opt", value: opt) }
            if let team { try s.setTag(runID: r.info.runID, key: "team", value: team) }
        }
        try s.logInputs(runID: ids["a"]!, [DatasetInput(dataset: Dataset(name: "mnist", digest: "d1", sourceType: "code", source: "{}"),
                                                         tags: [KeyValue(key: "mlflow.data.context", value: "training")])])
        _ = try s.updateRun(id: ids["e"]!, status: .finished, endTime: 10)
        return (f, ids)
    }

    func names(_ f: Fixture, _ filter: String?, orderBy: [String] = []) throws -> [String] {
        try f.service.searchRuns(experimentIDs: ["0"], filter: filter, orderBy: orderBy).items.map(\.info.runName)
    }

    @Test(arguments: Backend.all) func grammarElements(_ backend: Backend) throws {
        let (f, ids) = try seeded(backend)
        let cases: [(String, Set<String>)] = [
            ("metrics.acc > 0.4", ["a", "b"]),
            ("metrics.acc >= 0.5 and metrics.acc <= 0.5", ["a"]),
            ("metric.acc != 0.5", ["b", "c", "e"]),  // NaN satisfies only !=; a run without the metric never matches
            ("metrics.acc = 0.1", ["e"]),
            ("params.opt = 'adam'", ["a", "c"]),
            ("param.opt != 'adam'", ["b", "e"]),  // runs lacking the param do not match !=
            ("params.opt LIKE 'a%'", ["a", "c"]),
            ("params.opt ILIKE 'a%'", ["a", "c", "e"]),
            ("params.opt LIKE '_dam'", ["a", "c", "e"]),  // _ matches the A of Adam
            ("params.opt IS NULL", ["d"]),
            ("parameters.opt IS NOT NULL", ["a", "b", "c", "e"]),
            ("tags.team = 'ml'", ["a", "e"]),
            ("tags.team ILIKE 'ml'", ["a", "b", "e"]),
            ("tags.team LIKE 'M%'", ["b"]),
            ("tags.`mlflow.runName` = 'c'", ["c"]),
            ("tags.\"mlflow.runName\" = 'd'", ["d"]),
            ("attributes.run_name = 'b'", ["b"]),
            ("`Run name` LIKE '%'", ["a", "b", "c", "d", "e"]),
            ("attributes.status = 'FINISHED'", ["e"]),
            ("status != 'FINISHED'", ["a", "b", "c", "d"]),
            ("attributes.start_time > 3", ["d", "e"]),
            ("created <= 2", ["a", "b"]),
            ("attributes.end_time = 10", ["e"]),
            ("attributes.run_id IN ('\(ids["a"]!)', '\(ids["d"]!)')", ["a", "d"]),
            ("run_id NOT IN ('\(ids["a"]!)')", ["b", "c", "d", "e"]),
            ("datasets.name = 'mnist'", ["a"]),
            ("dataset.context IN ('training', 'eval')", ["a"]),
            ("datasets.digest LIKE 'd%' AND params.opt = 'adam'", ["a"]),
            ("metrics.acc < 1 and params.opt = 'adam' and tags.team = 'ml'", ["a"]),
            ("", ["a", "b", "c", "d", "e"]),
            ("metrics.acc > -1", ["a", "b", "e"]),
            ("metrics.acc > 1e-2", ["a", "b", "e"]),
            // As MLflow's parser reads them: a bare AND anywhere is skipped, clauses side by side need none, and an
            // entity may be backquoted and a key single-quoted.
            ("AND metrics.acc > -1 AND AND", ["a", "b", "e"]),
            ("AND", ["a", "b", "c", "d", "e"]),
            ("metrics.acc < 1 params.opt = 'adam'", ["a"]),
            ("`metrics`.acc > -1 and `params`.'opt' = 'adam'", ["a"]),
        ]
        for (filter, want) in cases {
            #expect(Set(try names(f, filter)) == want, "\(filter)")
        }
    }

    /// ±Infinity is compared as MLflow stores it, ±1.7976931348623157e308 (its SQL cannot hold infinities), and as
    /// Tally answers it: equal to the largest double, not above it.
    @Test(arguments: Backend.all) func infinitiesCompareAsMLflowStoresThem(_ backend: Backend) throws {
        let f = try Fixture("inf", backend: backend)
        let s = f.service
        for (name, v) in [("inf", Double.infinity), ("max", Double.greatestFiniteMagnitude), ("ninf", -Double.infinity), ("one", 1)] {
            let r = try s.createRun(experimentID: "0", runName: name, startTime: 1)
            try s.logMetric(runID: r.info.runID, Metric(key: "n", value: v, timestamp: 1))
        }
        #expect(Set(try names(f, "metrics.n = 1.7976931348623157e308")) == ["inf", "max"])
        #expect(try names(f, "metrics.n > 1.7976931348623157e308").isEmpty)
        #expect(Set(try names(f, "metrics.n <= -1.7976931348623157e308")) == ["ninf"])
        #expect(Set(try names(f, "metrics.n < 2")) == ["ninf", "one"])
        // Ordered, +Inf ties with the largest double (then newest first, then by run id, as MLflow's SQL orders them).
        let desc = try names(f, nil, orderBy: ["metrics.n DESC"])
        #expect(Set(desc.prefix(2)) == ["inf", "max"] && desc.suffix(2) == ["one", "ninf"])
        // Tied both ways: the pair is in run id order ascending and descending alike (were +Inf above the largest
        // double, one of the two orders would reverse the pair).
        let top = try f.service.searchRuns(experimentIDs: ["0"], orderBy: ["metrics.n DESC"]).items.prefix(2).map(\.info.runID)
        let bottom = try f.service.searchRuns(experimentIDs: ["0"], orderBy: ["metrics.n ASC"]).items.suffix(2).map(\.info.runID)
        #expect(top == top.sorted() && bottom == top, "a tie is broken by run id")
    }

    /// A quoted value is the text between its quotes as written, as MLflow reads it (sqlparse's tokens, quotes
    /// trimmed): backslashes and doubled quotes are no escapes, and a quote ends where sqlparse's expression ends it.
    @Test(arguments: Backend.all) func quotedValuesAreTakenAsWritten(_ backend: Backend) throws {
        let f = try Fixture("quotes", backend: backend)
        let s = f.service
        for (name, tag) in [("backslash", "a\\b"), ("quote", "it's"), ("doubled", "it''s"), ("trailing", "abc\\"), ("escaped", "a\\'b"),
                            ("percent", "\\%x"), ("plain", "zzz")] {
            let r = try s.createRun(experimentID: "0", runName: name, startTime: 1)
            try s.setTag(runID: r.info.runID, key: "t", value: tag)
        }
        #expect(try names(f, "tags.t = 'a\\b'") == ["backslash"])
        #expect(try names(f, "tags.t = 'it''s'") == ["doubled"])
        #expect(try names(f, "tags.t = \"it's\"") == ["quote"])
        #expect(try names(f, "tags.t = 'abc\\'") == ["trailing"])
        #expect(try names(f, "tags.t = 'a\\'b'") == ["escaped"])
        #expect(try names(f, "tags.t LIKE '\\%'") == ["percent"])
        #expect(try names(f, "tags.t = 'it''' and attributes.run_name != 'x'").isEmpty)  // the value is it'' (no run has it)
        #expect(try names(f, "tags.t LIKE 'it''%' and attributes.run_name != 'x'") == ["doubled"])
        // sqlparse's quote runs from 'abc\' to the next quote, leaving x and a quote unclosed: refused, as MLflow does.
        expectError(.invalidParameterValue, "unterminated quote") { _ = try names(f, "tags.t LIKE 'abc\\' and tags.t != 'x'") }
        #expect(try names(f, "tags.t = 'zzz' and attributes.run_name = 'plain'") == ["plain"])
        expectError(.invalidParameterValue, "unterminated quote") { _ = try names(f, "tags.t = 'abc") }
    }

    @Test(arguments: Backend.all) func grammarErrors(_ backend: Backend) throws {
        let (f, _) = try seeded(backend)
        let cases: [(String, String)] = [
            ("metrics.acc > 0 OR metrics.acc < 1", "Invalid clause(s) in filter string: 'OR'"),
            ("(metrics.acc > 0)", "Invalid clause(s) in filter string: '(metrics.acc > 0)'"),
            ("foo.bar = 'x'", "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"),
            ("attributes.experiment_id = '0'", "Invalid attribute key 'experiment_id' specified. Valid keys are"),
            ("lifecycle_stage = 'active'", "Invalid attribute key 'lifecycle_stage' specified"),
            ("metrics.acc > '0.5'", "Expected numeric value type for metric. Found '0.5'"),
            ("params.lr = 0.1", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 0.1"),
            ("params.lr > '1'", "Invalid comparator '>' not one of"),
            ("params.lr IN ('a')", "Invalid comparator 'IN' not one of"),
            ("attributes.status IN ('FINISHED')", "Only ['run_id'] attributes support comparison with a list of quoted string values."),
            ("metrics.acc IS NULL", "Invalid comparator 'IS NULL'"),
            ("metrics.acc > 0 NOT metrics.acc < 1", "Invalid clause(s) in filter string: 'NOT'"),
            ("  ", "Invalid filter '  '. Could not be parsed."),
        ]
        for (filter, message) in cases {
            expectError(.invalidParameterValue, message) { _ = try names(f, filter) }
        }
    }

    @Test(arguments: Backend.all) func orderingWithNullsAndTieBreakers(_ backend: Backend) throws {
        let (f, ids) = try seeded(backend)
        #expect(try names(f, nil, orderBy: ["metrics.acc DESC"]) == ["b", "a", "e", "c", "d"])  // value, then NaN, then missing
        #expect(try names(f, nil, orderBy: ["metrics.acc ASC"]) == ["e", "a", "b", "c", "d"])
        #expect(try names(f, nil, orderBy: ["metrics.acc"]) == ["e", "a", "b", "c", "d"])
        #expect(try names(f, nil, orderBy: ["tags.team"]) == ["b", "c", "e", "a", "d"])  // binary: ML < data < ml; ties by start_time DESC
        #expect(try names(f, nil, orderBy: ["params.opt DESC"]) == ["b", "c", "a", "e", "d"])
        #expect(try names(f, nil) == ["e", "d", "c", "b", "a"])  // default: newest first
        #expect(try names(f, nil, orderBy: ["attributes.start_time ASC"]) == ["a", "b", "c", "d", "e"])
        // The filter's spellings of run_name are no ordering keys in MLflow; `created` is.
        expectError(.invalidParameterValue, "Invalid attribute key 'Run name' specified.") { _ = try names(f, nil, orderBy: ["`Run name` DESC"]) }
        expectError(.invalidParameterValue, "Invalid attribute key 'Run Name' specified.") { _ = try names(f, nil, orderBy: ["attributes.\"Run Name\""]) }
        #expect(try names(f, nil, orderBy: ["created"]) == ["a", "b", "c", "d", "e"])
        #expect(try names(f, nil, orderBy: ["attributes.run_name DESC"]) == ["e", "d", "c", "b", "a"])
        expectError(.invalidParameterValue, "Invalid ordering key in order_by clause 'metrics.acc DESCENDING'.") {
            _ = try names(f, nil, orderBy: ["metrics.acc DESCENDING"])
        }
        expectError(.invalidParameterValue, "`order_by` contains duplicate fields") { _ = try names(f, nil, orderBy: ["metrics.acc", "metrics.acc DESC"]) }
        // MLflow's steps: a direction splits the item as a shell would (so `start_time ` loses its space); without one,
        // the item is read as written.
        #expect(try names(f, nil, orderBy: ["`start_time ` DESC"]) == ["e", "d", "c", "b", "a"])
        #expect(try names(f, nil, orderBy: ["metrics.'acc' DESC"]) == ["b", "a", "e", "c", "d"])
        expectError(.invalidParameterValue, "Invalid attribute key 'start_time ' specified.") { _ = try names(f, nil, orderBy: ["`start_time `"]) }
        for unparsable in ["metrics.acc DESC ASC", " metrics.acc", "metrics.a-b", "metrics.acc,tags.team", "metrics.`a\"b`"] {
            expectError(.invalidParameterValue, "Invalid order_by clause '\(unparsable)'. Could not be parsed.") { _ = try names(f, nil, orderBy: [unparsable]) }
        }
        _ = ids
    }

    @Test(arguments: Backend.all) func pagingTenThousandTiedRunsReturnsEachOnce(_ backend: Backend) throws {
        let f = try Fixture("paging", backend: backend)
        let meta = f.service.metadata
        var all = Set<String>()
        try meta.transaction {
            for i in 0..<10_000 {
                let id = RunNames.runID()
                all.insert(id)
                let info = RunInfo(runID: id, runName: "r\(i)", experimentID: "0", userID: "u", status: .running,
                                   startTime: Int64(i % 3), endTime: nil, artifactURI: "x", lifecycleStage: .active)
                try meta.insertRun(info, tags: [KeyValue(key: "mlflow.runName", value: "r\(i)"), KeyValue(key: "k", value: "v\(i % 7)")])
            }
        }
        for orderBy in [[String](), ["tags.k DESC"], ["attributes.start_time ASC"]] {
            var seen: [String] = []
            var token: String?
            repeat {
                let page = try f.service.searchRuns(experimentIDs: ["0"], maxResults: 1_700, orderBy: orderBy, pageToken: token)
                seen += page.items.map(\.info.runID)
                token = page.nextPageToken
            } while token != nil
            #expect(seen.count == 10_000 && Set(seen) == all, "\(orderBy)")
        }
        // The token only appears when another row exists.
        #expect(try f.service.searchRuns(experimentIDs: ["0"], maxResults: 10_000).nextPageToken == nil)
        #expect(try f.service.searchRuns(experimentIDs: ["0"], maxResults: 9_999).nextPageToken == PageToken.encode(offset: 9_999))
        #expect(PageToken.encode(offset: 1) == "eyJvZmZzZXQiOiAxfQ==")
        expectError(.invalidParameterValue, "Invalid page token") { _ = try f.service.searchRuns(experimentIDs: ["0"], pageToken: "%%%") }
        expectError(.invalidParameterValue, "max_results") { _ = try f.service.searchRuns(experimentIDs: ["0"], maxResults: 50_001) }
        #expect(try f.service.searchRuns(experimentIDs: []).items.isEmpty)
    }

    @Test(arguments: Backend.all) func viewTypes(_ backend: Backend) throws {
        let (f, ids) = try seeded(backend)
        try f.service.deleteRun(id: ids["a"]!)
        #expect(Set(try f.service.searchRuns(experimentIDs: ["0"]).items.map(\.info.runName)) == ["b", "c", "d", "e"])
        #expect(try f.service.searchRuns(experimentIDs: ["0"], view: .deletedOnly).items.map(\.info.runName) == ["a"])
        #expect(try f.service.searchRuns(experimentIDs: ["0"], view: .all).items.count == 5)
    }

    @Test(arguments: Backend.all) func experimentSearch(_ backend: Backend) throws {
        var t: Int64 = 100
        let f = try Fixture("exps", clock: { 1_700_000_000_000 }, backend: backend)
        _ = t
        let s = f.service
        for name in ["ab", "a", "Abc"] {
            t += 1
            _ = try s.createExperiment(name: name, tags: name == "a" ? [KeyValue(key: "team", value: "ml")] : [])
        }
        #expect(try s.searchExperiments(maxResults: 1000, orderBy: ["name DESC"]).items.map(\.name) == ["ab", "a", "Default", "Abc"])
        #expect(try s.searchExperiments(filter: "name LIKE 'a%'", maxResults: 1000, orderBy: ["name"]).items.map(\.name) == ["a", "ab"])
        #expect(try s.searchExperiments(filter: "name ILIKE 'a%'", maxResults: 1000, orderBy: ["name"]).items.map(\.name) == ["Abc", "a", "ab"])
        #expect(try s.searchExperiments(filter: "tags.team = 'ml'", maxResults: 1000).items.map(\.name) == ["a"])
        #expect(try s.searchExperiments(filter: "attribute.experiment_id IN ('0', '2')", maxResults: 1000, orderBy: ["experiment_id"]).items.map(\.name) == ["Default", "a"])
        #expect(try s.searchExperiments(filter: "creation_time >= 1700000000000", maxResults: 1000).items.count == 4)
        expectError(.invalidParameterValue, "Invalid entity type 'params'. Valid entity types are ('attribute', 'tag', 'tags')") {
            _ = try s.searchExperiments(filter: "params.x = 'y'", maxResults: 1000)
        }
        expectError(.invalidParameterValue, "Invalid order_by entity: tag") { _ = try s.searchExperiments(maxResults: 1000, orderBy: ["tags.team"]) }
        expectError(.invalidParameterValue, "It must be a positive integer") { _ = try s.searchExperiments(maxResults: 0) }
        let page1 = try s.searchExperiments(maxResults: 3, orderBy: ["name"])
        #expect(page1.items.count == 3 && page1.nextPageToken != nil)
        let page2 = try s.searchExperiments(maxResults: 3, orderBy: ["name"], pageToken: page1.nextPageToken)
        #expect(page2.items.map(\.name) == ["ab"] && page2.nextPageToken == nil)
        try s.deleteExperiment(id: "1")
        #expect(try s.searchExperiments(view: .deletedOnly, maxResults: 1000).items.map(\.name) == ["ab"])
    }
}

@Suite struct MetadataCacheTests {
    @Test(arguments: Backend.all) func cachedRunsMatchTheDatabaseAfterEveryKindOfWrite(_ backend: Backend) throws {
        let f = try Fixture("cache", backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "c")
        let a = try s.createRun(experimentID: exp, runName: "a").info.runID
        _ = try s.searchRuns(experimentIDs: [exp])  // loads the cache
        let b = try s.createRun(experimentID: exp, runName: "b").info.runID
        try s.logBatch(runID: a, metrics: [Metric(key: "m", value: 1, timestamp: 1, step: 1)], params: [KeyValue(key: "p", value: "1")],
                       tags: [KeyValue(key: "t", value: "x")])
        try s.logMetric(runID: a, Metric(key: "m", value: 2, timestamp: 1, step: 2))
        try s.setTag(runID: b, key: "mlflow.runName", value: "b2")
        try s.deleteTag(runID: a, key: "t")
        _ = try s.updateRun(id: a, status: .failed, endTime: 5)
        try s.logInputs(runID: b, [DatasetInput(dataset: Dataset(name: "d", digest: "x", sourceType: "code", source: "{}"), tags: [])])
        try s.deleteRun(id: b)
        try s.deleteExperiment(id: exp)
        try s.restoreExperiment(id: exp)
        // A failing batch (changed param) must not leave anything behind in the cache.
        expectError(.invalidParameterValue, "Changing param values") { try s.logBatch(runID: a, params: [KeyValue(key: "p", value: "2")]) }
        let cached = try s.searchRuns(experimentIDs: [exp], view: .all, orderBy: ["attributes.run_id"]).items.map { r in
            var r = r
            #expect(r.outputs == [])  // a search reads each run's models (none here); the store's runs do not
            r.outputs = nil
            return r
        }
        let reopened = try f.metadataStore()
        let fresh = try reopened.runs(ids: reopened.searchRuns(experimentIDs: [Int64(exp)!], view: .all, metricKeys: []).runs.map(\.info.runID))
            .sorted { $0.info.runID < $1.info.runID }
        #expect(cached == fresh)
        #expect(cached.first { $0.info.runID == b }?.info.runName == "b2")
    }

    /// Searches read metric values from per-key columns kept beside the cache: random writes, failed batches (rolled
    /// back), new runs and searches over more keys than the store keeps columns for, each search checked against
    /// the runs' own latest values, and again after reopening.
    @Test(arguments: Backend.all) func metricColumnsFollowWritesRollbacksAndNewRuns(_ backend: Backend) throws {
        let f = try Fixture("columns", backend: backend)
        var s = f.service
        let exps = [try s.createExperiment(name: "x"), try s.createExperiment(name: "y")]
        var runs: [String: String] = [:]  // run → experiment
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((rng >> 33) % UInt64(n))
        }
        let keys = (0..<(SQLiteMetadataStore.maxColumns + 16)).map { "suite/k\($0)" }
        func newRun() throws {
            let e = exps[next(2)]
            let id = try s.createRun(experimentID: e).info.runID
            try s.logBatch(runID: id, params: [KeyValue(key: "p", value: "1")])
            runs[id] = e
        }
        func metrics() -> [Metric] {
            (0..<(1 + next(5))).map { _ in
                Metric(key: keys[next(12) == 0 ? next(keys.count) : next(8)], value: next(10) == 0 ? .nan : Double(next(1000)) / 1000,
                       timestamp: Int64(next(5)), step: Int64(next(5)))
            }
        }
        func check(_ s: TrackingService) throws {
            let key = keys[next(3) == 0 ? next(keys.count) : next(8)]
            let chosen = next(3) == 0 ? exps : [exps[next(2)]]
            let filtered = next(2) == 0
            let ascending = next(2) == 0
            let page = try s.searchRuns(experimentIDs: chosen, filter: filtered ? "metrics.`\(key)` > 0.3" : nil, maxResults: 1000,
                                        orderBy: ["metrics.`\(key)` \(ascending ? "ASC" : "DESC")"])
            // The oracle: every run of the experiments, read whole.
            var want: [(id: String, value: Double?)] = []
            for (id, e) in runs where chosen.contains(e) {
                let v = try s.run(id: id).metrics.first { $0.key == key }?.value
                if filtered, !(v.map { !$0.isNaN && $0 > 0.3 } ?? false) { continue }
                want.append((id, v))
            }
            func rank(_ v: Double?) -> Int { v == nil ? 2 : (v!.isNaN ? 1 : 0) }
            want.sort { a, b in
                if rank(a.value) != rank(b.value) { return rank(a.value) < rank(b.value) }
                guard let x = a.value, let y = b.value, !x.isNaN, !y.isNaN else { return false }
                return ascending ? x < y : x > y
            }
            let got = page.items.map { r in r.metrics.first { $0.key == key }?.value }
            #expect(Set(page.items.map(\.info.runID)) == Set(want.map(\.id)), "\(key) filtered=\(filtered)")
            #expect(got.map { $0?.bitPattern } == want.map { $0.value?.bitPattern }, "\(key) ascending=\(ascending)")
        }
        for _ in 0..<6 { try newRun() }
        for _ in 0..<400 {
            switch next(12) {
            case 0: try newRun()
            case 1...6: try s.logBatch(runID: runs.keys.sorted()[next(runs.count)], metrics: metrics())
            case 7:  // a changed param fails the whole batch: its metrics must not reach the columns
                expectError(.invalidParameterValue, "Changing param values") {
                    try s.logBatch(runID: runs.keys.sorted()[next(runs.count)], metrics: metrics(), params: [KeyValue(key: "p", value: "2")])
                }
            default: try check(s)
            }
        }
        try s.close()
        s = try f.reopened()
        for _ in 0..<20 { try check(s) }
        // One search may name more keys than the store keeps columns for.
        let all = keys.map { "metrics.`\($0)` > -1" }.joined(separator: " and ")
        for _ in 0..<2 {
            let wide = try s.searchRuns(experimentIDs: exps, filter: all, maxResults: 1000, orderBy: ["metrics.`\(keys[70])` DESC"])
            let want = try runs.keys.filter { id in try keys.allSatisfy { k in (try s.run(id: id).metrics.first { $0.key == k }?.value).map { $0 > -1 } ?? false } }
            #expect(Set(wide.items.map(\.info.runID)) == Set(want))
        }
    }
}
