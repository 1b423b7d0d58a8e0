import Crypto
import Foundation
import TallyStore

/// AWS Signature Version 4 for S3 (`AWS4-HMAC-SHA256`), as AWS's "Authenticating Requests" pages define it: a
/// canonical request (method, URI-encoded path, sorted query, sorted signed headers, payload hash), the string to
/// sign over its SHA-256, and an HMAC chain from the secret through date, region and service.
public struct S3Signer: Sendable {
    /// The access key id.
    public var accessKey: String
    /// The secret access key.
    public var secretKey: String
    /// A temporary credential's session token (`X-Amz-Security-Token`), when there is one.
    public var sessionToken: String?
    /// The region signed for (`us-east-1` for most S3-compatible stores).
    public var region: String
    /// The service signed for.
    public var service = "s3"

    /// A signer.
    public init(accessKey: String, secretKey: String, sessionToken: String? = nil, region: String) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.region = region
    }

    /// The payload hash of a body that is streamed unhashed (S3 accepts it).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// Lowercase hex SHA-256 of `bytes`.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String { Secrets.hex(SHA256.hash(data: bytes)) }

    /// `20130524T000000Z` of `date`.
    public static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)\(two(tm.tm_mon + 1))\(two(tm.tm_mday))T\(two(tm.tm_hour))\(two(tm.tm_min))\(two(tm.tm_sec))Z"
    }

    /// The headers to send with a request: `headers` (which must include `host`) plus `x-amz-date`,
    /// `x-amz-content-sha256`, the session token when there is one, and `Authorization`. Every header given is signed.
    ///
    /// - Parameters:
    ///   - path: the request path as sent (already URI-encoded, e.g. `/bucket/a%20b.txt`).
    ///   - query: the query parameters, not encoded (empty values for flags such as `uploads`).
    ///   - payloadHash: ``sha256Hex(_:)`` of the body, or ``unsignedPayload``.
    public func sign(method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
                     date: Date = Date()) -> [(String, String)] {
        let stamp = Self.amzDate(date)
        let day = String(stamp.prefix(8))
        var all = headers.map { ($0.0.lowercased(), Self.trim($0.1)) }
        all.append(("x-amz-date", stamp))
        all.append(("x-amz-content-sha256", payloadHash))
        if let sessionToken { all.append(("x-amz-security-token", sessionToken)) }
        all.sort { $0.0 < $1.0 }
        let signedHeaders = all.map(\.0).joined(separator: ";")
        let canonicalHeaders: String = all.map { (h: (String, String)) -> String in h.0 + ":" + h.1 + "\n" }.joined()
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let signature = self.signature(stamp: stamp, scope: scope, [method, path.isEmpty ? "/" : path, Self.canonicalQuery(query),
                                                                   canonicalHeaders, signedHeaders, payloadHash])
        var out = all
        out.append(("authorization", "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return out
    }

    /// The query of a presigned URL (AWS's "Authenticating Requests: Using Query Parameters"): `query` followed by
    /// the `X-Amz-*` parameters and `X-Amz-Signature`. The `host` header is signed, with `headers` (which the user of
    /// the URL must then send as given, e.g. a `Content-Type`), and the payload is not (`UNSIGNED-PAYLOAD`), so
    /// whoever holds the URL may send any body within `expires` seconds of `date`.
    ///
    /// - Parameters:
    ///   - path: the request path as it will be sent (already URI-encoded).
    ///   - query: the request's own parameters, not encoded.
    ///   - host: the `Host` the client will send (`host[:port]`).
    public func presign(method: String, path: String, query: [(String, String)], host: String, headers: [(String, String)] = [], expires: Int,
                        date: Date = Date()) -> [(String, String)] {
        let stamp = Self.amzDate(date)
        let scope = "\(stamp.prefix(8))/\(region)/\(service)/aws4_request"
        let signed = ([("host", Self.trim(host))] + headers.map { ($0.0.lowercased(), Self.trim($0.1)) }).sorted { $0.0 < $1.0 }
        let names = signed.map(\.0).joined(separator: ";")
        var q = query
        q.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        q.append(("X-Amz-Credential", "\(accessKey)/\(scope)"))
        q.append(("X-Amz-Date", stamp))
        q.append(("X-Amz-Expires", String(expires)))
        if let sessionToken { q.append(("X-Amz-Security-Token", sessionToken)) }
        q.append(("X-Amz-SignedHeaders", names))
        let signature = self.signature(stamp: stamp, scope: scope, [method, path.isEmpty ? "/" : path, Self.canonicalQuery(q),
                                                                   signed.map { $0.0 + ":" + $0.1 + "\n" }.joined(), names, Self.unsignedPayload])
        q.append(("X-Amz-Signature", signature))
        return q
    }

    /// Names and values URI-encoded, sorted by name then value, joined with `&`.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(String, String)] = query.map { ($0.0.uriEncoded(), $0.1.uriEncoded()) }
        return encoded.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    /// The hex signature of a canonical request (its lines): HMAC of the string to sign with the day's key.
    func signature(stamp: String, scope: String, _ canonicalRequest: [String]) -> String {
        let stringToSign = "AWS4-HMAC-SHA256\n\(stamp)\n\(scope)\n" + Self.sha256Hex(Array(canonicalRequest.joined(separator: "\n").utf8))
        return Secrets.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: signingKey(day: String(stamp.prefix(8)))))
    }

    /// The key of a day: HMAC("AWS4" + secret, day) → region → service → "aws4_request".
    func signingKey(day: String) -> SymmetricKey {
        func mac(_ key: SymmetricKey, _ s: String) -> SymmetricKey {
            SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(s.utf8), using: key)))
        }
        let k = mac(SymmetricKey(data: Array(("AWS4" + secretKey).utf8)), day)
        return mac(mac(mac(k, region), service), "aws4_request")
    }

    /// A header value as signed: outer spaces trimmed, inner runs of spaces folded to one.
    static func trim(_ v: String) -> String {
        v.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
