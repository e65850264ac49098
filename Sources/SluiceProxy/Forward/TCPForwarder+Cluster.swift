import NIOCore
import SluiceCore

// An opaque TCP or TLS connection to a cluster with a DestinationRule traffic policy: its
// endpoint chosen by the cluster's load balancer (ejected ones last), its upstream connection
// counted against `tcp.maxConnections` — past it (and the pending requests) the app's
// connection is closed with `UO`, as Envoy's tcp_proxy does on a pool overflow — and its
// connect failures fed to outlier detection.
extension TCPForwarder {
    func forward(
        downstream: any Channel,
        target: UpstreamTarget,
        buffered: ByteBuffer,
        cluster: ClusterState,
        onGlued: @escaping () -> Void
    ) {
        let eventLoop = downstream.eventLoop
        let bound = NIOLoopBound((forwarder: self, onGlued: onGlued), eventLoop: eventLoop)
        self.runtime.connector.addresses(for: target, gateway: self.config.gateway, on: eventLoop).assumeIsolated().whenComplete { result in
            let forwarder = bound.value.forwarder
            switch result {
            case .failure(let error):
                forwarder.connectFailed(error as? UpstreamError ?? .resolution("\(error)"), downstream: downstream, buffered: buffered)
            case .success(let addresses):
                let ordered = cluster.order(addresses)
                let dial: @Sendable () -> Void = {
                    let (forwarder, onGlued) = bound.value
                    forwarder.dialCounted(
                        downstream: downstream, target: target, buffered: buffered, cluster: cluster, ordered: ordered, onGlued: onGlued)
                }
                switch cluster.openConnection(ClusterState.Task(id: 0, eventLoop: eventLoop, run: dial)) {
                case .open: dial()
                case .pending: break
                case .overflow: forwarder.connectFailed(.overflow, downstream: downstream, buffered: buffered)
                }
            }
        }
    }

    /// Dials with a connection slot taken; the slot is given back when the upstream closes.
    private func dialCounted(
        downstream: any Channel, target: UpstreamTarget, buffered: ByteBuffer, cluster: ClusterState, ordered: [SocketAddress],
        onGlued: @escaping () -> Void
    ) {
        guard downstream.isActive else {
            // The app left while waiting for a slot: the slot goes on to the next waiter.
            cluster.connectionClosed()
            return
        }
        let endpoints = EndpointChoice(ordered: ordered) { cluster.record(.connectFailure, endpoint: $0.logDescription) }
        let timeout = cluster.limits.connectTimeout ?? self.config.limits.connectTimeout
        self.runtime.connector.connect(
            target: target, gateway: self.config.gateway, tls: self.decision.upstreamTLS, eventLoop: downstream.eventLoop,
            connectTimeout: TimeAmount(timeout), endpoints: endpoints
        ) { result in
            switch result {
            case .failure(let failure):
                cluster.connectionClosed()
                self.connectFailed(failure, downstream: downstream, buffered: buffered)
            case .success(let upstream):
                upstream.channel.closeFuture.whenComplete { _ in cluster.connectionClosed() }
                self.glue(downstream: downstream, upstream: upstream, buffered: buffered, onGlued: onGlued)
            }
        }
    }
}
