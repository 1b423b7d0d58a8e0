import TallyStore

/// Whether a server can take requests now: what `GET /ready` answers, for load balancers and orchestrators that send
/// traffic only to servers that can serve it (`/health` answers `OK` whenever the process answers at all).
public struct Readiness: Sendable, Equatable {
    /// One thing the server needs, and why it cannot have it now (`nil`: it can).
    public struct Check: Sendable, Equatable {
        /// `metadata`, `metrics` or `cluster`.
        public let name: String
        /// Why not, in words that name no host, path or credential: the probe is open to anyone. `nil`: ready.
        public let failure: String?
        /// The error behind ``failure``, for the server's own log.
        public let detail: String?

        /// A check that passed (`failure` `nil`) or failed.
        public init(name: String, failure: String? = nil, detail: String? = nil) {
            self.name = name
            self.failure = failure
            self.detail = detail
        }
    }

    /// The checks, in a fixed order: the metadata database, the metric store, the cluster (in cluster mode).
    public let checks: [Check]

    /// Whether every check passed.
    public var isReady: Bool { checks.allSatisfy { $0.failure == nil } }

    /// The longest a probe waits for the checks: past it the server answers not ready (a database that takes
    /// longer to answer one `SELECT` is not one to send requests to), naming the checks still waiting.
    public static let deadline = Duration.seconds(2)

    /// The checks of a probe that got no answer within ``deadline`` (each of `names` failed as still waiting).
    public static func timedOut(_ names: [String]) -> Readiness {
        Readiness(checks: names.map { Check(name: $0, failure: "no answer within \(deadline.components.seconds) s") })
    }

    /// The checks of a server shutting down (its blocking work no longer taken).
    public static func shuttingDown(_ names: [String]) -> Readiness {
        Readiness(checks: names.map { Check(name: $0, failure: "the server is shutting down") })
    }
}

extension TrackingService {
    /// The names of ``readiness()``'s checks, in its order.
    public var readinessCheckNames: [String] {
        cluster == nil ? ["metadata", "metrics"] : ["metadata", "metrics", "cluster"]
    }

    /// Checks what every request needs (blocking: the metadata database is asked once):
    /// - `metadata`: the metadata database answers a read (``MetadataStore/ping()``);
    /// - `metrics`: the metric store takes appends (open, its write-ahead log not closed by a failed fsync);
    /// - `cluster`: this server's heartbeat renews its leases (without it, its runs go to the other servers).
    public func readiness() -> Readiness {
        var checks: [Readiness.Check] = []
        do {
            try metadata.ping()
            checks.append(.init(name: "metadata"))
        } catch {
            checks.append(.init(name: "metadata", failure: "the metadata database does not answer", detail: "\(error)"))
        }
        checks.append(.init(name: "metrics", failure: metrics.writeRefusal))
        if let cluster {
            let failing = cluster.heartbeatFailure
            checks.append(.init(name: "cluster", failure: failing.map { _ in "the cluster heartbeat fails: this server's leases lapse" },
                                detail: failing))
        }
        return Readiness(checks: checks)
    }
}
