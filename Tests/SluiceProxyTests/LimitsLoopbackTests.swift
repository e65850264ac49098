import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// Hostile or broken clients get a clear answer and lose only their own connection.
final class LimitsLoopbackTests: XCTestCase {
    private let allowAny = "outboundTrafficPolicy: {mode: ALLOW_ANY}\n"

    func testOversizedRequestHeadIs431AndOthersKeepWorking() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: allowAny + "limits: {maxRequestHeadBytes: 2048}\n", registry: "", originalDestination: origin)
        let big = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: \(String(repeating: "a", count: 4096))\r\n\r\n"
        let reply = try net.exchange(Array(big.utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 431"), reply)
        let ok = try net.exchange(Array("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(ok.hasPrefix("HTTP/1.1 200"), ok)
    }

    func testTooManyHeaderFieldsIs431() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: allowAny + "limits: {maxRequestHeaders: 10}\n", registry: "", originalDestination: origin)
        let fields = (0..<20).map { "X-F\($0): v\r\n" }.joined()
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: a.test\r\n\(fields)\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 431"), reply)
    }

    func testMalformedRequestIs400() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: allowAny, registry: "", originalDestination: origin)
        // Content-Length and Transfer-Encoding together: a request-smuggling shape.
        let smuggle = "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        let reply = try net.exchange(Array(smuggle.utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 400"), reply)
    }

    // The 408 and idle-timeout cases run on an EmbeddedChannel with a moved clock: DeadlineTests.

    func testConnectionsBeyondTheLimitAreRefusedAndTheProxyRecovers() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(
            config: allowAny + "limits: {maxConnections: 2, detectionTimeout: 10s}\n",
            registry: "",
            originalDestination: origin
        )
        let request = Array("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".utf8)
        // Two connections that say nothing hold both slots: the third is closed at accept.
        let holders = try (0..<2).map { _ in try net.connect(to: proxy) }
        Thread.sleep(forTimeInterval: 0.2)
        // Closed at accept: either the write fails or nothing comes back.
        XCTAssertEqual((try? net.exchange(request, with: proxy, timeout: .seconds(2))) ?? [], [])
        for holder in holders { try holder.close().wait() }
        Thread.sleep(forTimeInterval: 0.2)
        let served = try net.exchange(request, with: proxy).text
        XCTAssertTrue(served.hasPrefix("HTTP/1.1 200"), served)
    }
}

extension LimitsLoopbackTests {
    func testTwoHostHeadersAre400() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: allowAny, registry: "", originalDestination: origin)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 400"), reply)
    }
}

extension LimitsLoopbackTests {
    func testIdleTCPTunnelIsClosedAfterIdleTimeout() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let entry = ServiceEntryYAML.tcp("echo", host: "echo.internal", address: "127.0.0.1/32", port: echo.port!).yaml
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nlimits: {idleTimeout: 300ms}\n", registry: entry, originalDestination: echo)
        let started = Date()
        let echoed = try net.exchange(Array("once".utf8), with: proxy, timeout: .seconds(5)).text
        XCTAssertEqual(echoed, "once")
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "closed by the idle timeout, not by the test's own 5 s limit")
    }
}

extension LimitsLoopbackTests {
    func testSilentClientBecomesOpaqueTCPAfterTheDetectionTimeout() throws {
        let net = Loopback()
        // A server-first protocol on a port nobody declared: only the detection timeout
        // (here 300 ms) lets the banner through, as opaque TCP to the original destination.
        let banner = try net.startEchoOrigin(banner: "220 smtp ready\r\n")
        let proxy = try net.startSidecar(config: allowAny + "limits: {detectionTimeout: 300ms}\n", registry: "", originalDestination: banner)
        let said = try net.exchange([], with: proxy, timeout: .seconds(2)).text
        XCTAssertEqual(said, "220 smtp ready\r\n")
    }
}
