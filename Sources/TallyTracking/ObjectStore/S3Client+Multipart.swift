import Foundation
import NIOHTTP1
import TallyStore

extension S3Client {
    /// Uploads `size` bytes of the file `fd` as a multipart upload: initiate, parts of ``partSize`` streamed from
    /// disk (``partConcurrency`` at a time), complete. On any failure the upload is aborted, so S3 keeps no parts.
    func multipartUpload(bucket: String, key: String, fd: Int32, size: Int, contentType: String) throws {
        let initiated = try request(.POST, bucket: bucket, key: key, query: [("uploads", "")], extra: [("content-type", contentType)])
        guard (200..<300).contains(initiated.status),
              let uploadID = S3XML.first("UploadId", in: Substring(decoding: initiated.body, as: UTF8.self)) else {
            throw failure(.POST, bucket, key, initiated)
        }
        do {
            let parts = stride(from: 0, to: size, by: partSize).enumerated().map { (number: $0.offset + 1, offset: $0.element) }
            let etags = try BlockingHTTPClient.concurrently(parts, limit: partConcurrency) { [self] part in
                let query = [("partNumber", String(part.number)), ("uploadId", uploadID)]
                let p = path(bucket, key)
                let h = headers(.PUT, p, query, payloadHash: S3Signer.unsignedPayload)
                let a = try http.upload(.PUT, url(p, query), headers: h, fd: fd, offset: part.offset, count: min(partSize, size - part.offset),
                                        retry: Self.retry)
                guard (200..<300).contains(a.status), let etag = a.headers.first(name: "ETag") else { throw failure(.PUT, bucket, key, a) }
                return etag
            }
            var body = "<CompleteMultipartUpload>"
            for (i, etag) in etags.enumerated() {
                body += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(S3XML.escape(etag))</ETag></Part>"
            }
            body += "</CompleteMultipartUpload>"
            let done = try request(.POST, bucket: bucket, key: key, query: [("uploadId", uploadID)], body: Array(body.utf8),
                                   extra: [("content-type", "application/xml")])
            // S3 may answer 200 and still fail the completion: the body then is an <Error>.
            let text = Substring(decoding: done.body.prefix(4096), as: UTF8.self)
            guard (200..<300).contains(done.status), !text.contains("<Error>") else {
                throw failure(.POST, bucket, key, BlockingHTTPClient.Answer(status: done.status == 200 ? 500 : done.status, headers: done.headers, body: done.body))
            }
        } catch {
            _ = try? request(.DELETE, bucket: bucket, key: key, query: [("uploadId", uploadID)])
            throw error
        }
    }
}
