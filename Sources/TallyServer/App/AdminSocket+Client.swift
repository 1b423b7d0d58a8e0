import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TallyStore
import TallyTracking

extension AdminSocket {
    /// A blocking client of a running server's admin socket, for `tally token`. Only a 429 (the request was not
    /// taken) is retried: a token request sent twice would make two.
    public final class Client: Sendable {
        private let http: BlockingHTTPClient
        private let base: String

        /// A client of the socket at `path` (see ``AdminSocket/client(dataDirectory:backendStoreURI:)``); an answer
        /// is waited for `readSeconds` at most.
        public init(path: String, readSeconds: Int64 = 60) throws {
            guard let url = URL(httpURLWithSocketPath: path) else {
                throw TrackingError(.invalidParameterValue, "\(path) cannot be a socket address")
            }
            base = url.absoluteString.trimmingTrailing("/")
            http = BlockingHTTPClient(service: "the server's admin socket \(path)", connectTimeout: .seconds(5), readTimeout: .seconds(readSeconds))
        }

        /// Has the server back its data up into `directory` (``TrackingService/backup(into:dataDirectory:artifacts:reusing:metadata:)``),
        /// hard-linking what `previous` (an earlier backup) holds unchanged, copying the metadata as `metadata` says
        /// (`nil`: left out, PostgreSQL only): its summary.
        public func backup(into directory: String, artifacts: Bool, reusing previous: String? = nil,
                           metadata: MetadataCopyOptions? = MetadataCopyOptions()) throws -> BackupSummary {
            var o = Obj()
            o.add("directory", directory)
            o.add("artifacts", bool: artifacts)
            o.add("reuse", previous)
            o.add("metadata", bool: metadata != nil)
            o.add("pg_dump", metadata?.pgDump)
            let a = try send(.POST, "/backup", body: o.json)
            guard let dir = a["directory"]?.text, let metricBytes = a["metric_bytes"]?.int64 else { throw malformed("/backup") }
            var s = BackupSummary(directory: dir)
            s.metadataBytes = a["metadata_bytes"]?.int64
            s.metadataFile = a["metadata_file"]?.text
            s.metadataNote = a["metadata_note"]?.text
            (s.runs, s.segments, s.logSegments) = (Int(a["runs"]?.int64 ?? 0), Int(a["segments"]?.int64 ?? 0), Int(a["log_segments"]?.int64 ?? 0))
            s.metricBytes = metricBytes
            if let files = a["artifact_files"]?.int64 {
                var c = ArtifactStore.CopySummary()
                c.copied = Int(files)
                c.bytes = a["artifact_bytes"]?.int64 ?? 0
                c.vanished = Int(a["artifact_vanished"]?.int64 ?? 0)
                s.artifacts = c
            }
            s.artifactsNote = a["artifacts_note"]?.text
            s.reusedFiles = Int(a["reused_files"]?.int64 ?? 0)
            s.reusedBytes = a["reused_bytes"]?.int64 ?? 0
            s.pauseMillis = a["pause_ms"]?.double ?? 0
            s.seconds = a["seconds"]?.double ?? 0
            return s
        }

        /// Has the server collect its garbage (``TrackingService/collectGarbage(_:dataDirectory:say:)``), with the
        /// options as given on the command line: the lines it said, its counts, and the error that stopped it (`nil`
        /// when none did).
        public func collectGarbage(olderThan: String?, runIDs: String?, experimentIDs: String?,
                                   loggedModelIDs: String?) throws -> (lines: [String], summary: GarbageCollectionSummary?, error: TrackingError?) {
            var o = Obj()
            o.add("older_than", olderThan)
            o.add("run_ids", runIDs)
            o.add("experiment_ids", experimentIDs)
            o.add("logged_model_ids", loggedModelIDs)
            let a = try send(.POST, "/gc", body: o.json)
            let lines = a["lines"].items.compactMap(\.text)
            if let message = a["message"]?.text {
                let code = a["error_code"]?.text.flatMap(TrackingError.Code.init(rawValue:)) ?? .internalError
                return (lines, nil, TrackingError(code, message))
            }
            var s = GarbageCollectionSummary()
            (s.runs, s.loggedModels) = (Int(a["runs"]?.int64 ?? 0), Int(a["logged_models"]?.int64 ?? 0))
            (s.experiments, s.artifactsLeft) = (Int(a["experiments"]?.int64 ?? 0), Int(a["artifacts_left"]?.int64 ?? 0))
            s.runsPurgedElsewhere = Int(a["runs_purged_elsewhere"]?.int64 ?? 0)
            return (lines, s, nil)
        }

        deinit { http.close() }

        /// Creates a token for `user`: its id and the secret (shown once).
        public func createToken(user: String, name: String, expiresInDays: Int64?) throws -> (id: String, token: String) {
            var o = Obj()
            o.add("user", user)
            o.add("name", name)
            if let expiresInDays { o.add("expires_in_days", expiresInDays) }
            let answer = try send(.POST, "/tokens", body: o.json)
            guard let id = answer["id"]?.text, let token = answer["token"]?.text else { throw malformed("/tokens") }
            return (id, token)
        }

        /// `user`'s tokens.
        public func tokens(of user: String) throws -> [TokenInfo] {
            try send(.GET, "/tokens?user=" + user.uriEncoded())["tokens"].items.map { t in
                guard let id = t["id"]?.text, let name = t["name"]?.text, let created = t["creation_time"]?.int64 else {
                    throw malformed("/tokens")
                }
                return TokenInfo(id: id, name: name, creationTime: created, expiryTime: t["expiry_time"]?.int64)
            }
        }

        /// Revokes `user`'s token `id`.
        public func revokeToken(id: String, of user: String) throws {
            _ = try send(.DELETE, "/tokens/" + id.uriEncoded() + "?user=" + user.uriEncoded())
        }

        /// One request; a non-2xx answer is the server's error (its code and message).
        private func send(_ method: HTTPMethod, _ path: String, body: String? = nil) throws -> JSONValue {
            var headers = HTTPHeaders()
            if body != nil { headers.add(name: "Content-Type", value: "application/json") }
            let a = try http.send(method, base + path, headers: headers, body: body.map { Array($0.utf8) }, retry: .once)
            let json = try? JSONParser.parse(a.body)
            guard (200..<300).contains(a.status) else {
                let code = json?["error_code"]?.text.flatMap(TrackingError.Code.init(rawValue:)) ?? .internalError
                throw TrackingError(code, json?["message"]?.text ?? "\(http.service) answered \(a.status)")
            }
            guard let json else { throw malformed(path) }
            return json
        }

        private func malformed(_ path: String) -> TrackingError {
            TrackingError(.internalError, "\(http.service) answered \(path) with what is not its JSON")
        }
    }
}
