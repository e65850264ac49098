/// Which protocol carries an HTTP/2 client's stream to its upstream: Envoy's cluster protocol
/// as Istio configures it (`pilot/pkg/networking/core/cluster_builder.go`,
/// `setUpstreamProtocol`, and the DestinationRule's connection pool):
/// - a port declared `HTTP2`, `GRPC` or `GRPC-WEB` speaks HTTP/2;
/// - a port without a protocol (detected) speaks the client's protocol at a sidecar, HTTP/1.1
///   at a gateway (Istio does no protocol detection there);
/// - every other port (`HTTP`, `HTTPS`, `TLS`, `TCP`…) speaks HTTP/1.1, Envoy's default, unless
///   its DestinationRule says `connectionPool.http.useClientProtocol: true` (the client's
///   protocol, HTTP/2 here), or, for an HTTP port, `h2UpgradePolicy: UPGRADE`;
/// - without a registry port (ALLOW_ANY's PassthroughCluster) the client's protocol.
/// The hop to an `istio` egress gateway goes to the gateway's own Service port, which Istio's
/// installation declares `http2` (port 80 of istio-egressgateway): HTTP/2 whatever the
/// external host's port says.
public enum HTTP2UpstreamProtocol: Sendable, Equatable {
    /// HTTP/2 (h2c, or TLS with ALPN `h2`): one connection multiplexes the streams.
    case http2
    /// HTTP/1.1, one exchange per connection at a time (`HTTP2ToHTTP1`).
    case http1

    /// The protocol for a stream whose decision matched a registry port declared
    /// `portProtocol` (nil: none matched, as under ALLOW_ANY), in a proxy of `role`, going to an
    /// `istio` egress gateway or not, under `pool` (the DestinationRule's connectionPool, if any).
    public static func choose(
        portProtocol: PortProtocol?, role: ProxyRole, toIstioGateway: Bool, pool: ConnectionPoolSettings?
    ) -> HTTP2UpstreamProtocol {
        if toIstioGateway { return .http2 }
        guard let portProtocol else { return .http2 }
        if pool?.useClientProtocol == true { return .http2 }
        switch portProtocol {
        case .http2, .grpc, .other("GRPC-WEB"):
            return .http2
        case .detected:
            return role == .sidecar ? .http2 : .http1
        case .http, .other("HTTP_PROXY"):
            return pool?.h2UpgradePolicy == .upgrade ? .http2 : .http1
        default:
            return .http1
        }
    }
}
