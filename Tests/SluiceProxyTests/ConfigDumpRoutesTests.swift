import Foundation
import SluiceCore
import XCTest

@testable import SluiceProxy

/// `/config_dump`'s `routes`: the compiled routes of Istio's "Egress Gateways" task (HTTP) and
/// the `egressGateway:` shorthand's expansion.
final class ConfigDumpRoutesTests: XCTestCase {
    func testRoutesSectionShowsCompiledRoutesAndTheShorthand() throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: direct-cnn-through-egress-gateway
            spec:
              hosts:
              - edition.cnn.com
              gateways:
              - istio-egressgateway
              - mesh
              http:
              - match:
                - gateways:
                  - mesh
                  port: 80
                route:
                - destination:
                    host: istio-egressgateway.istio-system.svc.cluster.local
                    subset: cnn
                    port:
                      number: 80
                  weight: 100
            """
        let loaded = RegistryLoader.parse(yaml: yaml, path: "task.yaml")
        var snapshot = SluiceSnapshot(
            config: SluiceConfig(egressGateway: EgressGatewayConfig(addresses: ["192.0.2.20"])), entries: loaded.entries)
        snapshot.routing = loaded.routing
        let json = ConfigDump(snapshot: snapshot, role: .sidecar).json()
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let routes = try XCTUnwrap(object["routes"] as? [String: Any])
        let http = try XCTUnwrap(routes["http"] as? [[String: Any]])
        XCTAssertEqual(http.first?["virtualService"] as? String, "default/direct-cnn-through-egress-gateway")
        XCTAssertEqual(http.first?["route"] as? String, "http[0]")
        XCTAssertEqual(http.first?["matches"] as? [String], ["port 80"])
        let destination = try XCTUnwrap((http.first?["destinations"] as? [[String: Any]])?.first)
        XCTAssertEqual(destination["cluster"] as? String, "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local")
        XCTAssertEqual((routes["egressGatewayShorthand"] as? [String])?.count, 2)
        XCTAssertEqual((routes["workload"] as? [String: Any])?["namespace"] as? String, "default")
    }
}
