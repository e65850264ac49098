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
        let upstreamProtocol = HTTP2UpstreamProtocol.choose(
            portProtocol: decision.match?.port.protocol, role: self.runtime.role, toIstioGateway: toIstioGateway, pool: pool)
        self.dial(stream, HTTP2RelayStream.Dial(
            target: target, tls: tls, upstreamProtocol: upstreamProtocol, config: config,
            routeBox: decision.routeBox, registered: decision.match != nil))
    }

    /// Opens (or takes) the upstream for `stream` as `dial` says. A stream that has to wait for
    /// a connection keeps `dial`, for a retry if the connection fails; one that takes a pooled
    /// connection that is up (every stream but a connection's first) keeps nothing.
    func dial(_ stream: HTTP2RelayStream, _ dial: HTTP2RelayStream.Dial) {
        switch dial.upstreamProtocol {
        case .http1:
            stream.dial = dial
            self.connectHTTP1(stream, target: dial.target, tls: dial.tls, cluster: stream.cluster, config: dial.config)
        case .http2:
            if stream.cluster == nil, let relay = self.pool.usableConnection(to: dial.target, tls: dial.tls) {
                // No completion closure either.
                self.connected(stream, result: .success(relay))
                return
            }
            stream.dial = dial
            self.pool.connection(to: dial.target, tls: dial.tls, cluster: stream.cluster, config: dial.config, window: self.window) { [self] result in
                self.connected(stream, result: result.map { $0 as any HTTP2StreamUpstream })
            }
        }
    }

    /// A connect failure of `stream`'s upstream, under its retry policy (the route's `retries`,
    /// else Istio's default for a registered host): true when it is dialled again. Nothing of
    /// the stream left, so any method may be; past the attempts the log gets Envoy's `URX`.
    /// DestinationRule `maxRetries` counts the retries in flight, as for HTTP/1.
    func retriedConnect(_ stream: HTTP2RelayStream) -> Bool {
        guard let dial = stream.dial, let policy = dial.retryPolicy else { return false }
        let method = stream.record.method ?? ""
        guard policy.shouldRetry(after: .connectFailure, attempt: stream.tries, method: method, bodyAlreadySent: false) else {
            if policy.shouldRetry(after: .connectFailure, attempt: 1, method: method, bodyAlreadySent: false) {
                stream.record.responseFlags.insert(.upstreamRetryLimitExceeded)
            }
            return false
        }
        if let cluster = stream.cluster {
            if stream.retryCounted { cluster.endRetry() }
            stream.retryCounted = cluster.startRetry()
            guard stream.retryCounted else { return false }
        }
        stream.tries += 1
        self.runtime.metrics.upstreamRetry(cluster: stream.record.upstreamCluster ?? "")
        self.dial(stream, dial)
        return true
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
        stream.dial = nil
        guard let cluster = stream.cluster else { return }
        stream.cluster = nil
        cluster.endRequest()
        if stream.retryCounted {
            stream.retryCounted = false
            cluster.endRetry()
        }
        guard let endpoint = stream.endpoint else { return }
        cluster.requestEnded(on: endpoint)
        if stream.record.responseCode > 0 { cluster.record(.status(stream.record.responseCode), endpoint: endpoint) }
    }
}
