import Foundation
import NIOHTTP1
import TallyStore

/// Requests signed for someone else to send: presigned URLs, and the multipart uploads whose parts a client sends
/// through them (its own completion and abort, with S3's refusals answered as the client's mistakes).
extension S3Client {
    /// A URL that lets whoever holds it send `method` to `bucket`/`key` (with `query`) for `expires` seconds from
    /// `date`, without credentials: signed with this client's, for the endpoint's host.
    public func presignedURL(_ method: HTTPMethod, bucket: String, key: String, query: [(String, String)] = [], expires: Int,
                             date: Date = Date()) -> String {
        let p = path(bucket, key)
        return url(p, endpoint.signer.presign(method: method.rawValue, path: p, query: query, host: host, expires: expires, date: date))
    }

    /// Completes a multipart upload whose parts a client sent, from the parts it reports. S3's refusal of them
    /// (a part missing, out of order or too small; the upload unknown) is the client's mistake: 400 or 404, with
    /// S3's message.
    func completeClientMultipart(bucket: String, key: String, uploadID: String, parts: [(number: Int, etag: String)]) throws {
        let done = try sendCompletion(bucket: bucket, key: key, uploadID: uploadID, parts: parts)
        let text = Substring(decoding: done.body.prefix(4096), as: UTF8.self)
        if (200..<300).contains(done.status), !text.contains("<Error>") { return }
        throw clientFailure(.POST, bucket, key, BlockingHTTPClient.Answer(status: done.status == 200 ? 500 : done.status, headers: done.headers,
                                                                         body: done.body))
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
