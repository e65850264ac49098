import SluiceCore
import XCTest

/// Which protocol carries an HTTP/2 client's stream upstream, as Istio sets Envoy's cluster
/// protocol (istio/istio `pilot/pkg/networking/core/cluster_builder.go`: HTTP2/GRPC ports get
/// HTTP/2 options; HTTP ports only under `h2UpgradePolicy: UPGRADE`, or the client's protocol
/// under `useClientProtocol`), and Istio's DestinationRule reference for the two fields.
final class HTTP2UpstreamProtocolTests: XCTestCase {
    private func pool(_ policy: H2UpgradePolicy?, useClientProtocol: Bool? = nil) -> ConnectionPoolSettings {
        var settings = ConnectionPoolSettings()
        settings.h2UpgradePolicy = policy
        settings.useClientProtocol = useClientProtocol
        return settings
    }

    func testPortProtocolDecidesWithoutAPolicy() {
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http, role: .sidecar, toIstioGateway: false, pool: nil), .http1)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http2, role: .sidecar, toIstioGateway: false, pool: nil), .http2)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .grpc, role: .sidecar, toIstioGateway: false, pool: nil), .http2)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: nil, role: .sidecar, toIstioGateway: false, pool: nil), .http2, "ALLOW_ANY: the client's")
    }

    func testH2UpgradePolicyOnAnHTTPPort() {
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http, role: .sidecar, toIstioGateway: false, pool: pool(.upgrade)), .http2)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http, role: .sidecar, toIstioGateway: false, pool: pool(.doNotUpgrade)), .http1)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http, role: .sidecar, toIstioGateway: false, pool: pool(.default)), .http1,
                       "DEFAULT is the mesh default, Istio's DO_NOT_UPGRADE")
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http, role: .sidecar, toIstioGateway: false, pool: pool(.doNotUpgrade, useClientProtocol: true)), .http2,
                       "useClientProtocol overrides h2UpgradePolicy")
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .grpc, role: .sidecar, toIstioGateway: false, pool: pool(.doNotUpgrade)), .http2,
                       "DO_NOT_UPGRADE does not downgrade an HTTP2/GRPC port")
    }

    /// Istio's cluster protocol for the ports that are neither HTTP nor HTTP/2: HTTP/1.1 (an
    /// HTTPS port behind TLS origination, say, whose origin may not speak h2), unless the
    /// DestinationRule asks for the client's protocol; a port without a protocol follows the
    /// client at a sidecar only.
    func testOtherPortsAreHTTP1AndDetectedOnesFollowTheClientAtASidecarOnly() {
        for port in [PortProtocol.https, .tls, .tcp, .other("HTTP_PROXY")] {
            XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: port, role: .gateway, toIstioGateway: false, pool: nil), .http1, "\(port)")
            XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: port, role: .sidecar, toIstioGateway: false, pool: nil), .http1, "\(port)")
        }
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .https, role: .gateway, toIstioGateway: false, pool: pool(.upgrade)), .http1,
                       "h2UpgradePolicy upgrades HTTP ports only")
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .https, role: .gateway, toIstioGateway: false, pool: pool(nil, useClientProtocol: true)), .http2)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .other("GRPC-WEB"), role: .gateway, toIstioGateway: false, pool: nil), .http2)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .detected(""), role: .sidecar, toIstioGateway: false, pool: nil), .http2)
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .detected(""), role: .gateway, toIstioGateway: false, pool: nil), .http1)
    }

    func testTheHopToAnIstioGatewayIsHTTP2() {
        // istio-egressgateway's Service names its port 80 `http2`.
        XCTAssertEqual(HTTP2UpstreamProtocol.choose(portProtocol: .http, role: .sidecar, toIstioGateway: true, pool: nil), .http2)
    }

    func testDestinationRuleFieldsAreDecoded() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: upgrade, namespace: default}
            spec:
              host: api.example.test
              trafficPolicy:
                connectionPool:
                  http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: typo, namespace: default}
            spec:
              host: other.example.test
              trafficPolicy:
                connectionPool:
                  http: {h2UpgradePolicy: SOMETIMES}
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "dr.yaml")
        let rule = loaded.routing.destinationRules.first { $0.host == "api.example.test" }
        XCTAssertEqual(rule?.trafficPolicy?.connectionPool?.h2UpgradePolicy, .upgrade)
        XCTAssertEqual(rule?.trafficPolicy?.connectionPool?.useClientProtocol, true)
        XCTAssertEqual(loaded.rejectedRoutingObjects, 1, "the bad value rejects its own object only")
        XCTAssertTrue(loaded.diagnostics.contains {
            $0.isError && $0.field == "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy" && $0.line == 17
        }, "\(loaded.diagnostics)")
    }
}
