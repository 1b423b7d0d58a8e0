import Crypto
import Foundation
import NIOHTTP1
import TallyStore

/// Requests signed for someone else to send: presigned URLs, and the multipart uploads whose parts a client sends
/// through them (its own completion and abort, with S3's refusals answered as the client's mistakes).
extension S3Client {
    /// A URL that lets whoever holds it send `method` to `bucket`/`key` (with `query`) for `expires` seconds from
    /// `date`, without credentials: signed with this client's, for the endpoint's host.
    /// `headers` are signed too: the URL's user must send them as given.
    public func presignedURL(_ method: HTTPMethod, bucket: String, key: String, query: [(String, String)] = [], headers: [(String, String)] = [],
                             expires: Int, date: Date = Date()) -> String {
        let p = path(bucket, key)
        return url(p, endpoint.signer.presign(method: method.rawValue, path: p, query: query, host: presignedHost, headers: headers, expires: expires,
                                              date: date))
    }

    /// The `Host` a client of a presigned URL sends: the endpoint's host, and its port unless it is the scheme's own
    /// (HTTP clients leave `:443` and `:80` out, as botocore leaves them out of what it signs).
    var presignedHost: String {
        let parts = URLComponents(string: endpoint.url)
        let defaultPort = parts?.scheme?.lowercased() == "https" ? 443 : 80
        return (parts?.host ?? "") + (parts?.port.flatMap { $0 == defaultPort ? nil : ":\($0)" } ?? "")
    }

    /// Completes a multipart upload whose parts a client sent, from the parts it reports. S3's refusal of them
    /// (a part missing, out of order or too small; the upload unknown) is the client's mistake: 400 or 404, with
    /// S3's message.
    ///
    /// A completion whose answer was lost and whose retry finds the upload gone (`NoSuchUpload`) succeeded when the
    /// object now at the key carries the ETag these parts make (``multipartETag(_:)``).
    func completeClientMultipart(bucket: String, key: String, uploadID: String, parts: [(number: Int, etag: String)]) throws {
        let done = try sendCompletion(bucket: bucket, key: key, uploadID: uploadID, parts: parts)
        let text = Substring(decoding: done.body.prefix(4096), as: UTF8.self)
        if (200..<300).contains(done.status), !text.contains("<Error>") { return }
        if done.status == 404, text.contains("NoSuchUpload"), let expected = Self.multipartETag(parts.map(\.etag)),
           let a = try? request(.HEAD, bucket: bucket, key: key), (200..<300).contains(a.status),
           a.headers.first(name: "ETag").map({ $0.trimmingCharacters(in: ["\""]) }) == expected { return }
        throw clientFailure(.POST, bucket, key, BlockingHTTPClient.Answer(status: done.status == 200 ? 500 : done.status, headers: done.headers,
                                                                         body: done.body))
    }

    /// The ETag S3 gives the object a multipart upload of these parts makes: the MD5 of the parts' MD5s (their
    /// ETags' bytes), `-`, the number of parts; `nil` when an ETag is not an MD5 in hex.
    static func multipartETag(_ etags: [String]) -> String? {
        var digests: [UInt8] = []
        for etag in etags {
            let hex = Array(etag.trimmingCharacters(in: ["\""]).utf8)
            guard hex.count == 32 else { return nil }
            for i in stride(from: 0, to: 32, by: 2) {
                guard let byte = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
                digests.append(byte)
            }
        }
        return Secrets.hex(Insecure.MD5.hash(data: digests)) + "-\(etags.count)"
    }

    /// Abandons a client's multipart upload; an unknown upload is `RESOURCE_DOES_NOT_EXIST`.
    func abortClientMultipart(bucket: String, key: String, uploadID: String) throws {
        let a = try request(.DELETE, bucket: bucket, key: key, query: [("uploadId", uploadID)])
        guard (200..<300).contains(a.status) else { throw clientFailure(.DELETE, bucket, key, a) }
    }

    /// ``failure(_:_:_:_:)``, except that S3's 400 (and any other 4xx it does not name) is the request's fault:
    /// `INVALID_PARAMETER_VALUE`.
    func clientFailure(_ method: HTTPMethod, _ bucket: String, _ key: String, _ a: BlockingHTTPClient.Answer) -> TrackingError {
        var e = failure(method, bucket, key, a)
        if (400..<500).contains(a.status), e.code == .internalError { e.code = .invalidParameterValue }
        return e
    }
}
