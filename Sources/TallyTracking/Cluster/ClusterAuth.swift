import Crypto
import Foundation

/// How the servers of a cluster trust each other's forwarded requests (docs/scale-out.md): the forwarding server
/// signs what it forwards with the `--cluster-secret` they share — method, target, its node id, the caller's identity
/// it vouches for, the time, and the body's SHA-256 — and the owner checks the signature (in constant time) and the
/// time (within ``window``) before it takes the identity as the caller's. A client cannot pose as a server without
/// the secret, nor replay a forwarded request after the window, nor change a byte of one.
public struct ClusterAuth: Sendable {
    private let key: SymmetricKey
    /// How far a forwarded request's time may be from the receiver's clock.
    public static let windowMillis: Int64 = 60_000

    /// The headers of a forwarded request.
    public enum Header {
        /// The forwarding server's node id.
        public static let node = "X-Tally-Forwarded-By"
        /// The caller's user name (empty when access control is off).
        public static let user = "X-Tally-Forwarded-User"
        /// Milliseconds since the epoch when it was signed.
        public static let time = "X-Tally-Forwarded-Time"
        /// Hex SHA-256 of the body (signed: the headers are checked before the body is read).
        public static let digest = "X-Tally-Forwarded-Digest"
        /// Hex HMAC-SHA256 of the request's parts.
        public static let signature = "X-Tally-Forwarded-Signature"
    }

    /// A forwarded request's vouched-for facts, once verified.
    public struct Forwarded: Sendable, Equatable {
        /// The server that forwarded it.
        public var node: String
        /// The caller it acts for (`""`: no user, access control off).
        public var user: String
    }

    /// The authority of `secret` (at least 16 bytes: it is the cluster's only credential between servers).
    public init(secret: String) throws {
        guard secret.utf8.count >= 16 else {
            throw TrackingError(.invalidParameterValue, "--cluster-secret must be at least 16 bytes (every server of the cluster is given the same one)")
        }
        key = SymmetricKey(data: Array(secret.utf8))
    }

    /// The headers that vouch for `user` on a request `method target` with `body`, forwarded by `node` at `now`.
    public func sign(method: String, target: String, body: some DataProtocol, node: String, user: String,
                     now: Int64 = TrackingService.nowMillis()) -> [(String, String)] {
        let digest = Secrets.hex(SHA256.hash(data: body))
        let mac = code(method: method, target: target, bodyDigest: digest, node: node, user: user, time: now)
        return [(Header.node, node), (Header.user, user), (Header.time, String(now)), (Header.digest, digest), (Header.signature, mac)]
    }

    /// A forwarded request whose headers checked out: who sent it for whom, and the digest its body must have.
    public struct Vouched: Sendable {
        /// Who forwarded it, for whom.
        public var forwarded: Forwarded
        /// The signed hex SHA-256 of the body.
        public var digest: String

        /// Throws unless `body` is the body that was signed.
        public func check(body: some DataProtocol) throws {
            guard Secrets.hex(SHA256.hash(data: body)) == digest else {
                throw ClusterAuth.refused("a forwarded request whose body does not match its signed digest (altered on the way)")
            }
        }
    }

    /// Checks a forwarded request's headers before its body is read: ``verify(method:target:body:header:now:)``
    /// without the body, whose digest is returned for ``Vouched/check(body:)``.
    public func verifyHeaders(method: String, target: String, header: (String) -> String?, now: Int64 = TrackingService.nowMillis()) throws -> Vouched? {
        guard let signature = header(Header.signature) else { return nil }
        guard let node = header(Header.node), let user = header(Header.user), let timeText = header(Header.time), let time = Int64(timeText),
              let digest = header(Header.digest)?.lowercased(), digest.utf8.count == 64 else {
            throw Self.refused("a forwarded request without its node, user, time and digest")
        }
        // Compared without subtracting: a time near Int64's ends must not overflow before it is refused.
        guard time >= now - Self.windowMillis, time <= now + Self.windowMillis else {
            throw Self.refused("a forwarded request signed at \(time), outside 60 s of this server's clock (\(now))")
        }
        let expected = code(method: method, target: target, bodyDigest: digest, node: node, user: user, time: time)
        guard Secrets.constantTimeEqual(Array(expected.utf8), Array(signature.lowercased().utf8)) else {
            throw Self.refused("a forwarded request whose signature does not match (another cluster secret, or altered on the way)")
        }
        return Vouched(forwarded: Forwarded(node: node, user: user), digest: digest)
    }

    /// Checks a forwarded request's headers (`header(name)` looks one up) against its method, target and body;
    /// returns who forwarded it for whom. `nil` when it carries no signature (not forwarded); an error when the
    /// signature is wrong, a part was changed, or the time is outside the window.
    public func verify(method: String, target: String, body: some DataProtocol, header: (String) -> String?,
                       now: Int64 = TrackingService.nowMillis()) throws -> Forwarded? {
        guard let vouched = try verifyHeaders(method: method, target: target, header: header, now: now) else { return nil }
        try vouched.check(body: body)
        return vouched.forwarded
    }

    static func refused(_ why: String) -> TrackingError { TrackingError(.unauthenticated, "Refused \(why)") }

    /// Hex HMAC-SHA256 over the parts, each prefixed with its length in bytes (so no choice of parts can read as
    /// another: `3:GET` `12:/api/2.0/...`).
    func code(method: String, target: String, bodyDigest: String, node: String, user: String, time: Int64) -> String {
        let text = [method.uppercased(), target, node, user, String(time), bodyDigest].map { "\($0.utf8.count):\($0)" }.joined()
        return Secrets.hex(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
    }
}
