import Foundation
import NIOHTTP1
import Testing
@testable import TallyStore
@testable import TallyTracking

/// Uploads in parts and presigned downloads of proxied artifacts: the rules of MLflow's `mpu/…` and `presigned/…`
/// requests (where the file goes, what a request may ask, MLflow's `NOT_IMPLEMENTED` without object storage) and,
/// against the SeaweedFS of `scripts/s3-test run`, URLs that S3 honours only as signed: parts sent by a client
/// without credentials, completed into one object; a download by URL; tampered and expired URLs refused.
@Suite struct PresignedArtifactTests {
    @Test func partsGoUnderTheDirectoryByTheFilesBaseName() throws {
        #expect(try TrackingService.partsTarget(path: "1/r/artifacts/m", file: "/tmp/x/model.bin") == "1/r/artifacts/m/model.bin")
        #expect(try TrackingService.partsTarget(path: "1/r/artifacts/m/", file: "model.bin") == "1/r/artifacts/m/model.bin")
        #expect(try TrackingService.partsTarget(path: "1/r/artifacts", file: "C:\\Users\\me\\w.safetensors") == "1/r/artifacts/w.safetensors")
        for file in ["/tmp/dir/", "", "..", "/x/..", ".", "C:\\x\\"] {
            expectError(.invalidParameterValue, "filename") { _ = try TrackingService.partsTarget(path: "1/r/artifacts", file: file) }
        }
        for path in ["../x", "1/../../x", "/etc", "%2e%2e/x", ""] {  // "": a file at the root, outside every experiment
            expectError(.invalidParameterValue, "Invalid path") { _ = try TrackingService.partsTarget(path: path, file: "/tmp/a.bin") }
        }
    }

    /// A store on disk cannot hand out URLs: every request gets MLflow's `NOT_IMPLEMENTED` and its message, which
    /// MLflow's client matches to fall back to the proxied API; `server-info` does not offer them.
    @Test func aStoreOnDiskAnswersNotImplemented() throws {
        let f = try Fixture("parts-local")
        let s = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: try Fixture.metricStore(f.dir + "/m"),
                                artifacts: try ArtifactStore(root: f.dir + "/artifacts"), clock: f.clock)
        #expect(!s.serverInfo.multipartUploadsEnabled && !s.serverInfo.multipartDownloadsEnabled)
        expectError(.notImplemented, "Multipart upload is not supported for the current artifact repository") {
            _ = try s.startProxiedMultipartUpload(path: "1/r/artifacts", file: "/tmp/a.bin", parts: 2)
        }
        expectError(.notImplemented, "Multipart upload is not supported") {
            try s.completeProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", uploadID: "u", parts: [(1, "e")])
        }
        expectError(.notImplemented, "Multipart upload is not supported") { try s.abortProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", uploadID: "u") }
        expectError(.notImplemented, "Multipart download is not supported for the current artifact repository") {
            _ = try s.presignedProxiedDownload(path: "1/r/artifacts/a.bin")
        }
    }

    @Test(.enabled(if: S3LiveTests.endpoint != nil)) func partsGoStraightToTheBucket() throws {
        let f = try Fixture("parts-s3")
        let client = try S3LiveTests.client()
        let location = S3Location(bucket: "tally", prefix: S3LiveTests.prefix() + "/artifacts")
        let store = try ArtifactStore(s3: client, location: location, spool: f.dir + "/spool")
        let s = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: try Fixture.metricStore(f.dir + "/m"),
                                artifacts: store, clock: f.clock)
        #expect(s.serverInfo.multipartUploadsEnabled && s.serverInfo.multipartDownloadsEnabled)
        let anonymous = BlockingHTTPClient(service: "test")
        defer { anonymous.close() }
        let retry = BlockingHTTPClient.Retry(statuses: [], dropped: false)

        // 12 MiB + 5 bytes in three parts (S3's 5 MiB minimum for all but the last), sent by a client with no
        // credentials, out of order.
        let bytes = (0..<(12 << 20) + 5).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        let start = try s.startProxiedMultipartUpload(path: "1/r/artifacts/model", file: "/home/me/weights.bin", parts: 3)
        #expect(start.credentials.map(\.partNumber) == [1, 2, 3])
        var etags: [Int: String] = [:]
        for c in start.credentials.reversed() {
            let range = (c.partNumber - 1) * (5 << 20)..<min(bytes.count, c.partNumber * (5 << 20))
            let a = try anonymous.send(.PUT, c.url, headers: [:], body: Array(bytes[range]), retry: retry)
            #expect(a.status == 200, "\(String(decoding: a.body, as: UTF8.self))")
            etags[c.partNumber] = a.headers.first(name: "ETag")
        }
        // A part number out of order, and an ETag S3 did not give, are refused before and by S3.
        expectError(.invalidParameterValue, "ascending") {
            try s.completeProxiedMultipartUpload(path: "1/r/artifacts/model", file: "weights.bin", uploadID: start.uploadID,
                                                 parts: [(2, etags[2]!), (1, etags[1]!)])
        }
        expectError(.invalidParameterValue, "S3 at") {
            try s.completeProxiedMultipartUpload(path: "1/r/artifacts/model", file: "weights.bin", uploadID: start.uploadID,
                                                 parts: [(1, etags[1]!), (2, "\"0123\""), (3, etags[3]!)])
        }
        try s.completeProxiedMultipartUpload(path: "1/r/artifacts/model", file: "weights.bin", uploadID: start.uploadID,
                                             parts: (1...3).map { (Int64($0), etags[$0]!) })
        // A completion sent again (its answer lost): the upload is gone, the object made of these parts is there.
        try s.completeProxiedMultipartUpload(path: "1/r/artifacts/model", file: "weights.bin", uploadID: start.uploadID,
                                             parts: (1...3).map { (Int64($0), etags[$0]!) })
        let r = try store.open("1/r/artifacts/model/weights.bin")
        #expect(r.size == bytes.count)
        #expect(try r.read(at: (5 << 20) - 2, count: 4) == Array(bytes[(5 << 20) - 2..<(5 << 20) + 2]))
        #expect(try store.list("1/r/artifacts/model").map(\.name) == ["weights.bin"])

