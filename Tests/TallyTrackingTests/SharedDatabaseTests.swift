import Dispatch
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Several servers on one PostgreSQL database (each with its own metric store, as until the cluster issue): what
/// one writes, the other reads at once; rules two servers could race on are decided by the database.
@Suite struct SharedDatabaseTests {
    @Test(.enabled(if: PostgresDatabaseTests.available)) func whatOneServerWritesTheOtherReadsAtOnce() throws {
        let f = try Fixture("shared", backend: .postgres)
        let a = f.service, b = try f.secondServer()
        let exp = try a.createExperiment(name: "shared")
        #expect(try b.experiment(named: "shared").experimentID == exp)
        let run = try a.createRun(experimentID: exp, runName: "r").info.runID
        // Params, tags, latest values, status: each read through the other server right after the write.
        try a.logBatch(runID: run, metrics: [Metric(key: "loss", value: 0.5, timestamp: 1, step: 1)], params: [KeyValue(key: "lr", value: "0.1")],
                       tags: [KeyValue(key: "team", value: "x")])
        var seen = try b.run(id: run)
        #expect(seen.params == [KeyValue(key: "lr", value: "0.1")] && seen.tags.contains(KeyValue(key: "team", value: "x")))
        #expect(seen.metrics == [Metric(key: "loss", value: 0.5, timestamp: 1, step: 1)])
        try b.logMetric(runID: run, Metric(key: "loss", value: 0.25, timestamp: 2, step: 2))
        #expect(try a.run(id: run).metrics == [Metric(key: "loss", value: 0.25, timestamp: 2, step: 2)])
        _ = try a.updateRun(id: run, status: .finished, endTime: 9)
        seen = try b.run(id: run)
        #expect(seen.info.status == .finished && seen.info.endTime == 9)
        try b.setTag(runID: run, key: "team", value: "y")
        #expect(try a.run(id: run).tags.contains(KeyValue(key: "team", value: "y")))
        // Searches see the other server's latest values, params and tags.
        #expect(try a.searchRuns(experimentIDs: [exp], filter: "metrics.loss < 0.3 and params.lr = '0.1' and tags.team = 'y'").items.map(\.info.runID) == [run])
        // Renames and deletes.
        try b.renameExperiment(id: exp, to: "renamed")
        #expect(try a.experiment(id: exp).name == "renamed")
        expectError(.resourceDoesNotExist, "") { _ = try a.experiment(named: "shared") }
        try a.deleteRun(id: run)
        #expect(try b.searchRuns(experimentIDs: [exp]).items.isEmpty)
        // Names are the database's: a name taken through one server is taken for the other.
        expectError(.resourceAlreadyExists, "already exists") { _ = try b.createExperiment(name: "renamed") }
        // Registry: versions numbered by the database, aliases visible at once.
        _ = try a.createRegisteredModel(name: "m", tags: [], description: nil)
        let src = try a.createRun(experimentID: exp).info.runID
        let v1 = try a.createModelVersion("m", source: "runs:/\(src)/model", runID: src, tags: [], runLink: nil, description: nil, modelID: nil)
        let v2 = try b.createModelVersion("m", source: "runs:/\(src)/model", runID: src, tags: [], runLink: nil, description: nil, modelID: nil)
        #expect(v1.version == 1 && v2.version == 2)
        try b.setModelAlias("m", alias: "champion", version: "2")
        #expect(try a.modelVersion(byAlias: "champion", of: "m").version == 2)
    }

