import NIOCore
import NIOHPACK
import SluiceCore

// An allowed stream on its way upstream: AuthorizationPolicy first at the gateway (Envoy's
// RBAC filter runs before the router), then the cluster's protocol (HTTP2UpstreamProtocol),
// its DestinationRule `tls` and traffic policy (ClusterState: http2MaxRequests with Envoy's
// 503 UO, the load balancer's endpoint, outlier detection), then the connection: a stream of
// the event loop's shared HTTP/2 connection, or one HTTP/1.1 exchange.
extension HTTP2DownstreamRelay {
    /// At the gateway, the stream against the AuthorizationPolicies: on a denial it is
    /// answered 403 "RBAC: access denied" (gRPC: PERMISSION_DENIED) and true is returned.
    func authorizationDenied(
        _ stream: HTTP2RelayStream, headers: HPACKHeaders, authority: String, decision: Decision, config: ActiveConfig,
        connection: DownstreamConnection
    ) -> Bool {
        guard self.runtime.role == .gateway, !config.authorization.isEmpty else { return false }
        if case .deny = decision.action, decision.denial == .close { return false }
        var fields: [String: String] = [:]
        for (name, value, _) in headers where !name.hasPrefix(":") {
            fields[name] = fields[name].map { $0 + "," + value } ?? value
        }
        guard
            let denial = GatewayAuthorization.denial(
                runtime: self.runtime, config: config, connection: connection, host: authority,
                method: stream.record.method ?? "", path: stream.record.path ?? "", headers: fields)
        else { return false }
        stream.record.responseCodeDetails = denial.responseCodeDetails
        self.respondLocally(stream, status: 403, flag: nil, body: HTTP1LocalReply.rbacDeniedBody)
        return true
    }

    /// Sends an allowed stream (its first frames waiting in `.connecting`) towards `target`.
    func forward(_ stream: HTTP2RelayStream, to target: UpstreamTarget, decision: Decision, config: ActiveConfig) {
        // Through the box, as HTTPProxyHandler does: a read of `decision.route` copies the whole
        // selection out, and `decision.clusterPolicy` its policy; only a DestinationRule policy
        // gives a cluster state (see `ProxyClusters.state(for:route:)`).
        let routeBox = decision.routeBox
        if routeBox.map({ $0.selection.trafficPolicy != nil }) ?? decision.hasClusterPolicy,
           let cluster = self.runtime.clusters.state(for: decision, route: routeBox?.selection) {
            // DestinationRule connectionPool: past http2MaxRequests outstanding, 503 UO.
            guard cluster.startRequest() else {
                self.respondOverflow(stream)
                return
            }
            stream.cluster = cluster
        }
        let pool: ConnectionPoolSettings?
        if let routed = routeBox?.selection.trafficPolicy {
            pool = routed.connectionPool
        } else if decision.hasClusterPolicy {
            pool = decision.clusterPolicy?.policy.connectionPool
        } else {
            pool = nil
        }
        let toIstioGateway: Bool
        if case .gateway(_, _, .istio) = target { toIstioGateway = true } else { toIstioGateway = false }
        let tls = decision.upstreamTLS ?? UpstreamConnector.shorthandTLS(target, gateway: config.gateway)
        switch HTTP2UpstreamProtocol.choose(
            portProtocol: decision.match?.port.protocol, role: self.runtime.role, toIstioGateway: toIstioGateway, pool: pool) {
        case .http1:
            self.connectHTTP1(stream, target: target, tls: tls, cluster: stream.cluster, config: config)
        case .http2:
            if stream.cluster == nil, let relay = self.pool.usableConnection(to: target, tls: tls) {
                // The pooled connection is up (every stream but a connection's first): no completion closure.
                self.connected(stream, result: .success(relay))
                return
            }
            self.pool.connection(to: target, tls: tls, cluster: stream.cluster, config: config, window: self.window) { [self] result in
                self.connected(stream, result: result.map { $0 as any HTTP2StreamUpstream })
            }
        }
    }

    /// Envoy's answer to a stream a connectionPool limit refused: 503 UO, "reset reason:
    /// overflow", details `upstream_reset_before_response_started{overflow}`.
    func respondOverflow(_ stream: HTTP2RelayStream) {
        self.runtime.logger.info(
            "upstream overflow", metadata: ["cluster": "\(stream.record.upstreamCluster ?? "-")", "authority": "\(stream.record.authority ?? "-")"])
        stream.phase = .answered
        stream.record.responseCodeDetails = HTTPProxyHandler.overflowDetails
        self.respondLocally(stream, status: 503, flag: .upstreamOverflow, body: HTTP1LocalReply.resetBody(reason: "overflow"))
    }

    /// The stream is paired with `upstream`: its endpoint's outstanding count (LEAST_REQUEST).
    func clusterStreamStarted(_ stream: HTTP2RelayStream, on upstream: any HTTP2StreamUpstream) {
        guard let cluster = stream.cluster else { return }
        stream.endpoint = upstream.remoteText
        cluster.requestStarted(on: upstream.remoteText)
    }

    /// The stream is over: its outcome goes to outlier detection and what it held of its
    /// cluster is given back.
    func releaseCluster(_ stream: HTTP2RelayStream) {
        guard let cluster = stream.cluster else { return }
        stream.cluster = nil
        cluster.endRequest()
        guard let endpoint = stream.endpoint else { return }
        cluster.requestEnded(on: endpoint)
        if stream.record.responseCode > 0 { cluster.record(.status(stream.record.responseCode), endpoint: endpoint) }
    }
}
