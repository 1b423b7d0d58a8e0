import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// `tally gc` (``TrackingService/collectGarbage(_:dataDirectory:say:)``): MLflow's `mlflow gc` selection, checks and
/// lines; a purge leaves no row of what it deleted in any table, nor its points (after a restart too) or artifacts;
/// a gc stopped half-way is finished by the next one without touching what is not purged.
@Suite struct GarbageCollectionTests {
    /// A service over the fixture's database with a clock the test moves, proxied artifacts in the fixture's
    /// directory, and a metric store of its own.
    final class World {
        let f: Fixture
        let clock = AccessControlTests.TestClock()
        let service: TrackingService
        let artifacts: String
        var data: DataDirectory { DataDirectory(f.dir) }

        init(_ backend: Backend) throws {
            f = try Fixture("gc", backend: backend)
            artifacts = f.dir + "/artifacts"
            let clock = self.clock
            service = TrackingService(metadata: try f.metadataStore(), metrics: try Fixture.metricStore(f.dir + "/gc-metrics"),
                                      artifacts: try ArtifactStore(root: artifacts), clock: { clock.now })
        }

        /// A run with a param, a tag, points, a dataset and an artifact file; deleted when `deleted`.
        func run(in experiment: String, deleted: Bool = false) throws -> String {
            let s = service
            let id = try s.createRun(experimentID: experiment).info.runID
            try s.logBatch(runID: id, metrics: (0..<50).map { Metric(key: "loss", value: 1 / Double($0 + 1), timestamp: 1, step: Int64($0)) },
                           params: [KeyValue(key: "lr", value: "0.1")], tags: [KeyValue(key: "team", value: "ml")])
            try s.logInputs(runID: id, [DatasetInput(dataset: Dataset(name: "d", digest: "x", sourceType: "code", source: "{}"), tags: [])])
            try write(file: try root(of: id) + "/model.txt")
            if deleted { try s.deleteRun(id: id) }
            return id
        }

        /// The directory of a run's proxied artifacts.
        func root(of run: String) throws -> String {
            artifacts + "/" + TrackingService.proxiedRoot(of: try service.run(id: run).info.artifactURI)!
        }

        func write(file path: String) throws {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        }

        /// A logged model with a tag and a param and an artifact file; deleted when `deleted`.
        func model(in experiment: String, run: String? = nil, deleted: Bool = false) throws -> String {
            let m = try service.createLoggedModel(experimentID: experiment, name: "m", modelType: nil, sourceRunID: run,
                                                  params: [KeyValue(key: "k", value: "v")], tags: [KeyValue(key: "t", value: "v")])
            modelRoots[m.modelID] = artifacts + "/" + TrackingService.proxiedRoot(of: m.artifactURI)!
            try write(file: modelRoots[m.modelID]! + "/MLmodel")
            if deleted { try service.deleteLoggedModel(id: m.modelID) }
            return m.modelID
        }

