import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TallyTracking

#if canImport(Glibc)
import Glibc
#endif

/// The server's admin socket, `<data directory>/admin/tally.sock`: a Unix domain socket in a directory of mode 0700,
/// so only the user the server runs as (and root) can connect, serving the commands that act for any user without a
/// password — `tally token create|list|revoke` — and `tally backup`. The embedded metadata file and the metric store
/// are held exclusively by the running server, so these commands cannot open them beside it; they ask the server
/// instead. Whoever may connect may write the data directory's files: the authority the commands had when they opened
/// the files themselves.
public enum AdminSocket {
    /// The directory holding the socket, in the data directory.
    public static let directoryName = "admin"
    /// The longest socket path: `sun_path` less its terminating zero, and at most what NIO binds (103 bytes).
    static let maxPathBytes = min(MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1, 103)

    /// The socket's directory in `dataDirectory`.
    static func directory(dataDirectory: String) -> String { dataDirectory + "/" + directoryName }

    /// Where the server on `dataDirectory` listens.
    public static func path(dataDirectory: String) -> String { directory(dataDirectory: dataDirectory) + "/tally.sock" }

    /// Whether a server answers on the socket at `path`: `false` without the file, for a stale one a killed server
    /// left, and for a path too long to be a socket address. A socket this user may not connect to is an error that
    /// says so (the server runs as another user).
    public static func isListening(_ path: String) throws -> Bool {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathBytes else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }  // zero-filled past the path
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 && (errno == EACCES || errno == EPERM) {
            throw TrackingError(.permissionDenied, "The server's admin socket \(path) is not open to this user: run the command as the "
                + "user the server runs as")
        }
        return rc == 0
    }

    /// A client of the server running on `dataDirectory`, when one answers there and the metadata store is the
    /// embedded one the server holds (`backendStoreURI` `nil` or `sqlite://…`); `nil`: open the store itself.
    public static func client(dataDirectory: String, backendStoreURI: String?) throws -> Client? {
        let path = path(dataDirectory: dataDirectory)
        guard BackendStore.isSQLite(backendStoreURI), try isListening(path) else { return nil }
        return try Client(path: path)
    }

    /// The socket's routes, open to every connection (its directory's mode is the check): `tokens` (POST `{"user",
    /// "name", "expires_in_days"}` creates one, GET `?user=` lists them) and `tokens/{id}` (DELETE `?user=`),
    /// answered as `/api/tally/v1/tokens` answers the user itself; `backup` (POST `{"directory", "artifacts", "reuse", "metadata",
    /// "pg_dump"}`, `tally backup`: ``TrackingService/backup(into:dataDirectory:artifacts:reusing:metadata:)``, answered with its
    /// summary); `gc` (POST `{"older_than", "run_ids", "experiment_ids", "logged_model_ids"}`, `tally gc`:
    /// ``TrackingService/collectGarbage(_:dataDirectory:say:)``, answered with its lines, counts and error).
    static func router(_ e: Endpoints, control: AccessControl, dataDirectory: String) -> Router<TallyRequestContext> {
        let router = Router(context: TallyRequestContext.self)
        router.add(middleware: MLflowErrorMiddleware())
        let open = Endpoints(service: e.service, pool: e.pool, largeBody: e.smallBody, smallBody: e.smallBody, nativeBody: e.smallBody,
                             gate: AccessGate(control: nil, service: e.service, pool: e.pool))
        let table = RouteTable(gate: open.gate)
        UserRoutes(endpoints: open).addTokenRoutes(to: table, access: .open, control: { control }) { r, c in
            try c.localCaller(try r.string("user", required: true)!)
        }
        // A backup of the running server's data (`tally backup`): its summary, or the error that stopped it.
        table.on("backup", .post, access: .open, use: open.json { r in
            let copying = try r.bool("metadata") ?? true ? MetadataCopyOptions(pgDump: try r.string("pg_dump")) : nil
            let summary = try e.service.backup(into: try r.string("directory", required: true)!, dataDirectory: DataDirectory(dataDirectory),
                                               artifacts: try r.bool("artifacts") ?? true, reusing: try r.string("reuse"), metadata: copying)
            return AdminSocket.json(summary)
        })
        // A garbage collection (`tally gc`): the lines it said, its counts, and the error that stopped it, if one did
        // (the lines said before it are answered with it, never lost).
        table.on("gc", .post, access: .open, use: open.json { r in
            let gc = try GarbageCollection(olderThan: try r.string("older_than"), runIDs: try r.string("run_ids"),
                                           experimentIDs: try r.string("experiment_ids"), loggedModelIDs: try r.string("logged_model_ids"))
            var lines: [String] = []
            var o = Obj()
            var summary: GarbageCollectionSummary?
            do {
                summary = try e.service.collectGarbage(gc, dataDirectory: DataDirectory(dataDirectory)) { lines.append($0) }
            } catch {
                // Any error, so that the lines said before it are answered with it.
                let e = error as? TrackingError ?? TrackingError(.internalError, "\(error)")
                o.add("error_code", e.code.rawValue)
                o.add("message", e.message)
            }
            o.add("lines", raw: "[" + lines.map(JSONWriter.quote).joined(separator: ", ") + "]")
            if let summary { AdminSocket.add(summary, to: &o) }
            return o.json
        })
        router.addRoutes(table.build())
        return router
    }

    /// A gc's counts as the socket answers them (and ``Client/collectGarbage(_:)`` reads them).
    static func add(_ s: GarbageCollectionSummary, to o: inout Obj) {
        o.add("runs", Int64(s.runs))
        o.add("logged_models", Int64(s.loggedModels))
        o.add("experiments", Int64(s.experiments))
        o.add("artifacts_left", Int64(s.artifactsLeft))
        o.add("runs_purged_elsewhere", Int64(s.runsPurgedElsewhere))
    }

    /// A backup's summary as the socket answers it (and ``Client/backup(into:artifacts:)`` reads it).
    static func json(_ b: BackupSummary) -> String {
        var o = Obj()
        o.add("directory", b.directory)
        o.add("metadata_bytes", b.metadataBytes)
        o.add("metadata_file", b.metadataFile)
        o.add("metadata_note", b.metadataNote)
        o.add("runs", Int64(b.runs))
        o.add("segments", Int64(b.segments))
        o.add("log_segments", Int64(b.logSegments))
        o.add("metric_bytes", b.metricBytes)
        if let a = b.artifacts {
            o.add("artifact_files", Int64(a.copied))
            o.add("artifact_bytes", a.bytes)
            o.add("artifact_vanished", Int64(a.vanished))
        }
        o.add("artifacts_note", b.artifactsNote)
        o.add("reused_files", Int64(b.reusedFiles))
        o.add("reused_bytes", b.reusedBytes)
        o.add("pause_ms", double: b.pauseMillis)
        o.add("seconds", double: b.seconds)
        return o.json
    }

    /// The service serving the socket in `dataDirectory` beside the server (shut down before the stores), and what
    /// the server awaits before it starts listening (the socket listening, or its failure logged: a client that
    /// found the server up finds the socket up); `nil`, logged, when the socket cannot be made safely (its path too
    /// long for a socket address, or its directory not this user's alone). `control` is the server's access
    /// control, or one over its metadata store when access control is off (tokens made then work once it is on).
    static func service(_ e: Endpoints, control: AccessControl, dataDirectory: String,
                        logger: Logger) -> (service: any Service, ready: @Sendable () async -> Void)? {
        let path = path(dataDirectory: dataDirectory)
        guard path.utf8.count <= maxPathBytes else {
            logger.warning("No admin socket: \(path) is longer than a socket address (\(maxPathBytes) bytes); tally token needs the server stopped")
            return nil
        }
        let directory = directory(dataDirectory: dataDirectory)
        // Made (or taken back) with mode 0700 before the socket exists in it: nobody else can reach the socket, from
        // the moment it is bound.
        _ = mkdir(directory, 0o700)
        var info = stat()
        // Looked at before it is changed (a symbolic link or another user's directory is left alone), then checked.
        guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid(), chmod(directory, 0o700) == 0,
              lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_mode & 0o777 == 0o700 else {
            logger.warning("No admin socket: \(directory) is not a directory of this user's alone (mode 0700); tally token needs the server stopped")
            return nil
        }
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        let (started, signal) = AsyncStream.makeStream(of: Never.self)
        let app = Application(router: router(e, control: control, dataDirectory: dataDirectory),
                              configuration: .init(address: .unixDomainSocket(path: path), serverName: "tally"),
                              onServerRunning: { _ in signal.finish() },
                              logger: quiet)
        return (Listener(app: app, path: path, logger: logger, started: signal), { for await _ in started {} })
    }

    /// Runs the socket's application and removes the socket file once it stopped. A socket that cannot be served is
    /// logged and the server goes on without it (ending this service would end the server).
    struct Listener<App: ApplicationProtocol>: Service {
        let app: App
        let path: String
        let logger: Logger
        let started: AsyncStream<Never>.Continuation

        func run() async throws {
            defer {
                started.finish()  // however the application ended, the server's start waits no more
                // Only a socket: a bind refused because of another kind of file there leaves that file alone.
                var info = stat()
                if lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
            }
            do {
                try await app.run()
            } catch {
                started.finish()
                guard !Task.isCancelled, !Task.isShuttingDownGracefully else { throw error }
                logger.warning("No admin socket at \(path) (\(error)); tally token needs the server stopped")
                try await gracefulShutdown()
            }
        }
    }
}
