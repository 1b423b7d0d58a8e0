import Foundation
import NIOCore
import NIOHTTP1
import TallyStore

/// A blocking client of S3 or an S3-compatible store (SeaweedFS, MinIO, Ceph): path-style requests signed with
/// AWS Signature V4 (``S3Signer``) over ``BlockingHTTPClient``. Objects go up whole or, from a file, streamed and in
/// parts (multipart upload, several parts at once); they come down whole, by byte range, or streamed into a file.
/// Throttling (429, 503 `SlowDown`), 500 and 502–504 answers and dropped connections are retried with backoff.
///
/// Not for an event loop: every call waits for its answer.
public final class S3Client: Sendable {
    /// The endpoint and credentials.
    public let endpoint: S3Endpoint
    let http: BlockingHTTPClient
    /// Files larger than this go up in parts of this size (S3's minimum part is 5 MiB).
    public let partSize: Int
    /// Parts uploaded at once.
    public let partConcurrency: Int

    /// What S3 asks clients to retry.
    static let retry = BlockingHTTPClient.Retry(statuses: [429, 500, 502, 503, 504], dropped: true)

    /// A client of `endpoint`; a store that refuses connections is given up on after `connectTimeout`.
    public init(endpoint: S3Endpoint, partSize: Int = 16 << 20, partConcurrency: Int = 4, connectTimeout: TimeAmount = .seconds(3)) {
        precondition(partSize >= 5 << 20, "S3 parts are at least 5 MiB")
        self.endpoint = endpoint
        self.partSize = partSize
        self.partConcurrency = partConcurrency
        http = BlockingHTTPClient(service: "S3 at \(endpoint.url)", connectTimeout: connectTimeout, readTimeout: .seconds(120))
    }

    /// A client configured from the environment (``S3Endpoint/fromEnvironment(_:)``).
    public convenience init() throws { self.init(endpoint: try S3Endpoint.fromEnvironment()) }

    /// Ends the client's connections.
    public func close() { http.close() }

    /// One entry of a listing.
    public struct Object: Sendable, Equatable {
        /// The whole key.
        public var key: String
        /// Its size in bytes.
        public var size: Int
    }

    /// A listing: the objects, and with a delimiter the common prefixes (each ending with the delimiter).
    public struct Listing: Sendable {
        /// Objects, by key.
        public var objects: [Object] = []
        /// Common prefixes ("directories"), by name.
        public var prefixes: [String] = []
    }

    // MARK: Requests

    /// `/bucket/key`, URI-encoded, under the endpoint's own path when it has one (`http://host/s3` behind a proxy).
    func path(_ bucket: String, _ key: String) -> String {
        basePath + "/" + bucket.uriEncoded() + (key.isEmpty ? "" : "/" + key.uriEncoded(keepingSlashes: true))
    }