        /// Where each logged model's files are.
        var modelRoots: [String: String] = [:]
        func modelRoot(_ id: String) throws -> String { try #require(modelRoots[id]) }

        /// Collects garbage: the lines said.
        func gc(olderThan: String? = nil, runs: String? = nil, experiments: String? = nil, models: String? = nil) throws -> [String] {
            var lines: [String] = []
            try service.collectGarbage(try GarbageCollection(olderThan: olderThan, runIDs: runs, experimentIDs: experiments, loggedModelIDs: models),
                                       dataDirectory: data) { lines.append($0) }
            return lines
        }

        /// The error a gc stops with (the lines said before it are `lines`).
        func refused(olderThan: String? = nil, runs: String? = nil, experiments: String? = nil, models: String? = nil) -> TrackingError? {
            do {
                _ = try gc(olderThan: olderThan, runs: runs, experiments: experiments, models: models)
                return nil
            } catch {
                return error as? TrackingError
            }
        }

        /// Every column of every table holding one of `ids` (as text), or `experiment` in a column about experiments:
        /// `table.column` for each, empty when the purge left nothing (but its record in `purged_runs` and `purged_experiments`).
        func leftovers(_ ids: [String], experiment: String? = nil) throws -> [String] {
            var columns: [(String, String)] = []
            var found: [String] = []
            func check(_ db: some SQLConnection) throws {
                for (table, column) in columns where !table.hasPrefix("purged_") {  // the record of what was purged
                    var values = ids
                    if let experiment, column == "experiment_id" || column == "resource_id" { values.append(experiment) }
                    var n = try db.rows("SELECT count(*) FROM \(table) WHERE CAST(\(column) AS TEXT) IN (\(sqlMarks(values.count)))",
                                        values.map(SQLValue.text)).first?.first?.int ?? 0
                    if let experiment, column == "resource_id" {
                        n += try db.rows("SELECT count(*) FROM \(table) WHERE \(column) LIKE ?", [.text(experiment + "/%")]).first?.first?.int ?? 0
                    }
                    if n > 0 { found.append("\(table).\(column)") }
                }
            }
            switch service.metadata {
            case let s as SQLiteMetadataStore:
                try s.with { db in
                    for t in try db.rows("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap({ $0[0].string }) {
                        columns += try db.rows("SELECT name FROM pragma_table_info(?)", [.text(t)]).compactMap { $0[0].string.map { (t, $0) } }
                    }
                    try check(db)
                }
            case let p as PostgresMetadataStore:
                try p.conn { c in
                    columns = try c.rows("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                                         + "AND data_type IN ('text', 'bigint', 'integer')").map { ($0[0].string ?? "", $0[1].string ?? "") }
                    try check(c)
                }
            default: Issue.record("an unknown store")
            }
            return found
        }
    }

    @Test func olderThanIsReadAsMLflowReadsIt() throws {
        let cases: [(String, Int64)] = [("8h", 28_800_000), ("2d8h5m20s", 2 * 86_400_000 + 8 * 3_600_000 + 5 * 60_000 + 20_000), ("2m4s", 124_000),
                                        ("1.5d", 129_600_000), (".5h", 1_800_000), ("1.d", 86_400_000), ("0.0001s", 0), ("0.0019s", 1),
                                        ("", 0), ("30d", 2_592_000_000), ("1d2h3m4s", 93_784_000), ("90s", 90_000)]
        for (s, ms) in cases {
            #expect(try GarbageCollection.milliseconds(s) == ms, "\(s)")
        }
        for bad in ["1x", "h", "1h1d", "1.2.3d", "5", "d1", "1d ", " 1d", "1dd", ".d", "-1d", "1e3s", "1d2"] {
            #expect(throws: TrackingError.self, "\(bad)") { try GarbageCollection.milliseconds(bad) }
            do { _ = try GarbageCollection.milliseconds(bad) } catch let e as TrackingError {
                #expect(e.code == .invalidParameterValue && e.message == "Could not parse any time information from '\(bad)'. "
                        + "Examples of valid strings: '8h', '2d8h5m20s', '2m4s'")
            }
        }
        // Past Python's timedelta: an error (MLflow's is an OverflowError's traceback).
        #expect(throws: TrackingError.self) { try GarbageCollection.milliseconds("1000000000d") }
        #expect(try GarbageCollection.milliseconds("999999999d") > 0)
        #expect(GarbageCollection.pythonList(["1", "it's", "a\"'b"]) == #"['1', "it's", 'a"\'b']"#)
        // Id lists as MLflow splits them: untrimmed, empty items kept, an empty list none.
        let g = try GarbageCollection(olderThan: "", runIDs: "a, b,,c", experimentIDs: "")
        #expect(g.runIDs == ["a", " b", "", "c"] && g.experimentIDs == nil && g.loggedModelIDs == nil && !g.checksAge)
    }

