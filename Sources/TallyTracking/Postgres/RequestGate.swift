import Foundation
import Synchronization

/// Requests that must not be cut in two by a backup's instant: any number run at once, and ``pausing(_:)`` waits
/// until none is in progress, holds new ones back while its body runs, then lets them in.
///
/// The PostgreSQL store admits each outermost transaction and each unlocked metrics request: what a logging request
/// writes to the metric store and to the database is then either wholly before a backup's instant or wholly after it.
/// Requests never nest (a request admitted inside another would wait for a pause that waits for the outer one), and
/// a pause is never begun inside a request. Admitting a request costs one compare-and-swap and one atomic subtraction
/// while no pause is asked for.
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
        enter()
        defer { leave() }
        return try body()
    }

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
    /// requests were held back: from the moment the pause began waiting for those in progress until it ended.
    func pausing<R>(_ body: () throws -> R) rethrows -> (result: R, held: Duration) {
        pauses.lock()
        defer { pauses.unlock() }
        state.bitwiseOr(Self.pausedBit, ordering: .acquiringAndReleasing)
        let began = ContinuousClock.now
        condition.lock()
        while state.load(ordering: .acquiring) != Self.pausedBit { condition.wait() }
        condition.unlock()
        defer {
            state.bitwiseAnd(~Self.pausedBit, ordering: .releasing)
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
        let result = try body()
        return (result, ContinuousClock.now - began)
    }

    /// Requests in progress now (tests).
    var inProgress: Int { state.load(ordering: .acquiring) & ~Self.pausedBit }
}