        // The download URL serves the file as an attachment, to anyone holding it, and only the file it names.
        let (url, size) = try s.presignedProxiedDownload(path: "1/r/artifacts/model/weights.bin")
        #expect(size == bytes.count && url.contains("X-Amz-Expires=300&"), "MLflow's 5 minutes by default")
        let got = try anonymous.send(.GET, url, headers: ["Range": "bytes=100-199"], retry: retry)
        #expect(got.status == 206 && got.body == Array(bytes[100..<200]))
        #expect(got.headers.first(name: "Content-Disposition") == "attachment; filename=weights.bin")
        let tampered = url.replacingOccurrences(of: "weights.bin?", with: "other.bin?")
        #expect(try anonymous.send(.GET, tampered, headers: [:], retry: retry).status == 403)
        let key = location.key("1/r/artifacts/model/weights.bin")
        let expired = client.presignedURL(.GET, bucket: "tally", key: key, expires: 60, date: Date().addingTimeInterval(-3600))
        #expect(try anonymous.send(.GET, expired, headers: [:], retry: retry).status == 403)
        expectError(.invalidParameterValue, "directory") { _ = try s.presignedProxiedDownload(path: "1/r/artifacts/model") }
        expectError(.resourceDoesNotExist, "No such artifact") { _ = try s.presignedProxiedDownload(path: "1/r/artifacts/none.bin") }

        // An aborted upload is gone: its parts are dropped, and it cannot be completed. An upload S3 never started
        // cannot be aborted (SeaweedFS, unlike S3, takes a second abort of the same upload).
        let dropped = try s.startProxiedMultipartUpload(path: "1/r/artifacts", file: "x.bin", parts: 1)
        let part = try anonymous.send(.PUT, dropped.credentials[0].url, headers: [:], body: [1, 2, 3], retry: retry)
        #expect(part.status == 200)
        try s.abortProxiedMultipartUpload(path: "1/r/artifacts", file: "x.bin", uploadID: dropped.uploadID)
        expectError(.resourceDoesNotExist, "NoSuchUpload") {
            try s.completeProxiedMultipartUpload(path: "1/r/artifacts", file: "x.bin", uploadID: dropped.uploadID,
                                                 parts: [(1, part.headers.first(name: "ETag")!)])
        }
        expectError(.resourceDoesNotExist, "NoSuchUpload") { try s.abortProxiedMultipartUpload(path: "1/r/artifacts", file: "x.bin", uploadID: "made-up") }
        #expect(try store.list("1/r/artifacts").map(\.name) == ["model"])

        // What a request may ask: 1 to 10,000 parts; no file where a directory is; an upload id and parts to complete.
        for n: Int64? in [nil, 0, -1, 10_001] {
            expectError(.invalidParameterValue, "num_parts must be between 1 and 10000") {
                _ = try s.startProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", parts: n)
            }
        }
        expectError(.invalidParameterValue, "Invalid path") { _ = try s.startProxiedMultipartUpload(path: "1/r/artifacts/model/weights.bin", file: "a.bin", parts: 1) }
        expectError(.invalidParameterValue, "upload_id") { try s.completeProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", uploadID: "", parts: [(1, "e")]) }
        expectError(.invalidParameterValue, "'parts'") { try s.completeProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", uploadID: "u", parts: []) }
        expectError(.invalidParameterValue, "parts[0].etag") { try s.completeProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", uploadID: "u", parts: [(1, "")]) }

        // The download URLs' lifetime is the server's (MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS).
        var shortLived = store
        shortLived.downloadURLSeconds = 42
        let short = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: try Fixture.metricStore(f.dir + "/m3"),
                                    artifacts: shortLived, clock: f.clock)
        #expect(try short.presignedProxiedDownload(path: "1/r/artifacts/model/weights.bin").url.contains("X-Amz-Expires=42&"))

        // A server told to keep every byte (`--no-presigned-artifact-urls`) answers as a store on disk does.
        var kept = store
        kept.presignedURLs = false
        let proxied = TrackingService(metadata: try SQLiteMetadataStore(path: ":memory:", now: 0), metrics: try Fixture.metricStore(f.dir + "/m2"),
                                      artifacts: kept, clock: f.clock)
        #expect(!proxied.serverInfo.multipartUploadsEnabled)
        expectError(.notImplemented, "Multipart upload is not supported") { _ = try proxied.startProxiedMultipartUpload(path: "1/r/artifacts", file: "a.bin", parts: 1) }
        expectError(.notImplemented, "Multipart download is not supported") { _ = try proxied.presignedProxiedDownload(path: "1/r/artifacts/model/weights.bin") }
        try client.deleteAll(bucket: "tally", prefix: location.prefix + "/")
    }
}
