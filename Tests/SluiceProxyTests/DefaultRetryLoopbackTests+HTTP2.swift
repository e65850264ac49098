import NIOCore
import NIOPosix
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// The same retry policies on HTTP/2 streams (h2c through the sidecar): Istio's default (2
/// retries on connect-failure) for a registered host, none for passthrough traffic, and a
/// route's `attempts: 0`.
extension DefaultRetryLoopbackTests {
    private func h2Flags(host: String, config: String, registry: String, port: Int, net: Loopback) throws -> (String, [[String: Any]]) {
        let log = try AccessLogCapture()
        let destination = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let proxy = try net.startSidecar(config: config, registry: registry, originalDestination: destination, accessLog: log.writer)
        let client = try net.h2Client(to: proxy)
        let response = try client.request(authority: "\(host):\(port)", path: "/")
        XCTAssertEqual(response.status, 503)
        let records = try log.records()
        return (records.first?["response_flags"] as? String ?? "none", records)
    }

    private func h2Entry(_ port: Int) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: down}
        spec:
          hosts: [down.test]
          ports: [{number: \(port), name: h2, protocol: HTTP2}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]
        """
    }

    func testHTTP2StreamsToARegisteredHostRetryConnectFailures() throws {
        let net = Loopback()
        let port = try self.refusingPort(net)
        let (flags, records) = try h2Flags(host: "down.test", config: TestConfig.registryOnly, registry: h2Entry(port), port: port, net: net)
        XCTAssertEqual(flags, "UF,URX", "\(records)")
        XCTAssertEqual(records.first?["protocol"] as? String, "HTTP/2")
    }

    func testHTTP2PassthroughStreamsAreNotRetried() throws {
        let net = Loopback()
        let port = try self.refusingPort(net)
        let (flags, records) = try h2Flags(host: "unregistered.test", config: TestConfig.allowAny, registry: "", port: port, net: net)
        XCTAssertEqual(flags, "UF", "\(records)")
    }

    func testHTTP2StreamsOnARouteWithAttemptsZeroAreNotRetried() throws {
        let net = Loopback()
        let port = try self.refusingPort(net)
        let registry = h2Entry(port) + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: down, namespace: default}
            spec:
              hosts: [down.test]
              http:
              - retries: {attempts: 0}
                route: [{destination: {host: down.test}}]
            """
        let (flags, records) = try h2Flags(host: "down.test", config: TestConfig.registryOnly, registry: registry, port: port, net: net)
        XCTAssertEqual(flags, "UF", "\(records)")
    }
}
