import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import TallyStore

extension S3Client {
    /// Uploads `size` bytes of the file `fd` as a multipart upload: initiate, parts of ``partSize`` streamed from
    /// disk (``partConcurrency`` at a time), complete. On any failure the upload is aborted, so S3 keeps no parts.
    func multipartUpload(bucket: String, key: String, fd: Int32, size: Int, contentType: String) throws {
        // S3 takes at most 10,000 parts: a file past 10,000 × partSize goes in larger parts (whole MiBs).
        let part = max(partSize, ((size + Self.maxParts - 1) / Self.maxParts + (1 << 20) - 1) & ~((1 << 20) - 1))
        let uploadID = try initiateMultipart(bucket: bucket, key: key, contentType: contentType)
        do {
            let parts = stride(from: 0, to: size, by: part).enumerated().map { (number: $0.offset + 1, offset: $0.element) }
            let etags = try BlockingHTTPClient.concurrently(parts, limit: partConcurrency) { [self] p in
                try uploadPart(bucket: bucket, key: key, uploadID: uploadID, number: p.number, fd: fd, offset: p.offset, count: min(part, size - p.offset))
            }
            try completeMultipart(bucket: bucket, key: key, uploadID: uploadID, etags: etags, size: size)
        } catch {
            abortMultipart(bucket: bucket, key: key, uploadID: uploadID)
            throw error
        }
    }

    /// The most parts an S3 multipart upload may have.
    public static let maxParts = 10_000

    /// Starts a multipart upload; its id.
    func initiateMultipart(bucket: String, key: String, contentType: String) throws -> String {
        let initiated = try request(.POST, bucket: bucket, key: key, query: [("uploads", "")], extra: [("content-type", contentType)])
        guard (200..<300).contains(initiated.status),
              let uploadID = S3XML.first("UploadId", in: Substring(decoding: initiated.body, as: UTF8.self)) else {
            throw failure(.POST, bucket, key, initiated)
        }
        return uploadID
    }

    /// Sends part `number` (from 1): `count` bytes of the file `fd` at `offset`, streamed; its ETag.
    func uploadPart(bucket: String, key: String, uploadID: String, number: Int, fd: Int32, offset: Int, count: Int) throws -> String {
        let query = [("partNumber", String(number)), ("uploadId", uploadID)]
        let p = path(bucket, key)
        let h = headers(.PUT, p, query, payloadHash: S3Signer.unsignedPayload)
        let a = try http.upload(.PUT, url(p, query), headers: h, fd: fd, offset: offset, count: count, retry: Self.retry)
        guard (200..<300).contains(a.status), let etag = a.headers.first(name: "ETag") else { throw failure(.PUT, bucket, key, a) }
        return etag
    }

    /// Completes a multipart upload from its parts' ETags, in part order. A completion whose answer was lost and
    /// whose retry finds the upload gone (`NoSuchUpload`) succeeded when the object is there with the `size` sent.
    func completeMultipart(bucket: String, key: String, uploadID: String, etags: [String], size: Int) throws {
        let done = try sendCompletion(bucket: bucket, key: key, uploadID: uploadID, parts: etags.enumerated().map { ($0.offset + 1, $0.element) })
        // S3 may answer 200 and still fail the completion: the body then is an <Error>.
        let text = Substring(decoding: done.body.prefix(4096), as: UTF8.self)
        if done.status == 404, text.contains("NoSuchUpload"), (try? self.size(bucket: bucket, key: key)) == size { return }
        guard (200..<300).contains(done.status), !text.contains("<Error>") else {
            throw failure(.POST, bucket, key, BlockingHTTPClient.Answer(status: done.status == 200 ? 500 : done.status, headers: done.headers, body: done.body))
        }
    }

    /// Sends `CompleteMultipartUpload` with the parts given (number and ETag, in the order given); S3's answer.
    func sendCompletion(bucket: String, key: String, uploadID: String, parts: [(number: Int, etag: String)]) throws -> BlockingHTTPClient.Answer {
        var body = "<CompleteMultipartUpload>"
        for p in parts {
            body += "<Part><PartNumber>\(p.number)</PartNumber><ETag>\(S3XML.escape(p.etag))</ETag></Part>"
        }
        body += "</CompleteMultipartUpload>"
        return try request(.POST, bucket: bucket, key: key, query: [("uploadId", uploadID)], body: Array(body.utf8),
                           extra: [("content-type", "application/xml")])
    }

    /// Abandons a multipart upload, so S3 keeps none of its parts (best effort).
    func abortMultipart(bucket: String, key: String, uploadID: String) {
        _ = try? request(.DELETE, bucket: bucket, key: key, query: [("uploadId", uploadID)])
    }
}

