import Foundation
import Logging
import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// AuthorizationPolicy on HTTP requests at the gateway, over loopback: the sidecar opens
/// ISTIO_MUTUAL to the gateway with the sleep service account's certificate; the gateway
/// evaluates each request (principal, path, method) as Envoy's RBAC HTTP filter does and
/// answers a denial with 403 "RBAC: access denied". Policies as in Istio's "Authorization on
/// Egress Gateway" examples (istio.io/latest/docs/tasks/security/authorization/).
final class HTTPAuthorizationLoopbackTests: XCTestCase {
    private static let policies = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-sleep-allowed, namespace: istio-system}
        spec:
          action: ALLOW
          rules:
          - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
            to: [{operation: {paths: ["/allowed*"]}}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-delete, namespace: istio-system}
        spec:
          action: DENY
          rules:
          - to: [{operation: {methods: ["DELETE"]}}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: audit-allowed, namespace: istio-system}
        spec:
          action: AUDIT
          rules:
          - to: [{operation: {paths: ["/allowed/audited"]}}]
        """

    /// aliyun.com registered for HTTP on `port` at 127.0.0.1.
    private func entry(port: Int, resolution: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: aliyun}
        spec:
          hosts: [aliyun.com]
          ports: [{number: \(port), name: http, protocol: HTTP}]
          resolution: \(resolution)
          endpoints: [{address: 127.0.0.1}]
        """
    }

    /// Gateway (ISTIO_MUTUAL HTTP listener, the policies, a JSON access log) and sidecar.
    private func start(_ net: Loopback, mesh: MeshTLSLoopbackTests.Mesh, log: AccessLogWriter) throws -> (sidecar: SocketAddress, gateway: ProxyRuntime) {
        let origin = try net.startHTTPOrigin()
        let loaded = RegistryLoader.parse(
            yaml: entry(port: origin.port!, resolution: "STATIC") + "\n---\n" + Self.policies, path: "/test/registry.yaml")
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        var snapshot = SluiceSnapshot(
            config: try SluiceConfig.parse(yaml: "accessLog: {format: json}\n", path: "/t/s.yaml").get(), entries: loaded.entries,
            namespace: "istio-system")
        snapshot.authorizationPolicies = loaded.authorizationPolicies
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let gateway = ProxyRuntime(
            role: .gateway, config: ActiveConfig(snapshot: snapshot, role: .gateway), accessLog: log, logger: logger,
            certificates: try CertificateStore(directory: mesh.issue(MeshTLSLoopbackTests.gatewayID, into: "gateway").path))
        let listener = ListenerConfig(port: origin.port!, protocol: .http, address: "127.0.0.2", tls: .istioMutual)
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(listener, group: net.group, runtime: gateway)
        }.wait()
        net.adopt(channel)
        let config = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.2]
              ports: {http: \(origin.port!)}
              tls: {mode: ISTIO_MUTUAL}
            """
        let sidecar = try net.startSidecar(
            config: config, registry: entry(port: origin.port!, resolution: "DNS"), originalDestination: origin,
            certificates: try CertificateStore(directory: mesh.issue(MeshTLSLoopbackTests.sleepID, into: "sleep").path))
        return (sidecar, gateway)
    }

    func testRequestsAreAllowedAndDeniedByPrincipalPathAndMethod() throws {
        let net = Loopback()
        let mesh = try MeshTLSLoopbackTests.Mesh()
        let log = try AccessLogCapture()
        let (sidecar, gateway) = try start(net, mesh: mesh, log: log.writer)
        func send(_ method: String, _ path: String) throws -> String {
            try net.exchange(
                Array("\(method) \(path) HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".utf8), with: sidecar
            ).text
        }
        let allowed = try send("GET", "/allowed/page?x=1")
        XCTAssertTrue(allowed.hasPrefix("HTTP/1.1 301"), allowed)
        let other = try send("GET", "/")
        XCTAssertTrue(other.hasPrefix("HTTP/1.1 403 Forbidden"), other)
        XCTAssertTrue(other.hasSuffix("\r\n\r\nRBAC: access denied"), other)
        let delete = try send("DELETE", "/allowed/page")
        XCTAssertTrue(delete.hasPrefix("HTTP/1.1 403"), delete)
        let audited = try send("GET", "/allowed/audited")
        XCTAssertTrue(audited.hasPrefix("HTTP/1.1 301"), "AUDIT is logged, not enforced: \(audited)")

        let text = gateway.metrics.prometheusText()
        for series in [
            #"sluice_rbac_decisions_total{decision="allowed",policy="ns[istio-system]-policy[allow-sleep-allowed]-rule[0]"} 2"#,
            #"sluice_rbac_decisions_total{decision="denied",policy="none"} 1"#,
            #"sluice_rbac_decisions_total{decision="denied",policy="ns[istio-system]-policy[deny-delete]-rule[0]"} 1"#,
            #"sluice_rbac_decisions_total{decision="audited",policy="ns[istio-system]-policy[audit-allowed]-rule[0]"} 1"#,
        ] {
            XCTAssertTrue(text.contains(series), "\(series) in\n\(text)")
        }
        let records = try log.records()
        func details(_ method: String, _ path: String) -> Any? {
            records.first { $0["method"] as? String == method && $0["path"] as? String == path }?["response_code_details"]
        }
        XCTAssertEqual(details("GET", "/") as? String, "rbac_access_denied_matched_policy[none]", "\(records)")
        XCTAssertEqual(
            details("DELETE", "/allowed/page") as? String,
            "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-delete]-rule[0]]", "\(records)")
        XCTAssertTrue(details("GET", "/allowed/page?x=1") is NSNull, "\(records)")
        // Issue 21 item 7: every request carries the caller's SPIFFE ID (Envoy's
        // %DOWNSTREAM_PEER_URI_SAN%), and istio_requests_total the caller's identity labels.
        XCTAssertEqual(records.count, 4, "\(records)")
        for record in records {
            XCTAssertEqual(record["downstream_peer_uri_san"] as? String, "spiffe://cluster.local/ns/default/sa/sleep", "\(record)")
        }
        let identity = #"source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_workload_namespace="default",connection_security_policy="mutual_tls""#
        XCTAssertTrue(text.contains(#"istio_requests_total{reporter="gateway",destination_service="aliyun.com",destination_service_name="aliyun.com",\#(identity),request_protocol="http",response_code="301""#), text)
    }

    /// A denied request that announces a body is answered at once and the connection closed:
    /// the gateway does not wait for a body it will not forward.
    func testADeniedRequestWithABodyIsAnsweredAtOnce() throws {
        let net = Loopback()
        let mesh = try MeshTLSLoopbackTests.Mesh()
        let log = try AccessLogCapture()
        let (sidecar, _) = try start(net, mesh: mesh, log: log.writer)
        let reply = try net.exchange(
            Array("POST /other HTTP/1.1\r\nHost: aliyun.com\r\nContent-Length: 100\r\n\r\n".utf8), with: sidecar
        ).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 403"), reply)
    }
}
