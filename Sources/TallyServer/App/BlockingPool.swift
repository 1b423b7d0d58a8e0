import Foundation
import NIOPosix
import ServiceLifecycle
import Synchronization
import TallyStore
import TallyTracking

/// The threads for blocking store work (fsync, SQLite, file I/O), started with the application and shut down with
/// it. More threads than cores: durable appends wait on fsync there, and concurrent ones share one group commit
/// only if they can wait at the same time.
final class BlockingPool: Service {
    let pool: NIOThreadPool
    /// The pool's threads.
    let threads: Int
    /// Work handed to the pool and not yet done.
    private let tasks = Atomic<Int>(0)

    init(threads: Int) {
        self.threads = max(2, threads)
        pool = NIOThreadPool(numberOfThreads: self.threads)
        pool.start()
    }

    /// Runs `work` on the pool.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        tasks.add(1, ordering: .relaxed)
        defer { tasks.subtract(1, ordering: .relaxed) }
        return try await pool.runIfActive(work)
    }

    /// The pool's size and load now.
    struct Activity: Sendable {
        /// Its threads.
        var threads: Int
        /// Work queued or running.
        var tasks: Int
    }

    /// The pool's size and load now.
    var activity: Activity { Activity(threads: threads, tasks: tasks.load(ordering: .relaxed)) }

    /// Waits for the application's shutdown, then stops the threads once their work is done.
    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}

/// Closes the tracking service's stores when the application shuts down (after the HTTP server has stopped:
/// services shut down in reverse order, and the server is the last one started).
struct StoreCloser: Service {
    let service: TrackingService
    /// The shutdown's deadline, disarmed here: the requests are done once the stores close.
    var deadline: ShutdownDeadline?

    func run() async throws {
        try? await gracefulShutdown()
        deadline?.disarm()
        // Closing seals every head: blocking work, done on a thread of its own rather than a cooperative one.
        let service = self.service
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            Thread { done.resume(with: Result { try service.close() }) }.start()
        }
    }
}
