import Crypto
import Foundation

/// Webhook signing secrets at rest: AES-256-GCM under a key the servers hold and the database does not, stored as
/// `v1:<key fingerprint>:` + base64(nonce ‖ ciphertext ‖ tag). A database dump alone reveals no secret; a server
/// without the key that sealed a secret cannot sign with it, and says which key it would need (by fingerprint): its
/// deliveries fail (logged) instead of going out unsigned.
public struct WebhookSecrets: Sendable {
    /// The key (32 bytes).
    let key: SymmetricKey
    /// The key's fingerprint: 8 hex digits of HMAC-SHA256(key, "tally webhook key"), stored with each secret.
    public let fingerprint: String
    /// The environment variable a key can come from (base64 of 32 bytes): every server of a shared database needs
    /// the same one.
    public static let environmentVariable = "TALLY_WEBHOOK_SECRET_KEY"
    /// The file under the data directory holding the key when nothing else gives one (created on first start).
    public static let fileName = "webhook-secret.key"

    /// Secrets sealed under `key`.
    public init(key: SymmetricKey) {
        precondition(key.bitCount == 256, "webhook secrets are sealed with AES-256")
        self.key = key
        let mac = HMAC<SHA256>.authenticationCode(for: Array("tally webhook key".utf8), using: key)
        fingerprint = Secrets.hex(mac.prefix(4))
    }

    /// A fresh random key (tests, and stores that never persist a secret).
    public static func ephemeral() -> WebhookSecrets { WebhookSecrets(key: SymmetricKey(size: .bits256)) }

    /// Where a server's key comes from, in this order: `TALLY_WEBHOOK_SECRET_KEY`; in a cluster, the cluster secret
    /// every member already shares (HKDF-SHA256, so no key needs copying); else `dataDirectory/webhook-secret.key`,
    /// made (mode 0600) when missing. A malformed key is an error naming where it came from.
    public static func load(dataDirectory: String, clusterSecret: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WebhookSecrets {
        if let text = environment[environmentVariable] {
            return try parse(text, origin: environmentVariable)
        }
        if let clusterSecret {
            return WebhookSecrets(key: HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Data(clusterSecret.utf8)),
                                                              info: Data("tally webhook secrets v1".utf8), outputByteCount: 32))
        }
        let path = dataDirectory + "/" + fileName
        if let data = FileManager.default.contents(atPath: path) {
            return try parse(String(decoding: data, as: UTF8.self), origin: path)
        }
        // Written whole under a temporary name, then linked into place: a start that fails halfway (a full disk)
        // leaves no half key behind to fail every later start.
        let key = SymmetricKey(size: .bits256)
        let bytes = Array((key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n").utf8)
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TrackingError(.internalError, "Cannot create the webhook secret key \(path): \(String(cString: strerror(errno)))") }
        let written = write(fd, bytes, bytes.count) == bytes.count && fsync(fd) == 0
        let reason = String(cString: strerror(errno))
        close(fd)
        defer { unlink(temporary) }
        guard written else { throw TrackingError(.internalError, "Cannot write the webhook secret key \(path): \(reason)") }
        if link(temporary, path) != 0 {
            // Another process made it meanwhile: use theirs.
            if errno == EEXIST, let data = FileManager.default.contents(atPath: path) { return try parse(String(decoding: data, as: UTF8.self), origin: path) }
            throw TrackingError(.internalError, "Cannot create the webhook secret key \(path): \(String(cString: strerror(errno)))")
        }
        return WebhookSecrets(key: key)
    }

    static func parse(_ text: String, origin: String) throws -> WebhookSecrets {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
            throw TrackingError(.internalError, "The webhook secret key in \(origin) is not the base64 of 32 bytes")
        }
        return WebhookSecrets(key: SymmetricKey(data: data))
    }

    /// `secret` sealed for storage.
    public func seal(_ secret: String) throws -> String {
        let box = try AES.GCM.seal(Data(secret.utf8), using: key)
        guard let combined = box.combined else { throw TrackingError(.internalError, "AES-GCM gave no combined form") }
        return "v1:\(fingerprint):" + combined.base64EncodedString()
    }

    /// The fingerprint of the key `sealed` was sealed under (`nil` for what is not a sealed secret).
    public static func fingerprint(of sealed: String) -> String? {
        let parts = sealed.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.count == 3 && parts[0] == "v1" ? String(parts[1]) : nil
    }

    /// The secret `sealed` holds; an error when it was sealed under another key or is damaged.
    public func unseal(_ sealed: String) throws -> String {
        let parts = sealed.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", parts[1] == fingerprint else {
            throw TrackingError(.internalError, "The webhook's secret was sealed under another key (fingerprint \(Self.fingerprint(of: sealed) ?? "unknown"), "
                                + "this server's is \(fingerprint)): every server of a database needs the same key (\(Self.environmentVariable), "
                                + "the cluster secret, or the data directory's \(Self.fileName))")
        }
        guard let data = Data(base64Encoded: String(parts[2])), let box = try? AES.GCM.SealedBox(combined: data),
              let plain = try? AES.GCM.open(box, using: key) else {
            throw TrackingError(.internalError, "The webhook's secret is damaged: it cannot be opened with the key it names (\(fingerprint))")
        }
        return String(decoding: plain, as: UTF8.self)
    }

    /// MLflow's signature of a delivery: `v1,` + base64(HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>")).
    public static func signature(secret: String, deliveryID: String, timestamp: String, body: [UInt8]) -> String {
        var content = Array("\(deliveryID).\(timestamp).".utf8)
        content.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: Data(secret.utf8)))
        return "v1," + Data(mac).base64EncodedString()
    }
}

extension WebhookSecrets {
    /// Seals again under `target` every secret in `store` that `self` sealed (`tally cluster migrate`: a single
    /// server's secrets, moved into a cluster whose members derive another key); the number changed. Secrets under
    /// a third key are left as they are.
    public func reseal(in store: any WebhookStore, under target: WebhookSecrets) throws -> Int {
        guard target.fingerprint != fingerprint else { return 0 }
        var changed = 0
        for var h in try store.webhooks(id: nil) {
            guard let sealed = h.sealedSecret, Self.fingerprint(of: sealed) == fingerprint else { continue }
            h.sealedSecret = try target.seal(try unseal(sealed))
            if try store.replaceWebhook(h) { changed += 1 }
        }
        return changed
    }
}
