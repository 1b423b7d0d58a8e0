import Hummingbird
import NIOCore
import TallyTracking

/// The context of every request: Hummingbird's core storage plus who is calling. The access gate fills ``caller``
/// and ``grants`` before a route runs; with access control off they stay unrestricted.
struct TallyRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The peer's address (for counting failed logins per address).
    let remoteAddress: String?
    /// The authenticated caller (``Caller/unrestricted`` with access control off).
    var caller: Caller = .unrestricted
    /// What the caller may do.
    var grants: Grants = .unrestricted
    /// A check the JSON handler makes once it has read the request (its fields name the resource).
    var pending: Requirement?
    /// Set when another server of the cluster forwarded the request and its signature checked out
    /// (``ForwardedRequestMiddleware``): the caller it vouches for.
    var forwarded: ClusterAuth.Forwarded?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress
    }
}
