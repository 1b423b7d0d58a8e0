import Crypto
import Foundation
import NIOHTTP1
import Synchronization
import Testing
@testable import TallyTracking

/// Registry webhooks: MLflow 3's rules for saving them, on both backends; deliveries of every registry event, signed
/// as MLflow signs them, retried, never to non-public addresses unless allowed; secrets sealed at rest.
@Suite struct WebhookTests {
    /// Delivery to loopback over plain HTTP, as a test receiver needs, with fast retries.
    static func localPolicy(retries: Int = 3) -> WebhookPolicy {
        var p = WebhookPolicy()
        p.schemes = ["http", "https"]
        p.allowPrivateAddresses = true
        p.retries = retries
        p.timeoutSeconds = 5
        return p
    }

    static let modelEvents = try! [(WebhookEntity.registeredModel, WebhookAction.created), (.modelVersion, .created), (.modelVersionTag, .set),
                                   (.modelVersionTag, .deleted), (.modelVersionAlias, .created), (.modelVersionAlias, .deleted)]
        .map { try WebhookEvent($0.0, $0.1) }

    /// Waits for every delivery `d` queued to be done (queued as the registry call returns: nothing can be
    /// queued later); whether they were.
    static func settled(_ d: WebhookDelivery, seconds: Double = 30) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while d.pending > 0 && Date() < end { usleep(10_000) }
        return d.pending == 0
    }

    static func json(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    @Test(arguments: Backend.all) func savedByMLflowsRules(_ backend: Backend) throws {
        let f = try Fixture("wh", backend: backend)
        let s = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy()))
        let event = Self.modelEvents[0]
        expectError(.invalidParameterValue, "Missing value for required parameter 'name'") { _ = try s.createWebhook(WebhookFields(url: "http://a", events: [event])) }
        expectError(.invalidParameterValue, "Missing value for required parameter 'url'") { _ = try s.createWebhook(WebhookFields(name: "a", events: [event])) }
        expectError(.invalidParameterValue, "Missing value for required parameter 'events'") { _ = try s.createWebhook(WebhookFields(name: "a", url: "http://a")) }
        expectError(.invalidParameterValue, "must be a non-empty list") { _ = try s.createWebhook(WebhookFields(name: "a", url: "http://a", events: [])) }
        for bad in ["-a", "a-", "a b", String(repeating: "x", count: 64), "é"] {
            expectError(.invalidParameterValue, "Webhook name '\(bad)' is invalid") { _ = try s.createWebhook(WebhookFields(name: bad, url: "http://a", events: [event])) }
        }
        expectError(.invalidParameterValue, "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: http, https.") {
            _ = try s.createWebhook(WebhookFields(name: "a", url: "ftp://x/y", events: [event]))
        }
        expectError(.invalidParameterValue, "Webhook URL must include a hostname: 'http://'") { _ = try s.createWebhook(WebhookFields(name: "a", url: "http://", events: [event])) }
        expectError(.invalidParameterValue, "Invalid webhook status 'WEIRD'") {
            _ = try s.createWebhook(WebhookFields(name: "a", url: "http://a", events: [event], status: "WEIRD"))
        }
        expectError(.invalidParameterValue, "Invalid action 'deleted' for entity 'model_version'. Valid actions are: ['created']") {
            _ = try WebhookEvent(.modelVersion, .deleted)
        }
        expectError(.invalidParameterValue, "Invalid webhook event entity") { _ = try WebhookEvent(apiEntity: "model_version", apiAction: "CREATED") }

        // Saved, read back without its secret in the clear, listed newest first in pages.
        let a = try s.createWebhook(WebhookFields(name: "a.1_x-Z", url: "http://127.0.0.1:9/a", events: Self.modelEvents.reversed() + [event],
                                                  description: "d", secret: "s3cret"))
        #expect(a.events.map(\.description) == ["model_version.created", "model_version_alias.created", "model_version_alias.deleted",
                                                "model_version_tag.deleted", "model_version_tag.set", "registered_model.created"])
        #expect(a.status == .active && a.description == "d" && a.sealedSecret != nil && a.sealedSecret?.contains("s3cret") == false)
        #expect(try s.webhooks.secrets.unseal(a.sealedSecret!) == "s3cret")
        let b = try s.createWebhook(WebhookFields(name: "b", url: "http://127.0.0.1:9/b", events: [event], status: "DISABLED"))
        let c = try s.createWebhook(WebhookFields(name: "b", url: "http://127.0.0.1:9/c", events: [event]))  // names need not be unique
        let first = try s.listWebhooks(maxResults: 2, pageToken: nil)
        #expect(first.items.map(\.id) == Array([a.id, b.id, c.id].sorted().prefix(2)))  // one creation time (the fixture's clock): by id
        let rest = try s.listWebhooks(maxResults: 2, pageToken: first.nextPageToken)
        #expect(Set(first.items.map(\.id) + rest.items.map(\.id)) == [a.id, b.id, c.id] && rest.nextPageToken == nil)
        expectError(.invalidParameterValue, "max_results must be between 1 and 1000.") { _ = try s.listWebhooks(maxResults: 1001, pageToken: nil) }
        #expect(try s.listWebhooks(maxResults: 0, pageToken: nil).items.count == 3)  // 0 is the default, as MLflow reads it

        // Updates: empty name, URL and events change nothing; an empty description or secret clears it.
        let u = try s.updateWebhook(id: a.id, WebhookFields(name: "", url: "", events: [], description: "", secret: "", status: "DISABLED"))
        #expect(u.name == a.name && u.url == a.url && u.events == a.events && u.description == nil && u.sealedSecret == nil && u.status == .disabled)
        let v = try s.updateWebhook(id: a.id, WebhookFields(name: "renamed", events: [Self.modelEvents[2]], secret: "new"))
        #expect(try v.name == "renamed" && v.events == [Self.modelEvents[2]] && s.webhooks.secrets.unseal(v.sealedSecret!) == "new")
        expectError(.invalidParameterValue, "Webhook name 'bad name!' is invalid") { _ = try s.updateWebhook(id: a.id, WebhookFields(name: "bad name!")) }
        expectError(.resourceDoesNotExist, "Webhook with ID nope not found.") { _ = try s.updateWebhook(id: "nope", WebhookFields(name: "x")) }
        try s.deleteWebhook(id: a.id)
        expectError(.resourceDoesNotExist, "Webhook with ID \(a.id) not found.") { _ = try s.webhook(id: a.id) }
        expectError(.resourceDoesNotExist, "Webhook with ID \(a.id) not found.") { try s.deleteWebhook(id: a.id) }
        #expect(try s.listWebhooks(maxResults: nil, pageToken: nil).items.map(\.id).sorted() == [b.id, c.id].sorted())
    }

    /// Every registry event reaches the webhooks subscribed to it, signed, with MLflow's payload; a disabled webhook
    /// and one subscribed to other events get nothing.
    @Test(arguments: Backend.all) func registryEventsAreDeliveredSigned(_ backend: Backend) throws {
        let f = try Fixture("wh", backend: backend)
        let receiver = try LoopbackHTTPServer()
        let other = try LoopbackHTTPServer()
        defer { receiver.close(); other.close() }
        let s = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy()))
        _ = try s.createWebhook(WebhookFields(name: "all", url: "http://127.0.0.1:\(receiver.port)/hook", events: Self.modelEvents, secret: "k3y"))
        _ = try s.createWebhook(WebhookFields(name: "off", url: "http://127.0.0.1:\(other.port)/off", events: Self.modelEvents, status: "DISABLED"))
        _ = try s.createWebhook(WebhookFields(name: "prompts", url: "http://127.0.0.1:\(other.port)/p",
                                              events: [try WebhookEvent(.prompt, .created)]))

        _ = try s.createRegisteredModel(name: "m", tags: [KeyValue(key: "a", value: "b")], description: "md")
        _ = try s.createModelVersion("m", source: "s3://b/m", runID: nil, tags: [KeyValue(key: "t", value: "v")], runLink: nil, description: nil, modelID: nil)
        try s.setModelVersionTag("m", "1", key: "k", value: "v")
        try s.deleteModelVersionTag("m", "1", key: "k")
        try s.setModelAlias("m", alias: "champ", version: "1")
        try s.deleteModelAlias("m", alias: "champ")
        #expect(receiver.waitFor(6))
        #expect(Self.settled(s.webhooks))  // every delivery the writes queued is done: none went to `other`
        #expect(receiver.count == 6 && other.count == 0)

        var seen: [String: [String: Any]] = [:]
        for r in receiver.requests {
            #expect(r.head.hasPrefix("POST /hook HTTP/1.1"))
            #expect(r.header("Content-Type") == "application/json")
            let id = try #require(r.header("X-MLflow-Delivery-Id")), ts = try #require(r.header("X-MLflow-Timestamp"))
            // The signature, computed here as a receiver following MLflow's docs would.
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(ts).".utf8) + r.body, using: SymmetricKey(data: Data("k3y".utf8)))
            #expect(r.header("X-MLflow-Signature") == "v1," + Data(mac).base64EncodedString())
            let body = Self.json(r.body)
            seen["\(body["entity"] ?? "").\(body["action"] ?? "")"] = body["data"] as? [String: Any]
            #expect((body["timestamp"] as? String)?.hasSuffix("+00:00") == true)
        }
        #expect(Set(seen.keys) == Set(Self.modelEvents.map(\.description)))
        #expect(seen["registered_model.created"]?["tags"] as? [String: String] == ["a": "b"] && seen["registered_model.created"]?["description"] as? String == "md")
        let version = seen["model_version.created"]
        #expect(version?["version"] as? String == "1" && version?["source"] as? String == "s3://b/m" && version?["run_id"] is NSNull
                && version?["description"] is NSNull && version?["tags"] as? [String: String] == ["t": "v"])
        #expect(seen["model_version_tag.set"]?["value"] as? String == "v" && seen["model_version_tag.deleted"]?["value"] == nil)
        #expect(seen["model_version_alias.created"]?["version"] as? String == "1" && seen["model_version_alias.deleted"]?["version"] == nil)
    }

    /// Prompts fire prompt events, without the tags that mark them as prompts, the template apart.
    @Test func promptEvents() throws {
        let f = try Fixture("wh")
        let receiver = try LoopbackHTTPServer()
        defer { receiver.close() }
        let s = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy()))
        let events = try [(WebhookEntity.prompt, WebhookAction.created), (.promptVersion, .created), (.promptTag, .set), (.promptTag, .deleted),
                          (.promptAlias, .created), (.promptVersionTag, .set)].map { try WebhookEvent($0.0, $0.1) }
        _ = try s.createWebhook(WebhookFields(name: "p", url: "http://127.0.0.1:\(receiver.port)/p", events: events))
        let marks = [KeyValue(key: "mlflow.prompt.is_prompt", value: "true"), KeyValue(key: "_mlflow_prompt_type", value: "text")]
        _ = try s.createRegisteredModel(name: "greet", tags: marks + [KeyValue(key: "x", value: "y")], description: nil)
        _ = try s.createModelVersion("greet", source: "dummy-source", runID: nil,
                                     tags: marks + [KeyValue(key: "mlflow.prompt.text", value: "Hi {{name}}")], runLink: nil, description: "first", modelID: nil)
        try s.setRegisteredModelTag("greet", key: "owner", value: "me")
        try s.deleteRegisteredModelTag("greet", key: "owner")
        try s.setModelAlias("greet", alias: "prod", version: "1")
        try s.setModelVersionTag("greet", "1", key: "q", value: "1")
        #expect(receiver.waitFor(6))
        var seen: [String: [String: Any]] = [:]
        for r in receiver.requests {
            let body = Self.json(r.body)
            seen["\(body["entity"] ?? "").\(body["action"] ?? "")"] = body["data"] as? [String: Any]
        }
        #expect(seen["prompt.created"]?["tags"] as? [String: String] == ["x": "y"] && seen["prompt.created"]?["description"] as? String == "")
        #expect(seen["prompt_version.created"]?["template"] as? String == "Hi {{name}}" && seen["prompt_version.created"]?["tags"] as? [String: String] == [:])
        #expect(seen["prompt_tag.set"]?["key"] as? String == "owner" && seen["prompt_tag.deleted"] != nil)
        #expect(seen["prompt_alias.created"]?["alias"] as? String == "prod" && seen["prompt_version_tag.set"]?["version"] as? String == "1")
    }

    /// 429 and 5xx answers are retried; a receiver that keeps failing is given up on after the retries; the test
    /// endpoint reports what came back, whatever the webhook's status.
    @Test func retriesAndTests() throws {
        let f = try Fixture("wh")
        let flaky = try LoopbackHTTPServer { n in n < 2 ? (503, "busy") : (200, "ok") }
        let broken = try LoopbackHTTPServer { _ in (500, "down") }
        defer { flaky.close(); broken.close() }
        let delivery = WebhookDelivery(policy: Self.localPolicy(retries: 2))
        let s = try f.service(webhooks: delivery)
        _ = try s.createWebhook(WebhookFields(name: "flaky", url: "http://127.0.0.1:\(flaky.port)/", events: [Self.modelEvents[0]]))
        let b = try s.createWebhook(WebhookFields(name: "broken", url: "http://127.0.0.1:\(broken.port)/", events: [Self.modelEvents[0]], status: "DISABLED"))
        _ = try s.updateWebhook(id: b.id, WebhookFields(status: "ACTIVE"))
        _ = try s.createRegisteredModel(name: "m", tags: [], description: nil)
        #expect(Self.settled(delivery))
        #expect(flaky.count == 3 && broken.count == 3)  // the first try and 2 retries each
        #expect(delivery.delivered.load(ordering: .relaxed) == 1 && delivery.failed.load(ordering: .relaxed) == 1)

        _ = try s.updateWebhook(id: b.id, WebhookFields(status: "DISABLED"))
        let t = try s.testWebhook(id: b.id, event: try WebhookEvent(.promptAlias, .deleted))
        #expect(!t.success && t.responseStatus == 500 && t.responseBody == "down" && t.errorMessage == nil)
        let body = Self.json(broken.requests.last!.body)
        #expect(body["entity"] as? String == "prompt_alias" && (body["data"] as? [String: String]) == ["name": "example_prompt", "alias": "example_alias"])
        let gone = try s.updateWebhook(id: b.id, WebhookFields(url: "http://127.0.0.1:1/"))
        let refused = try s.testWebhook(id: gone.id, event: nil)
        #expect(!refused.success && refused.responseStatus == nil && refused.errorMessage?.hasPrefix("Failed to test webhook: ") == true)
    }

    /// By default only `https` to public addresses, checked when saved and again when delivered.
    @Test func privateAddressesAreRefused() throws {
        let f = try Fixture("wh")
        var https = WebhookPolicy()
        https.timeoutSeconds = 2
        let s = try f.service(webhooks: WebhookDelivery(policy: https))
        let e = [Self.modelEvents[0]]
        expectError(.invalidParameterValue, "Invalid webhook URL scheme: 'http'. Allowed schemes are: https.") {
            _ = try s.createWebhook(WebhookFields(name: "a", url: "http://example.com/", events: e))
        }
        for (url, message) in [("https://127.0.0.1/x", "'127.0.0.1' resolves to 127.0.0.1."), ("https://localhost/x", "'localhost' resolves to"),
                               ("https://[::1]/x", "'::1' resolves to ::1."), ("https://169.254.169.254/latest", "resolves to 169.254.169.254"),
                               ("https://127.1/", "is not a canonical IP address literal"), ("https://[::ffff:10.0.0.1]/", "resolves to")] {
            expectError(.invalidParameterValue, message) { _ = try s.createWebhook(WebhookFields(name: "a", url: url, events: e)) }
        }
        // Saved while private addresses were allowed, refused at delivery once they are not.
        let receiver = try LoopbackHTTPServer()
        defer { receiver.close() }
        let open = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy()))
        let h = try open.createWebhook(WebhookFields(name: "a", url: "http://127.0.0.1:\(receiver.port)/", events: e))
        var strict = Self.localPolicy()
        strict.allowPrivateAddresses = false
        let reports = Mutex<[String]>([])
        let closed = try f.service(webhooks: WebhookDelivery(policy: strict, report: { m in reports.withLock { $0.append(m) } }))
        _ = try closed.createRegisteredModel(name: "m", tags: [], description: nil)
        #expect(Self.settled(closed.webhooks))
        #expect(receiver.count == 0)
        #expect(reports.withLock { $0 }.contains { $0.contains(h.id) && $0.contains("non-public") })
    }

    @Test func globalAddresses() {
        let global = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888"]
        let local = ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "0.0.0.0", "169.254.169.254", "100.64.0.1",
                     "198.18.0.1", "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
                     "::ffff:10.0.0.1", "2002:0a00:0001::", "64:ff9b::a00:1", "2001:db8::1"]
        for a in global { #expect(IPAddress(a)?.isGlobal == true, "\(a)") }
        for a in local { #expect(IPAddress(a)?.isGlobal == false, "\(a)") }
        #expect(IPAddress("::ffff:8.8.8.8")?.isGlobal == true && IPAddress("172.32.0.1")?.isGlobal == true)
    }

    /// A secret sealed under one key opens only under it; a delivery whose secret cannot be opened is not sent
    /// unsigned. The key comes from the environment or a file the first start writes (mode 0600).
    @Test func secretsAtRest() throws {
        let f = try Fixture("wh")
        let receiver = try LoopbackHTTPServer()
        defer { receiver.close() }
        let s = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy()))
        _ = try s.createWebhook(WebhookFields(name: "a", url: "http://127.0.0.1:\(receiver.port)/", events: [Self.modelEvents[0]], secret: "k"))
        let reports = Mutex<[String]>([])
        let other = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy(), secrets: .ephemeral(),
                                                            report: { m in reports.withLock { $0.append(m) } }))
        _ = try other.createRegisteredModel(name: "m", tags: [], description: nil)
        #expect(Self.settled(other.webhooks))
        #expect(receiver.count == 0 && reports.withLock { $0 }.contains { $0.contains("sealed under another key") && $0.contains(other.webhooks.secrets.fingerprint) })
        #expect(try other.webhookSecretsUnderOtherKeys().count == 1)  // what a server that starts with another key warns of

        let dir = f.dir + "/keys"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let k1 = try WebhookSecrets.load(dataDirectory: dir, environment: [:])
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/" + WebhookSecrets.fileName)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let sealed = try k1.seal("x")
        #expect(try WebhookSecrets.load(dataDirectory: dir, environment: [:]).unseal(sealed) == "x")
        let env = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        #expect(throws: TrackingError.self) { _ = try WebhookSecrets.load(dataDirectory: dir, environment: [WebhookSecrets.environmentVariable: env]).unseal(sealed) }
        #expect(throws: TrackingError.self) { _ = try WebhookSecrets.load(dataDirectory: dir, environment: [WebhookSecrets.environmentVariable: "short"]) }
        // Cluster members derive one key from the secret they share, whatever their data directories hold.
        let m1 = try WebhookSecrets.load(dataDirectory: dir, clusterSecret: "cluster-secret-0123456789", environment: [:])
        let m2 = try WebhookSecrets.load(dataDirectory: f.dir, clusterSecret: "cluster-secret-0123456789", environment: [:])
        #expect(try m1.fingerprint == m2.fingerprint && m1.fingerprint != k1.fingerprint && m2.unseal(m1.seal("y")) == "y")
        #expect(try WebhookSecrets.load(dataDirectory: dir, clusterSecret: "another-secret-0123456789", environment: [:]).fingerprint != m1.fingerprint)
    }

    /// Servers sharing a database see each other's webhooks at once: one saves it, the other's registry write
    /// delivers to it (no cache to wait out).
    @Test func anotherServersWebhookFiresAtOnce() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("wh", backend: .postgres)
        let receiver = try LoopbackHTTPServer()
        defer { receiver.close() }
        let key = WebhookSecrets.ephemeral()
        let a = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy(), secrets: key))
        let b = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy(), secrets: key))
        let h = try a.createWebhook(WebhookFields(name: "a", url: "http://127.0.0.1:\(receiver.port)/", events: [Self.modelEvents[0]], secret: "s"))
        _ = try b.createRegisteredModel(name: "m1", tags: [], description: nil)
        #expect(receiver.waitFor(1) && receiver.requests[0].header("X-MLflow-Signature")?.hasPrefix("v1,") == true)
        _ = try a.updateWebhook(id: h.id, WebhookFields(status: "DISABLED"))
        _ = try b.createRegisteredModel(name: "m2", tags: [], description: nil)
        #expect(Self.settled(b.webhooks) && receiver.count == 1)
    }

    /// A redirect is the delivery's answer (a failure, not followed: a public receiver cannot send the server on to
    /// a private address); credentials in the URL go as Basic authentication and into no message.
    @Test func redirectsAndCredentials() throws {
        let f = try Fixture("wh")
        let elsewhere = try LoopbackHTTPServer()
        let redirecting = try LoopbackHTTPServer { _ in (302, "") }
        defer { elsewhere.close(); redirecting.close() }
        let reports = Mutex<[String]>([])
        let s = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy(retries: 0), report: { m in reports.withLock { $0.append(m) } }))
        _ = try s.createWebhook(WebhookFields(name: "r", url: "http://127.0.0.1:\(redirecting.port)/hook", events: [Self.modelEvents[0]]))
        _ = try s.createWebhook(WebhookFields(name: "c", url: "http://alice:s3cr%40t@127.0.0.1:\(elsewhere.port)/in?token=abc", events: [Self.modelEvents[0]]))
        _ = try s.createRegisteredModel(name: "m", tags: [], description: nil)
        #expect(Self.settled(s.webhooks))
        #expect(s.webhooks.activity.delivered == 1 && s.webhooks.activity.failed == 1)
        #expect(reports.withLock { $0 }.contains { $0.contains("302") && $0.contains("not followed") })
        #expect(elsewhere.count == 1 && elsewhere.requests[0].header("Authorization") == "Basic " + Data("alice:s3cr@t".utf8).base64EncodedString())
        #expect(elsewhere.requests[0].head.hasPrefix("POST /in?token=abc HTTP/1.1"))
        // A failure's message names the URL without its credentials or query.
        let dead = try s.createWebhook(WebhookFields(name: "d", url: "http://alice:s3cr%40t@127.0.0.1:1/x?token=abc", events: [Self.modelEvents[0]]))
        let t = try s.testWebhook(id: dead.id, event: nil)
        let message = try #require(t.errorMessage)
        #expect(!t.success && !message.contains("s3cr") && !message.contains("token") && !message.contains("alice"))
    }

    /// `connectTo` (what pins a delivery to the address checked) connects there whatever the name resolves to.
    @Test func pinnedConnections() throws {
        let receiver = try LoopbackHTTPServer()
        defer { receiver.close() }
        let client = BlockingHTTPClient(service: "pinned", connectTo: ["pinned.invalid": "127.0.0.1"], redirects: false)
        defer { client.close() }
        let a = try client.send(.POST, "http://pinned.invalid:\(receiver.port)/p", headers: [:], body: Array("x".utf8), retry: .once)
        #expect(a.status == 200 && receiver.requests.first?.header("Host") == "pinned.invalid:\(receiver.port)")
        var https = WebhookPolicy()
        https.timeoutSeconds = 2
        #expect(try WebhookTarget.check("https://8.8.8.8/x", policy: https).address == "8.8.8.8")
        #expect(try WebhookTarget.check("https://1a.de/x", policy: Self.localPolicy()).host == "1a.de")  // a name, not a number
    }

    /// A long answer is read, kept up to 64 KiB, and counts by its status; secrets move from one key to another
    /// (`tally cluster migrate`), those under a third key left alone.
    @Test func longAnswersAndResealing() throws {
        let f = try Fixture("wh")
        let chatty = try LoopbackHTTPServer { _ in (200, String(repeating: "x", count: 200_000)) }
        defer { chatty.close() }
        let s = try f.service(webhooks: WebhookDelivery(policy: Self.localPolicy()))
        let h = try s.createWebhook(WebhookFields(name: "c", url: "http://127.0.0.1:\(chatty.port)/", events: [Self.modelEvents[0]], secret: "k"))
        _ = try s.createRegisteredModel(name: "m", tags: [], description: nil)
        #expect(Self.settled(s.webhooks) && s.webhooks.activity.delivered == 1 && s.webhooks.activity.failed == 0)
        let t = try s.testWebhook(id: h.id, event: nil)
        #expect(t.success && t.responseBody?.utf8.count == WebhookDelivery.answerLimit)

        let cluster = WebhookSecrets.ephemeral(), third = WebhookSecrets.ephemeral()
        let other = try s.createWebhook(WebhookFields(name: "o", url: "http://127.0.0.1:9/", events: [Self.modelEvents[0]]))
        var foreign = other
        foreign.sealedSecret = try third.seal("t")
        #expect(try s.metadata.replaceWebhook(foreign))
        #expect(try s.webhooks.secrets.reseal(in: s.metadata, under: cluster) == 1)
        let after = Dictionary(uniqueKeysWithValues: try s.metadata.webhooks(id: nil).map { ($0.id, $0.sealedSecret!) })
        #expect(try cluster.unseal(after[h.id]!) == "k" && third.unseal(after[other.id]!) == "t")
        #expect(try s.webhooks.secrets.reseal(in: s.metadata, under: cluster) == 0)  // nothing left under the old key
    }
}
