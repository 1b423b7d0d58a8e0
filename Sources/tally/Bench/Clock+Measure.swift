import ArgumentParser
import TallyStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seconds taken by `body`.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    return seconds(since: start)
}

/// Seconds from `start` until now.
func seconds(since start: ContinuousClock.Instant) -> Double {
    (ContinuousClock.now - start).totalSeconds
}

/// The median of some numbers.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// A fresh, empty scratch directory under `base` (or the system temporary directory).
func scratchDirectory(_ base: String?, _ name: String) -> String {
    let root = base ?? (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
    let dir = root + "/tally-bench-\(name)-\(getpid())"
    _ = system_rm(dir)
    return dir
}

@discardableResult
func system_rm(_ path: String) -> Int32 {
    // Remove a scratch tree without Foundation: nftw-free recursion through the shell is simplest and safe here
    // because the path is generated above.
    var pid: pid_t = 0
    let args = ["/bin/rm", "-rf", path]
    var cargs = args.map { strdup($0) } + [nil]
    defer { for a in cargs { free(a) } }
    guard posix_spawn(&pid, "/bin/rm", nil, nil, &cargs, nil) == 0 else { return -1 }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return status
}

/// Options every benchmark shares: where to put scratch data and how to print.
struct BenchOutput: ParsableArguments {
    @Option(help: "Scratch directory (default: $TMPDIR or /tmp).")
    var dir: String?
    @Flag(help: "Print one JSON object.")
    var json = false

    /// A fresh scratch directory for benchmark `name`.
    func scratch(_ name: String) -> String { scratchDirectory(dir, name) }

    /// Prints the figures as JSON or as `key: value` lines.
    func emit(_ out: JSONObject) {
        if json { print(out.render()) } else { for (k, v) in out.fields { print("\(k): \(v)") } }
    }
}

/// Formats a JSON object from ordered key/value pairs (values already JSON-encoded).
struct JSONObject {
    var fields: [(String, String)] = []
    mutating func add(_ key: String, _ value: Double, digits: Int = 3) {
        guard value.isFinite else {
            fields.append((key, "null"))
            return
        }
        var p = 1.0
        for _ in 0..<digits { p *= 10 }
        let r = (value * p).rounded() / p
        fields.append((key, r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)))
    }
    mutating func add(_ key: String, _ value: Int) { fields.append((key, String(value))) }
    mutating func add(_ key: String, _ value: Bool) { fields.append((key, value ? "true" : "false")) }
    mutating func add(_ key: String, _ value: String) { fields.append((key, "\"" + value + "\"")) }
    mutating func add(_ key: String, object: JSONObject) { fields.append((key, object.render(indent: 1))) }

    func render(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let body = fields.map { "\(pad)\"\($0.0)\": \($0.1)" }.joined(separator: ",\n")
        return "{\n" + body + "\n" + String(repeating: "  ", count: indent) + "}"
    }
}
