import Foundation
import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// AuthorizationPolicy on the gateway's CONNECT listener: Envoy's RBAC HTTP filter sees a
/// CONNECT as a request whose host is the authority's and whose method is `CONNECT`, and
/// answers a denial with 403 "RBAC: access denied" before any upstream is dialled. Policies
/// shaped as Istio's reference examples (istio.io/latest/docs/reference/config/security/
/// authorization-policy/: `hosts` with a suffix match, `methods`, a DENY before an ALLOW).
final class ConnectAuthorizationLoopbackTests: XCTestCase {
    private static let policies = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-internal, namespace: istio-system}
        spec:
          action: DENY
          rules:
          - to: [{operation: {hosts: ["*.internal.test"], methods: ["CONNECT"]}}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-aliyun, namespace: istio-system}
        spec:
          action: ALLOW
          rules:
          - to: [{operation: {hosts: ["aliyun.com", "*.internal.test"]}}]
            when: [{key: "request.headers[x-team]", notValues: ["blocked"]}]
        """

    /// `CONNECT authority` (with `extra` header lines) to `listener`, then "hello" once answered.
    private static func connect(_ net: Loopback, _ listener: SocketAddress, _ authority: String, _ extra: String) throws -> String {
        let head = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n\(extra)\r\n"
        let reply = try net.exchange(Array(head.utf8), with: listener, halfClose: true, then: Array("hello".utf8))
        return reply.text
    }

    func testConnectIsCheckedAgainstAuthorizationPolicyBeforeDialling() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let port = echo.port!
        let registry = ServiceEntryYAML.ports("aliyun", host: "aliyun.com", .tls(port)).yaml + "\n---\n"
            + ServiceEntryYAML.ports("internal", host: "db.internal.test", .tls(port)).yaml
        let log = try AccessLogCapture()
        let runtime = try Loopback.runtime(
            config: "listeners: []\n", registry: registry + "\n---\n" + Self.policies, role: .gateway, accessLog: log.writer)
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(ListenerConfig(port: 0, protocol: .connect, address: "127.0.0.1"), group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        let listener = try XCTUnwrap(channel.localAddress)
        func connect(_ host: String, _ extra: String = "") throws -> String {
            try Self.connect(net, listener, "\(host):\(port)", extra)
        }
        let allowed = try connect("aliyun.com")
        XCTAssertTrue(allowed.hasPrefix("HTTP/1.1 200"), allowed)
        XCTAssertTrue(allowed.hasSuffix("\r\n\r\nhello"), allowed)

        let denied = try connect("db.internal.test")
        XCTAssertTrue(denied.hasPrefix("HTTP/1.1 403 Forbidden"), denied)
        XCTAssertTrue(denied.hasSuffix("\r\n\r\nRBAC: access denied"), "the tunnel never opens: \(denied)")
        let header = try connect("aliyun.com", "x-team: blocked\r\n")
        XCTAssertTrue(header.hasPrefix("HTTP/1.1 403"), header)

        let text = runtime.metrics.prometheusText()
        for series in [
            #"sluice_rbac_decisions_total{decision="allowed",policy="ns[istio-system]-policy[allow-aliyun]-rule[0]"} 1"#,
            #"sluice_rbac_decisions_total{decision="denied",policy="ns[istio-system]-policy[deny-internal]-rule[0]"} 1"#,
            #"sluice_rbac_decisions_total{decision="denied",policy="none"} 1"#,
        ] {
            XCTAssertTrue(text.contains(series), "\(series) in\n\(text)")
        }
        let records = try log.records()
        let deniedRecord = records.first { $0["authority"] as? String == "db.internal.test:\(port)" }
        XCTAssertEqual(deniedRecord?["response_code"] as? Int, 403, "\(records)")
        XCTAssertEqual(
            deniedRecord?["response_code_details"] as? String,
            "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-internal]-rule[0]]", "\(records)")
        XCTAssertTrue(deniedRecord?["upstream_host"] is NSNull, "nothing was dialled: \(records)")
        XCTAssertEqual(deniedRecord?["bytes_sent"] as? Int, HTTP1LocalReply.rbacDeniedBody.utf8.count, "\(records)")
    }
}
