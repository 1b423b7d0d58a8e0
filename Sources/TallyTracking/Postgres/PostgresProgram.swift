import Foundation

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

    /// The program `name`: at `given` when one is given (`pg_dump`'s path; another program is looked for beside
    /// it first), else the newest version's in ``debianRoot``, else on `PATH`; a clear error naming what to install
    /// when there is none.
    static func locate(_ name: String, given: String?) throws -> PostgresProgram {
        func runnable(_ p: String) -> Bool {
            var st = stat()
            return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(p, X_OK) == 0
        }
        if let given {
            let candidate = (given as NSString).lastPathComponent == name ? given : (given as NSString).deletingLastPathComponent + "/" + name
            if runnable(candidate) { return PostgresProgram(path: candidate) }
            if (given as NSString).lastPathComponent == name {
                throw TrackingError(.invalidParameterValue, "\(name) '\(given)' is not an executable file")
            }
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debianRoot)) ?? [])
            .compactMap { v in Double(v).map { (v, $0) } }.sorted { $0.1 > $1.1 }
        for (v, _) in versions where runnable("\(debianRoot)/\(v)/bin/\(name)") { return PostgresProgram(path: "\(debianRoot)/\(v)/bin/\(name)") }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") where runnable("\(dir)/\(name)") {
            return PostgresProgram(path: "\(dir)/\(name)")
        }
        throw TrackingError(.invalidParameterValue,
                            "\(name) was not found (in \(debianRoot)/*/bin or on PATH): install PostgreSQL's client programs "
                            + "(Debian: postgresql-client) or name pg_dump's path (tally backup --pg-dump PATH)")
    }

    /// libpq's environment for `uri` (host, port, user, password, database, TLS settings, server options), with every
    /// `PG…` variable of this process's environment left out: the program connects exactly as the store does. The
    /// password goes in the environment, never on a command line others can read.
    static func environment(for uri: PostgresURI) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        env["PGHOST"] = uri.host
        env["PGPORT"] = String(uri.port)
        env["PGUSER"] = uri.user
        env["PGDATABASE"] = uri.database
        env["PGPASSWORD"] = uri.password
        env["PGAPPNAME"] = "tally backup"
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
        env["PGCONNECT_TIMEOUT"] = uri.connectTimeout.map(String.init)
        env["PGOPTIONS"] = uri.serverOptions
        return env
    }

    /// The program started with `arguments` and `environment`, reading nothing, its output discarded and its errors
    /// kept in a file at `errors` (read by ``Running/wait()``, then removed); no other descriptor is passed on.
    func start(_ arguments: [String], environment: [String: String], errors: String) throws -> Running {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else of the server's: no socket, store file or lock lives on in the program.
        if let closeFrom = Self.closeFrom { _ = closeFrom(&actions, 3) }
        var argv = ([path] + arguments).map { strdup($0) } + [nil]
        var envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, &argv, &envp)
        guard rc == 0 else {
            throw TrackingError(.internalError, "Cannot run \(path): \(String(cString: strerror(rc)))")
        }
        return Running(program: self, pid: pid, errors: errors)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; not in the C headers Swift imports).
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// A started program.
    final class Running: @unchecked Sendable {
        let program: PostgresProgram
        let pid: pid_t
        /// The file its standard error goes to.
        let errors: String
        /// Its wait status, once waited for.
        private var status: Int32?

        init(program: PostgresProgram, pid: pid_t, errors: String) {
            self.program = program
            self.pid = pid
            self.errors = errors
        }

        /// Waits for the program to end: nothing when it exited with 0, else an error with what it printed.
        func wait() throws {
            let s = reap()
            let printed = (try? String(contentsOfFile: errors, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            unlink(errors)
            let name = (program.path as NSString).lastPathComponent
            if s & 0x7f != 0 {
                throw TrackingError(.internalError, "\(name) was killed by signal \(s & 0x7f)" + (printed.isEmpty ? "" : ": \(printed)"))
            }
            let code = (s >> 8) & 0xff
            guard code == 0 else {
                throw TrackingError(.internalError, "\(name) failed (exit status \(code)): " + (printed.isEmpty ? "no message" : printed))
            }
        }

        /// Stops the program (SIGTERM) and waits for it.
        func stop() {
            guard status == nil else { return }
            kill(pid, SIGTERM)
            _ = reap()
            unlink(errors)
        }

        private func reap() -> Int32 {
            if let status { return status }
            var s: Int32 = 0
            while waitpid(pid, &s, 0) == -1 && errno == EINTR {}
            status = s
            return s
        }
    }
}