    /// The endpoint URL's path, without a trailing `/` (usually empty).
    var basePath: String {
        var p = URLComponents(string: endpoint.url)?.percentEncodedPath ?? ""
        while p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// `scheme://host[:port]` of the endpoint.
    var endpointOrigin: String { String(endpoint.url.dropLast(basePath.count)) }

    /// The `Host` value signed: the URL's host, and its port when one is written.
    var host: String {
        let parts = URLComponents(string: endpoint.url)
        return (parts?.host ?? "") + (parts?.port.map { ":\($0)" } ?? "")
    }

    /// The signed headers of a request.
    func headers(_ method: HTTPMethod, _ path: String, _ query: [(String, String)], payloadHash: String, extra: [(String, String)] = []) -> HTTPHeaders {
        var all = [("host", host)]
        all += extra
        return HTTPHeaders(endpoint.signer.sign(method: method.rawValue, path: path, query: query, headers: all, payloadHash: payloadHash))
    }

    /// The URL of a request path (which holds the endpoint's own path already).
    func url(_ path: String, _ query: [(String, String)]) -> String {
        endpointOrigin + path + (query.isEmpty ? "" : "?" + query.map { $0.0.uriEncoded() + "=" + $0.1.uriEncoded() }.joined(separator: "&"))
    }

    /// A signed request with a body held in memory.
    func request(_ method: HTTPMethod, bucket: String, key: String = "", query: [(String, String)] = [], body: [UInt8]? = nil,
                 extra: [(String, String)] = []) throws -> BlockingHTTPClient.Answer {
        let p = path(bucket, key)
        let h = headers(method, p, query, payloadHash: S3Signer.sha256Hex(body ?? []), extra: extra)
        return try http.send(method, url(p, query), headers: h, body: body, retry: Self.retry)
    }

    /// The error of a non-2xx answer, with S3's `Code` and `Message`.
    func failure(_ method: HTTPMethod, _ bucket: String, _ key: String, _ a: BlockingHTTPClient.Answer) -> TrackingError {
        let xml = Substring(decoding: a.body.prefix(4096), as: UTF8.self)
        let code = S3XML.first("Code", in: xml)
        let message = S3XML.first("Message", in: xml)
        let what = "s3://\(bucket)" + (key.isEmpty ? "" : "/" + key)
        let detail = [code, message].compactMap { $0 }.joined(separator: ": ")
        let kind: TrackingError.Code = switch a.status {
        case 403: .permissionDenied
        case 404: .resourceDoesNotExist
        case 429, 500...: .temporarilyUnavailable  // still failing after the retries: S3 is having a bad moment
        default: .internalError
        }
        return TrackingError(kind, "S3 at \(endpoint.url) answered \(a.status) to \(method.rawValue) \(what)" + (detail.isEmpty ? "" : ": " + detail))
    }

    // MARK: Buckets

    /// Checks that `bucket` exists and can be reached with these credentials; the error names the bucket.
    public func checkBucket(_ bucket: String) throws {
        let a = try request(.HEAD, bucket: bucket)
        switch a.status {
        case 200..<300: return
        case 404: throw TrackingError(.resourceDoesNotExist, "S3 bucket '\(bucket)' does not exist at \(endpoint.url): create it first")
        case 301, 400, 403: throw TrackingError(.permissionDenied, "S3 bucket '\(bucket)' at \(endpoint.url) refused access (HTTP \(a.status)): check the credentials and region")
        default: throw failure(.HEAD, bucket, "", a)
        }
    }

    // MARK: Objects

    /// The size of an object, or `nil` when there is none.
    public func size(bucket: String, key: String) throws -> Int? {
        let a = try request(.HEAD, bucket: bucket, key: key)
        if a.status == 404 { return nil }
        guard (200..<300).contains(a.status) else { throw failure(.HEAD, bucket, key, a) }
        guard let size = a.headers.first(name: "Content-Length").flatMap({ Int($0) }) else {
            throw TrackingError(.internalError, "S3 at \(endpoint.url) answered HEAD s3://\(bucket)/\(key) without a Content-Length")
        }
        return size
    }

    /// An object's bytes (those of `range` only, when given), or `nil` when there is none.
    public func get(bucket: String, key: String, range: Range<Int>? = nil) throws -> [UInt8]? {
        if let range, range.isEmpty { return [] }
        let extra = range.map { [("range", "bytes=\($0.lowerBound)-\($0.upperBound - 1)")] } ?? []
        let a = try request(.GET, bucket: bucket, key: key, extra: extra)
        if a.status == 404 { return nil }
        if a.status == 416 { return [] }
        guard (200..<300).contains(a.status) else { throw failure(.GET, bucket, key, a) }
        if let range, a.status == 200, a.body.count > range.count {
            return Array(a.body[min(range.lowerBound, a.body.count)..<min(range.upperBound, a.body.count)])  // a store that ignores Range
        }
        return a.body
    }

    /// Streams an object into the file at `file` (created or truncated): its size, or `nil` when there is none.
    public func download(bucket: String, key: String, to file: String) throws -> Int? {
        let p = path(bucket, key)
        let (a, size) = try http.download(url(p, []), headers: headers(.GET, p, [], payloadHash: S3Signer.sha256Hex([UInt8]())), to: file, retry: Self.retry)
        if a.status == 404 { return nil }
        guard (200..<300).contains(a.status) else { throw failure(.GET, bucket, key, a) }
        return size
    }

    /// Writes an object from memory.
    public func put(bucket: String, key: String, bytes: [UInt8], contentType: String = "application/octet-stream") throws {
        let a = try request(.PUT, bucket: bucket, key: key, body: bytes, extra: [("content-type", contentType)])
        guard (200..<300).contains(a.status) else { throw failure(.PUT, bucket, key, a) }
    }

    /// Writes an object from the file at `file`, streamed: whole up to ``partSize``, else as a multipart upload of
    /// ``partConcurrency`` parts at a time (aborted on failure, so no parts are left behind).
    public func put(bucket: String, key: String, file: String, contentType: String = "application/octet-stream") throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot read \(file): errno \(errno)") }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TrackingError(.internalError, "Cannot read \(file): errno \(errno)") }
        let size = Int(st.st_size)
        if size <= partSize {
            let p = path(bucket, key)
            let h = headers(.PUT, p, [], payloadHash: S3Signer.unsignedPayload, extra: [("content-type", contentType)])
            let a = try http.upload(.PUT, url(p, []), headers: h, fd: fd, count: size, retry: Self.retry)
            guard (200..<300).contains(a.status) else { throw failure(.PUT, bucket, key, a) }
            return
        }
        try multipartUpload(bucket: bucket, key: key, fd: fd, size: size, contentType: contentType)
    }

