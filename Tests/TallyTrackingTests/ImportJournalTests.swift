import Foundation
import Testing
@testable import TallyStore
@testable import TallyTracking

/// The import journal survives a kill at any byte: whole lines are facts, a torn last line is dropped and cut off
/// so the next fact starts a line of its own.
@Suite struct ImportJournalTests {
    @Test func factsSurviveAndATornLineIsCutOff() throws {
        let f = try Fixture("journal")
        let dir = f.dir + "/imports"
        do {
            var j = try ImportJournal(directory: dir, source: "sqlite:/m.db", dryRun: false)
            try j.experiment("3", is: "7")
            try j.begin("r1")
            try j.finish("r1", fingerprint: "5,1,2,FINISHED,9,active,3")
            try j.begin("r2")
        }
        let path = dir + "/" + (try FileManager.default.contentsOfDirectory(atPath: dir)).first!
        // A kill in the middle of writing "done r2\n".
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("don".utf8))
        try handle.close()
        var j = try ImportJournal(directory: dir, source: "sqlite:/m.db", dryRun: false)
        #expect(j.experiments == ["3": "7"] && j.done == ["r1": "5,1,2,FINISHED,9,active,3"] && j.begun == ["r1", "r2"])
        try j.finish("r2", fingerprint: "0,0,0,RUNNING,-1,active,0")
        let again = try ImportJournal(directory: dir, source: "sqlite:/m.db", dryRun: false)
        #expect(Set(again.done.keys) == ["r1", "r2"])
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("begin r2\ndone r2 0,0,0,RUNNING,-1,active,0\n"))
        // Keys hold anything a registered model's name may: spaces, %, newlines.
        try j.begin("registered:My Model 100%")
        try j.finish("registered:My Model 100%", fingerprint: "3")
        try j.begin("registered:two\nlines")
        let names = try ImportJournal(directory: dir, source: "sqlite:/m.db", dryRun: false)
        #expect(names.done["registered:My Model 100%"] == "3" && names.begun.contains("registered:two\nlines"))
        #expect(names.done["registered:My"] == nil)
        // Another source has a journal of its own; a dry run writes none.
        let other = try ImportJournal(directory: dir, source: "sqlite:/other.db", dryRun: true)
        #expect(other.done.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 1)
    }
}

/// Experiments inserted as an import gives them (both backends): the id, stage, times and tags kept; a taken id or
/// name refused with MLflow's error; ids handed out afterwards continue past the imported one.
@Suite struct ImportedExperimentTests {
    @Test(arguments: Backend.all)
    func experimentsKeepTheirIdsAndLaterOnesFollow(_ backend: Backend) throws {
        let f = try Fixture("import-exp", backend: backend)
        let meta = f.service.metadata
        let e = Experiment(experimentID: "42", name: "imported", artifactLocation: "mlflow-artifacts:/42", lifecycleStage: .deleted,
                           creationTime: 1_600_000_000_000, lastUpdateTime: 1_600_000_000_500, tags: [KeyValue(key: "team", value: "vision")])
        try meta.insertExperiment(e)
        #expect(try meta.experiment(id: 42) == e)
        for taken in [e, Experiment(experimentID: "43", name: "imported", artifactLocation: "", lifecycleStage: .active, creationTime: 0, lastUpdateTime: 0, tags: []),
                      Experiment(experimentID: "42", name: "other", artifactLocation: "", lifecycleStage: .active, creationTime: 0, lastUpdateTime: 0, tags: [])] {
            #expect { try meta.insertExperiment(taken) } throws: { ($0 as? TrackingError)?.code == .resourceAlreadyExists }
        }
        #expect(try f.service.createExperiment(name: "after") == "43")
    }
}

/// The export's pure rules: parents before children (across experiments, cycles tolerated), sources following
/// new ids, credentials kept out of messages, and the journal's id mapping surviving a reopen.
@Suite struct ExportRulesTests {
    func run(_ id: String, parent: String? = nil, start: Int64 = 0) -> Run {
        Run(info: RunInfo(runID: id, runName: id, experimentID: "1", userID: "", status: .finished, startTime: start, endTime: nil,
                          artifactURI: "", lifecycleStage: .active),
            metrics: [], params: [], tags: parent.map { [KeyValue(key: "mlflow.parentRunId", value: $0)] } ?? [], inputs: [])
    }

    @Test func parentsComeFirst() {
        // A child listed before its parent, a grandchild before both, a parent not exported, a self-parent, a cycle.
        let runs = [run("grandchild", parent: "child"), run("child", parent: "root"), run("root"), run("orphan", parent: "elsewhere"),
                    run("selfish", parent: "selfish"), run("a", parent: "b"), run("b", parent: "a")]
        let order = MLflowExport.parentsFirst(runs).map(\.info.runID)
        #expect(Set(order) == Set(runs.map(\.info.runID)) && order.count == runs.count)
        let at = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        #expect(at["root"]! < at["child"]! && at["child"]! < at["grandchild"]!)
    }

    @Test func sourcesFollowNewIds() throws {
        let f = try Fixture("export-rules")
        var j = try ImportJournal(directory: f.dir + "/exports", source: "export:http://m", dryRun: false)
        try j.map("model:m-old", to: "m-new")
        try j.map("0123abcd", to: "fedc3210")
        let again = try ImportJournal(directory: f.dir + "/exports", source: "export:http://m", dryRun: false)
        #expect(again.mapped == ["model:m-old": "m-new", "0123abcd": "fedc3210"])
        #expect(MLflowExport.following("models:/m-old", again) == "models:/m-new")
        #expect(MLflowExport.following("runs:/0123abcd/model", again) == "runs:/fedc3210/model")
        #expect(MLflowExport.following("models:/registered-name/3", again) == "models:/registered-name/3")
        #expect(MLflowExport.following("s3://bucket/m-old", again) == "s3://bucket/m-old")
    }

    @Test func credentialsStayOutOfMessages() {
        #expect(MLflowImport.withoutCredentials("https://alice:s3cret@mlflow.example/x") == "https://***@mlflow.example/x")
        #expect(MLflowImport.withoutCredentials("mysql://u:p@w@host/db") == "mysql://***@host/db")
        #expect(MLflowImport.withoutCredentials("http://host:5000") == "http://host:5000")
    }
}
