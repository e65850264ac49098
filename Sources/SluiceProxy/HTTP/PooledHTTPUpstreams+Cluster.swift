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
        self.connector.clusterEndpoints(for: target, gateway: config.gateway, cluster: cluster, eventLoop: eventLoop) { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let ordered):
                if let first = ordered.first, let idle = UpstreamPool.current.take(target, tls: tls, remote: first) {
                    completion(.success(idle))
                    return
                }
                self.connector.connectCounted(
                    target: target, gateway: config.gateway, tls: tls, cluster: cluster, ordered: ordered,
                    defaultTimeout: config.limits.connectTimeout, eventLoop: eventLoop
                ) { result in
                    switch result {
                    case .failure(let failure): completion(.failure(failure))
                    case .success(let connection): completion(Self.install(on: connection, target: target, tls: tls, limits: limits, cluster: cluster))
                    }
                }
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
