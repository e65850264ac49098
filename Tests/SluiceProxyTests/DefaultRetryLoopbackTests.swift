import NIOCore
import NIOPosix
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// Istio gives a registered host without a VirtualService a default route with its default
/// retry policy (pilot's BuildDefaultHTTPOutboundRoute and retry.DefaultPolicy(): 2 retries on
/// connect-failure, …); passthrough traffic (ALLOW_ANY, unregistered) has none. Against a port
/// that refuses, the registered request's log says `UF,URX` (tries used up), the
/// passthrough one's `UF` alone.
final class DefaultRetryLoopbackTests: XCTestCase {
    /// A loopback port nothing listens on: bound, then closed.
    func refusingPort(_ net: Loopback) throws -> Int {
        let channel = try ServerBootstrap(group: net.group).bind(host: "127.0.0.1", port: 0).wait()
        let port = try XCTUnwrap(channel.localAddress?.port)
        try channel.close().wait()
        return port
    }

    private func flags(host: String, config: String, registry: String, port: Int, net: Loopback) throws -> (String, [[String: Any]]) {
        let log = try AccessLogCapture()
        let destination = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let proxy = try net.startSidecar(config: config, registry: registry, originalDestination: destination, accessLog: log.writer)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503 Service Unavailable"), reply)
        let records = try log.records()
        return (records.first?["response_flags"] as? String ?? "none", records)
    }

    func testARegisteredHostWithoutAVirtualServiceRetriesConnectFailures() throws {
        let net = Loopback()
        let port = try refusingPort(net)
        let registry = ServiceEntryYAML.http("down", host: "down.test", port: port).yaml
        let (flags, records) = try flags(host: "down.test", config: TestConfig.registryOnly, registry: registry, port: port, net: net)
        XCTAssertEqual(flags, "UF,URX", "\(records)")
    }

    func testPassthroughTrafficIsNotRetried() throws {
        let net = Loopback()
        let port = try refusingPort(net)
        let (flags, records) = try flags(host: "unregistered.test", config: TestConfig.allowAny, registry: "", port: port, net: net)
        XCTAssertEqual(flags, "UF", "\(records)")
        XCTAssertEqual(records.first?["upstream_cluster"] as? String, "PassthroughCluster", "\(records)")
    }

    func testAVirtualServiceRouteWithAttemptsZeroIsNotRetried() throws {
        let net = Loopback()
        let port = try refusingPort(net)
        let registry = ServiceEntryYAML.http("down", host: "down.test", port: port).yaml + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: down
              namespace: default
            spec:
              hosts:
              - down.test
              http:
              - retries:
                  attempts: 0
                route:
                - destination:
                    host: down.test
            """
        let (flags, records) = try flags(host: "down.test", config: TestConfig.registryOnly, registry: registry, port: port, net: net)
        XCTAssertEqual(flags, "UF", "\(records)")
    }
}
