import Foundation
import Synchronization

/// Requests that must not be cut in two by a backup's instant: any number run at once, and ``pausing(_:)`` waits
/// until none is in progress, holds new ones back while its body runs, then lets them in.
///
/// The PostgreSQL store admits each outermost transaction and each unlocked metrics request: what a logging request
/// writes to the metric store and to the database is then either wholly before a backup's instant or wholly after it.
/// Requests never nest (a request admitted inside another would wait for a pause that waits for the outer one), and
/// a pause is never begun inside a request: debug builds (the tests) check both. Admitting a request costs one
/// compare-and-swap and one atomic subtraction while no pause is asked for.
final class RequestGate: Sendable {
    /// Requests in progress, plus ``pausedBit`` while a pause holds new ones back (from the moment it begins waiting
    /// for those in progress until it ends).
    private let state = Atomic<Int>(0)
    private static let pausedBit = 1 << 62
    /// Waited on by requests held back (until the bit is cleared) and by a pause (until no request is in progress).
    private let condition = NSCondition()
    /// One pause at a time.
    private let pauses = NSLock()

    /// Runs `body` as a request: at once, unless a pause holds requests back (then when it ends).
    func admit<R>(_ body: () throws -> R) rethrows -> R {
        #if DEBUG
        precondition(Self.admitted != ObjectIdentifier(self), "a request admitted inside another would wait for a pause that waits for the outer one")
        #endif
        enter()
        defer { leave() }
        #if DEBUG
        return try Self.$admitted.withValue(ObjectIdentifier(self)) { try body() }
        #else
        return try body()
        #endif
    }

    #if DEBUG
    /// The gate whose request this thread is running (debug builds: the nesting check).
    @TaskLocal private static var admitted: ObjectIdentifier?
    #endif

    private func enter() {
        while true {
            let seen = state.load(ordering: .relaxed)
            if seen & Self.pausedBit == 0 {
                if state.compareExchange(expected: seen, desired: seen + 1, ordering: .acquiring).exchanged { return }
                continue
            }
            // Checked again under the lock, which the pause's end takes before it wakes anyone: no wake-up is lost.
            condition.lock()
            while state.load(ordering: .acquiring) & Self.pausedBit != 0 { condition.wait() }
            condition.unlock()
        }
    }

    private func leave() {
        // The last request out while a pause waits wakes it (under the lock, which the pause holds from its check
        // until it waits).
        if state.subtract(1, ordering: .releasing).newValue == Self.pausedBit {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Runs `body` once no request is in progress, with new ones held back until it returns; also returns how long
    /// requests were held back: from the moment the pause began waiting for those in progress until it ended. When
    /// requests are still in progress after `limit`, they are let go on and the pause fails (`TEMPORARILY_UNAVAILABLE`:
    /// a backup is retried later) rather than hold every other request for as long.
    func pausing<R>(waitingAtMost limit: Duration, _ body: () throws -> R) throws -> (result: R, held: Duration) {
        #if DEBUG
        precondition(Self.admitted != ObjectIdentifier(self), "a pause begun inside a request would wait for itself")
        #endif
        pauses.lock()
        defer { pauses.unlock() }
        state.bitwiseOr(Self.pausedBit, ordering: .acquiringAndReleasing)
        defer {
            state.bitwiseAnd(~Self.pausedBit, ordering: .releasing)
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
        let began = ContinuousClock.now
        let deadline = Date(timeIntervalSinceNow: Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18)
        condition.lock()
        while state.load(ordering: .acquiring) != Self.pausedBit {
            guard condition.wait(until: deadline) || state.load(ordering: .acquiring) == Self.pausedBit else {
                let left = state.load(ordering: .acquiring) & ~Self.pausedBit
                condition.unlock()
                throw TrackingError(.temporarilyUnavailable, "\(left) request(s) of this server were still in progress after \(limit): "
                                    + "the pause was given up, nothing was held; try again")
            }
        }
        condition.unlock()
        let result = try body()
        return (result, ContinuousClock.now - began)
    }

    /// Requests in progress now (tests).
    var inProgress: Int { state.load(ordering: .acquiring) & ~Self.pausedBit }
}
