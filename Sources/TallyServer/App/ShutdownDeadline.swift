import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// How long a server's graceful shutdown may wait for requests still running. SIGTERM or SIGINT stops new
/// connections and lets running requests finish; a request that does not (a client trickling a body, a request
/// still computing) would keep the process alive until SIGKILL. Past the deadline the process logs what it gave up
/// and exits with status 1 without closing its stores, which recover on the next start as after a crash (the
/// metric log replays; a metadata transaction not committed is rolled back). Disarmed once the stores start closing:
/// from then on nothing is left to wait for but the stores themselves, which are not cut short.
public final class ShutdownDeadline: Service, Sendable {
    /// Seconds from the signal to the forced exit (0: none, wait as long as requests run).
    public let seconds: Int
    let logger: Logger
    private let disarmed = Atomic<Bool>(false)

    /// A deadline `seconds` after graceful shutdown starts (0: none).
    public init(seconds: Int, logger: Logger) {
        precondition(seconds >= 0, "a deadline is a number of seconds, or 0 for none")
        self.seconds = seconds
        self.logger = logger
    }

    /// No forced exit from now on (called when the stores start closing, all requests done).
    func disarm() {
        disarmed.store(true, ordering: .sequentiallyConsistent)
    }

    /// Waits for graceful shutdown, then arms the deadline on a thread of its own and returns, so that the services
    /// started before it (the application) are told to shut down next.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is ending without a graceful shutdown
        }
        guard seconds > 0 else { return }
        Thread { [self] in
            Thread.sleep(forTimeInterval: TimeInterval(seconds))
            guard !disarmed.load(ordering: .sequentiallyConsistent) else { return }
            logger.error("shutdown waited \(seconds) s for requests still running (--shutdown-timeout): exiting without closing the stores, which recover on the next start")
            fflush(nil)  // every stream, the log line included
            _exit(1)
        }.start()
    }
}

extension TallyApplication {
    /// Runs `app` until SIGTERM or SIGINT, then shuts it down gracefully within `deadline`: `runService()`, with the
    /// deadline told of the shutdown first (services are told in reverse order), so its clock starts at the signal.
    public static func run(_ app: some ApplicationProtocol, deadline: ShutdownDeadline, logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: [app, deadline], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
