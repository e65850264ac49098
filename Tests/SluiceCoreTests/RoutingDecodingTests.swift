import SluiceCore
import XCTest

/// Decoding of the routing objects' fields: each mistake rejected on its own with path:line,
/// fields Sluice does not model noted, traffic policies merged as the DestinationRule
/// reference says.
final class RoutingDecodingTests: XCTestCase {
    func testABadRouteRejectsItsVirtualServiceAloneWithPathAndLine() {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: bad-regex}
            spec:
              hosts: [a.example.com]
              http:
              - match:
                - uri: {regex: "(unclosed"}
                route:
                - destination: {host: a.example.com}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: both}
            spec:
              hosts: [b.example.com]
              http:
              - redirect: {uri: /x, redirectCode: 310}
                route:
                - destination: {host: b.example.com}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: good}
            spec:
              hosts: [c.example.com]
              http:
              - mirror: {host: shadow.example.com}
                timeout: 1.5s
                route:
                - destination: {host: c.example.com}
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "vs.yaml")
        XCTAssertEqual(loaded.rejectedRoutingObjects, 2)
        XCTAssertEqual(loaded.routing.virtualServices.map(\.id.name), ["good"])
        let errors = loaded.diagnostics.filter(\.isError).map { "\($0.line ?? 0) \($0.field ?? ""): \($0.message)" }
        XCTAssertEqual(errors, [
            "8 spec.http[0].match[0].uri.regex: not a valid regular expression: (unclosed",
            "18 spec.http[0].redirect: a route has either route or redirect, not both",
            "18 spec.http[0].redirect.redirectCode: must be 301, 302, 303, 307 or 308, not 310",
        ])
        XCTAssertTrue(loaded.diagnostics.contains { $0.severity == .note && $0.field == "spec.http[0].mirror" && $0.message == "not applied by Sluice" })
        XCTAssertEqual(loaded.routing.virtualServices.first?.routes.first?.behaviour.timeout, .milliseconds(1500))
    }

    func testTLSInDestinationRulesIsKeptPerPort() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: originate-tls-for-edition-cnn-com}
            spec:
              host: edition.cnn.com
              trafficPolicy:
                portLevelSettings:
                - port:
                    number: 80
                  tls:
                    mode: SIMPLE # initiates HTTPS when accessing edition.cnn.com
            """
        // Istio's "Egress TLS Origination" task's DestinationRule.
        let loaded = RegistryLoader.parse(yaml: yaml, path: "dr.yaml")
        XCTAssertFalse(loaded.hasErrors)
        let rule = try XCTUnwrap(loaded.routing.destinationRules.first)
        XCTAssertEqual(rule.policy(subset: nil, port: 80).tls?.mode, "SIMPLE")
        XCTAssertNil(rule.policy(subset: nil, port: 443).tls)
        XCTAssertFalse(loaded.diagnostics.contains { $0.message.contains("not yet applied") }, "applied since TLS origination exists")
    }

    func testASMPolicyNeedsItsGatewayAndRules() {
        let yaml = """
            apiVersion: istio.alibabacloud.com/v1beta1
            kind: ASMEgressTrafficPolicy
            metadata: {name: egressgateway-a, namespace: istio-egress}
            spec:
              egressRules:
              - from: [{namespace: mytest}]
                to: [{name: x, hosts: [x.example.com], port: {number: 80, protocol: HTTP}}]
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "asm.yaml")
        XCTAssertEqual(loaded.rejectedRoutingObjects, 1)
        XCTAssertEqual(loaded.diagnostics.filter(\.isError).map(\.field), ["spec.byEgressGateway.name"])
        let wrongGroup = RegistryLoader.parse(yaml: yaml.replacingOccurrences(of: "istio.alibabacloud.com", with: "networking.istio.io"), path: "asm.yaml")
        XCTAssertTrue(wrongGroup.diagnostics.contains { $0.field == "apiVersion" && $0.isError })
    }

    func testCheckNotesWhatTheDataPathDoesNotApplyYet() {
        let loaded = RegistryLoader.load(paths: ["registry/istio-routing/05-http-routes.yaml"], relativeTo: RegistryFixtures.root)
        let notes = RoutingAnalysis.analyze(loaded.routing, entries: loaded.entries).filter { $0.severity == .note }.map(\.message)
        // perTryTimeout, connectionPool, outlierDetection and loadBalancer are applied on HTTP/1;
        // the note says where they are not yet.
        XCTAssertFalse(notes.contains { $0.contains("perTryTimeout") }, notes.joined(separator: "\n"))
        XCTAssertTrue(notes.contains {
            $0 == "connectionPool, loadBalancer, outlierDetection applied to HTTP/1 requests, HTTP/2 streams and TCP/TLS connections; "
                + "to CONNECT tunnels: pending"
        }, notes.joined(separator: "\n"))
    }
}
