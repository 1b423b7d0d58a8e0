import Crypto
import Foundation

/// Webhook signing secrets at rest: AES-256-GCM under a key the servers hold and the database does not, stored as
/// `v1:` + base64(nonce ‖ ciphertext ‖ tag). A database dump alone reveals no secret; a server without the key that
/// sealed a secret cannot sign with it, and its deliveries fail (logged) instead of going out unsigned.
public struct WebhookSecrets: Sendable {
    /// The key (32 bytes).
    let key: SymmetricKey
    /// The environment variable a key can come from (base64 of 32 bytes): every server of a shared database needs
    /// the same one.
    public static let environmentVariable = "TALLY_WEBHOOK_SECRET_KEY"
    /// The file under the data directory holding the key when the environment gives none (created on first start).
    public static let fileName = "webhook-secret.key"

    /// Secrets sealed under `key`.
    public init(key: SymmetricKey) {
        precondition(key.bitCount == 256, "webhook secrets are sealed with AES-256")
        self.key = key
    }

    /// A fresh random key (tests, and stores that never persist a secret).
    public static func ephemeral() -> WebhookSecrets { WebhookSecrets(key: SymmetricKey(size: .bits256)) }

    /// The key from `TALLY_WEBHOOK_SECRET_KEY` when set, else from `dataDirectory/webhook-secret.key` (made, mode 0600,
    /// when missing). A malformed key is an error naming where it came from.
    public static func load(dataDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WebhookSecrets {
        if let text = environment[environmentVariable] {
            return try parse(text, origin: environmentVariable)
        }
        let path = dataDirectory + "/" + fileName
        if let data = FileManager.default.contents(atPath: path) {
            return try parse(String(decoding: data, as: UTF8.self), origin: path)
        }
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd < 0 {
            // Another process made it meanwhile: use theirs.
            if errno == EEXIST, let data = FileManager.default.contents(atPath: path) { return try parse(String(decoding: data, as: UTF8.self), origin: path) }
            throw TrackingError(.internalError, "Cannot create the webhook secret key \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw TrackingError(.internalError, "Cannot write the webhook secret key \(path): \(String(cString: strerror(errno)))")
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
        return "v1:" + combined.base64EncodedString()
    }

    /// The secret `sealed` holds; an error when it was sealed under another key or is damaged.
    public func unseal(_ sealed: String) throws -> String {
        guard sealed.hasPrefix("v1:"), let data = Data(base64Encoded: String(sealed.dropFirst(3))),
              let box = try? AES.GCM.SealedBox(combined: data), let plain = try? AES.GCM.open(box, using: key) else {
            throw TrackingError(.internalError, "The webhook's secret cannot be opened with this server's key (\(Self.environmentVariable) "
                                + "or the data directory's \(Self.fileName)): every server of a database needs the same key")
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
