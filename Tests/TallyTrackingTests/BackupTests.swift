import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// ``TrackingService/backup(into:dataDirectory:artifacts:)``: a copy taken while runs are logged starts as the server
/// was at one instant — every run and point acknowledged before it, latest values that agree with the histories —
/// on both metadata stores (PostgreSQL's dumped by `pg_dump` from a snapshot exported in the pause, and restored into a
/// database of its own).
@Suite(.serialized) struct BackupTests {
    static func temporaryPath(_ name: String) -> String {
        "/tmp/tally-backup-\(name)-\(UInt64.random(in: 0...UInt64.max))"
    }

    @Test(arguments: Backend.all)
    func aCopyTakenWhileRunsAreLoggedStartsAsTheServerWas(backend: Backend) throws {
        let f = try Fixture("backup", backend: backend)
        let s = f.service
        let experiment = try s.createExperiment(name: "b")
        let writers = 2
        let runs = try (0..<writers).map { _ in try s.createRun(experimentID: experiment).info.runID }
        let acknowledged = Mutex([Int](repeating: 0, count: writers))
        let done = Atomic<Int>(0), failures = Mutex<[String]>([])
        for w in 0..<writers {
            Thread {
                defer { done.add(1, ordering: .releasing) }
                do {
                    for step in 0..<Int64(600) {
                        try s.logBatch(runID: runs[w], metrics: ["loss", "acc"].map { Metric(key: $0, value: Double(step) / 7, timestamp: 1_000 + step, step: step) },
                                       params: step % 100 == 0 ? [KeyValue(key: "p\(step)", value: "\(step)")] : [])
                        acknowledged.withLock { $0[w] = Int(step) + 1 }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }.start()
        }
        while acknowledged.withLock({ $0.min()! < 200 }) && done.load(ordering: .acquiring) < writers { usleep(1000) }
        let floor = acknowledged.withLock { $0 }
        let target = Self.temporaryPath("copy")
        defer { try? FileManager.default.removeItem(atPath: target) }
        let summary = try s.backup(into: target, dataDirectory: DataDirectory(f.dir))
        while done.load(ordering: .acquiring) < writers { usleep(1000) }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(summary.logSegments >= 1 && summary.metricBytes > 0)
        #expect(summary.artifactsNote == "no artifact store")
        #expect(!FileManager.default.fileExists(atPath: target + "/metadata.sqlite.partial"))
        #expect((summary.metadataBytes ?? 0) > 0)
        let copy: TrackingService
        var restored: ScratchDatabase?
        defer { try? restored?.drop() }
        switch backend {
        case .sqlite:
            #expect(summary.metadataFile == "metadata.sqlite")
            copy = try Fixture.open(target)
        case .postgres:
            // The dump restored into a database of its own, as docs/postgresql.md restores one.
            #expect(summary.metadataFile == "metadata.pgdump" && !FileManager.default.fileExists(atPath: target + "/metadata.sqlite"))
            let r = try Self.restore(DataDirectory(target).metadataDump)
            restored = r
            copy = TrackingService(metadata: try PostgresMetadataStore(uri: r.uri, poolSize: 2, migrate: false, now: f.clock()),
                                   metrics: try Fixture.metricStore(target + "/metrics"), clock: f.clock)
        }
        defer { try? copy.close() }
        _ = try copy.reconcileLatest()  // what a server starting on the copy does first
        for (w, runID) in runs.enumerated() {
            let run = try copy.run(id: runID)
            for key in ["loss", "acc"] {
                let history = try copy.history(runID: runID, key: key)
                #expect(history.map(\.step) == Array(0..<Int64(history.count)), "\(key): not a prefix")
                #expect(history.count >= floor[w], "\(key): \(history.count) points, \(floor[w]) acknowledged before the backup")
                let latest = run.metrics.first { $0.key == key }
                #expect(latest?.step == history.last?.step && latest?.value == history.last?.value, "\(key): latest \(String(describing: latest)) against the history's last point")
            }
            // Params logged with points the copy holds are there.
            let params = Set(run.params.map(\.key))
            #expect(params.isSuperset(of: stride(from: 0, to: floor[w], by: 100).map { "p\($0)" }))
        }
    }

    /// A fresh database on the test cluster with the dump at `path` restored into it (`pg_restore`, as
    /// docs/postgresql.md restores a backup).
    static func restore(_ path: String) throws -> ScratchDatabase {
        let db = try ScratchDatabase()
        let pgRestore = try PostgresProgram.locate("pg_restore", given: nil)
        try pgRestore.start(["--no-owner", "--no-privileges", "--exit-on-error", "--dbname=\(db.uri.database)", path],
                            environment: PostgresProgram.environment(for: db.uri), errors: path + ".restore-errors").wait()
        return db
    }

    /// The SQLite store copies its database in steps while writes go on, each written page reaching the copy and a
    /// rolled-back transaction starting it over; what is left is copied in the pause. The copy is the database as it
    /// was in the pause: every run written before it, none after, nothing rolled back, and it checks clean.
    enum Failures: Sendable, CaseIterable { case none, afterWrites, withoutWrites }

    @Test(arguments: Failures.allCases)
    func theMetadataCopyFollowsWritesMadeBetweenItsSteps(failures kind: Failures) throws {
        let f = try Fixture("backup-steps")
        let s = f.service
        let experiment = try s.createExperiment(name: "steps")
        let filler = String(repeating: "x", count: 1_500)
        // Several steps' worth of pages (SQLiteMetadataStore.copyStepPages each).
        for i in 0..<3_000 { _ = try s.createRun(experimentID: experiment, runName: "before-\(i)", tags: [KeyValue(key: "filler", value: filler)]) }
        let written = Atomic<Int>(0), stop = Atomic<Bool>(false), failures = Mutex<[String]>([])
        struct Abort: Error {}
        let sqlite = try #require(s.metadata as? SQLiteMetadataStore)
        let writer = Thread {
            var i = 0
            while !stop.load(ordering: .acquiring) {
                do {
                    let run = try s.createRun(experimentID: experiment, runName: "during-\(i)", tags: [KeyValue(key: "filler", value: filler)])
                    try s.logParam(runID: run.info.runID, key: "i", value: "\(i)")
                    switch kind {
                    case .none: break
                    case .afterWrites where i % 7 == 0:
                        // Pages written, then undone: the copy starts over (SQLite restarts a backup on a rollback).
                        _ = try? s.metadata.transaction {
                            _ = try s.createRun(experimentID: experiment, runName: "rolled-back-\(i)", tags: [KeyValue(key: "filler", value: filler)])
                            throw Abort()
                        }
                    case .afterWrites: break
                    case .withoutWrites:
                        // Failed requests that changed no row: one refused by a read, one by the name's constraint,
                        // and a statement that wrote pages, then failed on its second row (undone by SQLite: a
                        // rollback after it would start the copy over).
                        _ = try? s.metadata.transaction {
                            _ = try s.run(id: run.info.runID)
                            throw Abort()
                        }
                        _ = try? s.metadata.transaction { _ = try s.createExperiment(name: "steps") }
                        _ = try? sqlite.transaction {
                            try sqlite.with { db in
                                try db.run("INSERT INTO tags SELECT ?, 'twice', value FROM (SELECT 'a' AS value UNION ALL SELECT 'b')", [.text(run.info.runID)])
                            }
                        }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
                i += 1
                written.store(i, ordering: .releasing)
            }
        }
        writer.start()
        while written.load(ordering: .acquiring) < 3 { usleep(1_000) }
        let dir = Self.temporaryPath("steps")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let startedAt = written.load(ordering: .acquiring)
        let copy = try sqlite.beginCopy(into: DataDirectory(dir), options: MetadataCopyOptions())
        let (names, pausedAt) = try copy.pausingWrites { fix -> (Set<String>, Int) in
            try fix()
            let rows = try sqlite.with { db in try db.rows("SELECT name FROM runs") }
            return (Set(rows.compactMap { $0.first?.string }), written.load(ordering: .acquiring))
        }
        #expect(try copy.finish() > 0 && copy.path == dir + "/metadata.sqlite")
        #expect(copy.pause > .zero)
        let target = copy.path
        stop.store(true, ordering: .releasing)
        while !writer.isFinished { usleep(1_000) }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(pausedAt - startedAt >= 2, "writes went on while the copy stepped (\(pausedAt - startedAt))")
        let report = try #require(sqlite.lastCopy.withLock { $0 })
        #expect(report.stepped >= report.pages - SQLiteMetadataStore.copyStepPages, "\(report)")
        if kind != .afterWrites {
            // Without restarts the steps copy all but the last one's worth: the pause copies that and what grew.
            #expect(report.leftForPause <= 2 * SQLiteMetadataStore.copyTailPages && report.stepped < 2 * report.pages, "\(report)")
        }
        #expect(!FileManager.default.fileExists(atPath: target + "-wal"), "the copy is one file")
        let db = try SQLiteDatabase(path: target, readOnly: true)
        defer { db.close() }
        #expect(try db.rows("PRAGMA integrity_check").first?.first?.string == "ok")
        let copied = Set(try db.rows("SELECT name FROM runs").compactMap { $0.first?.string })
        #expect(copied == names, "the copy holds exactly the runs there were in the pause: \(copied.symmetricDifference(names).sorted().prefix(5))")
        #expect(!copied.contains { $0.hasPrefix("rolled-back") })
        #expect(copied.contains("during-\(pausedAt - 1)") || copied.contains("during-\(pausedAt - 2)"))
    }

    /// A failed transaction leaves the database as it was, whether it wrote rows before failing (undone), failed on
    /// a refused insert only, or failed after reads (both ended with a commit of nothing on SQLite, which keeps a
    /// backup's copy from starting over); the connection goes on working.
    @Test(arguments: Backend.all)
    func aFailedTransactionLeavesNothing(backend: Backend) throws {
        struct Abort: Error {}
        let f = try Fixture("abandon", backend: backend)
        let s = f.service
        _ = try s.createExperiment(name: "kept")
        let before = try s.metadata.experiments().map(\.name).sorted()
        #expect(throws: Abort.self) { try s.metadata.transaction { _ = try s.createExperiment(name: "written"); throw Abort() } }
        #expect(throws: TrackingError.self) {
            try s.metadata.transaction {
                _ = try s.createExperiment(name: "written-then-refused")
                _ = try s.createExperiment(name: "kept")
            }
        }
        #expect(throws: TrackingError.self) { try s.metadata.transaction { _ = try s.createExperiment(name: "kept") } }
        #expect(throws: Abort.self) { try s.metadata.transaction { _ = try s.metadata.experiment(named: "kept"); throw Abort() } }
        #expect(try s.metadata.experiments().map(\.name).sorted() == before)
        _ = try s.createExperiment(name: "after")
        #expect(try s.metadata.experiments().map(\.name).sorted() == (before + ["after"]).sorted())
    }

    /// `tally backup --verify`: a good copy reads clean; a flipped byte in a segment, or in the metadata copy, is found.
    @Test func verifyFindsDamage() throws {
        let f = try Fixture("backup-verify")
        let run = try f.service.createRun(experimentID: "0").info.runID
        try f.service.logBatch(runID: run, metrics: (0..<500).map { Metric(key: "loss", value: Double($0), timestamp: 1, step: Int64($0)) })
        try f.service.metrics.flush(run: run)
        let target = Self.temporaryPath("verify")
        defer { try? FileManager.default.removeItem(atPath: target) }
        _ = try f.service.backup(into: target, dataDirectory: DataDirectory(f.dir))
        let good = try TrackingService.verifyBackup(target)
        #expect(good.ok && good.metadata == ["ok"] && good.metrics.segments >= 1 && good.metrics.points >= 500)
        #expect(throws: TrackingError.self) { _ = try TrackingService.verifyBackup(f.dir + "/nope") }
        // A byte flipped in the middle of a segment's data.
        let runs = target + "/metrics/runs"
        let runDir = try #require(try FileManager.default.contentsOfDirectory(atPath: runs).first)
        let segment = runs + "/" + runDir + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: runs + "/" + runDir).first))
        var bytes = try #require(FileManager.default.contents(atPath: segment))
        bytes[bytes.count / 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: segment))
        let damaged = try TrackingService.verifyBackup(target)
        #expect(!damaged.ok && !damaged.metrics.problems.isEmpty && damaged.metadata == ["ok"])
        // And a page of the metadata copy overwritten.
        var meta = try #require(FileManager.default.contents(atPath: target + "/metadata.sqlite"))
        for i in 2048..<3072 where i < meta.count { meta[i] = 0x5A }
        try meta.write(to: URL(fileURLWithPath: target + "/metadata.sqlite"))
        let both = try? TrackingService.verifyBackup(target)
        #expect(both.map { !$0.ok && $0.metadata != ["ok"] } ?? true, "the damaged database is reported (or cannot be opened at all)")
    }

    /// Where a backup may not go, and what is left when it is refused: nothing.
    @Test func refusedDirectories() throws {
        let f = try Fixture("backup-refused")
        let data = DataDirectory(f.dir)
        for inside in [f.dir, f.dir + "/copy", f.dir + "/metrics/x", f.dir + "/metrics/../x"] {
            #expect(throws: TrackingError.self, "\(inside)") { _ = try f.service.backup(into: inside, dataDirectory: data) }
        }
        #expect(!FileManager.default.fileExists(atPath: f.dir + "/copy"))
        let busy = Self.temporaryPath("busy")
        try FileManager.default.createDirectory(atPath: busy, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: busy) }
        _ = FileManager.default.createFile(atPath: busy + "/file", contents: Data())
        do {
            _ = try f.service.backup(into: busy, dataDirectory: data)
            Issue.record("a backup into a directory holding files")
        } catch let e as TrackingError {
            #expect(e.code == .invalidParameterValue && e.message.contains("not empty"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: busy) == ["file"], "the directory is left as it was")
        // Through a symbolic link to the data directory, to a directory not made yet: still inside.
        let link = Self.temporaryPath("link")
        #expect(symlink(f.dir, link) == 0)
        defer { unlink(link) }
        #expect(throws: TrackingError.self) { _ = try f.service.backup(into: link + "/new", dataDirectory: data) }
        #expect(!FileManager.default.fileExists(atPath: f.dir + "/new"))
        // An empty directory is taken; nothing but it is left beside it.
        let parent = Self.temporaryPath("parent")
        let empty = parent + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let summary = try f.service.backup(into: empty, dataDirectory: data)
        #expect(summary.directory == empty && FileManager.default.fileExists(atPath: empty + "/metadata.sqlite"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent) == ["empty"], "the copy was made beside it and renamed")
    }

    /// Artifacts in a directory of their own: copied, and no backup may go inside them (it would copy itself).
    @Test func artifactsOutsideTheDataDirectory() throws {
        let f = try Fixture("backup-artifacts")
        let root = Self.temporaryPath("artifacts")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try ArtifactStore(root: root)
        let up = try store.upload("1/run/artifacts/a.txt")
        try Array("abc".utf8).withUnsafeBytes { try up.write($0) }
        try up.finish()
        // An artifact written long ago (a copy of a file written in the last seconds gets a time no file has, so the
        // next backup copies it again: a file replaced within one tick of the clock keeps its time).
        var old = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, root + "/1/run/artifacts/a.txt", &old, 0) == 0)
        let s = TrackingService(metadata: try f.metadataStore(), metrics: try Fixture.metricStore(f.dir + "/metrics2"), artifacts: store)
        defer { try? s.close() }
        #expect(throws: TrackingError.self) { _ = try s.backup(into: root + "/b", dataDirectory: DataDirectory(f.dir)) }
        let target = Self.temporaryPath("with-artifacts")
        defer { try? FileManager.default.removeItem(atPath: target) }
        let summary = try s.backup(into: target, dataDirectory: DataDirectory(f.dir))
        #expect(summary.artifacts?.copied == 1 && summary.artifacts?.bytes == 3)
        #expect(FileManager.default.contents(atPath: target + "/artifacts/1/run/artifacts/a.txt") == Data("abc".utf8))
        // Incremental: the unchanged artifact is linked from the first backup; one rewritten (same size, a new time)
        // is copied again.
        let second = Self.temporaryPath("second")
        defer { try? FileManager.default.removeItem(atPath: second) }
        let again = try s.backup(into: second, dataDirectory: DataDirectory(f.dir), reusing: target)
        #expect(again.reusedFiles >= 1 && again.artifacts?.copied == 0)
        var x = stat(), y = stat()
        #expect(stat(target + "/artifacts/1/run/artifacts/a.txt", &x) == 0 && stat(second + "/artifacts/1/run/artifacts/a.txt", &y) == 0 && x.st_ino == y.st_ino)
        usleep(20_000)
        let rewrite = try store.upload("1/run/artifacts/a.txt")
        try Array("xyz".utf8).withUnsafeBytes { try rewrite.write($0) }
        try rewrite.finish()
        let third = Self.temporaryPath("third")
        defer { try? FileManager.default.removeItem(atPath: third) }
        let changed = try s.backup(into: third, dataDirectory: DataDirectory(f.dir), reusing: second)
        #expect(changed.artifacts?.copied == 1)
        var fresh = stat()
        #expect(stat(third + "/artifacts/1/run/artifacts/a.txt", &fresh) == 0 && fresh.st_mtim.tv_sec == 0, "a file written just now: a time no file has")
        let fourth = Self.temporaryPath("fourth")
        defer { try? FileManager.default.removeItem(atPath: fourth) }
        #expect(try s.backup(into: fourth, dataDirectory: DataDirectory(f.dir), reusing: third).artifacts?.copied == 1, "copied again, not linked")
        #expect(throws: TrackingError.self, "the data directory is no earlier backup") {
            _ = try s.backup(into: Self.temporaryPath("y"), dataDirectory: DataDirectory(f.dir), reusing: f.dir)
        }
        #expect(FileManager.default.contents(atPath: third + "/artifacts/1/run/artifacts/a.txt") == Data("xyz".utf8))
        #expect(FileManager.default.contents(atPath: second + "/artifacts/1/run/artifacts/a.txt") == Data("abc".utf8), "the earlier backup is untouched")
        #expect(throws: TrackingError.self) { _ = try s.backup(into: Self.temporaryPath("x"), dataDirectory: DataDirectory(f.dir), reusing: root) }
        let bare = Self.temporaryPath("bare")
        defer { try? FileManager.default.removeItem(atPath: bare) }
        #expect(try s.backup(into: bare, dataDirectory: DataDirectory(f.dir), artifacts: false).artifactsNote == "not asked for")
        #expect(!FileManager.default.fileExists(atPath: bare + "/artifacts"))
    }
}
