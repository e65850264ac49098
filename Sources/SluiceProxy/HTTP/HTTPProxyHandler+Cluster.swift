import Logging
import NIOCore
import SluiceCore

// A request to a cluster with a DestinationRule traffic policy: counted against its
// connectionPool limits (503 UO past them, as Envoy answers), its endpoint chosen by the
// cluster's load balancer, its outcome fed to outlier detection. The state is ClusterState's
// (shared by the event loops); here, the exchange's share of it.
extension HTTPProxyHandler {
    /// Envoy's `response_code_details` for a request refused by a circuit breaker.
    static let overflowDetails = "upstream_reset_before_response_started{overflow}"

    /// The cluster state a forwarded request counts against (see `ClusterStates.state(for:)`).
    func clusterState(for decision: Decision, route: RouteSelection?) -> ClusterState? {
        self.runtime.clusters.state(for: decision, route: route)
    }

    /// Envoy's answer to a request a connectionPool limit refused: 503, flag UO, "reset
    /// reason: overflow", details `upstream_reset_before_response_started{overflow}`.
    func respondOverflow(_ exchange: HTTPExchange, closeAfter: Bool, context: ChannelHandlerContext) {
        self.runtime.logger.info(
            "upstream overflow", metadata: ["cluster": "\(exchange.record.upstreamCluster ?? "-")",
                                            "authority": "\(exchange.record.authority ?? "-")"])
        exchange.state.failed()
        exchange.record.responseCodeDetails = Self.overflowDetails
        self.respondLocally(
            exchange, status: .serviceUnavailable, flag: .upstreamOverflow, body: HTTP1LocalReply.resetBody(reason: "overflow"),
            context: context, closeAfter: closeAfter)
    }

    /// A try goes out on `upstream`: its endpoint's outstanding count (LEAST_REQUEST).
    func clusterTryStarted(_ exchange: HTTPExchange, on upstream: any HTTPUpstream) {
        guard let cluster = exchange.cluster else { return }
        if let previous = exchange.endpoint { cluster.requestEnded(on: previous) }
        exchange.endpoint = upstream.remoteText
        cluster.requestStarted(on: upstream.remoteText)
    }

    /// What the try in flight came to, for outlier detection.
    func clusterTryOutcome(_ exchange: HTTPExchange, _ outcome: OutlierDetector.Outcome) {
        guard let cluster = exchange.cluster, let endpoint = exchange.endpoint else { return }
        cluster.record(outcome, endpoint: endpoint)
    }

    /// A retry is about to be made: false when the cluster's maxRetries are outstanding
    /// (Envoy's `upstream_rq_retry_overflow`: the request is not retried).
    func clusterAdmitsRetry(_ exchange: HTTPExchange) -> Bool {
        guard let cluster = exchange.cluster else { return true }
        if exchange.retryCounted {
            cluster.endRetry()
            exchange.retryCounted = false
        }
        guard cluster.startRetry() else { return false }
        exchange.retryCounted = true
        return true
    }

    /// The exchange is over: what it held of its cluster is given back.
    func releaseCluster(_ exchange: HTTPExchange) {
        exchange.perTryTimer?.cancel()
        exchange.perTryTimer = nil
        guard let cluster = exchange.cluster else { return }
        exchange.cluster = nil
        cluster.endRequest()
        if let endpoint = exchange.endpoint { cluster.requestEnded(on: endpoint) }
        if exchange.retryCounted { cluster.endRetry() }
    }
}
