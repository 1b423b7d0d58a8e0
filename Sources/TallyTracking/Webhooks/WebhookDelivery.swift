import Dispatch
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Posts webhook events as MLflow 3 does: a JSON body `{"entity", "action", "timestamp", "data"}`, the headers
/// `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` and, with a secret, `X-MLflow-Signature`
/// (``WebhookSecrets/signature(secret:deliveryID:timestamp:body:)``). Deliveries run in the background, at most
/// ``workers`` at a time, and never delay the registry write that caused them; 429s, 5xx answers, connections
/// refused or dropped and tries out of time are retried (``WebhookPolicy/retries``). A delivery is done when answered
/// 2xx. The URL is checked again on every delivery, and the request connects to the address the check resolved,
/// without following redirects.
public final class WebhookDelivery: Sendable {
    /// Where and how deliveries may go.
    public let policy: WebhookPolicy
    /// The key that opens the webhooks' secrets.
    public let secrets: WebhookSecrets
    /// Where failures are reported (the server's log).
    let report: @Sendable (String) -> Void
    /// This service's deliveries running or waiting.
    let running = Atomic<Int>(0)
    /// Concurrent deliveries, process-wide (MLflow's `MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS` default).
    public static let workers = 10
    /// Deliveries waiting beyond which new ones are dropped (and reported): a receiver that hangs cannot make the
    /// server hold events without bound (a server has one delivery service: its service's).
    public static let backlog = 10_000
    /// Deliveries answered 2xx, and those that failed or were dropped.
    let delivered = Atomic<Int>(0), failed = Atomic<Int>(0)

    /// Deliveries so far, for `/metrics`.
    public struct Activity: Sendable {
        /// Answered 2xx.
        public var delivered: Int
        /// Failed: an error answer after the retries, no answer, refused by the address check, or dropped.
        public var failed: Int
        /// Waiting or being sent.
        public var pending: Int
    }

    /// Deliveries so far.
    public var activity: Activity {
        Activity(delivered: delivered.load(ordering: .relaxed), failed: failed.load(ordering: .relaxed), pending: pending)
    }

    /// A delivery service.
    public init(policy: WebhookPolicy = WebhookPolicy(), secrets: WebhookSecrets = .ephemeral(), report: @escaping @Sendable (String) -> Void = { _ in }) {
        self.policy = policy
        self.secrets = secrets
        self.report = report
    }

    /// Sends `event` with `data` (a JSON object's text) to each of `hooks` in the background.
    func deliver(_ event: WebhookEvent, data: String, to hooks: [Webhook]) {
        for hook in hooks {
            guard running.add(1, ordering: .relaxed).newValue <= Self.backlog else {
                running.subtract(1, ordering: .relaxed)
                failed.add(1, ordering: .relaxed)
                report("Webhook \(hook.id) (\(hook.name)): \(event) dropped, \(Self.backlog) deliveries already waiting")
                continue
            }
            Self.pool.submit { [self] in
                defer { running.subtract(1, ordering: .relaxed) }
                do {
                    let answer = try send(hook, event: event, data: data)
                    if (200..<300).contains(answer.status) {
                        delivered.add(1, ordering: .relaxed)
                    } else {
                        failed.add(1, ordering: .relaxed)
                        report("Webhook \(hook.id) (\(hook.name)): \(event) answered \(Self.describe(answer))")
                    }
                } catch {
                    failed.add(1, ordering: .relaxed)
                    report("Webhook \(hook.id) (\(hook.name)): \(event) not delivered: \(Self.reason(error))")
                }
            }
        }
    }

    /// The process's delivery threads: ``workers`` of them, started on the first delivery, taking jobs in order.
    /// Threads of their own, not Dispatch's or the cooperative pool's, because a delivery blocks for its answer.
    static let pool = Pool()

    final class Pool: Sendable {
        let jobs = Mutex<(queue: [@Sendable () -> Void], head: Int)>(([], 0))
        let ready = DispatchSemaphore(value: 0)
        let started = Atomic<Bool>(false)

        func submit(_ job: @escaping @Sendable () -> Void) {
            jobs.withLock { $0.queue.append(job) }
            if !started.exchange(true, ordering: .acquiringAndReleasing) {
                for _ in 0..<WebhookDelivery.workers { Thread.detachNewThread { [self] in work() } }
            }
            ready.signal()
        }

        private func work() {
            while true {
                ready.wait()
                let job = jobs.withLock { j -> (@Sendable () -> Void)? in
                    guard j.head < j.queue.count else { return nil }
                    let job = j.queue[j.head]
                    j.head += 1
                    if j.head > 1024 && j.head * 2 > j.queue.count {  // drop the taken jobs now and then
                        j.queue.removeFirst(j.head)
                        j.head = 0
                    }
                    return job
                }
                job?()
            }
        }
    }

    /// Deliveries running or waiting (tests wait for none).
    public var pending: Int { running.load(ordering: .relaxed) }

