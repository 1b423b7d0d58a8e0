import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One of PostgreSQL's own client programs (`pg_dump`, `pg_restore`), run with a store's connection settings: a
/// backup dumps the database through it, `tally backup --verify` reads the dump back.
struct PostgresProgram: Sendable {
    /// The executable.
    let path: String

    /// Where Debian installs each PostgreSQL version's programs (`/usr/lib/postgresql/15/bin`); `/usr/bin`'s are a
    /// wrapper script choosing among them.
    static let debianRoot = "/usr/lib/postgresql"
    /// What a backup's connections call themselves (`pg_stat_activity.application_name`): the snapshot's, and
    /// `pg_dump`'s.
    static let applicationName = "tally backup"

    /// The program `name`: `given` itself when one is given for it (`pg_dump`), or the program beside it (`pg_restore`
    /// beside a given `pg_dump`), an error when that is not an executable file; else the newest version's in
    /// ``debianRoot``, else on `PATH` (absolute entries only); a clear error naming what to install when there is none.
    static func locate(_ name: String, given: String?) throws -> PostgresProgram {
        func runnable(_ p: String) -> Bool {
            var st = stat()
            return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(p, X_OK) == 0
        }
        if let given {
            let asked = name == "pg_dump" ? given : (given as NSString).deletingLastPathComponent + "/" + name
            guard runnable(asked) else {
                throw TrackingError(.invalidParameterValue, asked == given ? "\(name) '\(given)' is not an executable file"
                                    : "\(name) was not found beside the pg_dump given (\(asked) is not an executable file)")
            }
            return PostgresProgram(path: asked)
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debianRoot)) ?? [])
            .compactMap { v in Double(v).map { (v, $0) } }.sorted { $0.1 > $1.1 }
        for (v, _) in versions where runnable("\(debianRoot)/\(v)/bin/\(name)") { return PostgresProgram(path: "\(debianRoot)/\(v)/bin/\(name)") }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") where dir.hasPrefix("/") && runnable("\(dir)/\(name)") {
            return PostgresProgram(path: "\(dir)/\(name)")
        }
        throw TrackingError(.invalidParameterValue,
                            "\(name) was not found (in \(debianRoot)/*/bin or on PATH): install PostgreSQL's client programs "
                            + "(Debian: postgresql-client) or name pg_dump's path (tally backup --pg-dump PATH)")
    }

    /// The program's major version, from `--version` (`pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)`: 15).
    func majorVersion() throws -> Int {
        let out = NSTemporaryDirectory() + "/tally-version-\(UInt64.random(in: 0...UInt64.max))"
        defer { unlink(out) }
        try start(["--version"], environment: Self.minimalEnvironment(), errors: out + ".errors", output: out).wait()
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard let word = text.split(separator: " ").first(where: { $0.first?.isNumber == true }),
              let major = Int(word.prefix(while: \.isNumber)) else {
            throw TrackingError(.internalError, "\(path) --version printed no version: \(text.prefix(200))")
        }
        return major
    }

    /// What of this process's environment a program gets: where programs and the home directory are, the locale and
    /// the time zone, the temporary directory; no `PG…` variable, and none of the server's secrets.
    static func minimalEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { k, _ in
            ["PATH", "HOME", "LANG", "TZ", "TMPDIR"].contains(k) || k.hasPrefix("LC_")
        }
    }

    /// libpq's environment for `uri` (host, port, user, password, database, TLS settings, connect timeout, server
    /// options) added to ``minimalEnvironment()``: the program connects where and as the store does (libpq may also read
    /// its own files in `~/.postgresql`), to `endpoint` (default: the URI's first host) — the server a snapshot the
    /// program imports was exported on. The password goes in the environment, never on a command line others can read.
    static func environment(for uri: PostgresURI, at endpoint: PostgresURI.Endpoint? = nil) -> [String: String] {
        let endpoint = endpoint ?? uri.endpoints[0]
        var env = minimalEnvironment()
        env["PGHOST"] = endpoint.host
        env["PGPORT"] = String(endpoint.port)
        env["PGUSER"] = uri.user
        env["PGDATABASE"] = uri.database
        env["PGPASSWORD"] = endpoint.password
        env["PGAPPNAME"] = applicationName
        env["PGSSLMODE"] = uri.tls.rawValue
        // No CA file named means the system's roots to the store (libpq 15 would look in ~/.postgresql instead).
        let systemRoots = "/etc/ssl/certs/ca-certificates.crt"
        if let root = uri.rootCertificate {
            env["PGSSLROOTCERT"] = root
        } else if uri.tls == .verifyCA || uri.tls == .verifyFull, FileManager.default.fileExists(atPath: systemRoots) {
            env["PGSSLROOTCERT"] = systemRoots
        }
        env["PGSSLCERT"] = uri.clientCertificate
        env["PGSSLKEY"] = uri.clientKey
        env["PGSSLMINPROTOCOLVERSION"] = uri.minimumTLSVersion.rawValue
        env["PGSSLMAXPROTOCOLVERSION"] = uri.maximumTLSVersion?.rawValue
        env["PGCONNECT_TIMEOUT"] = String(uri.connectTimeout ?? PostgresURI.defaultConnectTimeout)  // libpq's default is no limit
        env["PGOPTIONS"] = uri.serverOptions
        return env
    }

    /// The program started with `arguments` and `environment`, reading nothing, its output discarded (or written to
    /// a file at `output`) and its errors kept in a file at `errors` (read by ``Running/wait()``, then removed); no
    /// other descriptor is passed on, and it starts with no signal blocked or ignored (the thread starting it may block
    /// them all), so ``Running/stop()`` stops it.
    /// - Parameter onExit: run (on the thread waiting for the program) as soon as it ends.
    func start(_ arguments: [String], environment: [String: String], errors: String, output: String? = nil,
               onExit: (@Sendable () -> Void)? = nil) throws -> Running {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else of the server's: no socket, store file or lock lives on in the program.
        if let closeFrom = Self.closeFrom { _ = closeFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv = ([path] + arguments).map { strdup($0) } + [nil]
        var envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        var rc = posix_spawn(&pid, path, &actions, &attributes, &argv, &envp)
        // ETXTBSY: some process still holds the program open for writing. A child another thread of ours forked in
        // the instant the file was written inherits the writer's descriptor until its exec closes it, so the moment
        // passes; a program being written for good is still refused, after ~1 s.
        var busy = 0
        while rc == ETXTBSY && busy < 20 {
            busy += 1
            usleep(UInt32(busy) * 5_000)
            rc = posix_spawn(&pid, path, &actions, &attributes, &argv, &envp)
        }
        guard rc == 0 else {
            unlink(errors)
            throw TrackingError(.internalError, "Cannot run \(path): \(String(cString: strerror(rc)))")
        }
        return Running(program: self, pid: pid, errors: errors, onExit: onExit)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; not in the C headers Swift imports).
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// A started program, waited for by a thread of its own from the start (so that its end is seen at once, and
    /// `onExit` runs then).
    final class Running: @unchecked Sendable {
        let program: PostgresProgram
        let pid: pid_t
        /// The file its standard error goes to.
        let errors: String
        /// Signalled once the program ended (and signalled again by each waiter: a latch).
        private let ended = DispatchSemaphore(value: 0)
        /// Its wait status, or `nil` when it could not be waited for (with the errno).
        private let outcome = Mutex<(status: Int32?, errno: Int32)>((nil, 0))
        /// How long ``stop()`` waits after SIGTERM before SIGKILL.
        static let stopGrace = DispatchTimeInterval.seconds(5)

        init(program: PostgresProgram, pid: pid_t, errors: String, onExit: (@Sendable () -> Void)? = nil) {
            self.program = program
            self.pid = pid
            self.errors = errors
            Thread { [self] in  // kept until the program ends
                var s: Int32 = 0, r: pid_t
                repeat { r = waitpid(pid, &s, 0) } while r == -1 && errno == EINTR
                let e = errno
                outcome.withLock { $0 = (r == pid ? s : nil, e) }
                onExit?()
                ended.signal()
            }.start()
        }

        /// Waits for the program to end: nothing when it exited with 0, else an error with what it printed.
        func wait() throws {
            awaitEnd(.distantFuture)
            let printed = (try? String(contentsOfFile: errors, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            unlink(errors)
            let name = (program.path as NSString).lastPathComponent
            let (status, e) = outcome.withLock { $0 }
            guard let s = status else {
                throw TrackingError(.internalError, "\(name) could not be waited for: \(String(cString: strerror(e)))")
            }
            if s & 0x7f != 0 {
                throw TrackingError(.internalError, "\(name) was killed by signal \(s & 0x7f)" + (printed.isEmpty ? "" : ": \(printed)"))
            }
            let code = (s >> 8) & 0xff
            guard code == 0 else {
                throw TrackingError(.internalError, "\(name) failed (exit status \(code)): " + (printed.isEmpty ? "no message" : printed))
            }
        }

        /// Stops the program: SIGTERM, then SIGKILL after ``stopGrace``; returns once it ended.
        func stop() {
            if !awaitEnd(.now()) {
                kill(pid, SIGTERM)
                if !awaitEnd(.now() + Self.stopGrace) {
                    kill(pid, SIGKILL)
                    awaitEnd(.distantFuture)
                }
            }
            unlink(errors)
        }

        /// Whether the program ended by `deadline`.
        @discardableResult
        private func awaitEnd(_ deadline: DispatchTime) -> Bool {
            guard ended.wait(timeout: deadline) == .success else { return false }
            ended.signal()
            return true
        }
    }
}
