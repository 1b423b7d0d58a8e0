import Foundation
import Synchronization
import Testing
@testable import TallyStore
@testable import TallyTracking

/// A PostgreSQL-backed server's backup (``PostgresMetadataStore/Copy``): the pause waits for this server's requests in
/// progress and holds new ones back, `pg_dump` dumps the snapshot exported in it, `--verify` reads the dump whole, and
/// a backup that cannot dump fails before it holds anything, leaving nothing.
@Suite(.serialized, .enabled(if: PostgresDatabaseTests.available)) struct PostgresBackupTests {
    /// The run names in a restored dump.
    static func runNames(_ path: String) throws -> Set<String> {
        let restored = try BackupTests.restore(path)
        defer { try? restored.drop() }
        let db = try PostgresDatabase(uri: restored.uri, poolSize: 1)
        defer { db.close() }
        return Set(try db.withConnection { try $0.rows("SELECT name FROM runs") }.compactMap { $0.first?.string })
    }

    @Test func thePauseWaitsForRequestsInProgressAndHoldsNewOnes() throws {
        let f = try Fixture("pg-gate", backend: .postgres)
        let s = f.service
        let store = try #require(s.metadata as? PostgresMetadataStore)
        let experiment = try s.createExperiment(name: "gate")
        _ = try s.createRun(experimentID: experiment, runName: "before")
        let dir = BackupTests.temporaryPath("pg-gate")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let copy = try store.beginCopy(into: DataDirectory(dir), options: MetadataCopyOptions())
        defer { copy.abandon() }

        // A request in progress when the pause begins: the pause waits for it, so the dump has its run.
        let inside = Atomic<Bool>(false), lateDone = Atomic<Bool>(false)
        let slow = Thread {
            _ = try? store.transaction {
                inside.store(true, ordering: .releasing)
                Thread.sleep(forTimeInterval: 0.2)
                _ = try s.createRun(experimentID: experiment, runName: "in-progress")
            }
        }
        slow.start()
        while !inside.load(ordering: .acquiring) { usleep(1_000) }
        var late: Thread?
        let heldLate = try copy.pausingWrites { fix -> Bool in
            let committed = try store.conn { try $0.rows("SELECT 1 FROM runs WHERE name = 'in-progress'") }
            #expect(committed.count == 1, "the pause began only once the request in progress had committed")
            #expect(store.gate.inProgress == 0)
            // A request made during the pause waits for its end, so the dump does not have its run.
            let t = Thread {
                _ = try? store.transaction { _ = try s.createRun(experimentID: experiment, runName: "late") }
                lateDone.store(true, ordering: .releasing)
            }
            t.start()
            late = t
            Thread.sleep(forTimeInterval: 0.1)
            try fix()
            Thread.sleep(forTimeInterval: 0.05)
            return !lateDone.load(ordering: .acquiring)
        }
        #expect(heldLate, "a request made during the pause waited for its end")
        #expect(copy.pause >= .milliseconds(100), "the pause held requests back for as long as it ran (\(copy.pause))")
        while !lateDone.load(ordering: .acquiring) { usleep(1_000) }
        // The snapshot's transaction ends when pg_dump does, before finish() is called (an open transaction holds
        // back the database's cleanup): the backup's sessions go away by themselves.
        var sessions: Int64 = -1
        for _ in 0..<200 {
            sessions = try store.conn { try $0.rows("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", [.text(PostgresProgram.applicationName)]) }
                .first?.first?.int ?? -1
            if sessions == 0 { break }
            usleep(50_000)
        }
        #expect(sessions == 0, "the backup's sessions are gone once pg_dump ended")
        #expect(try copy.finish() > 0)
        _ = late
        let names = try Self.runNames(copy.path)
        #expect(names.isSuperset(of: ["before", "in-progress"]) && !names.contains("late"), "\(names.sorted())")
        let live = Set(try store.conn { try $0.rows("SELECT name FROM runs") }.compactMap { $0.first?.string })
        #expect(live.contains("late"), "the held request went on after the pause")
    }

    /// The gate alone, with many requests coming and going: each pause begins only once none is in progress, no
    /// request begins while it runs, and every request gets through.
    @Test func aPauseSeesNoRequestInProgress() throws {
        let gate = RequestGate()
        let inside = Atomic<Int>(0), done = Atomic<Int>(0), overlaps = Atomic<Int>(0)
        let threads = (0..<4).map { _ in
            Thread {
                for _ in 0..<2_000 {
                    gate.admit {
                        inside.add(1, ordering: .relaxed)
                        if inside.load(ordering: .relaxed) < 0 { overlaps.add(1, ordering: .relaxed) }  // a pause is running
                        inside.subtract(1, ordering: .relaxed)
                    }
                }
                done.add(1, ordering: .releasing)
            }
        }
        for t in threads { t.start() }
        var pauses = 0
        while done.load(ordering: .acquiring) < 4 {
            let (seen, _) = try gate.pausing(waitingAtMost: .seconds(10)) { () -> Int in
                let seen = inside.load(ordering: .relaxed)
                inside.subtract(1_000_000, ordering: .relaxed)  // a request beginning now would see it
                usleep(200)
                inside.add(1_000_000, ordering: .relaxed)
                return seen
            }
            #expect(seen == 0, "a request was in progress during a pause")
            pauses += 1
        }
        #expect(overlaps.load(ordering: .relaxed) == 0, "a request began during a pause")
        #expect(gate.inProgress == 0 && pauses > 0)
    }

    /// A request that goes on too long: the pause gives up (503) instead of holding every other request as long, and
    /// the requests it held go on.
    @Test func aPauseGivesUpOnARequestThatGoesOnTooLong() throws {
        let gate = RequestGate()
        let inside = Atomic<Bool>(false), heldDone = Atomic<Bool>(false)
        let slow = Thread { gate.admit { inside.store(true, ordering: .releasing); Thread.sleep(forTimeInterval: 0.5) } }
        slow.start()
        while !inside.load(ordering: .acquiring) { usleep(1_000) }
        let held = Thread {
            Thread.sleep(forTimeInterval: 0.02)  // arrives while the pause waits
            gate.admit {}
            heldDone.store(true, ordering: .releasing)
        }
        held.start()
        let began = ContinuousClock.now
        do {
            _ = try gate.pausing(waitingAtMost: .milliseconds(100)) { Issue.record("the pause's body ran with a request in progress") }
            Issue.record("the pause did not give up")
        } catch let e as TrackingError {
            #expect(e.code == .temporarilyUnavailable && e.message.contains("1 request(s)"), "\(e.message)")
        }
        #expect(ContinuousClock.now - began < .milliseconds(400), "given up at its limit, not when the request ended")
        while !heldDone.load(ordering: .acquiring) { usleep(1_000) }
        let (ran, _) = try gate.pausing(waitingAtMost: .seconds(5)) { true }  // once the slow request ended
        #expect(ran && gate.inProgress == 0)
    }

    @Test func verifyReadsTheDumpWhole() throws {
        let f = try Fixture("pg-verify", backend: .postgres)
        let run = try f.service.createRun(experimentID: "0").info.runID
        try f.service.logBatch(runID: run, metrics: (0..<300).map { Metric(key: "loss", value: Double($0), timestamp: 1, step: Int64($0)) })
        for b in 0..<20 {  // rows enough for several of the dump's compressed blocks
            try f.service.logBatch(runID: run, params: (0..<100).map { KeyValue(key: "p\(b)-\($0)", value: String(repeating: "v\($0)", count: 20)) })
        }
        let target = BackupTests.temporaryPath("pg-verify")
        defer { try? FileManager.default.removeItem(atPath: target) }
        let summary = try f.service.backup(into: target, dataDirectory: DataDirectory(f.dir))
        #expect(summary.metadataFile == "metadata.pgdump" && (summary.metadataBytes ?? 0) > 0)
        let good = try TrackingService.verifyBackup(target)
        #expect(good.ok && good.metadata == ["ok"], "\(good.metadata)")
        // Cut short: its data blocks end early.
        let dump = DataDirectory(target).metadataDump
        let bytes = try #require(FileManager.default.contents(atPath: dump))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: dump))
        let cut = try TrackingService.verifyBackup(target)
        #expect(!cut.ok && cut.metadata.first?.hasPrefix("metadata.pgdump: pg_restore failed") == true, "\(cut.metadata)")
    }

    @Test func aBackupThatCannotDumpLeavesNothing() throws {
        let f = try Fixture("pg-nodump", backend: .postgres)
        let parent = BackupTests.temporaryPath("pg-nodump")
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        do {
            _ = try f.service.backup(into: parent + "/b", dataDirectory: DataDirectory(f.dir), metadata: MetadataCopyOptions(pgDump: "/nonexistent/pg_dump"))
            Issue.record("a backup without pg_dump")
        } catch let e as TrackingError {
            #expect(e.code == .invalidParameterValue && e.message.contains("pg_dump '/nonexistent/pg_dump' is not an executable file"), "\(e.message)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty, "nothing is left behind")
        // A pg_dump that fails after the pause (a script: its version fine, then an error) fails the backup with what
        // it said, leaving nothing.
        let fake = parent + "/bin"
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        func fakePgDump(version: String) throws {
            // Written through a close-on-exec descriptor: a program another test starts meanwhile must not keep it
            // open for writing (exec refuses a file open for writing: ETXTBSY).
            let script = "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'pg_dump (PostgreSQL) \(version)'; exit 0; }\necho 'pg_dump: error: no luck' >&2\nexit 3\n"
            unlink(fake + "/pg_dump")
            let fd = open(fake + "/pg_dump", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
            try #require(fd >= 0)
            let written = Array(script.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            try #require(written == script.utf8.count)
        }
        // Older than the server: refused before anything is held.
        try fakePgDump(version: "9.6.24")
        do {
            _ = try f.service.backup(into: parent + "/old", dataDirectory: DataDirectory(f.dir), metadata: MetadataCopyOptions(pgDump: fake + "/pg_dump"))
            Issue.record("a backup with a pg_dump older than the server")
        } catch let e as TrackingError {
            #expect(e.code == .invalidParameterValue && e.message.contains("is pg_dump 9, which cannot dump PostgreSQL 1"), "\(e.message)")
        }
        try fakePgDump(version: "99.1")
        do {
            _ = try f.service.backup(into: parent + "/c", dataDirectory: DataDirectory(f.dir), metadata: MetadataCopyOptions(pgDump: fake + "/pg_dump"))
            Issue.record("a backup whose pg_dump failed")
        } catch let e as TrackingError {
            #expect(e.message.contains("exit status 3") && e.message.contains("no luck"), "\(e.message)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent) == ["bin"], "nothing is left behind")
        // Left out on purpose: the points alone, said so.
        let summary = try f.service.backup(into: parent + "/d", dataDirectory: DataDirectory(f.dir), metadata: nil)
        #expect(summary.metadataBytes == nil && summary.metadataNote?.hasPrefix("not asked for") == true)
        #expect(!FileManager.default.fileExists(atPath: parent + "/d/metadata.pgdump"))
    }

    /// pg_dump gets libpq's settings from the store's URI, and nothing else of the server's: no inherited `PG…`
    /// variable, no descriptor but its three.
    @Test func theProgramGetsTheURIsSettingsAndNothingElse() throws {
        setenv("PG_TALLY_TEST_INHERITED", "x", 1)  // read by no URI (tests run in parallel)
        defer { unsetenv("PG_TALLY_TEST_INHERITED") }
        let uri = try PostgresURI(parsing: "postgresql://u:s3cret@db.example:6543/d?sslmode=require&options=-c%20statement_timeout%3D5s", environment: [:])
        let env = PostgresProgram.environment(for: uri)
        #expect(env["PGHOST"] == "db.example" && env["PGPORT"] == "6543" && env["PGUSER"] == "u" && env["PGDATABASE"] == "d")
        #expect(env["PGPASSWORD"] == "s3cret" && env["PGSSLMODE"] == "require" && env["PGOPTIONS"] == "-c statement_timeout=5s")
        #expect(env["PG_TALLY_TEST_INHERITED"] == nil && env["PATH"] != nil)
        let held = open("/dev/null", O_RDONLY)  // a descriptor of the server's, not marked close-on-exec
        defer { close(held) }
        let sh = PostgresProgram(path: "/bin/sh")
        let errors = BackupTests.temporaryPath("fds")
        do {
            try sh.start(["-c", "exec >&2; ls /proc/$$/fd; exit 1"], environment: env, errors: errors).wait()
            Issue.record("the script exits 1")
        } catch let e as TrackingError {
            let fds = e.message.split(separator: ":").last.map { $0.split(whereSeparator: \.isWhitespace).map(String.init) } ?? []
            #expect(fds == ["0", "1", "2"], "\(e.message)")
        }
        #expect(!FileManager.default.fileExists(atPath: errors), "the errors file is removed")
        // A pg_dump given is run as given, whatever its name; pg_restore is looked for beside it only.
        #expect(try PostgresProgram.locate("pg_dump", given: "/bin/sh").path == "/bin/sh")
        expectError(.invalidParameterValue, "not found beside the pg_dump given") { _ = try PostgresProgram.locate("pg_restore", given: "/nonexistent/pg_dump") }
        let plain = BackupTests.temporaryPath("plain")
        _ = FileManager.default.createFile(atPath: plain, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        defer { unlink(plain) }
        expectError(.invalidParameterValue, "is not an executable file") { _ = try PostgresProgram.locate("pg_dump", given: plain) }
    }

    /// Leaving the metadata out is for PostgreSQL only: SQLite's file is part of the data directory.
    @Test func theEmbeddedDatabaseIsNeverLeftOut() throws {
        let f = try Fixture("sqlite-nometa")
        #expect(throws: TrackingError.self) {
            _ = try f.service.backup(into: BackupTests.temporaryPath("x"), dataDirectory: DataDirectory(f.dir), metadata: nil)
        }
    }
}
