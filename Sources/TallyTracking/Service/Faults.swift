#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failures injected into the write path by tests of crash and failure handling, named in the environment
/// variable `TALLY_FAULTS` (comma-separated) when the service starts. Empty in normal operation.
public struct Faults: OptionSet, Sendable {
    /// The bits.
    public let rawValue: Int
    /// Creates a set from its bits.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `kill-after-append`: the process kills itself (SIGKILL) after a batch's points are in the WAL and before the
    /// metadata transaction commits.
    public static let killAfterAppend = Faults(rawValue: 1)
    /// `fail-append`: every metric append fails as an I/O error would.
    public static let failAppend = Faults(rawValue: 2)

    /// The faults named in `TALLY_FAULTS`.
    public static func fromEnvironment() -> Faults {
        guard let raw = getenv("TALLY_FAULTS") else { return [] }
        var out: Faults = []
        for name in String(cString: raw).split(separator: ",") {
            switch name {
            case "kill-after-append": out.insert(.killAfterAppend)
            case "fail-append": out.insert(.failAppend)
            default: break
            }
        }
        return out
    }

    /// Ends the process as `kill -9` would.
    static func kill() -> Never {
        raise(SIGKILL)
        abort()
    }
}
