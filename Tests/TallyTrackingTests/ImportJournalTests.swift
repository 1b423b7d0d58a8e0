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
