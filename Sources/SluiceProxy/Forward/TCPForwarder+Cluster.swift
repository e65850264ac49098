import NIOCore
import SluiceCore

// An opaque TCP or TLS connection to a cluster with a DestinationRule traffic policy: its
// endpoint chosen by the cluster's load balancer (ejected ones last), its upstream connection
// counted against `tcp.maxConnections` — past it (and the pending requests) the app's
// connection is closed with `UO`, as Envoy's tcp_proxy does on a pool overflow — and its
// connect failures fed to outlier detection. The dialling is UpstreamConnector+Cluster's, shared
// with the pooled HTTP paths.
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
        let connector = self.runtime.connector
        connector.clusterEndpoints(for: target, gateway: self.config.gateway, cluster: cluster, eventLoop: eventLoop) { result in
            let forwarder = bound.value.forwarder
            switch result {
            case .failure(let error):
                forwarder.connectFailed(error, downstream: downstream, buffered: buffered)
            case .success(let ordered):
                // The app may leave while waiting for a slot: then the slot goes on to the next waiter.
                connector.connectCounted(
                    target: target, gateway: forwarder.config.gateway, tls: forwarder.decision.upstreamTLS, cluster: cluster,
                    ordered: ordered, defaultTimeout: forwarder.config.limits.connectTimeout, eventLoop: eventLoop,
                    wanted: { downstream.isActive }
                ) { result in
                    let (forwarder, onGlued) = bound.value
                    switch result {
                    case .failure(let failure): forwarder.connectFailed(failure, downstream: downstream, buffered: buffered)
                    case .success(let upstream): forwarder.glue(downstream: downstream, upstream: upstream, buffered: buffered, onGlued: onGlued)
                    }
                }
            }
        }
    }
}
