import Foundation

/// Requests that must not be cut in two by a backup's instant: any number run at once, and ``pausing(_:)`` waits
/// until none is in progress, holds new ones back while its body runs, then lets them in. A request admitted already
/// on this thread (a nested one) goes through without waiting, so a request never waits for a pause that waits for it.
///
/// The PostgreSQL store admits each outermost transaction and each unlocked metrics request: what a logging request
/// writes to the metric store and to the database is then either wholly before a backup's instant or wholly after it.
final class RequestGate: @unchecked Sendable {
    /// Guards ``active`` and ``paused``; waited on by requests held back and by a pause waiting for requests to end.
    private let condition = NSCondition()
    /// Requests in progress (nested ones not counted).
    private var active = 0
    /// Whether a pause holds new requests back (from the moment it begins waiting for those in progress).
    private var paused = false

    /// The gate whose request this thread is running, if any.
    @TaskLocal private static var admitted: ObjectIdentifier?

    /// Runs `body` as a request: at once, unless a pause holds requests back (then when it ends).
    func admit<R>(_ body: () throws -> R) rethrows -> R {
        let me = ObjectIdentifier(self)
        if Self.admitted == me { return try body() }
        condition.lock()
        while paused { condition.wait() }
        active += 1
        condition.unlock()
        defer {
            condition.lock()
            active -= 1
            if active == 0 && paused { condition.broadcast() }
            condition.unlock()
        }
        return try Self.$admitted.withValue(me) { try body() }
    }

    /// Runs `body` once no request is in progress, with new ones held back until it returns; one pause at a time.
    /// Never called from inside a request of this gate (it would wait for itself). Also returns how long requests
    /// were held back: from the moment the pause began waiting for those in progress until it ended.
    func pausing<R>(_ body: () throws -> R) rethrows -> (result: R, held: Duration) {
        precondition(Self.admitted != ObjectIdentifier(self), "a pause begun inside a request would wait for itself")
        condition.lock()
        while paused { condition.wait() }
        paused = true
        let began = ContinuousClock.now
        while active > 0 { condition.wait() }
        condition.unlock()
        defer {
            condition.lock()
            paused = false
            condition.broadcast()
            condition.unlock()
        }
        let result = try body()
        return (result, ContinuousClock.now - began)
    }

    /// Requests in progress now (tests).
    var inProgress: Int {
        condition.lock()
        defer { condition.unlock() }
        return active
    }
}
