import NIOCore
import SluiceCore

/// One request/response pair on a downstream connection: its state machine and what its
/// log line needs.
final class HTTPExchange {
    /// Unchecked: the exchange is touched only from its connection's event loop, and every
    /// access is a short inlined mutation with no call back into it; the dynamic exclusivity
    /// checks a class property otherwise gets cost ~250 instructions a keep-alive request
    /// (Benchmarks/results/callgrind-keepalive-session.md).
    @exclusivity(unchecked) var state: HTTPExchangeStateMachine
    var record: AccessLogRecord
    let start: NIODeadline
    /// The request's `HTTP/1.x` minor version: responses go back in the same version.
    let requestVersionMinor: Int
    let isHEAD: Bool
    var upstreamRequestSent: NIODeadline?
    /// The response deadline was set when the request first went out (retries keep it).
    var responseDeadlineArmed = false
    /// The request asked to switch protocols (WebSocket `Upgrade`); a 101 turns the
    /// connection into a tunnel.
    var upgrade: String?
    /// TLS to open on a new upstream connection (the decision's `upstreamTLS`).
    var upstreamTLS: UpstreamTLS?
    /// How a refusal is answered when the route decided it (a redirect, 404 NR for a
    /// VirtualService host no route matches, 503 NC); nil: the role's default refusal.
    var routeAnswer: RouteLocalAnswer?
    /// The route's `timeout`, replacing the configured upstream timeout for this request.
    var routeTimeout: TimeAmount?
    /// The route's `headers.response`.
    var responseHeaders: HeaderEdits?
    /// The route's retry policy and what it needs to try again; nil: no retries.
    var retries: ExchangeRetries?
    /// Istio's default retry policy applies (a registered host no VirtualService routes). It
    /// retries connect failures only, which resend nothing, so it is armed at the first one
    /// rather than for every request.
    var defaultRetries = false
    /// The DestinationRule cluster the request counts against (HTTPProxyHandler+Cluster);
    /// nil without a traffic policy.
    var cluster: ClusterState?
    /// The endpoint (`ip:port`) the current try went to, under a cluster.
    var endpoint: String?
    /// A retry of it is counted in the cluster's maxRetries.
    var retryCounted = false
    /// The route's perTryTimeout timer for the try in flight.
    var perTryTimer: Scheduled<Void>?

    init(phase: HTTPExchangeStateMachine.Phase, record: AccessLogRecord, versionMinor: Int, keepAlive: Bool, isHEAD: Bool) {
        self.state = HTTPExchangeStateMachine(phase: phase, keepAlive: keepAlive)
        self.record = record
        self.start = .now()
        self.requestVersionMinor = versionMinor
        self.isHEAD = isHEAD
    }

    /// Takes `record` (left as an empty record) rather than copying it: a copy retains each
    /// of its strings and the caller's version is released right after. The head is only read.
    convenience init(phase: HTTPExchangeStateMachine.Phase, taking record: inout AccessLogRecord, head: borrowing HTTP1Head) {
        self.init(
            phase: phase,
            record: AccessLogRecord(),
            versionMinor: head.versionMinor,
            keepAlive: head.isKeepAlive,
            isHEAD: head.knownMethod == .head
        )
        swap(&self.record, &record)
    }

    var keepAlive: Bool { self.state.keepAlive }
    var isDone: Bool { self.state.isDone }
}