    /// Deletes an object (deleting a missing one is not an error, as in S3).
    public func delete(bucket: String, key: String) throws {
        let a = try request(.DELETE, bucket: bucket, key: key)
        guard (200..<300).contains(a.status) || a.status == 404 else { throw failure(.DELETE, bucket, key, a) }
    }

    /// Deletes every object whose key starts with `prefix`; returns how many.
    @discardableResult
    public func deleteAll(bucket: String, prefix: String) throws -> Int {
        var n = 0
        try list(bucket: bucket, prefix: prefix, delimiter: nil) { page in
            let keys = page.objects.map(\.key)
            _ = try BlockingHTTPClient.concurrently(keys, limit: 8) { [self] key in try delete(bucket: bucket, key: key) }
            n += keys.count
        }
        return n
    }

    // MARK: Listing

    /// Lists keys under `prefix` a page (up to 1,000) at a time, in key order. With a `delimiter`, keys holding it
    /// after the prefix are folded into common prefixes.
    public func list(bucket: String, prefix: String, delimiter: String?, maxKeys: Int = 1000, _ page: (Listing) throws -> Void) throws {
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("max-keys", String(maxKeys)), ("prefix", prefix)]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token { query.append(("continuation-token", token)) }
            let a = try request(.GET, bucket: bucket, query: query)
            guard (200..<300).contains(a.status) else { throw failure(.GET, bucket, prefix, a) }
            let xml = Substring(decoding: a.body, as: UTF8.self)
            var listing = Listing()
            for c in S3XML.elements("Contents", in: xml, decode: false) {
                guard let key = S3XML.first("Key", in: c) else { continue }
                listing.objects.append(Object(key: key, size: S3XML.first("Size", in: c).flatMap { Int($0) } ?? 0))
            }
            for c in S3XML.elements("CommonPrefixes", in: xml, decode: false) {
                if let p = S3XML.first("Prefix", in: c) { listing.prefixes.append(p) }
            }
            try page(listing)
            token = S3XML.first("IsTruncated", in: xml) == "true" ? S3XML.first("NextContinuationToken", in: xml) : nil
        } while token != nil
    }

    /// Whether any key starts with `prefix` (one request).
    public func hasKeys(bucket: String, prefix: String) throws -> Bool {
        let a = try request(.GET, bucket: bucket, query: [("list-type", "2"), ("max-keys", "1"), ("prefix", prefix)])
        guard (200..<300).contains(a.status) else { throw failure(.GET, bucket, prefix, a) }
        return !S3XML.elements("Contents", in: Substring(decoding: a.body, as: UTF8.self), decode: false).isEmpty
    }

    /// Every key under `prefix` (see ``list(bucket:prefix:delimiter:maxKeys:_:)``), all pages gathered.
    public func list(bucket: String, prefix: String, delimiter: String?) throws -> Listing {
        var all = Listing()
        try list(bucket: bucket, prefix: prefix, delimiter: delimiter) { page in
            all.objects += page.objects
            all.prefixes += page.prefixes
        }
        return all
    }
}
