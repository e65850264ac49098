import SluiceCore
import XCTest

/// A Gateway server with `tls.mode: ISTIO_MUTUAL` (Istio's "Egress Gateways with TLS
/// Origination" task, fixture 07) switches termination on for the gateway listener on its
/// port and routes the HTTP inside by Host; other modes stay unrouted with a note.
extension RoutingPolicyTests {
    private var gatewayLabels: WorkloadIdentity { WorkloadIdentity(namespace: "istio-system", labels: ["istio": "egressgateway"]) }

    func testGatewayServerISTIOMUTUALRoutesHTTPByHostRoutesHTTPByHost() throws {
        let gateway = try policy(["07-egress-gateway-mtls.yaml"], role: .gateway, identity: gatewayLabels)
        let decision = http(gateway, "edition.cnn.com", port: 443)
        XCTAssertEqual(decision.action, .forward(.resolve(host: "edition.cnn.com", port: 80)))
        XCTAssertEqual(decision.cluster, "outbound|80||edition.cnn.com")
        XCTAssertEqual(decision.route?.position, "http[1] match[0]")
        let other = http(gateway, "example.org", port: 443)
        XCTAssertEqual(other.denial, .httpStatus(404), "no bound route: Envoy's 404 NR")
    }

    func testGatewayServerISTIOMUTUALSidecarRoutesToTheGatewaysSubsetOn443() throws {
        let sidecar = try policy(["07-egress-gateway-mtls.yaml"])
        let decision = http(sidecar, "edition.cnn.com")
        XCTAssertEqual(decision.action, .forward(.resolve(host: RoutingPolicyTests.gatewayService, port: 443)))
        XCTAssertEqual(decision.cluster, "outbound|443|cnn|\(RoutingPolicyTests.gatewayService)")
    }

    func testGatewayServerISTIOMUTUALSetsTheListenersTLSModeAndWinsWithAWarning() throws {
        let gateway = try policy(["07-egress-gateway-mtls.yaml"], role: .gateway, identity: gatewayLabels)
        let routes = try XCTUnwrap(gateway.routes)
        let listeners = [
            ListenerConfig(port: 80, protocol: .http),
            ListenerConfig(port: 443, protocol: .http),
            ListenerConfig(port: 15080, protocol: .connect),
        ]
        let applied = routes.applyingServerTLS(to: listeners)
        XCTAssertEqual(applied.listeners.map(\.tls), [.passthrough, .istioMutual, .passthrough])
        XCTAssertEqual(applied.listeners.map(\.port), [80, 443, 15080])
        XCTAssertEqual(applied.warnings.count, 1)
        XCTAssertTrue(applied.warnings[0].contains("port 443") && applied.warnings[0].contains("Gateway object wins"), applied.warnings[0])

        let agreeing = routes.applyingServerTLS(to: [ListenerConfig(port: 443, protocol: .http, tls: .istioMutual)])
        XCTAssertEqual(agreeing.listeners.map(\.tls), [.istioMutual])
        XCTAssertEqual(agreeing.warnings, [], "no warning when both say the same")
    }

    func testGatewayServerModesTheGatewayDoesNotTerminateGetTheNoteAndSIMPLENeedsACertificate() {
        func diagnostics(_ tls: String) -> [String] {
            let yaml = """
                apiVersion: networking.istio.io/v1
                kind: Gateway
                metadata: {name: gw, namespace: istio-system}
                spec:
                  selector: {istio: egressgateway}
                  servers:
                  - port: {number: 443, name: https, protocol: HTTPS}
                    hosts: [edition.cnn.com]
                    tls: \(tls)
                """
            return RegistryLoader.parse(yaml: yaml, path: "/t/gw.yaml").diagnostics.map(\.description)
        }
        XCTAssertEqual(diagnostics("{mode: ISTIO_MUTUAL}"), [])
        XCTAssertEqual(diagnostics("{mode: PASSTHROUGH}"), [])
        XCTAssertEqual(diagnostics("{mode: SIMPLE, credentialName: egress-cert}"), [])
        XCTAssertEqual(diagnostics("{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}"), [])
        XCTAssertTrue(diagnostics("{mode: SIMPLE}").contains { $0.contains("SIMPLE needs serverCertificate and privateKey, or credentialName") })
        XCTAssertTrue(diagnostics("{mode: OPTIONAL_MUTUAL, credentialName: c}").contains { $0.contains("not applied by Sluice") })
    }

    func testGatewayServerSIMPLEGivesItsListenerTheCertificate() throws {
        // The Gateway reference's SIMPLE example (serverCertificate / privateKey files).
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: my-gateway, namespace: istio-system}
            spec:
              selector: {istio: egressgateway}
              servers:
              - port: {number: 443, name: https-443, protocol: HTTPS}
                hosts: [edition.cnn.com]
                tls:
                  mode: SIMPLE
                  serverCertificate: /etc/certs/servercert.pem
                  privateKey: /etc/certs/privatekey.pem
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "/t/gw.yaml")
        XCTAssertFalse(loaded.hasErrors)
        let table = RouteTable.compile(loaded.routing, role: .gateway, identity: gatewayLabels)
        let applied = table.applyingServerTLS(to: [ListenerConfig(port: 443, protocol: .http), ListenerConfig(port: 80, protocol: .http)])
        XCTAssertEqual(applied.listeners.map(\.tls), [.simple, .passthrough])
        XCTAssertEqual(applied.listeners[0].serverTLSFiles,
                       ServerTLSFiles(serverCertificate: "/etc/certs/servercert.pem", privateKey: "/etc/certs/privatekey.pem"))
        XCTAssertNil(applied.listeners[1].serverTLSFiles)
    }
}
