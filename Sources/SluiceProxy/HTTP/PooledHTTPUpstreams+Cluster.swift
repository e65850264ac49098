import NIOCore
import SluiceCore

// Dialling for a request under a DestinationRule traffic policy: resolve, let the cluster's
// load balancer order the endpoints (ejected ones last), reuse an idle connection to the
// chosen one, else take a connection slot (or wait for one, or overflow) and dial.
extension PooledHTTPUpstreams {
    func connect(
        target: UpstreamTarget,
        tls: UpstreamTLS?,
        config: ActiveConfig,
        eventLoop: any EventLoop,
        limits: HTTP1Limits,
        in cluster: ClusterState,
        completion: @escaping (Result<any HTTPUpstream, any Error>) -> Void
    ) {
        self.connector.addresses(for: target, gateway: config.gateway, on: eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                completion(.failure(error as? UpstreamError ?? UpstreamError.resolution("\(error)")))
            case .success(let addresses):
                let ordered = cluster.order(addresses)
                if let first = ordered.first, let idle = UpstreamPool.current.take(target, tls: tls, remote: first) {
                    completion(.success(idle))
                    return
                }
                let bound = NIOLoopBound(completion, eventLoop: eventLoop)
                let dial: @Sendable () -> Void = {
                    self.dialCounted(target: target, tls: tls, config: config, eventLoop: eventLoop, limits: limits, cluster: cluster,
                                     ordered: ordered, completion: bound.value)
                }
                switch cluster.openConnection(ClusterState.Task(id: 0, eventLoop: eventLoop, run: dial)) {
                case .open: dial()
                case .pending: break
                case .overflow: completion(.failure(UpstreamError.overflow))
                }
            }
        }
    }

    /// Dials with a connection slot of `cluster` taken; the slot is given back when the
    /// connection closes (or the dial fails). Connect failures feed outlier detection.
    private func dialCounted(
        target: UpstreamTarget, tls: UpstreamTLS?, config: ActiveConfig, eventLoop: any EventLoop, limits: HTTP1Limits,
        cluster: ClusterState, ordered: [SocketAddress], completion: @escaping (Result<any HTTPUpstream, any Error>) -> Void
    ) {
        let endpoints = EndpointChoice(ordered: ordered) { address in
            cluster.record(.connectFailure, endpoint: address.logDescription)
        }
        let timeout = cluster.limits.connectTimeout ?? config.limits.connectTimeout
        self.connector.connect(
            target: target, gateway: config.gateway, tls: tls, eventLoop: eventLoop, connectTimeout: TimeAmount(timeout),
            endpoints: endpoints
        ) { result in
            switch result {
            case .failure(let failure):
                cluster.connectionClosed()
                completion(.failure(failure))
            case .success(let connection):
                connection.channel.closeFuture.whenComplete { _ in cluster.connectionClosed() }
                completion(Self.install(on: connection, target: target, tls: tls, limits: limits, cluster: cluster))
            }
        }
    }

    /// An `UpstreamHTTPHandler` on a fresh connection (closed if that fails).
    static func install(
        on connection: UpstreamConnection, target: UpstreamTarget, tls: UpstreamTLS?, limits: HTTP1Limits, cluster: ClusterState?
    ) -> Result<any HTTPUpstream, any Error> {
        let handler = UpstreamHTTPHandler(target: target, tls: tls, remote: connection.remote, limits: limits)
        handler.cluster = cluster
        do {
            try connection.channel.pipeline.syncOperations.addHandler(handler)
        } catch {
            connection.channel.close(promise: nil)
            return .failure(error)
        }
        return .success(handler)
    }
}
