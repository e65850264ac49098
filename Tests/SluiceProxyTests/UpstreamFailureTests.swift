import Foundation
import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// What the app sees, and what the access log says, when the upstream fails: Envoy's
/// answers and response flags (503 UF, 504 UT) and the denial record of a 502.
final class UpstreamFailureTests: XCTestCase {
    func testRefusedUpstreamIs503WithUF() throws {
        let net = Loopback()
        let log = try AccessLogCapture()
        // Nothing listens on the discard port of loopback: the connect is refused.
        let dead = try SocketAddress(ipAddress: "127.0.0.1", port: 9)
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: ALLOW_ANY}\n", registry: "", originalDestination: dead, accessLog: log.writer)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: down.test\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503"), reply)
        XCTAssertTrue(reply.contains("reset reason: connection failure"), reply)
        let line = try XCTUnwrap(try log.records().last)
        XCTAssertEqual(line["response_code"] as? Int, 503)
        XCTAssertEqual(line["response_flags"] as? String, "UF")
        XCTAssertEqual(line["upstream_cluster"] as? String, "PassthroughCluster")
    }

    func testStalledUpstreamIs504WithUT() throws {
        let net = Loopback()
        let silent = try net.startSilentOrigin()
        let log = try AccessLogCapture()
        let proxy = try net.startSidecar(
            config: "outboundTrafficPolicy: {mode: ALLOW_ANY}\nlimits: {upstreamTimeout: 300ms}\n",
            registry: "",
            originalDestination: silent,
            accessLog: log.writer
        )
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: slow.test\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 504"), reply)
        let line = try XCTUnwrap(try log.records().last)
        XCTAssertEqual(line["response_flags"] as? String, "UT")
    }

    func testDenialIsLoggedAsBlackHole() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let log = try AccessLogCapture()
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", registry: "", originalDestination: origin, accessLog: log.writer)
        let reply = try net.exchange(Array("GET /x HTTP/1.1\r\nHost: blocked.test\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 502"), reply)
        XCTAssertEqual(try net.exchange(clientHello(serverName: "blocked.test"), with: proxy, halfClose: true), [])
        let lines = try log.records()
        XCTAssertEqual(lines.count, 2)
        let http = lines[0]
        XCTAssertEqual(http["response_code"] as? Int, 502)
        XCTAssertEqual(http["route_name"] as? String, "block_all")
        XCTAssertEqual(http["upstream_cluster"] as? String, "BlackHoleCluster")
        XCTAssertEqual(http["authority"] as? String, "blocked.test")
        XCTAssertEqual(http["path"] as? String, "/x")
        XCTAssertEqual(http["user_agent"] as? String, "curl/8")
        XCTAssertEqual(http["downstream_local_address"] as? String, "127.0.0.1:\(origin.port!)")
        let tls = lines[1]
        XCTAssertEqual(tls["response_code"] as? Int, 0)
        XCTAssertEqual(tls["response_flags"] as? String, "NR")
        XCTAssertEqual(tls["requested_server_name"] as? String, "blocked.test")
        XCTAssertEqual(tls["upstream_cluster"] as? String, "BlackHoleCluster")
    }
}
