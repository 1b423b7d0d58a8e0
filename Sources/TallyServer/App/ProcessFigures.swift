#if canImport(Glibc)
import Glibc
#endif

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
        if let stat = text("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
            // The fields after the command's closing parenthesis, from field 3 (state) on.
            let f = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ n: Int) -> Double? { n - 3 < f.count ? Double(f[n - 3]) : nil }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK))), page = Double(sysconf(Int32(_SC_PAGESIZE)))
            if ticks > 0, let user = field(14), let system = field(15) { p.cpuSeconds = (user + system) / ticks }
            p.threads = field(20)
            p.virtualBytes = field(23)
            if page > 0 { p.residentBytes = field(24).map { $0 * page } }
            if ticks > 0, let started = field(22), let boot = text("/proc/stat")?.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
               let b = Double(boot.dropFirst(6)) {
                p.startTime = b + started / ticks
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

    #if os(Linux)
    /// A small file's text (`/proc` files report no size: read until the end).
    private static func text(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    #endif
}