    @Test(arguments: Backend.all) func aPurgeLeavesNothingOfWhatItDeleted(_ backend: Backend) throws {
        let w = try World(backend)
        let s = w.service
        let a = try s.createExperiment(name: "a")
        let gone = try w.run(in: a, deleted: true), kept = try w.run(in: a)
        let goneModel = try w.model(in: a, run: gone, deleted: true), keptModel = try w.model(in: a, run: kept)
        // Experiment b, deleted with everything in it: a run, a logged model (active), a tag, a trace.
        let b = try s.createExperiment(name: "b", tags: [KeyValue(key: "owner", value: "x")])
        let inB = try w.run(in: b), modelInB = try w.model(in: b, run: inB)
        _ = try s.startTraceV2(experimentID: b, timestamp: 1, metadata: [KeyValue(key: "mlflow.sourceRun", value: inB)], tags: [])
        let goneRoot = try w.root(of: gone), keptRoot = try w.root(of: kept), inBRoot = try w.root(of: inB)
        // Rows no foreign key ties to what goes: grants on b and its scorer, issues (b's, and a's sourced from the
        // purged run, which keeps the issue), a scorer of b.
        let user = try #require(try s.metadata.insertUser(username: "u", passwordHash: "x", isAdmin: false, now: 1))
        for (type, id) in [(ResourceType.experiment, b), (.scorer, b + "/judge"), (.experiment, a)] {
            _ = try s.metadata.insertGrant(userID: user.id, Grant(resource: Resource(type, id), permission: .read))
        }
        try s.metadata.insertIssue(TraceIssue(id: "iss-b", experimentID: b, name: "n", description: "d", creationTime: 1, lastUpdateTime: 1))
        try s.metadata.insertIssue(TraceIssue(id: "iss-a", experimentID: a, name: "n", description: "d", sourceRunID: gone, creationTime: 1, lastUpdateTime: 1))
        _ = try s.metadata.registerScorer(experimentID: b, name: "judge", serialized: "{}", time: 1, newID: "sc-1")
        try s.deleteExperiment(id: b)

        let lines = try w.gc()
        #expect(Set(lines) == [GarbageCollection.purged(run: gone), GarbageCollection.purged(run: inB), GarbageCollection.purged(loggedModel: goneModel),
                               GarbageCollection.purged(experiment: b)], "\(lines)")
        #expect(lines.last == GarbageCollection.purged(experiment: b), "experiments last")
        #expect(try w.leftovers([gone, inB, goneModel, modelInB], experiment: b) == [])
        #expect(try s.metadata.purgedRunIDs(among: [gone, inB, kept, "nope"]) == [gone, inB])
        #expect(try s.metadata.runInfo(id: kept) != nil && s.metadata.loggedModel(id: keptModel) != nil)
        #expect(try s.metadata.grants(userID: user.id).map(\.resource.id) == [a] && s.metadata.issue(id: "iss-b") == nil)
        #expect(try s.metadata.issue(id: "iss-a")?.sourceRunID == nil)
        #expect(try s.run(id: kept).params == [KeyValue(key: "lr", value: "0.1")] && s.history(runID: kept, key: "loss").count == 50)
        #expect(s.metrics.runIDs() == [kept], "the purged runs' points are gone")
        #expect(!FileManager.default.fileExists(atPath: goneRoot) && !FileManager.default.fileExists(atPath: inBRoot))
        #expect(FileManager.default.fileExists(atPath: keptRoot + "/model.txt"))
        // A deleted logged model's files go; an active one's in a purged experiment stay (MLflow leaves them: they may
        // back a registered model version), as do those of a model kept.
        #expect(!FileManager.default.fileExists(atPath: try w.modelRoot(goneModel)))
        #expect(FileManager.default.fileExists(atPath: try w.modelRoot(modelInB) + "/MLmodel"))
        #expect(FileManager.default.fileExists(atPath: try w.modelRoot(keptModel) + "/MLmodel"))
        #expect(throws: TrackingError.self) { try s.experiment(id: b) }
        #expect(try w.gc() == [], "nothing left to collect")
        // The points stay gone after a crash and the log's replay.
        s.metrics.abandon()
        let reopened = try Fixture.metricStore(w.f.dir + "/gc-metrics")
        #expect(reopened.runIDs() == [kept])
        try reopened.close()
        // SQLite numbers experiments MAX + 1, past the purged ones too: b's id is never another experiment's.
        #expect(try Int(s.createExperiment(name: "c"))! > Int(b)!)
    }

    @Test(arguments: Backend.all) func checksStopTheCollectionWithMLflowsMessages(_ backend: Backend) throws {
        let w = try World(backend)
        let s = w.service
        let a = try s.createExperiment(name: "a")
        let active = try w.run(in: a), deleted = try w.run(in: a, deleted: true)
        let activeModel = try w.model(in: a)
        // Named experiments are all checked before anything goes: the deleted run stays.
        let b = try s.createExperiment(name: "b")
        try s.deleteExperiment(id: b)
        #expect(w.refused(experiments: "\(b),\(a)")?.message == "Experiments ['\(a)'] are not in the deleted lifecycle stage. "
                + "Only experiments in the deleted lifecycle stage can be hard-deleted.")
        #expect(w.refused(experiments: "12345")?.message == "No Experiment with id=12345 exists")
        #expect(try s.metadata.runInfo(id: deleted) != nil && s.experiment(id: b).lifecycleStage == .deleted)
        #expect(w.refused(runs: active)?.message == "Run \(active) is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.")
        let unknown = w.refused(runs: "nope")
        #expect(unknown?.code == .resourceDoesNotExist && unknown?.message == "Run with id=nope not found")
        #expect(w.refused(runs: "nope", models: activeModel)?.message == "Run with id=nope not found", "runs before models")
        // Ages: nothing deleted a day ago yet; a named run too young is refused; a day later it goes.
        #expect(try w.gc(olderThan: "1d") == [])
        #expect(w.refused(olderThan: "1d", runs: deleted)?.message == "Run \(deleted) is not older than the required age. Only runs older than 1d can be deleted.")
        #expect(w.refused(olderThan: "1d", experiments: b)?.message == "Experiments ['\(b)'] are not older than the required age. "
                + "Only experiments older than 1d can be deleted.")
        #expect(try s.metadata.runInfo(id: deleted) != nil)
        w.clock.advance(86_400_001)
        #expect(try w.gc(olderThan: "1d", runs: deleted) == [GarbageCollection.purged(run: deleted), GarbageCollection.purged(experiment: b)],
                "a run list restricts only the runs: the deleted experiment goes too")
        // A model list restricts only the models (no deleted run is left to go with them).
        #expect(w.refused(models: activeModel)?.message
                == "Logged model \(activeModel) is not in `deleted` lifecycle stage. Only logged models in `deleted` lifecycle stage can be deleted.")
        #expect(w.refused(models: "m-nope")?.message == "Logged model with ID 'm-nope' not found.")
        // A restore wins over a purge that read the run deleted: the store refuses to purge an active run.
        #expect(try !s.metadata.purgeRun(id: active, deletedBy: nil, now: 1) && !s.metadata.purgeLoggedModel(id: activeModel, updatedBy: nil))
        #expect(try s.metadata.purgeExperiment(id: Validation.experimentID(a), updatedBefore: nil, now: 1) == nil)
        // So does a restore and a delete again, for a gc with an age: the purge finds the run younger than it read.
        let again = try w.run(in: a, deleted: true)
        #expect(try !s.metadata.purgeRun(id: again, deletedBy: w.clock.now - 1, now: 1) && s.metadata.purgeRun(id: again, deletedBy: w.clock.now, now: 1))
        #expect(try s.history(runID: active, key: "loss").count == 50)
    }

    @Test(arguments: Backend.all) func aCollectionStoppedHalfWayIsFinishedByTheNext(_ backend: Backend) throws {
        let w = try World(backend)
        let s = w.service
        let a = try s.createExperiment(name: "a")
        let cut = try w.run(in: a, deleted: true), uncommitted = try w.run(in: a, deleted: true), restored = try w.run(in: a)
        let cutRoot = try w.root(of: cut)
        // A gc stopped after its transaction (rows gone, points and artifacts not), one stopped before it, and one
        // whose purge lost to a restore: all three journaled.
        do {
            let journal = try PurgeJournal(directory: w.data)
            try journal.add([cut, uncommitted, restored].map { PurgeJournal.Entry(kind: .run, id: $0, artifactURI: try s.run(id: $0).info.artifactURI) })
            #expect(try s.metadata.purgeRun(id: cut, deletedBy: nil, now: 1))
        }
        #expect(s.metrics.runIDs().contains(cut) && FileManager.default.fileExists(atPath: cutRoot))
        #expect(try w.gc(runs: uncommitted) == [GarbageCollection.purged(run: uncommitted)])
        #expect(!s.metrics.runIDs().contains(cut) && !FileManager.default.fileExists(atPath: cutRoot), "finished first")
        #expect(try s.history(runID: restored, key: "loss").count == 50 && FileManager.default.fileExists(atPath: try w.root(of: restored) + "/model.txt"),
                "a journaled run whose rows are there is left alone")
        #expect(try PurgeJournal(directory: w.data).pending() == [])
        // A line cut short by a crash is skipped; what a line holds comes back as it was written.
        try Data("run\tabc\tmlflow-artifacts:/x\nru".utf8).write(to: URL(fileURLWithPath: w.f.dir + "/" + PurgeJournal.fileName))
        #expect(try PurgeJournal(directory: w.data).pending() == [PurgeJournal.Entry(kind: .run, id: "abc", artifactURI: "mlflow-artifacts:/x")])
        let odd = PurgeJournal.Entry(kind: .model, id: "m-1", artifactURI: "file:///a\tb%09c\nd")
        do {
            let journal = try PurgeJournal(directory: w.data)
            try journal.clear()
            try journal.add([odd])
            #expect(try journal.pending() == [odd])
        }
    }

    @Test(.enabled(if: Backend.all.contains(.postgres))) func pointsOfARunPurgedThroughAnotherServerGoAtItsNextCollection() throws {
        let w = try World(.postgres)
        let other = try w.f.secondServer()  // the same database, points of its own
        let a = try w.service.createExperiment(name: "a")
        let r = try w.run(in: a), kept = try w.run(in: a)
        try other.logBatch(runID: r, metrics: [Metric(key: "loss", value: 1, timestamp: 1, step: 100)])
        try other.logBatch(runID: kept, metrics: [Metric(key: "loss", value: 1, timestamp: 1, step: 100)])
        try w.service.deleteRun(id: r)
        #expect(try w.gc() == [GarbageCollection.purged(run: r)])
        #expect(other.metrics.runIDs() == [r, kept].sorted())
        var lines: [String] = []
        let summary = try other.collectGarbage(GarbageCollection(), dataDirectory: w.data) { lines.append($0) }
        #expect(lines == ["Deleted this server's points of 1 run(s) purged through another server."] && summary.runsPurgedElsewhere == 1)
        #expect(try other.metrics.runIDs() == [kept] && other.dropPointsOfPurgedRuns() == 0)
    }

    /// A deleted run an older import wrote without a deletion time, at the previous schema version.
    static func deletedWithoutTime(_ db: some SQLConnection) throws {
        try db.run("INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage, deleted_time) "
                   + "VALUES ('old', 0, 'n', 'u', 'FINISHED', 1, 2, 'a', 'deleted', NULL), ('kept', 0, 'n', 'u', 'FINISHED', 1, 2, 'a', 'active', NULL), "
                   + "('timed', 0, 'n', 'u', 'FINISHED', 1, 2, 'a', 'deleted', 5)", [])
    }

    /// The times after the migration: the untimed deleted run has the upgrade's, the others what they had.
    static func checkTimes(_ db: some SQLConnection, upgradedAfter: Int64) throws {
        let times = Dictionary(uniqueKeysWithValues: try db.rows("SELECT run_uuid, deleted_time FROM runs WHERE run_uuid IN ('old', 'kept', 'timed')", [])
            .map { ($0[0].string ?? "", $0[1].int) })
        #expect(times["kept"]! == nil && times["timed"]! == 5, "\(times)")
        #expect((times["old"]! ?? 0) >= upgradedAfter && (times["old"]! ?? .max) < upgradedAfter + 600_000, "\(times)")
    }

    @Test func sqliteVersion18TimesUntimedDeletedRuns() throws {
        let (dir, path) = try olderSQLiteMetadata(version: 17) { try Self.deletedWithoutTime($0) }
        defer { try? FileIO.removeTree(dir) }
        let before = TrackingService.nowMillis() / 1000 * 1000
        try SQLiteMetadataStore(path: path, now: 0).close()
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        try Self.checkTimes(db, upgradedAfter: before)
    }

    @Test(.enabled(if: PostgresDatabaseTests.available)) func postgresVersion17TimesUntimedDeletedRuns() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 1)
        defer { db.close() }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "a", now: 1, through: 16)
        try db.withConnection { try Self.deletedWithoutTime($0) }
        let before = TrackingService.nowMillis() - 1
        try PostgresSchema.migrate(db, defaultArtifactLocation: "a", now: 2)
        try db.withConnection { try Self.checkTimes($0, upgradedAfter: before) }
    }

    @Test func artifactsElsewhereAreLeftWithAWarning() throws {
        let w = try World(.sqlite)
        let s = w.service
        let local = w.f.dir + "/elsewhere"
        let a = try s.createExperiment(name: "a", artifactLocation: "file://" + local)
        let b = try s.createExperiment(name: "b", artifactLocation: "s3://bucket/prefix")
        let onDisk = try s.createRun(experimentID: a).info, inS3 = try s.createRun(experimentID: b).info
        try w.write(file: TrackingService.localPath(onDisk.artifactURI)! + "/f")
        try s.deleteRun(id: onDisk.runID)
        try s.deleteRun(id: inS3.runID)
        let lines = try w.gc(runs: "\(onDisk.runID),\(inS3.runID)")
        #expect(lines == [GarbageCollection.purged(run: onDisk.runID),
                          "Warning: the artifacts of run \(inS3.runID) at '\(inS3.artifactURI)' are not in storage this server reaches; left in place. "
                          + "Delete them by hand.", GarbageCollection.purged(run: inS3.runID)])
        #expect(!FileManager.default.fileExists(atPath: TrackingService.localPath(onDisk.artifactURI)!))
        #expect(FileManager.default.fileExists(atPath: local), "only the run's own directory")
    }
}