    /// A server that restarts after a crash raises a latest value to the points its log replays only when they are
    /// later than the stored value: a later value logged through another server meanwhile stays (a store of its own,
    /// SQLite, sets the value to its points either way: `VisibilityTests.recoveryReconcilesLatestValues`).
    @Test(.enabled(if: PostgresDatabaseTests.available)) func aRestartNeverLowersAnotherServersLatestValue() throws {
        let f = try Fixture("shared-reconcile", backend: .postgres)
        let b = try f.secondServer()
        let dir = f.dir + "/crashed"
        var run = ""
        do {
            let a = TrackingService(metadata: try f.metadataStore(), metrics: try Fixture.metricStore(dir), clock: f.clock)
            run = try a.createRun(experimentID: "0").info.runID
            try a.logBatch(runID: run, metrics: [Metric(key: "loss", value: 0.5, timestamp: 1, step: 1), Metric(key: "acc", value: 0.1, timestamp: 1, step: 1)])
            // A crash between the append and the commit: points of `acc` at step 5 in a's log, not in the latest row.
            try a.metrics.append(run: run, series: [SeriesBatch(key: "acc", steps: [5], timestamps: [2], values: [0.2])])
            // No clean close: the heads are only in the log.
        }
        try b.logMetric(runID: run, Metric(key: "loss", value: 0.25, timestamp: 3, step: 2))
        let a = TrackingService(metadata: try f.metadataStore(), metrics: try Fixture.metricStore(dir), clock: f.clock)
        #expect(a.metrics.recovery.replayedSeries[run] == ["acc", "loss"])
        #expect(try a.reconcileLatest() == 1)  // acc raised to step 5; loss left at b's step 2
        #expect(try b.run(id: run).metrics.sorted { $0.key < $1.key }
                == [Metric(key: "acc", value: 0.2, timestamp: 2, step: 5), Metric(key: "loss", value: 0.25, timestamp: 3, step: 2)])
        #expect(try a.reconcileLatest() == 0)
    }

    /// A server's search cache never answers from before another server's write: every kind of change to a run, a
    /// change committed by a transaction that was still open when the cache was read, and runs removed for good.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func searchCacheSeesTheOtherServersWrites() throws {
        let f = try Fixture("search-cache", backend: .postgres)
        let a = f.service, b = try f.secondServer()
        let exp = try a.createExperiment(name: "cached")
        let run = try a.createRun(experimentID: exp, runName: "r").info.runID
        func seen(_ filter: String = "", view: ViewType = .activeOnly) throws -> [Run] {
            try b.searchRuns(experimentIDs: [exp], filter: filter, view: view).items
        }
        #expect(try seen().map(\.info.runID) == [run])  // b's cache now holds the experiment
        let other = try a.createRun(experimentID: exp, runName: "o").info.runID
        #expect(Set(try seen().map(\.info.runID)) == [run, other])
        try a.logParam(runID: run, key: "lr", value: "0.1")
        #expect(try seen("params.lr = '0.1'").map(\.info.runID) == [run])
        try a.setTag(runID: run, key: "team", value: "x")
        #expect(try seen("tags.team = 'x'").map(\.info.runID) == [run])
        try a.deleteTag(runID: run, key: "team")
        #expect(try seen("tags.team = 'x'").isEmpty)
        try a.logMetric(runID: other, Metric(key: "loss", value: 0.5, timestamp: 1, step: 1))
        #expect(try seen("metrics.loss = 0.5").map(\.info.runID) == [other])
        try a.logMetric(runID: other, Metric(key: "loss", value: 0.25, timestamp: 2, step: 2))
        #expect(try seen("metrics.loss = 0.25").map(\.info.runID) == [other])
        _ = try a.updateRun(id: run, status: .finished, endTime: 9, runName: "renamed")
        #expect(try seen("attributes.status = 'FINISHED' and attributes.run_name = 'renamed'").map(\.info.runID) == [run])
        try a.logInputs(runID: run, [DatasetInput(dataset: Dataset(name: "d", digest: "x", sourceType: "code", source: "{}"), tags: [])])
        #expect(try seen("datasets.name = 'd'").map(\.info.runID) == [run])
        try a.deleteRun(id: run)
        #expect(try seen().map(\.info.runID) == [other])
        #expect(try seen(view: .deletedOnly).map(\.info.runID) == [run])
        try a.restoreRun(id: run)
        #expect(Set(try seen().map(\.info.runID)) == [run, other])
        // A transaction still open while b reads: its change lands after b's read, and b's next search has it.
        let store = try #require(a.metadata as? PostgresMetadataStore)
        try store.transaction {
            try store.setRunTags(id: other, [KeyValue(key: "late", value: "1")])
            #expect(try seen("tags.late = '1'").isEmpty)
        }
        #expect(try seen("tags.late = '1'").map(\.info.runID) == [other])
        try store.transaction {  // the same for a param, which carries its own version
            _ = try store.insertParams(runID: other, [KeyValue(key: "late", value: "2")])
            #expect(try seen("params.late = '2'").isEmpty)
        }
        #expect(try seen("params.late = '2'").map(\.info.runID) == [other])
        try store.transaction {  // and for a latest row, which does too
            try store.setLatestMetrics(runID: other, [Metric(key: "late", value: 3, timestamp: 1, step: 1)])
            #expect(try seen("metrics.late = 3").isEmpty)
        }
        #expect(try seen("metrics.late = 3").map(\.info.runID) == [other])
        // A run removed for good (no version left to compare): the count differs, the experiment is read again.
        try store.db.withConnection { c in
            for table in ["params", "tags", "inputs", "run_latest", "runs"] { try c.run("DELETE FROM \(table) WHERE run_uuid = ?", [.text(run)]) }
        }
        #expect(try seen(view: .all).map(\.info.runID) == [other])
    }

    /// More writes elsewhere since the cache's horizon than its check reads (the experiment's runs + 1,000 rows of a
    /// child table, oldest first): the experiment is read in full, so a change after them is still seen.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func searchCacheReadsInFullPastItsLimit() throws {
        let f = try Fixture("search-cache-limit", backend: .postgres)
        let a = f.service, b = try f.secondServer()
        let exp = try a.createExperiment(name: "cached"), busy = try a.createExperiment(name: "busy")
        let run = try a.createRun(experimentID: exp, runName: "r").info.runID
        #expect(try b.searchRuns(experimentIDs: [exp]).items.map(\.info.runID) == [run])  // b's cache holds the experiment
        let store = try #require(a.metadata as? PostgresMetadataStore)
        try store.db.withConnection { c in
            let g = "generate_series(1, 1100) g"
            try c.execute("INSERT INTO runs SELECT 'busy' || g, \(busy), 'n', 'u', 'RUNNING', g, NULL, 'a', 'active', NULL FROM \(g); "
                          + "INSERT INTO run_latest SELECT 'busy' || g, ''::bytea FROM \(g); INSERT INTO params SELECT 'busy' || g, 'p', 'v' FROM \(g)")
        }
        try a.logMetric(runID: run, Metric(key: "loss", value: 0.5, timestamp: 1, step: 1))
        try a.logParam(runID: run, key: "lr", value: "0.1")
        #expect(try b.searchRuns(experimentIDs: [exp], filter: "metrics.loss = 0.5 and params.lr = '0.1'").items.map(\.info.runID) == [run])
    }

    /// The same param through two servers at once with different values: exactly one is stored, the other writer
    /// gets MLflow's error; batches of different keys to one run through both servers keep every latest value.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func racesAreDecidedByTheDatabase() throws {
        let f = try Fixture("race", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let exp = try servers[0].createExperiment(name: "race")
        for round in 0..<20 {
            let run = try servers[0].createRun(experimentID: exp).info.runID
            let outcomes = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                do {
                    if round % 2 == 0 {
                        try servers[i].logParam(runID: run, key: "p", value: "v\(i)")
                    } else {
                        try servers[i].logBatch(runID: run, params: [KeyValue(key: "p", value: "v\(i)")])
                    }
                    outcomes.withLock { $0.append("ok v\(i)") }
                } catch let e as TrackingError where e.code == .invalidParameterValue && e.message.contains("Changing param values is not allowed") {
                    outcomes.withLock { $0.append("refused") }
                } catch {
                    outcomes.withLock { $0.append("\(error)") }
                }
            }
            let o = outcomes.withLock { $0 }
            let stored = try servers[1].run(id: run).params
            #expect(o.filter { $0.hasPrefix("ok") }.count == 1 && o.contains("refused"), "round \(round): \(o)")
            #expect(stored.count == 1 && o.contains("ok \(stored[0].value)"), "round \(round): \(stored) vs \(o)")
        }
        // Latest values: 2 servers × 10 batches of their own keys, at once: none lost.
        let run = try servers[0].createRun(experimentID: exp).info.runID
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            for n in 0..<10 {
                try? servers[i].logBatch(runID: run, metrics: (0..<5).map { k in Metric(key: "s\(i)/k\(n)/\(k)", value: Double(n), timestamp: 1, step: Int64(n)) })
            }
        }
        #expect(try servers[0].run(id: run).metrics.count == 100)
        // The same new metric keys through both servers at once, in opposite orders: every batch is stored (keys
        // interned in one order by every server: no deadlock between them).
        let failures = Mutex<[String]>([])
        for round in 0..<10 {
            let keys = (0..<40).map { "r\(round)/key\($0)" }
            let runs = try servers.map { try $0.createRun(experimentID: exp).info.runID }
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let mine = i == 0 ? keys : keys.reversed()
                do {
                    try servers[i].logBatch(runID: runs[i], metrics: mine.map { Metric(key: $0, value: 1, timestamp: 1, step: 0) })
                } catch {
                    failures.withLock { $0.append("round \(round): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        // Experiment names: created at once through both servers, one wins.
        let names = Mutex<[Bool]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let ok = (try? servers[i].createExperiment(name: "same")) != nil
            names.withLock { $0.append(ok) }
        }
        #expect(names.withLock { $0 }.filter { $0 }.count == 1)
    }

    /// Runs created through one server while another deletes their experiment: every run created is deleted with it
    /// (the delete waits for creations in flight; later ones see the experiment deleted and make no run), never an
    /// active run left in a deleted experiment.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func runsCreatedDuringTheirExperimentsDeleteGoWithIt() throws {
        let f = try Fixture("expdel", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        var left: [String] = []
        for round in 0..<25 {
            let exp = try servers[0].createExperiment(name: "doomed-\(round)")
            let made = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 {
                    for _ in 0..<8 {
                        if let id = try? servers[0].createRun(experimentID: exp).info.runID { made.withLock { $0.append(id) } }
                    }
                } else {
                    try? servers[1].deleteExperiment(id: exp)
                }
            }
            for id in made.withLock({ $0 }) where try servers[1].run(id: id).info.lifecycleStage != .deleted { left.append("round \(round): \(id)") }
        }
        #expect(left.isEmpty, "active runs in deleted experiments: \(left)")
    }

    /// An alias or version tag set through one server while another renames or deletes the model: either it is
    /// refused, or it moves or goes with the model; never left under the old name for a new model of that name.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func registryWritesDuringARenameOrDeleteLeaveNothingBehind() throws {
        let f = try Fixture("regrace", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        var inherited: [String] = []
        for round in 0..<20 {
            let name = "m\(round)"
            _ = try servers[0].createRegisteredModel(name: name, tags: [], description: nil)
            for _ in 0..<2 {
                _ = try servers[0].createModelVersion(name, source: "s3://bucket/m", runID: nil, tags: [], runLink: nil, description: nil, modelID: nil)
            }
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 {
                    for k in 0..<4 {
                        try? servers[0].setModelAlias(name, alias: "a\(k)", version: "1")
                        try? servers[0].setModelVersionTag(name, "1", key: "t\(k)", value: "v")
                    }
                    // A version deleted during the rename or delete: refused or done, never a deadlock (a 503).
                    do { try servers[0].deleteModelVersion(name, "2") } catch let e as TrackingError where e.code == .resourceDoesNotExist {
                    } catch { failures.withLock { $0.append("\(error)") } }
                } else if round % 2 == 0 {
                    _ = try? servers[1].renameRegisteredModel(name, to: name + "-renamed")
                } else {
                    try? servers[1].deleteRegisteredModel(name)
                }
            }
            inherited += failures.withLock { $0 }.map { "round \(round): \($0)" }
            let again = try servers[1].createRegisteredModel(name: name, tags: [], description: nil)
            let v = try servers[1].createModelVersion(name, source: "s3://bucket/m", runID: nil, tags: [], runLink: nil, description: nil, modelID: nil)
            let seen = try servers[0].registeredModel(named: name)
            if !again.aliases.isEmpty || !v.tags.isEmpty || !seen.aliases.isEmpty {
                inherited.append("round \(round): \(again.aliases) \(v.tags)")
            }
        }
        #expect(inherited.isEmpty, "\(inherited)")
    }

    /// A metrics-only request of a run whose latest row the server remembers writes it in one statement, which takes
    /// effect only while the row is the one remembered and the run active: another server's write in between, or a
    /// delete, sends the request through the locked path (the other server's values kept, the delete refusing).
    @Test(.enabled(if: PostgresDatabaseTests.available)) func metricsRequestsWriteTheRememberedRowOnlyWhileCurrent() throws {
        let f = try Fixture("unlocked", backend: .postgres)
        let a = f.service, b = try f.secondServer()
        let store = try #require(a.metadata as? PostgresMetadataStore)
        let exp = try a.createExperiment(name: "unlocked")
        let run = try a.createRun(experimentID: exp).info.runID
        #expect(store.latestCache.get(run)?.seq == 0)  // the empty row its creation made
        try a.logMetric(runID: run, Metric(key: "loss", value: 1, timestamp: 1, step: 1))
        #expect(store.latestCache.get(run)?.seq == 1)
        try a.logBatch(runID: run, metrics: [Metric(key: "loss", value: 0.5, timestamp: 0, step: 0)])  // older: no latest change
        #expect(store.latestCache.get(run)?.seq == 1)  // checked, not written
        // b writes the row: a's remembered row is stale, so a's next request is refused by the database and runs
        // again under the row's lock, merging with b's value.
        try b.logMetric(runID: run, Metric(key: "loss", value: 2, timestamp: 2, step: 2))
        try a.logBatch(runID: run, metrics: [Metric(key: "loss", value: 3, timestamp: 3, step: 0), Metric(key: "acc", value: 0.5, timestamp: 3, step: 3)])
        let latest = [Metric(key: "acc", value: 0.5, timestamp: 3, step: 3), Metric(key: "loss", value: 2, timestamp: 2, step: 2)]
        #expect(try a.run(id: run).metrics == latest)
        #expect(try b.run(id: run).metrics == latest)
        #expect(store.latestCache.get(run)?.seq == 3)  // read under the lock at 2, written
        let mine = try a.history(runID: run, key: "loss").map(\.value)
        #expect(mine.sorted() == [0.5, 1, 3])  // a's own points (b's are b's)
        // Runs deleted through b are refused through a, which still remembers their rows; nothing is stored: a point
        // that changes no latest value (the row only checked) and one that does (the row written).
        let fresh = try a.createRun(experimentID: exp).info.runID
        try b.deleteRun(id: run)
        try b.deleteRun(id: fresh)
        #expect(store.latestCache.get(run) != nil && store.latestCache.get(fresh) != nil)
        expectError(.invalidParameterValue, "must be in the 'active' state") {
            try a.logBatch(runID: run, metrics: [Metric(key: "loss", value: 4, timestamp: 4, step: 1)])
        }
        expectError(.invalidParameterValue, "must be in the 'active' state") {
            try a.logMetric(runID: fresh, Metric(key: "loss", value: 4, timestamp: 4, step: 9))
        }
        try b.restoreRun(id: run)
        try b.restoreRun(id: fresh)
        #expect(try a.history(runID: run, key: "loss").map(\.value) == mine)
        #expect(try a.history(runID: fresh, key: "loss").isEmpty)
        #expect(try b.run(id: run).metrics == latest && b.run(id: fresh).metrics.isEmpty)
        // Runs this server never saw go through the locked path, which leaves their row remembered.
        let other = try b.createRun(experimentID: exp).info.runID
        #expect(store.latestCache.get(other) == nil)
        try a.logMetric(runID: other, Metric(key: "x", value: 1, timestamp: 1, step: 1))
        #expect(store.latestCache.get(other)?.seq == 1)
        try a.logMetric(runID: other, Metric(key: "x", value: 2, timestamp: 2, step: 2))
        #expect(store.latestCache.get(other)?.seq == 2)
        #expect(try b.run(id: other).metrics == [Metric(key: "x", value: 2, timestamp: 2, step: 2)])
    }

    /// An append that fails after a metrics request's write took effect: the row is put back, and the next request
    /// does not trust the remembered row.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func failedAppendAfterAnUnlockedWritePutsTheRowBack() throws {
        let f = try Fixture("unlocked-append", backend: .postgres)
        let store = try f.metadataStore() as! PostgresMetadataStore
        let s = TrackingService(metadata: store, metrics: try Fixture.metricStore(f.dir + "/failing"), faults: .failAppend, clock: { 1 })
        let run = try s.createRun(experimentID: "0").info.runID
        #expect(store.latestCache.get(run)?.seq == 0)
        expectError(.internalError, "injected failure: append") { try s.logMetric(runID: run, Metric(key: "loss", value: 1, timestamp: 1, step: 1)) }
        #expect(store.latestCache.get(run) == nil)
        #expect(try f.service.run(id: run).metrics.isEmpty)
        #expect(try s.history(runID: run, key: "loss").isEmpty)
    }

    /// The remembered rows are bounded by bytes, oldest first out; a row is never replaced by an older state of it.
    @Test func latestCacheKeepsItsBound() {
        let cache = PostgresMetadataStore.LatestCache(capacityBytes: 100 * 64)
        for i in 0..<1000 { cache.put("run\(i)", .init(seq: 1, data: [UInt8](repeating: 1, count: 8))) }
        #expect((90...110).contains(cache.count))  // 62 bytes an entry counted, 6,400 allowed
        #expect(cache.get("run999") != nil && cache.get("run0") == nil)
        cache.put("run999", .init(seq: 0, data: []))
        #expect(cache.get("run999")?.seq == 1)
        cache.put("run999", .init(seq: 2, data: [2]))
        #expect(cache.get("run999")?.data == [2])
        cache.put("big", .init(seq: 0, data: [UInt8](repeating: 0, count: 1000)))  // over a sixteenth: not kept
        #expect(cache.get("big") == nil)
        cache.remove("run999")
        #expect(cache.get("run999") == nil)
        // A run forgotten and remembered again over and over (writers of one run racing) keeps the list bounded.
        for i in 0..<10_000 {
            cache.remove("hot")
            cache.put("hot", .init(seq: Int64(i), data: [1]))
        }
        #expect(cache.listed <= 2 * cache.count + 1025)
        #expect(cache.get("hot")?.seq == 9_999 && cache.get("run998") != nil)
    }
}
