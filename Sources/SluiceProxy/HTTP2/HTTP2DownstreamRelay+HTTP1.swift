import NIOCore
import SluiceCore

extension HTTP2DownstreamRelay {
    /// An allowed stream whose port is declared `HTTP`: carried over HTTP/1.1 on a connection
    /// from the event loop's `UpstreamPool` (reused across client connections, HTTP/1 clients'
    /// included) or a fresh one (`HTTP2ToHTTP1Upstream`), with `tls` opened on it (TLS
    /// origination, ISTIO_MUTUAL) and, under a DestinationRule, `cluster`'s endpoint and limits.
    func connectHTTP1(_ stream: HTTP2RelayStream, target: UpstreamTarget, tls: UpstreamTLS?, cluster: ClusterState?, config: ActiveConfig) {
        let upstreams = PooledHTTPUpstreams(connector: self.runtime.connector)
        if cluster == nil, let idle = upstreams.idle(for: target, tls: tls) {
            self.connected(stream, result: .success(HTTP2ToHTTP1Upstream(downstream: self, upstream: idle, window: self.window, fresh: false)))
            return
        }
        let limits = HTTP1Limits(maxHeadBytes: config.limits.maxRequestHeadBytes, maxFields: config.limits.maxRequestHeaders)
        upstreams.connect(target: target, tls: tls, config: config, eventLoop: self.eventLoop, limits: limits, cluster: cluster) { [self] result in
            switch result {
            case .success(let upstream):
                guard case .connecting = stream.phase else {
                    // The client left the stream while dialling: a connection never read from is not pooled.
                    upstream.close()
                    return
                }
                self.connected(stream, result: .success(HTTP2ToHTTP1Upstream(downstream: self, upstream: upstream, window: self.window, fresh: true)))
            case .failure(let error as UpstreamError):
                self.connected(stream, result: .failure(error))
            case .failure(let error):
                self.connected(stream, result: .failure(.connectFailed("\(error)")))
            }
        }
    }
}
