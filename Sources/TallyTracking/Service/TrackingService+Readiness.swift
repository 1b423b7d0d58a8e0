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

    /// The longest a probe waits for the metadata database: past it the server answers not ready (a database that
    /// takes longer to answer one read is not one to send requests to). The other checks read the server's own
    /// state and never wait.
    public static let deadline = Duration.seconds(2)

    /// The metadata check of a probe that got no answer within `deadline`.
    public static func unanswered(within deadline: Duration = deadline) -> Check {
        let ms = deadline.totalNanoseconds / 1_000_000
        return Check(name: "metadata", failure: ms % 1000 == 0 ? "no answer within \(ms / 1000) s" : "no answer within \(ms) ms")
    }
}

extension TrackingService {
    /// Asks the metadata database for one read (``MetadataStore/ping()``): blocking, for as long as the database
    /// takes (a probe runs it apart, under its deadline).
    public func metadataReadiness() -> Readiness.Check {
        do {
            try metadata.ping()
            return .init(name: "metadata")
        } catch {
            return .init(name: "metadata", failure: "the metadata database does not answer", detail: "\(error)")
        }
    }

    /// `metadata`'s outcome with the checks of the server's own state, which never wait:
    /// - `metrics`: the metric store takes appends (``MetricStore/writeRefusal``);
    /// - `cluster`: this server's heartbeat renews its leases (``ClusterNode/heartbeatFailure``; without it, its runs
    ///   go to the other servers).
    public func readiness(metadata: Readiness.Check) -> Readiness {
        var checks = [metadata, .init(name: "metrics", failure: metrics.writeRefusal)]
        if let cluster {
            let failing = cluster.heartbeatFailure
            checks.append(.init(name: "cluster", failure: failing.map { _ in "the cluster heartbeat fails: this server's leases lapse" },
                                detail: failing))
        }
        return Readiness(checks: checks)
    }

    /// Every check, the metadata database's included (blocking).
    public func readiness() -> Readiness {
        readiness(metadata: metadataReadiness())
    }
}
