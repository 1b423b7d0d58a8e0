import Hummingbird
import Logging
import NIOCore
import Synchronization
import TallyTracking

/// `GET /ready`: ``TrackingService/readiness()`` on the blocking pool, answered within ``Readiness/deadline``
/// (200 when every check passes, 503 otherwise, each check's state in a JSON object). Probes that arrive while a
/// check is still running wait for that one instead of starting another, so a database that hangs holds one
/// thread, not one per probe. A change of state is logged once (warning when the server becomes unready, with the
/// error behind it; notice when it is ready again), not at every probe.
final class ReadinessProbe: Sendable {
    let service: TrackingService
    let pool: BlockingPool
    let logger: Logger
    /// The check running now, shared by the probes that wait for it.
    private let running = Mutex<Task<Readiness, Never>?>(nil)
    /// The failures last logged (empty: ready), by check.
    private let logged = Mutex<[String: String]>([:])

    init(service: TrackingService, pool: BlockingPool, logger: Logger) {
        self.service = service
        self.pool = pool
        self.logger = logger
    }

    /// The readiness now, or the checks failed as unanswered past `deadline`.
    func readiness(within deadline: Duration = Readiness.deadline) async -> Readiness {
        let names = service.readinessCheckNames
        let check = running.withLock { running in
            if let running { return running }
            let task = Task { [service, pool] in
                let found = (try? await pool.run { service.readiness() }) ?? Readiness.shuttingDown(names)
                self.running.withLock { $0 = nil }
                return found
            }
            running = task
            return task
        }
        let answer: Readiness = await withCheckedContinuation { continuation in
            let first = First(continuation)
            Task { first.resume(await check.value) }
            Task {
                try? await Task.sleep(for: deadline)
                first.resume(Readiness.timedOut(names))
            }
        }
        note(answer)
        return answer
    }

    /// Logs what changed since the last probe.
    private func note(_ r: Readiness) {
        let failures = Dictionary(uniqueKeysWithValues: r.checks.compactMap { c in c.failure.map { (c.name, $0) } })
        let before = logged.withLock { l in defer { l = failures }; return l }
        guard before != failures else { return }
        if failures.isEmpty {
            logger.notice("ready again: \(r.checks.map(\.name).joined(separator: ", ")) answer")
            return
        }
        for c in r.checks where c.failure != nil && before[c.name] != c.failure {
            logger.warning("not ready: \(c.name): \(c.failure ?? "")\(c.detail.map { " (\($0))" } ?? "")")
        }
    }

    /// The probe's answer: the status and `{"status": "ready" | "unready", "checks": {name: "ok" | why}}`.
    static func response(_ r: Readiness) -> Response {
        var checks = Obj()
        for c in r.checks { checks.add(c.name, c.failure ?? "ok") }
        var o = Obj()
        o.add("status", r.isReady ? "ready" : "unready")
        o.add("checks", raw: checks.json)
        return Response(status: r.isReady ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: o.json)))
    }
}

/// A continuation resumed by the first of several racers; the others' answers are dropped.
private final class First: Sendable {
    private let continuation: Mutex<CheckedContinuation<Readiness, Never>?>

    init(_ c: CheckedContinuation<Readiness, Never>) { continuation = Mutex(c) }

    func resume(_ r: Readiness) {
        continuation.withLock { c in defer { c = nil }; return c }?.resume(returning: r)
    }
}
