#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable (pthreads), for the few places threads must wait for each other
/// (group commit). `Synchronization.Mutex` has no wait/signal.
///
/// The state is a class, handed to `withLock` by reference, never `inout`: a caller waits inside `withLock` and
/// re-reads the state afterwards, and an `inout` parameter lets the optimiser assume nobody else changed it.
final class ConditionLock<State: AnyObject>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Only touched with `mutex` held, which is what makes the class safe to share.
    private let state: State

    init(_ initial: State) {
        state = initial
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        #if os(Linux)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Runs `body` with the lock held.
    func withLock<R>(_ body: (State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(state)
    }

    /// Inside `withLock`: releases the lock until signalled or until `nanoseconds` pass (0: no limit), then retakes it.
    /// Callers re-check their condition in a loop.
    func wait(nanoseconds: Int = 0) {
        if nanoseconds <= 0 {
            pthread_cond_wait(cond, mutex)
            return
        }
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_MONOTONIC, &ts)
        #else
        clock_gettime(CLOCK_REALTIME, &ts)
        #endif
        let total = Int(ts.tv_nsec) + nanoseconds
        ts.tv_sec += total / 1_000_000_000
        ts.tv_nsec = total % 1_000_000_000
        pthread_cond_timedwait(cond, mutex, &ts)
    }

    /// Inside `withLock`: releases the lock for a blocking call made without it (pair with ``relockAfterCall()``).
    func unlockForCall() { pthread_mutex_unlock(mutex) }

    /// Retakes the lock released by ``unlockForCall()``.
    func relockAfterCall() { pthread_mutex_lock(mutex) }

    /// Wakes every waiter.
    func broadcast() { pthread_cond_broadcast(cond) }
}
