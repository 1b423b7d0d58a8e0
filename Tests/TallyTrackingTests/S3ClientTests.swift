import Foundation
import NIOCore
import NIOHTTP1
import TallyStore
import Testing
@testable import TallyTracking

/// The S3 client: AWS Signature V4 against the worked examples of AWS's documentation, the XML it reads, the
/// environment it is configured from, and — against the SeaweedFS `make test` starts (`scripts/s3-test run`, its URL
/// in `TALLY_TEST_S3_ENDPOINT`) — objects up and down whole, by range, streamed and in parts, listings over pages,
/// and clear errors for a missing bucket, bad credentials and a store that cannot be reached.
@Suite struct S3ClientTests {
    /// The example credentials of AWS's SigV4 documentation.
    static let example = S3Signer(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
    static let exampleDate = Date(timeIntervalSince1970: 1_369_353_600)  // 20130524T000000Z
    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    static func signature(_ headers: [(String, String)]) -> String? {
        headers.first { $0.0 == "authorization" }.flatMap { $0.1.split(separator: "=").last.map(String.init) }
    }

    /// "GET Object" of AWS's "Signature Calculations for the Authorization Header" page: a ranged GET.
    @Test func signsAWSExampleGetObject() {
        let h = Self.example.sign(method: "GET", path: "/test.txt", query: [],
                                  headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
                                  payloadHash: Self.emptyHash, date: Self.exampleDate)
        #expect(Self.signature(h) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        let auth = h.first { $0.0 == "authorization" }!.1
        #expect(auth.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "))
        #expect(h.contains { $0 == ("x-amz-date", "20130524T000000Z") })
    }

    /// "GET Bucket (List Objects)" of the same page: query parameters sorted and encoded.
    @Test func signsAWSExampleListObjects() {
        let h = Self.example.sign(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")],
                                  headers: [("host", "examplebucket.s3.amazonaws.com")], payloadHash: Self.emptyHash, date: Self.exampleDate)
        #expect(Self.signature(h) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    /// "GET Bucket Lifecycle": a query flag with an empty value.
    @Test func signsAWSExampleLifecycle() {
        let h = Self.example.sign(method: "GET", path: "/", query: [("lifecycle", "")],
                                  headers: [("host", "examplebucket.s3.amazonaws.com")], payloadHash: Self.emptyHash, date: Self.exampleDate)
        #expect(Self.signature(h) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    /// "PUT Object": a signed payload, a `$` in the key encoded in the path, extra signed headers.
    @Test func signsAWSExamplePutObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let h = Self.example.sign(method: "PUT", path: "/" + "test$file.text".uriEncoded(keepingSlashes: true), query: [],
                                  headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                                            ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                                  payloadHash: S3Signer.sha256Hex(body), date: Self.exampleDate)
        #expect(S3Signer.sha256Hex(body) == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        #expect(Self.signature(h) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    /// The presigned URL of AWS's "Authenticating Requests: Using Query Parameters" page: `host` signed alone, the
    /// payload unsigned, the credential's `/` encoded.
    @Test func presignsAWSExample() {
        let q = Self.example.presign(method: "GET", path: "/test.txt", query: [], host: "examplebucket.s3.amazonaws.com", expires: 86400,
                                     date: Self.exampleDate)
        #expect(q.map(\.0) == ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"])
        #expect(q.last!.1 == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(S3Signer.canonicalQuery(Array(q.dropLast())).contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"))
        // A session token is part of what is signed; the request's own parameters come first and are signed too.
        var s = Self.example
        s.sessionToken = "TOKEN"
        let t = s.presign(method: "PUT", path: "/b/k", query: [("partNumber", "2"), ("uploadId", "u")], host: "h", expires: 60, date: Self.exampleDate)
        #expect(t.prefix(2).map(\.0) == ["partNumber", "uploadId"] && t.contains { $0 == ("X-Amz-Security-Token", "TOKEN") })
        let other = s.presign(method: "PUT", path: "/b/k", query: [("partNumber", "3"), ("uploadId", "u")], host: "h", expires: 60, date: Self.exampleDate)
        #expect(t.last!.1 != other.last!.1)
        // Headers the URL's user must send are signed with `host`, in order.
        let typed = Self.example.presign(method: "PUT", path: "/b/k", query: [], host: "h", headers: [("Content-Type", " text/plain ")], expires: 60,
                                         date: Self.exampleDate)
        let plain = Self.example.presign(method: "PUT", path: "/b/k", query: [], host: "h", expires: 60, date: Self.exampleDate)
        #expect(typed.contains { $0 == ("X-Amz-SignedHeaders", "content-type;host") } && typed.last!.1 != plain.last!.1)
    }

    /// A multipart object's ETag from its parts' (MD5s of "hello" and "world"; the figure from Python's hashlib, and
    /// the rule SeaweedFS's ETags follow, checked by hand): how a completion whose answer was lost is recognised.
    @Test func multipartETag() {
        #expect(S3Client.multipartETag(["\"5d41402abc4b2a76b9719d911017c592\"", "7d793037a0760186574b0282f2f435e7"])
            == "065947336a2f2a95ba8899f3675c3be6-2")
        #expect(S3Client.multipartETag(["not-an-md5"]) == nil && S3Client.multipartETag(["\"5d41402abc4b2a76b9719d911017c59g\""]) == nil)
    }

    /// A presigned URL is signed for the `Host` its user's client sends: no port when it is the scheme's own.
    @Test func presignedHostLeavesOutTheDefaultPort() {
        for (url, host) in [("https://s3.example.com:443", "s3.example.com"), ("http://minio:80/base", "minio"), ("http://127.0.0.1:9000", "127.0.0.1:9000"),
                            ("https://s3.example.com", "s3.example.com"), ("https://s3.example.com:8443", "s3.example.com:8443")] {
            let c = S3Client(endpoint: S3Endpoint(url: url, signer: Self.example))
            defer { c.close() }
            #expect(c.presignedHost == host, "\(url)")
            #expect(c.presignedURL(.GET, bucket: "b", key: "k", expires: 60).hasPrefix(url + "/b/k?X-Amz-Algorithm="))
        }
    }

    @Test func sessionTokenIsSigned() {
        var s = Self.example
        s.sessionToken = "TOKEN"
        let h = s.sign(method: "GET", path: "/b/k", query: [], headers: [("host", "h")], payloadHash: Self.emptyHash, date: Self.exampleDate)
        #expect(h.contains { $0 == ("x-amz-security-token", "TOKEN") })
        #expect(h.first { $0.0 == "authorization" }!.1.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
    }

    @Test func readsXML() {
        let xml: Substring = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>
            <Contents><Key>a/b &amp; c&#x2F;&lt;d&gt;.txt</Key><Size>12</Size></Contents><Contents><Key>a/é</Key><Size>0</Size></Contents>
            <CommonPrefixes><Prefix>a/dir/</Prefix></CommonPrefixes><NextContinuationToken>t&amp;1</NextContinuationToken><Empty/>
            </ListBucketResult>
            """
        let contents = S3XML.elements("Contents", in: xml, decode: false)
        #expect(contents.count == 2)
        #expect(S3XML.first("Key", in: contents[0]) == "a/b & c/<d>.txt" && S3XML.first("Size", in: contents[0]) == "12")
        #expect(S3XML.first("Key", in: contents[1]) == "a/é")
        #expect(S3XML.first("NextContinuationToken", in: xml) == "t&1" && S3XML.first("IsTruncated", in: xml) == "true")
        #expect(S3XML.first("Missing", in: xml) == nil)
        #expect(S3XML.escape("<a & 'b'>") == "&lt;a &amp; &apos;b&apos;&gt;")
        #expect(S3XML.unescape("&unknown; &#65;") == "&unknown; A")
    }

    @Test func locations() {
        let l = S3Location(uri: "s3://bucket/some//prefix/")!
        #expect(l.bucket == "bucket" && l.prefix == "some/prefix" && l.description == "s3://bucket/some/prefix")
        #expect(l.key("a/b.txt") == "some/prefix/a/b.txt" && l.key("") == "some/prefix")
        #expect(S3Location(uri: "s3://bucket")!.key("x") == "x")
        #expect(S3Location(uri: "s3://") == nil && S3Location(uri: "/tmp/x") == nil && S3Location(uri: "gs://b/x") == nil)
        #expect(l.appending("runs/1").description == "s3://bucket/some/prefix/runs/1")
    }

    /// An endpoint behind a path (`http://host/s3`): requests go under it, and it is what is signed.
    @Test func endpointPathIsKept() {
        let c = S3Client(endpoint: S3Endpoint(url: "http://proxy:8080/s3/", signer: Self.example))
        defer { c.close() }
        #expect(c.path("b", "a b/c") == "/s3/b/a%20b/c" && c.url(c.path("b", "k"), [("x", "1")]) == "http://proxy:8080/s3/b/k?x=1")
        #expect(c.host == "proxy:8080")
        let plain = S3Client(endpoint: S3Endpoint(url: "https://s3.us-east-1.amazonaws.com", signer: Self.example))
        defer { plain.close() }
        #expect(plain.path("b", "") == "/b" && plain.url("/b", []) == "https://s3.us-east-1.amazonaws.com/b" && plain.host == "s3.us-east-1.amazonaws.com")
    }

    @Test func endpointFromEnvironment() throws {
        let e = try S3Endpoint.fromEnvironment(["MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000/", "AWS_ENDPOINT_URL": "http://other",
                                                "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "eu-west-1"])
        #expect(e.url == "http://127.0.0.1:9000" && e.signer.accessKey == "k" && e.signer.region == "eu-west-1" && e.signer.sessionToken == nil)
        let aws = try S3Endpoint.fromEnvironment(["AWS_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"])
        #expect(aws.url == "https://s3.us-west-2.amazonaws.com" && aws.signer.sessionToken == "t")
        // The shared credentials file, and its profiles.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-aws-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "[default]\naws_access_key_id = dk\naws_secret_access_key=ds\n\n[team]\n# note\naws_access_key_id = tk\naws_secret_access_key = ts\naws_session_token = tt\n"
            .write(toFile: dir + "/credentials", atomically: true, encoding: .utf8)
        let d = try S3Endpoint.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials"])
        #expect(d.signer.accessKey == "dk" && d.signer.secretKey == "ds" && d.url == "https://s3.us-east-1.amazonaws.com")
        let t = try S3Endpoint.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials", "AWS_PROFILE": "team"])
        #expect(t.signer.accessKey == "tk" && t.signer.sessionToken == "tt")
        expectError(.invalidParameterValue, "No S3 credentials") { _ = try S3Endpoint.fromEnvironment(["HOME": dir]) }
        expectError(.invalidParameterValue, "is not an http:// or https:// URL") {
            _ = try S3Endpoint.fromEnvironment(["MLFLOW_S3_ENDPOINT_URL": "ftp://x", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"])
        }
    }
}

/// The client against a real S3-compatible store: SeaweedFS, started by `scripts/s3-test run` (bucket `tally`).
@Suite(.serialized) struct S3LiveTests {
    static let endpoint = ProcessInfo.processInfo.environment["TALLY_TEST_S3_ENDPOINT"]

    /// A client of the test store (parts of the 5 MiB minimum, so multipart uploads stay small).
    static func client() throws -> S3Client {
        S3Client(endpoint: try S3Endpoint.fromEnvironment(["MLFLOW_S3_ENDPOINT_URL": endpoint!] .merging(ProcessInfo.processInfo.environment) { a, _ in a }),
                 partSize: 5 << 20, partConcurrency: 3)
    }

    static func prefix() -> String { "test-\(UInt64.random(in: 0...UInt64.max))" }

    @Test func storeIsThereWhenRequired() {
        if ProcessInfo.processInfo.environment["TALLY_REQUIRE_S3"] != nil {
            #expect(Self.endpoint != nil, "TALLY_TEST_S3_ENDPOINT is not set: run the tests through scripts/s3-test run")
        }
    }

    @Test(.enabled(if: endpoint != nil)) func objectsRoundTrip() throws {
        let s3 = try Self.client()
        defer { s3.close() }
        try s3.checkBucket("tally")
        let p = Self.prefix()
        // Keys with spaces, `+`, `&`, `=`, `%`, UTF-8 and deep paths; an empty object.
        let keys = ["\(p)/a b/c+d&e=f%g.txt", "\(p)/é/ü.bin", "\(p)/empty", "\(p)/deep/x/y/z.json"]
        for (i, k) in keys.enumerated() { try s3.put(bucket: "tally", key: k, bytes: k == keys[2] ? [] : Array(repeating: UInt8(i + 65), count: 1000 + i)) }
        for (i, k) in keys.enumerated() {
            let want = k == keys[2] ? [] : Array(repeating: UInt8(i + 65), count: 1000 + i)
            #expect(try s3.get(bucket: "tally", key: k) == want)
            #expect(try s3.size(bucket: "tally", key: k) == want.count)
        }
        #expect(try s3.get(bucket: "tally", key: keys[0], range: 10..<20) == Array(repeating: 65, count: 10))
        #expect(try s3.get(bucket: "tally", key: "\(p)/missing") == nil)
        #expect(try s3.size(bucket: "tally", key: "\(p)/missing") == nil)
        // A delimiter listing: files at the top, directories folded.
        let top = try s3.list(bucket: "tally", prefix: p + "/", delimiter: "/")
        #expect(top.objects.map(\.key) == ["\(p)/empty"])
        #expect(top.prefixes == ["\(p)/a b/", "\(p)/deep/", "\(p)/é/"])
        #expect(try s3.list(bucket: "tally", prefix: p + "/", delimiter: nil).objects.count == 4)
        #expect(try s3.deleteAll(bucket: "tally", prefix: p + "/") == 4)
        #expect(try s3.list(bucket: "tally", prefix: p + "/", delimiter: nil).objects.isEmpty)
        try s3.delete(bucket: "tally", key: "\(p)/never-there")
    }

    @Test(.enabled(if: endpoint != nil)) func listingsPage() throws {
        let s3 = try Self.client()
        defer { s3.close() }
        let p = Self.prefix()
        let keys = (0..<25).map { String(format: "\(p)/k%03d", $0) }
        _ = try BlockingHTTPClient.concurrently(keys, limit: 8) { k in try s3.put(bucket: "tally", key: k, bytes: Array(k.utf8)) }
        var pages = 0, seen: [String] = []
        try s3.list(bucket: "tally", prefix: p + "/", delimiter: nil, maxKeys: 10) { page in
            pages += 1
            seen += page.objects.map(\.key)
        }
        #expect(pages == 3 && seen == keys)
        try s3.deleteAll(bucket: "tally", prefix: p + "/")
    }

    @Test(.enabled(if: endpoint != nil)) func filesUpAndDownInParts() throws {
        let s3 = try Self.client()
        defer { s3.close() }
        let p = Self.prefix()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-s3-\(p)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 12 MiB + 7 bytes: three parts of 5, 5 and 2 MiB; every byte distinct by position.
        var bytes = [UInt8](repeating: 0, count: (12 << 20) + 7)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in bytes.indices {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            bytes[i] = UInt8(truncatingIfNeeded: x)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/big"))
        try s3.put(bucket: "tally", key: "\(p)/big", file: dir + "/big")
        #expect(try s3.size(bucket: "tally", key: "\(p)/big") == bytes.count)
        #expect(try s3.download(bucket: "tally", key: "\(p)/big", to: dir + "/back") == bytes.count)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/back")) == Data(bytes))
        #expect(try s3.get(bucket: "tally", key: "\(p)/big", range: (5 << 20) - 3..<(5 << 20) + 3) == Array(bytes[(5 << 20) - 3..<(5 << 20) + 3]))
        #expect(try s3.download(bucket: "tally", key: "\(p)/nothing", to: dir + "/none") == nil)
        // A small file goes up whole.
        try Data("small".utf8).write(to: URL(fileURLWithPath: dir + "/small"))
        try s3.put(bucket: "tally", key: "\(p)/small", file: dir + "/small")
        #expect(try s3.get(bucket: "tally", key: "\(p)/small") == Array("small".utf8))
        try s3.deleteAll(bucket: "tally", prefix: p + "/")
    }

    @Test(.enabled(if: endpoint != nil)) func clearErrors() throws {
        let s3 = try Self.client()
        defer { s3.close() }
        expectError(.resourceDoesNotExist, "S3 bucket 'no-such-bucket' does not exist") { try s3.checkBucket("no-such-bucket") }
        var bad = s3.endpoint
        bad.signer.secretKey = "wrong"
        let wrong = S3Client(endpoint: bad)
        defer { wrong.close() }
        expectError(.permissionDenied, "S3 at") { _ = try wrong.get(bucket: "tally", key: "x") }
        let gone = S3Client(endpoint: S3Endpoint(url: "http://127.0.0.1:1", signer: bad.signer), connectTimeout: .seconds(1))
        defer { gone.close() }
        expectError(.temporarilyUnavailable, "Cannot reach S3 at http://127.0.0.1:1") { _ = try gone.get(bucket: "tally", key: "x") }
    }
}
