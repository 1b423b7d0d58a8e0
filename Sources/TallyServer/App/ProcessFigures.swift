import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A process's `/proc/PID/stat` (Linux): the one reading of it, for `/metrics`' process figures and the benchmarks'
/// CPU times.
public struct ProcessStat {
    /// The fields after the command's closing parenthesis: field 3 (the state) first.
    private let fields: [Substring]

    /// Process `pid`'s (`self`: this one's); `nil` where the file cannot be read.
    public init?(pid: String = "self") {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        fields = text[text.index(after: close)...].split(separator: " ")
    }

    /// Field `n`, numbered as proc(5) numbers them (from 1).
    func field(_ n: Int) -> Double? { n >= 3 && n - 3 < fields.count ? Double(fields[n - 3]) : nil }

    /// Clock ticks per second.
    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// User and system CPU time, seconds (fields 14 and 15).
    public var cpuSeconds: Double? {
        guard Self.ticks > 0, let user = field(14), let system = field(15) else { return nil }
        return (user + system) / Self.ticks
    }
}

/// The process's figures as the Prometheus client libraries report them (`process_*`), read from `/proc/self`. A
/// figure that cannot be read is `nil` (its metric keeps its last value rather than falling to 0, which a counter's
/// `rate()` would take for a restart); off Linux every one is.
struct ProcessFigures {
    /// User and system CPU time, seconds.
    var cpuSeconds: Double?
    /// Resident and virtual memory, bytes.
    var residentBytes: Double?, virtualBytes: Double?
    /// When the process started, seconds since the epoch.
    var startTime: Double?
    /// Its threads.
    var threads: Double?
    /// Open file descriptors, and the most it may open (the soft limit).
    var openFDs: Double?, maxFDs: Double?

    /// Reads `/proc/self` now.
    static func read() -> ProcessFigures {
        var p = ProcessFigures()
        #if os(Linux)
        if let stat = ProcessStat() {
            let page = Double(sysconf(Int32(_SC_PAGESIZE)))
            p.cpuSeconds = stat.cpuSeconds
            p.threads = stat.field(20)
            p.virtualBytes = stat.field(23)
            if page > 0 { p.residentBytes = stat.field(24).map { $0 * page } }
            if ProcessStat.ticks > 0, let started = stat.field(22),
               let boot = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
               let b = Double(boot.dropFirst(6)) {
                p.startTime = b + started / ProcessStat.ticks
            }
        }
        if let dir = opendir("/proc/self/fd") {
            var n = 0
            while let e = readdir(dir) { if e.pointee.d_name.0 != 0x2E { n += 1 } }  // not "." or ".."
            closedir(dir)
            p.openFDs = Double(n - 1)  // less the descriptor listing them
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { p.maxFDs = Double(limit.rlim_cur) }
        #endif
        return p
    }
}
