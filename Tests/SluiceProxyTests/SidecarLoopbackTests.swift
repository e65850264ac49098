import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// The sidecar's data path end to end on loopback: sniffing, per-request HTTP decisions,
/// TLS by SNI, opaque TCP by address, and denials — what a user sees, not internals.
final class SidecarLoopbackTests: XCTestCase {
    /// aliyun.com registered for HTTP on `port`, served by loopback.
    private func registry(port: Int) -> String {
        ServiceEntryYAML.http("aliyun", host: "aliyun.com", port: port).yaml
    }

    private let registryOnly = TestConfig.registryOnly
    private let allowAny = TestConfig.allowAny

    private func get(_ host: String, close: Bool = true) -> String {
        "GET / HTTP/1.1\r\nHost: \(host)\r\n\(close ? "Connection: close\r\n" : "")\r\n"
    }

    func testAllowAnyPassesUnregisteredHostToTheOriginalDestination() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: allowAny, registry: "", originalDestination: origin)
        let reply = try net.exchange(Array(get("unregistered.test").utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK"), reply)
        XCTAssertTrue(reply.contains("host=unregistered.test"), reply)
        XCTAssertTrue(reply.lowercased().contains("x-envoy-upstream-service-time"), reply)
    }

    func testRegistryOnlyAnswers502ForUnregisteredAndForwardsRegistered() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin)
        let denied = try net.exchange(Array(get("unregistered.test").utf8), with: proxy).text
        XCTAssertTrue(denied.hasPrefix("HTTP/1.1 502 Bad Gateway"), denied)
        let allowed = try net.exchange(Array(get("aliyun.com").utf8), with: proxy).text
        XCTAssertTrue(allowed.hasPrefix("HTTP/1.1 301 Moved Permanently"), allowed)
    }

    func testKeepAliveConnectionCannotSwitchToAnUnregisteredHost() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin)
        let reply = try net.exchange(Array((get("aliyun.com", close: false) + get("evil.test")).utf8), with: proxy).text
        let statuses = reply.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) }
        XCTAssertEqual(statuses, ["301", "502"], reply)
    }

    func testLargeResponseIsStreamedIntact() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: allowAny, registry: "", originalDestination: origin)
        let size = 8 * 1024 * 1024
        let reply = try net.exchange(Array("GET /bytes/\(size) HTTP/1.1\r\nHost: big.test\r\nConnection: close\r\n\r\n".utf8), with: proxy, timeout: .seconds(20))
        guard let split = reply.firstRange(of: Array("\r\n\r\n".utf8)) else { return XCTFail("no head") }
        XCTAssertEqual(reply.count - split.upperBound, size)
    }

    func testTLSIsForwardedBySNIAndDeniedOtherwise() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let tlsEntry = ServiceEntryYAML.registry(
            .http("aliyun", host: "aliyun.com", port: 1),
            .tls("aliyun-tls", host: "aliyun.com", port: echo.port!)
        )
        let proxy = try net.startSidecar(config: registryOnly, registry: tlsEntry, originalDestination: echo)
        let hello = clientHello(serverName: "aliyun.com")
        XCTAssertEqual(try net.exchange(hello, with: proxy, halfClose: true), hello)
        XCTAssertEqual(try net.exchange(clientHello(serverName: "evil.test"), with: proxy, halfClose: true), [])
    }

    func testOpaqueTCPByAddressIncludingAServerFirstProtocol() throws {
        let net = Loopback()
        let banner = try net.startEchoOrigin(banner: "SSH-2.0-origin\r\n")
        let tcpEntry = ServiceEntryYAML.tcp("ssh", host: "ssh.internal", address: "127.0.0.1/32", port: banner.port!).yaml
        let proxy = try net.startSidecar(config: registryOnly, registry: tcpEntry, originalDestination: banner)
        // Nothing sent: the banner must still arrive (no sniffing on a declared TCP port).
        let said = try net.exchange([], with: proxy, timeout: .seconds(2)).text
        XCTAssertEqual(said, "SSH-2.0-origin\r\n")
        let echoed = try net.exchange(Array("ping".utf8), with: proxy, halfClose: true).text
        XCTAssertEqual(echoed, "SSH-2.0-origin\r\nping")
    }

    func testUnregisteredOpaqueTCPIsClosedWithoutAByteAndOthersKeepWorking() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin)
        XCTAssertEqual(try net.exchange([0x00, 0xFF, 0x13, 0x37, 0x0A], with: proxy, halfClose: true), [])
        let allowed = try net.exchange(Array(get("aliyun.com").utf8), with: proxy).text
        XCTAssertTrue(allowed.hasPrefix("HTTP/1.1 301"), allowed)
    }
}

extension SidecarLoopbackTests {
    func testOpaqueTCPEchoOfAMegabyteCompletesAfterTheClientHalfCloses() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let tcpEntry = ServiceEntryYAML.tcp("echo", host: "echo.internal", address: "127.0.0.1/32", port: echo.port!).yaml
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", registry: tcpEntry, originalDestination: echo)
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        for _ in 0..<5 {
            let echoed = try net.exchange(payload, with: proxy, halfClose: true, timeout: .seconds(10))
            XCTAssertEqual(echoed.count, payload.count)
            XCTAssertTrue(echoed == payload)
        }
    }
}

