import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// The egress gateway on loopback: HTTP routed by Host, TLS by SNI, CONNECT tunnels, its
/// own registry (404 NR / 403 / closed for unregistered), and the sidecar sending traffic
/// through it in both `istio` and `connect` modes.
final class GatewayLoopbackTests: XCTestCase {
    /// aliyun.com registered at the gateway on the origin's ports, resolved to 127.0.0.1.
    private func gatewayRegistry(httpPort: Int, tlsPort: Int) -> String {
        ServiceEntryYAML.ports("aliyun", host: "aliyun.com", .http(httpPort), .tls(tlsPort)).yaml
    }

    /// aliyun.com registered at the sidecar on `port`, resolution DNS: where it goes is the
    /// gateway's business.
    private func resolvedByName(_ port: Int) -> String {
        ServiceEntryYAML(
            name: "aliyun",
            hosts: ["aliyun.com"],
            ports: [.init(number: port, name: "http", protocol: "HTTP")],
            resolution: "DNS"
        ).yaml
    }

    func testGatewayRoutesHTTPByHostAndAnswers404ForUnregistered() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        // The gateway decides on the port the request arrived on, so its HTTP listener takes
        // the registered port (on 127.0.0.2, beside the origin on 127.0.0.1).
        let gatewayConfig = "accessLog: {enabled: false}\n"
        let runtime = try Loopback.runtime(config: gatewayConfig, registry: gatewayRegistry(httpPort: origin.port!, tlsPort: 1), role: .gateway)
        let listener = ListenerConfig(port: origin.port! + 0, protocol: .http, address: "127.0.0.2")
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(listener, group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        let gateway = channel.localAddress!
        let allowed = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".utf8), with: gateway).text
        XCTAssertTrue(allowed.hasPrefix("HTTP/1.1 301"), allowed)
        let denied = try net.exchange(Array("GET / HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n".utf8), with: gateway).text
        XCTAssertTrue(denied.hasPrefix("HTTP/1.1 404"), denied)
    }

    func testConnectTunnelToRegisteredHostAnd403ForOthers() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let gateway = try net.startGateway(config: "listeners: []\n", registry: gatewayRegistry(httpPort: 1, tlsPort: echo.port!))
        let tunnel = try net.exchange(
            Array("CONNECT aliyun.com:\(echo.port!) HTTP/1.1\r\nHost: aliyun.com:\(echo.port!)\r\n\r\n".utf8),
            with: gateway.connect, halfClose: true, then: Array("hello".utf8)
        ).text
        XCTAssertTrue(tunnel.hasPrefix("HTTP/1.1 200"), tunnel)
        // Exactly the tunnelled bytes come back: nothing of the CONNECT head leaks into the tunnel.
        XCTAssertEqual(tunnel.components(separatedBy: "\r\n\r\n").last, "hello", tunnel)
        XCTAssertEqual(tunnel.components(separatedBy: "\r\n\r\n").count, 2, tunnel)
        let refused = try net.exchange(Array("CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n".utf8), with: gateway.connect).text
        XCTAssertTrue(refused.hasPrefix("HTTP/1.1 403"), refused)
    }

    /// Tunnel bytes and the FIN sent right behind the head, before any `200`: the gateway
    /// keeps both while it dials and replays the EOF after those bytes.
    func testConnectBytesAndFINSentWithTheHeadReachTheTarget() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        let gateway = try net.startGateway(config: "listeners: []\n", registry: gatewayRegistry(httpPort: 1, tlsPort: echo.port!))
        for _ in 0..<3 {
            let tunnel = try net.exchange(
                Array("CONNECT aliyun.com:\(echo.port!) HTTP/1.1\r\nHost: aliyun.com:\(echo.port!)\r\n\r\nsent-with-the-head".utf8),
                with: gateway.connect, halfClose: true
            ).text
            XCTAssertTrue(tunnel.hasPrefix("HTTP/1.1 200"), tunnel)
            XCTAssertEqual(tunnel.components(separatedBy: "\r\n\r\n").last, "sent-with-the-head", tunnel)
        }
    }

    /// The CONNECT listener's own answers: another method 405, a malformed head 400, each
    /// with no body, `server: sluice` and `connection: close`, as the sidecar's local replies.
    func testConnectListenerRefusesOtherMethodsAndMalformedRequests() throws {
        let net = Loopback()
        let gateway = try net.startGateway(config: "listeners: []\n", registry: gatewayRegistry(httpPort: 1, tlsPort: 2))
        let get = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\n\r\n".utf8), with: gateway.connect).text
        XCTAssertTrue(get.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\ndate: "), get)
        XCTAssertTrue(get.hasSuffix("\r\nserver: sluice\r\nconnection: close\r\n\r\n"), get)
        let malformed = try net.exchange(Array("CONNECT aliyun.com:443 HTTP/1.1\nHost: x\n\n".utf8), with: gateway.connect).text
        XCTAssertTrue(malformed.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), malformed)
        let noPort = try net.exchange(Array("CONNECT aliyun.com HTTP/1.1\r\nHost: aliyun.com\r\n\r\n".utf8), with: gateway.connect).text
        XCTAssertTrue(noPort.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), noPort)
    }

    func testTLSListenerRoutesBySNI() throws {
        let net = Loopback()
        let echo = try net.startEchoOrigin()
        // The TLS listener decides on its own port: register aliyun.com on it, endpoint = the echo origin.
        let registry = ServiceEntryYAML.tls("aliyun", host: "aliyun.com", port: 18443, targetPort: echo.port!).yaml
        let runtime = try Loopback.runtime(config: "accessLog: {enabled: false}\n", registry: registry, role: .gateway)
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(ListenerConfig(port: 18443, protocol: .tls, address: "127.0.0.1"), group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        let hello = clientHello(serverName: "aliyun.com")
        XCTAssertEqual(try net.exchange(hello, with: channel.localAddress!, halfClose: true), hello)
        XCTAssertEqual(try net.exchange(clientHello(serverName: "evil.test"), with: channel.localAddress!, halfClose: true), [])
    }

    func testSidecarSendsHTTPThroughAConnectGateway() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let gateway = try net.startGateway(config: "listeners: []\n", registry: gatewayRegistry(httpPort: origin.port!, tlsPort: 1))
        let sidecarConfig = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.1]
              protocol: connect
              ports: {connect: \(gateway.connect.port!)}
            """
        let sidecarRegistry = self.resolvedByName(origin.port!)
        let proxy = try net.startSidecar(config: sidecarConfig, registry: sidecarRegistry, originalDestination: origin)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 301"), reply)
    }

    func testDeadGatewayAddressIsSkipped() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let gateway = try net.startGateway(config: "listeners: []\n", registry: gatewayRegistry(httpPort: origin.port!, tlsPort: 1))
        // 127.0.0.3 has nothing listening on the connect port: refused, then the next address.
        let sidecarConfig = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.3, 127.0.0.1]
              protocol: connect
              ports: {connect: \(gateway.connect.port!)}
            """
        let sidecarRegistry = self.resolvedByName(origin.port!)
        let proxy = try net.startSidecar(config: sidecarConfig, registry: sidecarRegistry, originalDestination: origin)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 301"), reply)
    }
}
