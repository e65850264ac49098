/// Which protocol carries an HTTP/2 client's stream to its upstream: Envoy's cluster protocol
/// as Istio configures it (`pilot/pkg/networking/core/cluster_builder.go`,
/// `setUpstreamProtocol`). A cluster whose port is declared `HTTP2` or `GRPC` speaks HTTP/2;
/// one declared `HTTP` speaks HTTP/1.1 unless its DestinationRule says
/// `connectionPool.http.h2UpgradePolicy: UPGRADE` or `useClientProtocol: true` (then HTTP/2,
/// the client's protocol here). The hop to an `istio` egress gateway goes to the gateway's
/// own Service port, which Istio's installation declares `http2` (port 80 of
/// istio-egressgateway): HTTP/2 whatever the external host's port says.
public enum HTTP2UpstreamProtocol: Sendable, Equatable {
    /// HTTP/2 (h2c, or TLS with ALPN `h2`): one connection multiplexes the streams.
    case http2
    /// HTTP/1.1, one exchange per connection at a time (`HTTP2ToHTTP1`).
    case http1

    /// The protocol for a stream whose decision matched a registry port declared
    /// `portProtocol` (nil: none matched, as under ALLOW_ANY), going to an `istio` egress
    /// gateway or not, under `pool` (the DestinationRule's connectionPool, if any).
    public static func choose(
        portProtocol: PortProtocol?, toIstioGateway: Bool, pool: ConnectionPoolSettings?
    ) -> HTTP2UpstreamProtocol {
        if toIstioGateway { return .http2 }
        guard portProtocol == .http else { return .http2 }
        if pool?.useClientProtocol == true { return .http2 }
        return pool?.h2UpgradePolicy == .upgrade ? .http2 : .http1
    }
}
