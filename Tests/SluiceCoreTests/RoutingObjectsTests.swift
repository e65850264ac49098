import SluiceCore
import XCTest

/// Gateway, VirtualService, DestinationRule and Sidecar are loaded beside the ServiceEntries,
/// validated on their own and cross-checked as `istioctl analyze` does.
final class RoutingObjectsTests: XCTestCase {
    func testIstiosEgressGatewayTaskLoadsCleanly() throws {
        let loaded = RegistryLoader.load(paths: ["registry/istio-routing/01-egress-gateway-http.yaml"], relativeTo: RegistryFixtures.root)
        XCTAssertFalse(loaded.hasErrors, loaded.diagnostics.map(\.description).joined(separator: "\n"))
        XCTAssertEqual(loaded.entries.map(\.name), ["cnn"])
        XCTAssertEqual(loaded.routing.gateways.first?.servers.first?.port, 80)
        XCTAssertEqual(loaded.routing.gateways.first?.selector, ["istio": "egressgateway"])
        XCTAssertEqual(loaded.routing.destinationRules.first?.subsets, ["cnn"])
        let service = try XCTUnwrap(loaded.routing.virtualServices.first)
        XCTAssertEqual(service.gateways, ["istio-egressgateway", "mesh"])
        XCTAssertEqual(service.routes.map(\.matchGateways), [["mesh"], ["istio-egressgateway"]])
        XCTAssertEqual(service.routes.first?.destinations.first,
                       RouteDestination(host: "istio-egressgateway.istio-system.svc.cluster.local", subset: "cnn", port: 80, weight: 100))
        XCTAssertEqual(RoutingAnalysis.analyze(loaded.routing, entries: loaded.entries), [], "nothing for istioctl analyze to say")
        XCTAssertEqual(loaded.diagnostics.filter { $0.severity != .note }, [], "nothing to warn about")
    }

    func testMistakesAreFlaggedAndAnInvalidObjectIsRejectedAlone() throws {
        let loaded = RegistryLoader.load(paths: ["registry/istio-routing/02-mistakes.yaml"], relativeTo: RegistryFixtures.root)
        XCTAssertEqual(loaded.rejectedRoutingObjects, 1)
        XCTAssertEqual(loaded.diagnostics.filter(\.isError).map { "\($0.resource ?? ""): \($0.field ?? ""): \($0.message)" },
                       ["VirtualService default/tls-without-sni: spec.tls[0].match: a tls route needs a match with sniHosts"])
        XCTAssertEqual(loaded.routing.virtualServices.map(\.id.name), ["dangling"])
        let warnings = RoutingAnalysis.analyze(loaded.routing, entries: loaded.entries).map(\.message)
        XCTAssertEqual(warnings.count, 4, warnings.joined(separator: "\n"))
        XCTAssertTrue(warnings.contains { $0.contains("references gateway default/missing-gateway") })
        XCTAssertTrue(warnings.contains { $0.contains("routes to nowhere.example.org, which is neither registered") })
        XCTAssertTrue(warnings.contains { $0.contains("routes to subset v9 of nowhere.example.org") })
        XCTAssertTrue(warnings.contains { $0.contains("has resolution NONE") && $0.contains("(a loop)") })
    }

    func testSidecarResource() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: default, namespace: prod}
            spec:
              egress:
              - hosts: ["./*", "istio-system/*", "api.example.com"]
              outboundTrafficPolicy:
                mode: REGISTRY_ONLY
                egressProxy: {host: proxy.example.com, port: {number: 3128}}
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "sidecar.yaml")
        XCTAssertEqual(loaded.diagnostics.filter(\.isError).map(\.message),
                       ["\"api.example.com\" must be namespace/dnsName (use */api.example.com for any namespace)"])
        let fixed = RegistryLoader.parse(yaml: yaml.replacingOccurrences(of: "\"api.example.com\"", with: "\"*/api.example.com\""), path: "sidecar.yaml")
        let sidecar = try XCTUnwrap(fixed.routing.sidecars.first)
        XCTAssertEqual(sidecar.egressHosts, ["./*", "istio-system/*", "*/api.example.com"])
        XCTAssertEqual(sidecar.outboundMode, .registryOnly)
        XCTAssertEqual(sidecar.egressProxyHost, "proxy.example.com")
        XCTAssertNil(sidecar.workloadSelector)
    }
}