extension S3Client {
    /// An object written while its bytes still arrive: the caller appends them to a file and reports how far it has
    /// written (``advance(to:)``); each full part is sent from the file in the background (``S3Client/partConcurrency``
    /// at a time) while later bytes arrive, and ``finish(size:)`` sends the rest and completes — one PUT when the
    /// object turned out smaller than a part. A large artifact's upload to the server and to S3 overlap instead of
    /// following each other.
    ///
    /// `advance` never waits (it is called from the request's task); `finish` and `abort` wait for the parts in
    /// flight and are for blocking threads.
    public final class StreamingUpload: Sendable {
        let client: S3Client
        let bucket: String
        let key: String
        let contentType: String
        /// A descriptor of the file, for reading the parts.
        let fd: Int32
        private struct State {
            var submitted = 0
            var etags: [Int: String] = [:]
            var failure: (any Error)?
            var aborted = false
        }
        private let state = NIOLockedValueBox(State())
        /// The multipart upload's id once initiated; a lock of its own, held across the request, so ``advance(to:)``
        /// never waits on the network.
        private let id = NIOLockedValueBox<String?>(nil)
        private let queue: OperationQueue

        /// An upload of the file at `file` (which the caller writes) to `bucket`/`key`.
        public init(client: S3Client, bucket: String, key: String, contentType: String, file: String) throws {
            self.client = client
            self.bucket = bucket
            self.key = key
            self.contentType = contentType
            fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TrackingError(.internalError, "Cannot read \(file): errno \(errno)") }
            queue = OperationQueue()
            queue.maxConcurrentOperationCount = client.partConcurrency
        }

        deinit { Glibc.close(fd) }

        /// The file now holds `written` bytes: sends every full part not yet sent, in the background.
        public func advance(to written: Int) {
            let parts: [(number: Int, offset: Int)] = state.withLockedValue { s in
                guard s.failure == nil, !s.aborted else { return [] }
                var out: [(Int, Int)] = []
                while written - s.submitted >= client.partSize {
                    guard s.submitted / client.partSize + 1 < S3Client.maxParts else {  // the last part is left for finish
                        s.failure = TrackingError(.invalidParameterValue, "An artifact streamed to S3 holds at most \(S3Client.maxParts - 1) parts of "
                                                  + "\(client.partSize >> 20) MiB (\((S3Client.maxParts - 1) * (client.partSize >> 20) >> 10) GiB)")
                        break
                    }
                    out.append((s.submitted / client.partSize + 1, s.submitted))
                    s.submitted += client.partSize
                }
                return out
            }
            for part in parts { queue.addOperation { [self] in send(part.number, offset: part.offset, count: client.partSize) } }
        }

        /// Sends one part (initiating the upload first, once); a failure is kept for ``finish(size:)``.
        private func send(_ number: Int, offset: Int, count: Int) {
            guard state.withLockedValue({ $0.failure == nil && !$0.aborted }) else { return }
            do {
                let etag = try client.uploadPart(bucket: bucket, key: key, uploadID: try uploadID(), number: number, fd: fd, offset: offset, count: count)
                state.withLockedValue { $0.etags[number] = etag }
            } catch {
                state.withLockedValue { if $0.failure == nil { $0.failure = error } }
            }
        }

        /// The multipart upload's id, initiating it on first use (parts run concurrently: under the lock).
        private func uploadID() throws -> String {
            try id.withLockedValue { id in
                if let id { return id }
                let new = try client.initiateMultipart(bucket: bucket, key: key, contentType: contentType)
                id = new
                return new
            }
        }

        /// The file is complete at `size` bytes: sends what remains and completes the object (aborting the upload
        /// on any failure, so S3 keeps no parts).
        public func finish(size: Int) throws {
            queue.waitUntilAllOperationsAreFinished()
            let (submitted, failure, aborted) = state.withLockedValue { ($0.submitted, $0.failure, $0.aborted) }
            let started = id.withLockedValue { $0 != nil }
            if aborted { throw TrackingError(.internalError, "the upload of s3://\(bucket)/\(key) was given up") }
            if let failure {
                abort()
                throw failure
            }
            guard started || submitted > 0 else {
                // Smaller than a part: one PUT.
                let p = client.path(bucket, key)
                let h = client.headers(.PUT, p, [], payloadHash: S3Signer.unsignedPayload, extra: [("content-type", contentType)])
                let a = try client.http.upload(.PUT, client.url(p, []), headers: h, fd: fd, count: size, retry: S3Client.retry)
                guard (200..<300).contains(a.status) else { throw client.failure(.PUT, bucket, key, a) }
                return
            }
            do {
                if size > submitted { send(submitted / client.partSize + 1, offset: submitted, count: size - submitted) }
                let (etags, failure) = state.withLockedValue { ($0.etags, $0.failure) }
                if let failure { throw failure }
                let ordered = (0..<etags.count).compactMap { etags[$0 + 1] }
                guard !ordered.isEmpty, ordered.count == etags.count else { throw TrackingError(.internalError, "s3://\(bucket)/\(key): a part went missing") }
                try client.completeMultipart(bucket: bucket, key: key, uploadID: try uploadID(), etags: ordered, size: size)
            } catch {
                abort()
                throw error
            }
        }

        /// Gives the upload up: parts in flight finish, nothing more is sent, and S3 drops what it has.
        public func abort() {
            state.withLockedValue { $0.aborted = true }
            queue.cancelAllOperations()
            queue.waitUntilAllOperationsAreFinished()
            if let id = id.withLockedValue({ $0 }) { client.abortMultipart(bucket: bucket, key: key, uploadID: id) }
        }
    }
}