extension SidecarLoopbackTests {
    func testConnectionPerRequestClientsReuseOnePooledUpstreamConnection() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: ALLOW_ANY}\n", registry: "", originalDestination: origin)
        var upstreamPorts: Set<String> = []
        for _ in 0..<5 {
            // Keep-alive request, then the client closes: the idle upstream goes to the pool.
            let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: pooled.test\r\n\r\n".utf8), with: proxy, halfClose: true, timeout: .seconds(1)).text
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), reply)
            upstreamPorts.insert(reply)
        }
        XCTAssertEqual(UpstreamPoolProbe.idleCount(on: net.group.next()), 1, "one upstream connection serves every client in turn")
    }
}

/// Reads the pool of an event loop from that loop's thread.
enum UpstreamPoolProbe {
    static func idleCount(on loop: any EventLoop) -> Int {
        (try? loop.submit { UpstreamPool.current.idleCount }.wait()) ?? -1
    }
}

extension SidecarLoopbackTests {
    func testWebSocketUpgradeBecomesATunnelAfterThePolicyDecision() throws {
        let net = Loopback()
        let origin = try net.startUpgradeOrigin()
        let entry = ServiceEntryYAML.http("ws", host: "ws.test", port: origin.port!).yaml
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", registry: entry, originalDestination: origin)
        let upgrade = "GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let reply = try net.exchange(Array(upgrade.utf8), with: proxy, halfClose: true, then: Array("frame-1".utf8)).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 101 Switching Protocols"), reply)
        XCTAssertTrue(reply.lowercased().contains("upgrade: websocket"), reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\nhello-from-origin;frame-1"), reply)
        // The upgrade is still decided by Host: an unregistered one gets 502, not a tunnel.
        let denied = try net.exchange(Array(upgrade.replacingOccurrences(of: "ws.test", with: "evil.test").utf8), with: proxy).text
        XCTAssertTrue(denied.hasPrefix("HTTP/1.1 502"), denied)
    }
}

extension SidecarLoopbackTests {
    func testCONNECTFromTheAppIsDecidedThenTunnelled() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let entry = ServiceEntryYAML.tls("t", host: "tunnel.test", port: echo.port!).yaml
        // The app dialled some proxy (here: the echo origin's address); the sidecar decides the
        // CONNECT target itself and, when it is registered, tunnels to it.
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", registry: entry, originalDestination: echo)
        let tunnel = try net.exchange(
            Array("CONNECT tunnel.test:\(echo.port!) HTTP/1.1\r\nHost: tunnel.test:\(echo.port!)\r\n\r\n".utf8),
            with: proxy, halfClose: true, then: Array("through".utf8)
        ).text
        XCTAssertTrue(tunnel.hasPrefix("HTTP/1.1 200"), tunnel)
        XCTAssertEqual(tunnel.components(separatedBy: "\r\n\r\n").last, "through", tunnel)
        let denied = try net.exchange(Array("CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(denied.hasPrefix("HTTP/1.1 403"), denied)
    }
}

extension SidecarLoopbackTests {
    /// A pooled upstream connection must still be reading: the previous client may have left
    /// it with a held read (it was not writable when it went away).
    func testPooledUpstreamServesTheNextClientAfterASlowOneLeft() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: ALLOW_ANY}\nlimits: {upstreamTimeout: 3s}\n", registry: "", originalDestination: origin)
        // A large response to a Connection: close client (the proxy's write buffer fills, so
        // upstream reads are held at some point), then ordinary requests on the same loop.
        let big = try net.exchange(Array("GET /bytes/4194304 HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n".utf8), with: proxy, timeout: .seconds(10))
        XCTAssertGreaterThan(big.count, 4_194_304)
        for _ in 0..<3 {
            let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n".utf8), with: proxy, timeout: .seconds(5)).text
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), reply)
        }
    }
}

extension SidecarLoopbackTests {
    func testGeneratedRequestIDsAreVersion4UUIDs() {
        var seen: Set<String> = []
        for _ in 0..<100 {
            let id = makeRequestID().text
            XCTAssertNotNil(id.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/), id)
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 100)
    }
}

extension SidecarLoopbackTests {
    func testPipelinedRequestsAreAnsweredInOrderIncludingDenials() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let entry = ServiceEntryYAML.http("p", host: "p.test", port: origin.port!).yaml
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", registry: entry, originalDestination: origin)
        let requests = [
            "GET /bytes/10 HTTP/1.1\r\nHost: p.test\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "GET /bytes/2000 HTTP/1.1\r\nHost: p.test\r\n\r\n",
            "GET /bytes/30 HTTP/1.1\r\nHost: p.test\r\nConnection: close\r\n\r\n",
        ].joined()
        let reply = try net.exchange(Array(requests.utf8), with: proxy).text
        let statuses = reply.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) }
        XCTAssertEqual(statuses, ["200", "502", "200", "200"], reply)
        let lengths = reply.matches(of: /content-length: (\d+)/).map { String($0.output.1) }
        XCTAssertEqual(lengths, ["10", "0", "2000", "30"], reply)
    }
}
