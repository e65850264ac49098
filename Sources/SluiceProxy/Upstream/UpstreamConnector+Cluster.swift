import NIOCore
import SluiceCore

// Dialling under a DestinationRule traffic policy, for every path that pools connections to a
// cluster (HTTP/1 exchanges, HTTP/2 streams): resolve and let the cluster's load balancer
// order the endpoints (ejected ones last); then take a connection slot (or wait for one, or
// overflow: Envoy's 503 UO) and dial in that order, the slot given back when the connection
// closes, connect failures fed to outlier detection. The opaque TCP path (TCPForwarder+Cluster)
// uses the same two steps, with `wanted` saying whether its app connection is still there.
extension UpstreamConnector {
    /// `target`'s addresses in the order `cluster` tries them; `completion` runs on `eventLoop`.
    func clusterEndpoints(
        for target: UpstreamTarget, gateway: EgressGatewayConfig?, cluster: ClusterState, eventLoop: any EventLoop,
        completion: @escaping (Result<[SocketAddress], UpstreamError>) -> Void
    ) {
        self.addresses(for: target, gateway: gateway, on: eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error): completion(.failure(error as? UpstreamError ?? .resolution("\(error)")))
            case .success(let addresses): completion(.success(cluster.order(addresses)))
            }
        }
    }

    /// Dials `ordered` with a connection slot of `cluster`: at once, when a slot frees
    /// (`.pending`), or not at all (`.overflow`, failed with `UpstreamError.overflow`).
    /// `completion` runs on `eventLoop`. `wanted` is asked when the slot is had, before dialling:
    /// `false` (the caller went away while waiting) gives the slot on to the next waiter and
    /// dials nothing, and `completion` is not called.
    func connectCounted(
        target: UpstreamTarget, gateway: EgressGatewayConfig?, tls: UpstreamTLS?, http2: Bool = false,
        cluster: ClusterState, ordered: [SocketAddress], defaultTimeout: Duration, eventLoop: any EventLoop,
        wanted: @escaping @Sendable () -> Bool = { true },
        completion: @escaping (Result<UpstreamConnection, UpstreamError>) -> Void
    ) {
        let bound = NIOLoopBound(completion, eventLoop: eventLoop)
        let dial: @Sendable () -> Void = {
            guard wanted() else {
                cluster.connectionClosed()
                return
            }
            let endpoints = EndpointChoice(ordered: ordered) { cluster.record(.connectFailure, endpoint: $0.logDescription) }
            let timeout = cluster.limits.connectTimeout ?? defaultTimeout
            self.connect(
                target: target, gateway: gateway, tls: tls, http2: http2, eventLoop: eventLoop, connectTimeout: TimeAmount(timeout),
                endpoints: endpoints
            ) { result in
                switch result {
                case .failure(let failure):
                    cluster.connectionClosed()
                    bound.value(.failure(failure))
                case .success(let connection):
                    connection.channel.closeFuture.whenComplete { _ in cluster.connectionClosed() }
                    bound.value(.success(connection))
                }
            }
        }
        switch cluster.openConnection(ClusterState.Task(id: 0, eventLoop: eventLoop, run: dial)) {
        case .open: dial()
        case .pending: break
        case .overflow: completion(.failure(.overflow))
        }
    }
}
