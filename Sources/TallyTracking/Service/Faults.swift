#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failures injected into the write path by tests of crash and failure handling (`tally server`'s hidden
/// `--inject-faults` flag, comma-separated names). Empty unless a test asks for them.
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

    /// Parses comma-separated names (`kill-after-append`, `fail-append`); `nil` for an unknown name.
    public init?(parsing text: String) {
        var out: Faults = []
        for name in text.split(separator: ",") {
            switch name {
            case "kill-after-append": out.insert(.killAfterAppend)
            case "fail-append": out.insert(.failAppend)
            default: return nil
            }
        }
        self = out
    }

    /// Ends the process as `kill -9` would.
    static func kill() -> Never {
        raise(SIGKILL)
        abort()
    }
}
