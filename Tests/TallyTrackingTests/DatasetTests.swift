import Dispatch
import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Datasets as MLflow keeps them: one version of a dataset (name and digest) per experiment, the one first logged,
/// which every run's input shows; an input a run already has keeps its tags.
@Suite struct DatasetTests {
    static func dataset(_ name: String, _ digest: String, source: String, schema: String? = nil) -> Dataset {
        Dataset(name: name, digest: digest, sourceType: "local", source: source, schema: schema, profile: schema.map { _ in "{\"rows\": 1}" })
    }

    static func context(_ v: String) -> [KeyValue] { [KeyValue(key: "mlflow.data.context", value: v)] }

    @Test(arguments: Backend.all) func anExperimentKeepsTheFirstVersionOfADataset(_ backend: Backend) throws {
        let f = try Fixture("datasets", backend: backend)
        let s = f.service
        let exp = try s.createExperiment(name: "e"), other = try s.createExperiment(name: "other")
        let (a, b, c) = (try s.createRun(experimentID: exp).info.runID, try s.createRun(experimentID: exp).info.runID,
                         try s.createRun(experimentID: other).info.runID)
        let first = Self.dataset("train", "d1", source: "/data/v1", schema: "{\"a\": 1}")
        let later = Self.dataset("train", "d1", source: "/data/v2")
        try s.logInputs(runID: a, [DatasetInput(dataset: first, tags: Self.context("training"))])
        // The run's input keeps its tags; another run of the experiment gets the first fields with its own tags; a
        // run of another experiment has its own version.
        try s.logInputs(runID: a, [DatasetInput(dataset: later, tags: Self.context("eval"))])
        try s.logInputs(runID: b, [DatasetInput(dataset: later, tags: Self.context("eval")), DatasetInput(dataset: Self.dataset("test", "d2", source: "/t"), tags: [])])
        try s.logInputs(runID: c, [DatasetInput(dataset: later, tags: [])])
        // A dataset given twice in one request counts as given first, tags included.
        try s.logInputs(runID: b, [DatasetInput(dataset: Self.dataset("x", "d3", source: "/x1"), tags: Self.context("one")),
                                   DatasetInput(dataset: Self.dataset("x", "d3", source: "/x2"), tags: Self.context("two"))])
        let reread = try { try s.metrics.close(); return try f.reopened() }()
        #expect(try reread.run(id: a).inputs == [DatasetInput(dataset: first, tags: Self.context("training"))])
        #expect(try reread.run(id: b).inputs == [DatasetInput(dataset: first, tags: Self.context("eval")),
                                                 DatasetInput(dataset: Self.dataset("test", "d2", source: "/t"), tags: []),
                                                 DatasetInput(dataset: Self.dataset("x", "d3", source: "/x1"), tags: Self.context("one"))])
        #expect(try reread.run(id: c).inputs == [DatasetInput(dataset: later, tags: [])])
        // The UI's dataset summary sees each context once.
        let summary = try reread.searchDatasets(experimentIDs: [exp]).map(\.context)
        #expect(summary.count == 4 && Set(summary) == ["training", "eval", nil, "one"])
    }

    /// Two servers logging one new dataset with different fields into two runs of an experiment at once: one version
    /// wins, and both runs show it.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func twoServersAgreeOnADatasetsVersion() throws {
        let f = try Fixture("datasets-shared", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let exp = try servers[0].createExperiment(name: "e")
        for round in 0..<20 {
            let runs = try servers.map { try $0.createRun(experimentID: exp).info.runID }
            // Several datasets, in opposite orders: the inserts never wait on each other in a cycle.
            let names = (0..<4).map { "r\(round)-\($0)" }
            let errors = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let order = i == 0 ? names : names.reversed()
                do {
                    try servers[i].logInputs(runID: runs[i], order.map { DatasetInput(dataset: Self.dataset($0, "d", source: "/server\(i)"), tags: []) })
                } catch {
                    errors.withLock { $0.append("\(error)") }
                }
            }
            #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
            let seen = try runs.map { run in
                Dictionary(uniqueKeysWithValues: try servers[1].run(id: run).inputs.map { ($0.dataset.name, $0.dataset.source) })
            }
            #expect(seen[0] == seen[1] && seen[0].count == 4, "round \(round): \(seen)")
        }
    }

    /// SQLite's version 8 on a database of version 7: each experiment's datasets from the inputs stored, the earliest
    /// run's version of each; the runs' own inputs are as they were, and a new run gets the earliest version.
    @Test func sqliteVersion8FillsDatasetsFromStoredInputs() throws {
        let (dir, path) = try olderSQLiteMetadata(version: 7) { db in
            try db.execute("""
                INSERT INTO runs VALUES ('late', 0, 'n', 'u', 'FINISHED', 20, NULL, 'a', 'active', NULL);
                INSERT INTO runs VALUES ('early', 0, 'n', 'u', 'FINISHED', 10, NULL, 'a', 'active', NULL);
                INSERT INTO inputs VALUES ('late', 'train', 'd1', 'local', '/late', NULL, NULL, '', 0);
                INSERT INTO inputs VALUES ('early', 'train', 'd1', 'local', '/early', '{}', NULL, '', 0);
                INSERT INTO inputs VALUES ('late', 'test', 'd2', 'local', '/test', NULL, NULL, '', 1);
                """)
        }
        defer { try? FileIO.removeTree(dir) }
        let meta = try SQLiteMetadataStore(path: path, now: 0)
        #expect(try meta.run(id: "late")?.inputs.map(\.dataset.source) == ["/late", "/test"])
        meta.close()
        let db = try SQLiteDatabase(path: path)
        #expect(try db.userVersion == Int64(SQLiteMetadataStore.migrations.count))
        #expect(try db.rows("SELECT experiment_id, name, digest, source, schema FROM datasets ORDER BY name", [])
                == [[.integer(0), .text("test"), .text("d2"), .text("/test"), .null], [.integer(0), .text("train"), .text("d1"), .text("/early"), .text("{}")]])
    }

    /// PostgreSQL's version 7, likewise.
    @Test(.enabled(if: PostgresDatabaseTests.available)) func postgresVersion7FillsDatasetsFromStoredInputs() throws {
        let scratch = try ScratchDatabase()
        defer { try? scratch.drop() }
        let db = try PostgresDatabase(uri: scratch.uri, poolSize: 1)
        defer { db.close() }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "a", now: 1, through: 6)
        try db.withConnection { c in
            try c.execute("""
                INSERT INTO experiments VALUES (7, 'e', 'a', 'active', 1, 1);
                INSERT INTO runs VALUES ('late', 0, 'n', 'u', 'FINISHED', 20, NULL, 'a', 'active', NULL);
                INSERT INTO runs VALUES ('early', 0, 'n', 'u', 'FINISHED', 10, NULL, 'a', 'active', NULL);
                INSERT INTO runs VALUES ('elsewhere', 7, 'n', 'u', 'FINISHED', 1, NULL, 'a', 'active', NULL);
                INSERT INTO inputs VALUES ('late', 'train', 'd1', 'local', '/late', NULL, NULL, '', 0);
                INSERT INTO inputs VALUES ('early', 'train', 'd1', 'local', '/early', '{}', NULL, '', 0);
                INSERT INTO inputs VALUES ('elsewhere', 'train', 'd1', 'local', '/other', NULL, NULL, '', 0);
                """)
        }
        try PostgresSchema.migrate(db, defaultArtifactLocation: "a", now: 2)
        #expect(try db.withConnection { try $0.rows("SELECT experiment_id, source, schema FROM datasets ORDER BY experiment_id") }
                == [[.integer(0), .text("/early"), .text("{}")], [.integer(7), .text("/other"), .null]])
        #expect(try db.withConnection { try $0.rows("SELECT source FROM inputs WHERE run_uuid = 'late'") } == [[.text("/late")]])
    }
}
