import Dispatch
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An event loop with no thread of its own: whichever thread drives it runs its tasks, as libpq's caller does its
/// connection's work. One ``DrivenChannel`` lives on it. A thread *enters* the loop (``enter()``), and while it is in,
/// `inEventLoop` is true for it alone, so NIO and PostgresNIO run their handlers inline on it; a statement sent this
/// way is written to the socket by its caller, and its answer is read by its caller
/// (``DrivenChannel/drive(until:deadline:)``).
///
/// - One thread at a time is in the loop; another that enters sleeps until it leaves. A thread may enter again while
///   in (the count is kept).
/// - `execute` from a thread that is not in the loop queues the task; when no thread is in, the caller enters, runs
///   it and whatever else waits, and leaves, all before `execute` returns. A task queued while another thread is in
///   runs when that thread next wakes (bytes arrive, its deadline or a timer comes).
/// - Scheduled tasks run while a thread is in the loop, once due: a timer on a loop nobody drives waits for the
///   next thread that does.
final class DrivenLoop: EventLoop {
    private struct State {
        var tasks: [@Sendable () -> Void] = []
        var timers: [Timer] = []
        var nextTimer = 0
    }

    /// A scheduled task.
    private struct Timer {
        let id: Int
        let deadline: NIODeadline
        let run: @Sendable () -> Void
    }

    private let state = Mutex(State())
    /// Held by the thread in the loop: another that enters sleeps on it until the first leaves (no spinning: on few
    /// cores the thread in the loop may be the one a spinner keeps from running).
    private let gate = DispatchSemaphore(value: 1)
    /// The thread in the loop (`pthread_self`), 0 when none; and how many times it entered.
    private let driver = Atomic<UInt>(0), depth = Atomic<Int>(0)

    /// A loop no thread is in.
    init() {}

    private static var me: UInt { UInt(pthread_self()) }

    /// Whether the calling thread is the one in the loop.
    var inEventLoop: Bool { driver.load(ordering: .relaxed) == Self.me }

    /// Enters the loop: waits while another thread is in it (briefly: threads enter for a call or for a statement's
    /// answer); the caller must ``leave()`` as often as it entered.
    func enter() {
        if inEventLoop {
            depth.add(1, ordering: .relaxed)
            return
        }
        gate.wait()
        took()
    }

    /// Enters the loop if no thread is in it; whether it did.
    private func tryEnter() -> Bool {
        guard gate.wait(timeout: .now()) == .success else { return false }
        took()
        return true
    }

    /// The calling thread holds the gate: it is in the loop, once.
    private func took() {
        driver.store(Self.me, ordering: .relaxed)
        depth.store(1, ordering: .relaxed)
    }

    /// Leaves the loop, after running what was queued; the last leave lets another thread in. Tasks queued by other
    /// threads between the run and the leave are run by entering again.
    func leave() {
        precondition(inEventLoop, "a thread leaves a DrivenLoop it is not in")
        guard depth.load(ordering: .relaxed) == 1 else {
            depth.subtract(1, ordering: .relaxed)
            return
        }
        repeat {
            runPending()  // still in once: a task that enters and leaves does not let another thread in
            depth.store(0, ordering: .relaxed)
            driver.store(0, ordering: .relaxed)
            gate.signal()
        } while state.withLock({ !$0.tasks.isEmpty }) && tryEnter()
    }

    /// Runs `body` in the loop (entering and leaving it).
    func run<R>(_ body: () throws -> R) rethrows -> R {
        enter()
        defer { leave() }
        return try body()
    }

    /// Runs the queued tasks and the timers that are due, including any they queue, until none is left (in the loop).
    func runPending() {
        while true {
            let now = NIODeadline.now()
            let (tasks, due) = state.withLock { s -> ([@Sendable () -> Void], [Timer]) in
                let tasks = s.tasks
                s.tasks = []
                guard s.timers.contains(where: { $0.deadline <= now }) else { return (tasks, []) }
                let due = s.timers.filter { $0.deadline <= now }
                s.timers.removeAll { $0.deadline <= now }
                return (tasks, due.sorted { $0.deadline < $1.deadline })
            }
            if tasks.isEmpty && due.isEmpty { return }
            for t in tasks { t() }
            for t in due { t.run() }
        }
    }

    /// When the earliest scheduled task is due, if any is scheduled.
    var nextDeadline: NIODeadline? {
        state.withLock { s in s.timers.map(\.deadline).min() }
    }

    /// Queues `task`; runs it (and whatever waits) at once when no thread is in the loop.
    func execute(_ task: @escaping @Sendable () -> Void) {
        state.withLock { $0.tasks.append(task) }
        if !inEventLoop, tryEnter() { leave() }
    }

    /// Schedules `task` for `deadline`: it runs while a thread is in the loop, once due.
    func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise: EventLoopPromise<T> = makePromise()
        let id = state.withLock { s in
            s.nextTimer += 1
            s.timers.append(Timer(id: s.nextTimer, deadline: deadline) {
                // Run in the loop, where the promise is completed too: its value never crosses threads.
                do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
            })
            return s.nextTimer
        }
        return Scheduled(promise: promise) {
            let removed = self.state.withLock { s in
                guard let i = s.timers.firstIndex(where: { $0.id == id }) else { return false }
                s.timers.remove(at: i)
                return true
            }
            if removed { promise.fail(EventLoopError.cancelled) }
        }
    }

    /// Schedules `task` to run `in` from now (see ``scheduleTask(deadline:_:)``).
    func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + delay, task)
    }

    /// Nothing to shut down: the loop has no thread.
    func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        queue.async { callback(nil) }
    }
}
