import Foundation
import SluiceCore
import XCTest

/// Routing objects follow the ServiceEntries' reload rules: a rejected one keeps its last good
/// version, and the workload's identity survives the reload.
final class RoutingReloadTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "sluice-routing-reload-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/registry", withIntermediateDirectories: true)
        try "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nregistry: [registry]\n"
            .write(toFile: directory + "/sluice.yaml", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func writeVirtualService(destinationHost: String) throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: api}
            spec:
              hosts: [api.example.com]
              http:
              - route:
                - destination: {host: \(destinationHost), port: {number: 80}}
            """
        try yaml.write(toFile: directory + "/registry/vs.yaml", atomically: true, encoding: .utf8)
    }

    func testARejectedVirtualServiceKeepsItsLastGoodVersionAndTheIdentityStays() throws {
        try writeVirtualService(destinationHost: "egress.istio-system.svc.cluster.local")
        let identity = WorkloadIdentity(namespace: "prod", labels: ["app": "web"], serviceAccount: "web")
        let first = try SluiceSnapshot.load(configPath: directory + "/sluice.yaml", namespace: "prod", identity: identity).get()
        XCTAssertEqual(first.identity, identity)

        try writeVirtualService(destinationHost: "\"\"")
        let second = try SluiceSnapshot.load(configPath: directory + "/sluice.yaml", namespace: "prod", previous: first).get()
        XCTAssertTrue(second.hasErrors, "the new version is rejected")
        XCTAssertEqual(second.routing.virtualServices.first?.routes.first?.destinations.first?.host, "egress.istio-system.svc.cluster.local")
        XCTAssertTrue(second.diagnostics.contains { $0.message == "keeping its last good version: the new one was rejected" })
        XCTAssertEqual(second.identity, identity, "labels and service account survive a reload")
        let decision = second.policy(role: .sidecar).decide(ConnectionFacts(
            kind: .http(Authority(host: "api.example.com")), destination: IPAddress("10.0.0.1") ?? .v4(0), port: 80))
        XCTAssertEqual(decision.action, .forward(.resolve(host: "egress.istio-system.svc.cluster.local", port: 80)))
    }
}
