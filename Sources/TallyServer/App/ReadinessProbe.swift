import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TallyTracking

/// `GET /ready`: the metadata database asked on a thread of its own (not the blocking pool, whose queue a busy server
/// fills) and waited for at most ``Readiness/deadline``, with the checks of the server's own state, which never
/// wait (``TrackingService/readiness(metadata:)``): 200 when every check passes, 503 otherwise, each check's state
/// in a JSON object. Probes that arrive while the database is being asked wait for that question instead of asking
/// again, so a database that hangs holds one thread, not one per probe, and a probe past its deadline leaves nothing
/// behind. A change of state is logged once (warning when the server becomes unready, with the error behind it;
/// notice when it is ready again), not at every probe.
final class ReadinessProbe: Sendable {
    let service: TrackingService
    let logger: Logger
    /// Asks the metadata database (blocking); ``TrackingService/metadataReadiness()`` but in tests.
    let ask: @Sendable () -> Readiness.Check

    /// Probes waiting for the question in flight, by number, each with its deadline's timer.
    private struct Waiting {
        var asking = false
        var next: UInt64 = 0
        var probes: [UInt64: Probe] = [:]
    }

    /// A probe waiting: how to answer it, by when, and the timer that answers it then.
    private struct Probe {
        let continuation: CheckedContinuation<Readiness.Check, Never>
        let deadline: Duration
        let until: ContinuousClock.Instant
        var timer: Task<Void, Never>?

        /// `answer`, or the unanswered check when it comes past the deadline (a timer that ran late, on a busy
        /// machine, does not make a late answer count).
        func resume(_ answer: Readiness.Check) {
            continuation.resume(returning: ContinuousClock.now > until ? Readiness.unanswered(within: deadline) : answer)
        }
    }

    private let waiting = Mutex(Waiting())
    /// The failures last logged (empty: ready), by check.
    private let logged = Mutex<[String: String]>([:])
    /// Questions asked of the database (tests: one for many probes).
    let asked = Atomic<Int>(0)
    /// Probes waiting for an answer now (tests).
    var waitingProbes: Int { waiting.withLock { $0.probes.count } }

    init(service: TrackingService, logger: Logger, ask: (@Sendable () -> Readiness.Check)? = nil) {
        self.service = service
        self.logger = logger
        self.ask = ask ?? { [service] in service.metadataReadiness() }
    }

    /// The readiness now, the metadata check failed as unanswered when the database takes longer than `deadline`.
    func readiness(within deadline: Duration = Readiness.deadline) async -> Readiness {
        let metadata = await metadataCheck(within: deadline)
        let r = service.readiness(metadata: metadata)
        note(r)
        return r
    }

    /// The metadata check: the answer to the question in flight (asked now when none is), or the unanswered check
    /// once `deadline` has passed.
    private func metadataCheck(within deadline: Duration) async -> Readiness.Check {
        await withCheckedContinuation { continuation in
            let (id, start) = waiting.withLock { w -> (UInt64, Bool) in
                w.next += 1
                w.probes[w.next] = Probe(continuation: continuation, deadline: deadline, until: .now + deadline)
                defer { w.asking = true }
                return (w.next, !w.asking)
            }
            let timer = Task { [self] in
                try? await Task.sleep(for: deadline)
                guard !Task.isCancelled else { return }
                waiting.withLock { $0.probes.removeValue(forKey: id) }?.continuation.resume(returning: Readiness.unanswered(within: deadline))
            }
            // The timer is kept only while the probe waits (an answer may have come first).
            let stillWaiting = waiting.withLock { w -> Bool in
                guard w.probes[id] != nil else { return false }
                w.probes[id]?.timer = timer
                return true
            }
            if !stillWaiting { timer.cancel() }
            guard start else { return }
            let thread = Thread { [self] in
                asked.add(1, ordering: .relaxed)
                let answer = ask()
                let answered = waiting.withLock { w in
                    defer {
                        w.probes = [:]
                        w.asking = false
                    }
                    return Array(w.probes.values)
                }
                for p in answered {
                    p.timer?.cancel()
                    p.resume(answer)
                }
            }
            thread.name = "tally-readiness"
            thread.start()
        }
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
