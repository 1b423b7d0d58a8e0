import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One request's work spread over the machine's cores (a compare's series, a scoreboard's rows, a search page's
/// rendering): latency for the user who is waiting, the same total work.
public enum Parallel {
    /// Cores online.
    public static let cores: Int = {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 2
        #endif
    }()

    /// `transform` over `items` on all cores, results in order; the first error (in item order) is thrown.
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) throws -> R) throws -> [R] {
        guard items.count > 1 else { return try items.map(transform) }
        let results = Mutex<[Int: Result<R, any Error>]>([:])
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: min(items.count, cores)) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < items.count else { return }
                let r = Result { try transform(items[i]) }
                results.withLock { $0[i] = r }
            }
        }
        return try results.withLock { all in try (0..<items.count).map { try all[$0]!.get() } }
    }

    /// `transform` over `items` on all cores, results in order.
    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ transform: @escaping @Sendable (T) -> R) -> [R] {
        // A non-throwing transform cannot make the throwing version throw.
        // swiftlint:disable:next force_try
        try! map(items) { (t: T) throws -> R in transform(t) }
    }

    /// `0..<count` cut into contiguous ranges, four per core so that a core slowed by other work hands the rest to
    /// the others (fewer when a range would hold less than `minimum`).
    public static func chunks(_ count: Int, minimum: Int) -> [Range<Int>] {
        let n = max(1, min(cores * 4, count / max(1, minimum)))
        return (0..<n).map { i in (count * i / n)..<(count * (i + 1) / n) }
    }
}
