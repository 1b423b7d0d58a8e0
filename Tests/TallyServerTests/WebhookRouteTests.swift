import Foundation
import Testing
import TallyTracking
@testable import TallyServer

/// The webhook routes in process: what they render (never the secret; events in the API's spelling), the server's
/// flags reaching the service's policy, and bad bodies answered 400 in MLflow's error JSON, never a 5xx.
@Suite struct WebhookRouteTests {
    @Test func renderedAndRefusedAsMLflowDoes() async throws {
        try await LiveServer.with({ c in c.webhooks.schemes = ["http", "https"]; c.webhooks.allowPrivateAddresses = true }) { s in
            for p in RouteTests.prefixes {
                let empty = try await s.get(p + "/webhooks")
                #expect(empty.status == 200 && empty.text == "{}")
                let made = try await s.post(p + "/webhooks", #"""
                    {"name": "ci", "url": "http://127.0.0.1:9/h", "secret": "s3cret", "description": "d",
                     "events": [{"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}, {"entity": "REGISTERED_MODEL", "action": "CREATED"}]}
                    """#)
                let hook = try #require(made.json["webhook"] as? [String: Any], "\(made.text)")
                #expect(!made.text.contains("s3cret") && hook["secret"] == nil && hook["status"] as? String == "ACTIVE")
                #expect((hook["events"] as? [[String: String]]) == [["entity": "MODEL_VERSION_ALIAS", "action": "CREATED"],
                                                                     ["entity": "REGISTERED_MODEL", "action": "CREATED"]])
                let id = try #require(hook["webhook_id"] as? String)
                let patched = try await s.request("PATCH", p + "/webhooks/\(id)", body: Array(#"{"status": "DISABLED", "description": ""}"#.utf8))
                let after = try #require(patched.json["webhook"] as? [String: Any], "\(patched.text)")
                #expect(after["status"] as? String == "DISABLED" && after["description"] == nil)
                let listed = try await s.get(p + "/webhooks?max_results=1")
                #expect((listed.json["webhooks"] as? [[String: Any]])?.count == 1)
                for (method, path, body, fragment) in [
                    ("POST", "/webhooks", #"{"name": "x", "url": "http://a", "events": [1]}"#, "Invalid value [1] for parameter 'events'"),
                    ("POST", "/webhooks", #"{"name": "x", "url": "http://a", "events": [{"entity": "NOPE", "action": "SET"}]}"#, "Invalid webhook event entity"),
                    ("POST", "/webhooks", #"{"name": 5, "url": "http://a", "events": []}"#, "for parameter 'name'"),
                    ("POST", "/webhooks/\(id)/test", #"{"event": "MODEL_VERSION"}"#, "for parameter 'event'"),
                    ("PATCH", "/webhooks/no-such", #"{"name": "x"}"#, "Webhook with ID no-such not found."),
                ] {
                    let r = try await s.request(method, p + path, body: Array(body.utf8))
                    #expect((400..<500).contains(r.status) && (r.json["message"] as? String)?.contains(fragment) == true, "\(path) \(body): \(r.text)")
                }
                let deleted = try await s.request("DELETE", p + "/webhooks/\(id)")
                #expect(deleted.status == 200 && deleted.text == "{}")
            }
        }
    }
}
