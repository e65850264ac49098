import SluiceCore
import XCTest

/// `listeners[].tls` and `egressGateway.tls`: Istio's ServerTLSSettings / ClientTLSSettings
/// modes as `sluice.yaml` spells them, with per-field errors.
final class ConfigTLSTests: XCTestCase {
    func testIstioMutualOnListenersAndTheGatewayRoute() throws {
        let config = try SluiceConfig.parse(yaml: """
            egressGateway:
              address: egress.internal
              tls: {mode: ISTIO_MUTUAL, sni: edition.cnn.com}
            listeners:
              - {port: 80, protocol: HTTP, tls: {mode: ISTIO_MUTUAL}}
              - {port: 443, protocol: TLS, tls: {mode: PASSTHROUGH}}
            """, path: "/t/sluice.yaml").get()
        XCTAssertEqual(config.egressGateway?.tls, GatewayClientTLS(sni: "edition.cnn.com"))
        XCTAssertEqual(config.egressGateway?.tls?.subjectAltNames,
                       ["spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"])
        XCTAssertEqual(config.listeners.map(\.tls), [.istioMutual, .passthrough])
    }

    func testSubjectAltNamesAndDisable() throws {
        let config = try SluiceConfig.parse(yaml: """
            egressGateway:
              address: egress.internal
              tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://corp.example/ns/egress/sa/gw]}
            """, path: "/t/sluice.yaml").get()
        XCTAssertEqual(config.egressGateway?.tls?.subjectAltNames, ["spiffe://corp.example/ns/egress/sa/gw"])
        let plain = try SluiceConfig.parse(yaml: "egressGateway: {address: e.internal, tls: {mode: DISABLE}}\n", path: "/t/s.yaml").get()
        XCTAssertNotNil(plain.egressGateway)
        XCTAssertNil(plain.egressGateway?.tls)
    }

    func testErrorsNameTheField() {
        let cases: [(String, String)] = [
            ("listeners: [{port: 80, protocol: HTTP, tls: {mode: SIMPLE}}]\n", "listeners[0].tls.mode"),
            ("listeners: [{port: 80, protocol: CONNECT, tls: {mode: ISTIO_MUTUAL}}]\n", "listeners[0].tls"),
            ("listeners: [{port: 80, protocol: HTTP, tls: {}}]\n", "listeners[0].tls.mode"),
            ("egressGateway: {address: e.internal, tls: {mode: MUTUAL}}\n", "egressGateway.tls.mode"),
            ("egressGateway: {address: e.internal, protocol: connect, tls: {mode: ISTIO_MUTUAL}}\n", "egressGateway.tls"),
            ("egressGateway: {address: e.internal, tls: {mode: ISTIO_MUTUAL, subjectAltNames: [gw.example]}}\n",
             "egressGateway.tls.subjectAltNames[0]"),
            ("egressGateway: {address: e.internal, tls: {mode: ISTIO_MUTUAL, sni: 'a b'}}\n", "egressGateway.tls.sni"),
            ("egressGateway: {address: e.internal, tls: {mode: ISTIO_MUTUAL, caCertificates: x}}\n", "egressGateway.tls"),
        ]
        for (yaml, field) in cases {
            guard case .failure(let diagnostics) = SluiceConfig.parse(yaml: yaml, path: "/t/s.yaml") else {
                XCTFail("accepted: \(yaml)")
                continue
            }
            XCTAssertTrue("\(diagnostics)".contains(field), "\(yaml) → \(diagnostics)")
        }
    }
}