    /// An error's message without the error code.
    static func reason(_ error: any Error) -> String { (error as? TrackingError)?.message ?? "\(error)" }

    /// A status, and where a redirect pointed (its scheme, host and port only; not followed: see
    /// ``send(_:event:data:)``).
    static func describe(_ a: BlockingHTTPClient.Answer) -> String {
        guard (300..<400).contains(a.status) else { return "\(a.status)" }
        let location = a.headers.first(name: "Location").map { WebhookTarget.origin(of: $0) } ?? "nowhere"
        return "\(a.status), a redirect to \(location) (not followed)"
    }

    /// The most of an answer's body read (a test shows it; a delivery only needs the status).
    static let answerLimit = 64 << 10

    /// Posts one delivery and waits for its answer (after the retries). Credentials in the URL (`user:pass@`) go as
    /// Basic authentication, as MLflow's client sends them. Messages name the URL by its scheme, host and port only:
    /// credentials, paths (Slack's and Teams' hold their tokens) and queries stay out of logs.
    func send(_ hook: Webhook, event: WebhookEvent, data: String) throws -> BlockingHTTPClient.Answer {
        let shown = WebhookTarget.origin(of: hook.url)
        do {
            let target = try WebhookTarget.check(hook.url, policy: policy)
            do {
                return try post(target, hook, event: event, data: data)
            } catch let e as TrackingError {
                throw TrackingError(e.code, e.message.replacingOccurrences(of: target.plainURL, with: shown))
            }
        } catch let e as TrackingError {
            throw TrackingError(e.code, e.message.replacingOccurrences(of: WebhookTarget.repr(hook.url), with: shown)
                .replacingOccurrences(of: hook.url, with: shown))
        }
    }

    private func post(_ target: WebhookTarget, _ hook: Webhook, event: WebhookEvent, data: String) throws -> BlockingHTTPClient.Answer {
        let body = Array(("{\"entity\": \(JSONText.quote(event.entity.rawValue)), \"action\": \(JSONText.quote(event.action.rawValue)), "
            + "\"timestamp\": \(JSONText.quote(Self.isoNow())), \"data\": \(data)}").utf8)
        let deliveryID = UUID().uuidString.lowercased(), timestamp = String(Int64(Date().timeIntervalSince1970))
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("X-MLflow-Delivery-Id", deliveryID), ("X-MLflow-Timestamp", timestamp),
                                   ("User-Agent", "tally-webhooks")])
        if let auth = target.basicAuthorization { headers.add(name: "Authorization", value: auth) }
        if let sealed = hook.sealedSecret {
            headers.add(name: "X-MLflow-Signature", value: WebhookSecrets.signature(secret: try secrets.unseal(sealed), deliveryID: deliveryID,
                                                                                    timestamp: timestamp, body: body))
        }
        let client = BlockingHTTPClient(service: "webhook \(hook.name)", connectTimeout: .seconds(min(policy.timeoutSeconds, 10)),
                                        readTimeout: .seconds(policy.timeoutSeconds), attempts: policy.retries + 1,
                                        connectTo: target.address.map { [target.host: $0] } ?? [:], redirects: false)
        defer { client.close() }
        return try client.send(.POST, target.plainURL, headers: headers, body: body,
                               // A Retry-After is waited for, but no longer than a try may take: a receiver cannot hold
                               // one of the delivery threads (or a test's) much longer than its retries already do.
                               retry: BlockingHTTPClient.Retry(statuses: [429, 500, 502, 503, 504], dropped: true, unreachable: true,
                                                               retryAfterCap: Double(policy.timeoutSeconds)),
                               within: .seconds(policy.timeoutSeconds), answerLimit: Self.answerLimit)
    }

    /// A test delivery of `event` with MLflow's example payload (`webhooks/{id}/test`): what the endpoint answered, or
    /// why it did not.
    func test(_ hook: Webhook, event: WebhookEvent) -> WebhookTestResult {
        do {
            let a = try send(hook, event: event, data: WebhookPayload.example(event))
            return WebhookTestResult(success: (200..<300).contains(a.status), responseStatus: Int(a.status),
                                     responseBody: String(decoding: a.body, as: UTF8.self),
                                     errorMessage: (300..<400).contains(a.status) ? "Answered \(Self.describe(a))" : nil)
        } catch {
            return WebhookTestResult(success: false, responseStatus: nil, responseBody: nil, errorMessage: "Failed to test webhook: \(Self.reason(error))")
        }
    }

    /// Now as Python's `datetime.now(timezone.utc).isoformat()`: `2026-12-05T00:25:18.380525+00:00`.
    static func isoNow() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec), parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let micros = String(ts.tv_nsec / 1000)
        // Python leaves the fraction out when it is zero.
        let fraction = micros == "0" ? "" : "." + String(repeating: "0", count: 6 - micros.count) + micros
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
            + fraction + "+00:00"
    }
}
