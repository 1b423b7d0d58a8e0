import Foundation
import Logging
import Synchronization
import Testing
@testable import TallyServer
import TallyStore
import TallyTracking

/// `GET /ready` on the real application: 200 while the stores take requests, 503 naming the check that fails, and
/// the deadline held against a database that does not answer. ``ReadinessProbeTests``: one question for many probes.
@Suite struct ReadinessRouteTests {
    static func checks(_ r: HTTPAnswer) -> [String: String] { r.json["checks"] as? [String: String] ?? [:] }

    @Test func readyThenAClosedStore() async throws {
        try await LiveServer.with { s in
            let r = try await s.get("/ready")
            #expect(r.status == 200 && r.headers["content-type"] == "application/json")
            #expect(r.json["status"] as? String == "ready" && Self.checks(r) == ["metadata": "ok", "metrics": "ok"])
            #expect(try await s.request("HEAD", "/ready", contentType: nil).status == 200)
            #expect(try await s.post("/ready", "{}").status == 405)

            try s.service.metrics.close()
            let down = try await s.get("/ready")
            #expect(down.status == 503 && down.json["status"] as? String == "unready")
            #expect(Self.checks(down) == ["metadata": "ok", "metrics": "the metric store is closed"])
            #expect(try await s.get("/health").status == 200)  // the process still answers
        }
    }

    @Test func underTheStaticPrefix() async throws {
        try await LiveServer.with({ $0.staticPrefix = "/mlflow" }) { s in
            let r = try await s.get("/mlflow/ready")
            #expect(r.status == 200 && r.json["status"] as? String == "ready")
        }
    }

    /// A metadata database that holds the probe's read (a table locked by another transaction): each probe answers
    /// 503 within the deadline, naming the metadata check only, and the server is ready again once the lock is gone.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_URI"] != nil))
    func aDatabaseThatDoesNotAnswer() async throws {
        let testURI = ProcessInfo.processInfo.environment["TALLY_TEST_POSTGRES_URI"]!
        let admin = try PostgresDatabase(uri: try PostgresURI(parsing: testURI), poolSize: 2)
        defer { admin.close() }
        let name = "t_ready_\(UInt64.random(in: 0...UInt64.max))"
        try admin.withConnection { try $0.execute("CREATE DATABASE \(name)") }
        defer { try? admin.withConnection { try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") } }
        // The test cluster's URI with the scratch database in place of its own (the query, TLS files, kept).
        let parts = testURI.split(separator: "?", maxSplits: 1)
        let uri = String(parts[0][...parts[0].lastIndex(of: "/")!]) + name + (parts.count > 1 ? "?" + parts[1] : "")
        try await LiveServer.with({ $0.backendStoreURI = uri }) { s in
            #expect(try await s.get("/ready").status == 200)
            let locker = try PostgresDatabase(uri: try PostgresURI(parsing: uri), poolSize: 1)
            defer { locker.close() }
            let locked = Atomic<Bool>(false), release = Atomic<Bool>(false), done = Atomic<Bool>(false)
            Thread {
                try? locker.transaction { c in
                    try c.execute("LOCK TABLE experiments IN ACCESS EXCLUSIVE MODE")
                    locked.store(true, ordering: .releasing)
                    while !release.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.01) }
                }
                done.store(true, ordering: .releasing)
            }.start()
            while !locked.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
            // One probe at a time, each asking a question of its own: the question ends (the read's own limit, the
            // deadline and 1 s) before the next probe comes, so that none joins a question asked long before it,
            // whose failure could reach it before its deadline. Probes sharing one question are
            // ReadinessProbeTests'.
            for _ in 0..<3 {
                let started = ContinuousClock.now
                let r = try await s.get("/ready")
                let took = ContinuousClock.now - started
                #expect(r.status == 503 && Self.checks(r) == ["metadata": "no answer within 2 s", "metrics": "ok"], "\(r.text)")
                #expect(took >= Readiness.deadline && took < .seconds(20), "\(took)")
                try await Task.sleep(for: .seconds(3))
            }
            release.store(true, ordering: .releasing)
            while !done.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
            var ready = try await s.get("/ready")
            for _ in 0..<50 where ready.status != 200 {
                try await Task.sleep(for: .milliseconds(100))
                ready = try await s.get("/ready")
            }
            #expect(ready.status == 200, "\(ready.text)")
        }
    }
}

/// ``ReadinessProbe`` with a question that waits until the test lets it answer: probes that arrive while it is asked
/// share it, each answers by its own deadline, an answer that comes in time reaches every probe waiting.
@Suite struct ReadinessProbeTests {
    @Test func oneQuestionForManyProbes() async throws {
        let dir = NSTemporaryDirectory() + "tally-probe-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let service = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: try MetricStore(directory: dir))
        defer { try? service.close() }
        let answer = Atomic<Bool>(false)
        let probe = ReadinessProbe(service: service, logger: Logger(label: "test")) {
            while !answer.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.005) }
            return Readiness.Check(name: "metadata")
        }
        let late = await withTaskGroup(of: Readiness.self) { g in
            for _ in 0..<5 { g.addTask { await probe.readiness(within: .milliseconds(200)) } }
            return await g.reduce(into: []) { $0.append($1) }
        }
        #expect(late.count == 5 && late.allSatisfy { $0.checks == [Readiness.unanswered(within: .milliseconds(200)), .init(name: "metrics")] })
        #expect(late[0].checks[0].failure == "no answer within 200 ms")
        #expect(probe.asked.load(ordering: .relaxed) == 1, "the probes shared one question")
        // Still unanswered: the next probes join it, and the answer reaches all of them at once.
        async let a = probe.readiness(within: .seconds(30))
        async let b = probe.readiness(within: .seconds(30))
        while probe.waitingProbes < 2 { try await Task.sleep(for: .milliseconds(5)) }
        answer.store(true, ordering: .releasing)
        let (ra, rb) = await (a, b)
        #expect(ra.isReady && rb.isReady && probe.asked.load(ordering: .relaxed) == 1)
        #expect(await probe.readiness().isReady && probe.asked.load(ordering: .relaxed) == 2, "asked again once answered")
    }
}
